# web.mk - the browser page (included by the Makefile).
# web/* is embedded into qatserve at build time: web/embed.sh writes
# $(BUILD)/gen/page_data.h (byte arrays + a path table) and server/http/page.c
# includes it. Generated per build folder, so `make` and `make SAN=1` each
# have their own; builds that skip this (tests/fuzz/fuzz.mk) serve no page.
#   make browser-test   drive Debian's chromium against a real server

WEB_FILES := $(sort $(wildcard web/*.html web/*.css web/*.js web/*.svg))
WEB_GEN   := $(BUILD)/gen/page_data.h

$(WEB_GEN): web/embed.sh $(WEB_FILES)
	@mkdir -p $(dir $@)
	sh web/embed.sh $@ $(WEB_FILES)

$(BUILD)/obj/server/http/page.o: $(WEB_GEN)
$(BUILD)/obj/server/http/page.o: CPPFLAGS += -I$(BUILD)/gen -DQS_PAGE_EMBED

.PHONY: browser-test
browser-test: $(SERVER) $(QSTOOL)
	@deploy/install-deps.sh --browser || echo "browser-test: could not install chromium" >&2
	@BUILD=$(BUILD) tests/browser/run.sh
