# num.mk - the exhaustive float printing check (included by the Makefile):
# all 2^32 bit patterns through server/base/num.c and back. Not part of make test
# (minutes); the num unit suite covers every class on samples.
.PHONY: num-exhaustive
num-exhaustive: $(BUILD)/num_exhaustive
	$(BUILD)/num_exhaustive 2

$(BUILD)/num_exhaustive: tests/num/exhaustive.c $(filter %/num.c,$(SRV_SRC)) server/base/num.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Iserver $(CFLAGS) -o $@ $(filter %.c,$^) $(LDFLAGS) -lm
