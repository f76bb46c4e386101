# grpc.mk - the gRPC listener (server/grpc/ the HTTP/2 transport, server/api/
# grpc_*.c its decoder/encoder), included by the Makefile after the server's
# sources are listed (they are found by wildcard). The protobuf C code is
# generated at build time from proto/grpc_predict_v2.proto with protoc-c into
# $(BUILD)/gen.
.DEFAULT_GOAL := all # this file is read before the Makefile's first rule
GRPC_GEN   := $(BUILD)/gen
GRPC_PROTO := proto/grpc_predict_v2.proto
GRPC_PB_C  := $(GRPC_GEN)/grpc_predict_v2.pb-c.c
GRPC_PB_H  := $(GRPC_GEN)/grpc_predict_v2.pb-c.h
GRPC_PB_O  := $(BUILD)/obj/gen/grpc_predict_v2.pb-c.o
GRPC_USERS := $(BUILD)/obj/server/api/grpc_service.o $(BUILD)/obj/server/grpc/h2.o
SRV_OBJ    += $(GRPC_PB_O)
PC_LIBS    += $(shell pkg-config --libs libnghttp2 libprotobuf-c 2>/dev/null)

$(GRPC_PB_H): $(GRPC_PB_C)
$(GRPC_PB_C): $(GRPC_PROTO)
	@mkdir -p $(GRPC_GEN)
	protoc-c --proto_path=proto --c_out=$(GRPC_GEN) $<

$(GRPC_PB_O): $(GRPC_PB_C)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -I$(GRPC_GEN) $(CFLAGS) -MMD -MP -c $< -o $@

$(GRPC_USERS): CPPFLAGS += -I$(GRPC_GEN)
$(GRPC_USERS): | $(GRPC_PB_H)

# make grpc-test (part of make test): the listener against Python's grpcio,
# stubs generated at test time from the .proto (tests/grpc/test_grpc.py).
.PHONY: grpc-test
grpc-test: all $(BUILD)/qstool
	/usr/bin/python3 tests/grpc/test_grpc.py $(BUILD)
