-- wrk_post.lua - POSTs one body file (JSON or raw float32) for the HTTP
-- benchmark (bench/bench_http.sh).
--   BODY=FILE CTYPE=application/json ACCEPT=... wrk -s bench/wrk_post.lua URL
-- Prints one machine-readable line at the end:
--   RESULT req_s=... p50_ms=... p90_ms=... p99_ms=... non2xx=... errors=...
local path = os.getenv("BODY") or "build/wrk/predict_b1.json"
local f = assert(io.open(path, "rb"), "cannot open " .. path)
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("CTYPE") or "application/json"
local accept = os.getenv("ACCEPT")
if accept and accept ~= "" then wrk.headers["Accept"] = accept end

function done(summary, latency, requests)
  local errs = summary.errors
  local e = errs.connect + errs.read + errs.write + errs.timeout
  io.write(string.format("RESULT req_s=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f non2xx=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000, errs.status, e))
end
