-- predict.lua - wrk script: POSTs a real Fashion-MNIST request body.
--   BODY=build/wrk/predict_b1.json  wrk -t2 -c16 -d10s -s deploy/wrk/predict.lua http://127.0.0.1:8080/predict
--   BODY=build/wrk/predict_b32.json ...   (batch of 32 images)
--   BODY=build/wrk/v2_b1.json ... http://HOST:PORT/v2/models/NAME/infer
-- Bodies come from deploy/wrk/mkbodies.py (make loadtest makes them).
-- Prints one machine-readable line at the end:
--   RESULT req_s=... p50_ms=... p99_ms=... non2xx=... errors=...
local path = os.getenv("BODY") or "build/wrk/predict_b1.json"
local f = assert(io.open(path, "rb"), "cannot open " .. path)
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local errs = summary.errors
  local e = errs.connect + errs.read + errs.write + errs.timeout
  io.write(string.format("RESULT req_s=%.1f p50_ms=%.3f p99_ms=%.3f non2xx=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, errs.status, e))
end
