# make layering-test: the server's folders import only what docs/pipeline.md
# allows (computed from the objects' symbols with nm, and from #include
# lines); a self-test plants an upward call and an upward include first to
# show the check can fail.
.PHONY: layering-test
layering-test: $(SERVER)
	@/usr/bin/python3 tests/layering/check_layers.py --self-test $(BUILD)/obj/server server
