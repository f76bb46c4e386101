#!/usr/bin/python3
"""bench_grpc.py - `make bench-grpc`: gRPC ModelInfer against the REST binary
path on the same server, in one run, under the same load generator (h2load
from Debian's nghttp2-client: HTTP/2 for gRPC, --h1 for REST).

    bench_grpc.py BUILD_DIR [DURATION=5] [REPEAT=3] [CONNS=16]

Targets, one Fashion-MNIST image (784 float32) per request, int8 + fp32
baseline (the default):
  rest-binary   POST /predict?model=..., Content-Type and Accept
                application/octet-stream (raw float32 both ways)
  grpc-raw      ModelInfer with the image in raw_input_contents
  grpc-fp32     ModelInfer with the image in contents.fp32_contents
Each run lasts DURATION s at CONNS connections (one request in flight on
each); the targets are interleaved run by run, REPEAT times, and the medians
reported. CPU per request is the server process's user+system time over the
run divided by the requests answered. Every gRPC request is counted as
answered only if the server's own metrics counted it OK (h2load sees HTTP
200 for any gRPC status). Writes BUILD/bench/grpc.txt and grpc.csv."""
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
DURATION = int(sys.argv[2]) if len(sys.argv) > 2 else 5
REPEAT = int(sys.argv[3]) if len(sys.argv) > 3 else 3
CONNS = int(sys.argv[4]) if len(sys.argv) > 4 else 16
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, BUILD, "bench")
TICK = os.sysconf("SC_CLK_TCK")

if not shutil.which("h2load"):
    sys.exit("bench-grpc: h2load is not installed (deploy/install-deps.sh --bench: nghttp2-client)")
os.makedirs(OUT, exist_ok=True)
tmp = tempfile.mkdtemp(prefix="qs-bench-grpc.")
subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I" + os.path.join(ROOT, "proto"),
                "--python_out=" + tmp, os.path.join(ROOT, "proto", "grpc_predict_v2.proto")], check=True)
sys.path.insert(0, tmp)
import grpc_predict_v2_pb2 as pb  # noqa: E402

# The image: the same one bench-http sends (deploy/wrk/mkbodies.py).
subprocess.run([sys.executable, os.path.join(ROOT, "deploy/wrk/mkbodies.py"), os.path.join(tmp, "wrk")],
               check=True, stdout=subprocess.DEVNULL)
import json  # noqa: E402
x = [v for r in json.load(open(os.path.join(tmp, "wrk/predict_b1.json")))["inputs"] for v in r]
raw = struct.pack("<%df" % len(x), *x)
os.makedirs(os.path.join(tmp, "models"))
model = os.path.join(ROOT, "models/fashion-mnist.safetensors")
if not os.path.exists(model):
    model = os.path.join(tmp, "random.safetensors")
    subprocess.run([os.path.join(ROOT, BUILD, "qstool"), "mkmodel", model, "784,256,128,10", "1", "class"],
                   check=True, stdout=subprocess.DEVNULL)
shutil.copy(model, os.path.join(tmp, "models/fashion-mnist.safetensors"))


def grpc_body(form):
    t = pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP32", shape=[1, len(x)])
    r = pb.ModelInferRequest(model_name="fashion-mnist", inputs=[t])
    if form == "raw":
        r.raw_input_contents.append(raw)
    else:
        r.inputs[0].contents.fp32_contents.extend(x)
    b = r.SerializeToString()
    return b"\0" + struct.pack(">I", len(b)) + b


files = {"rest-binary": raw, "grpc-raw": grpc_body("raw"), "grpc-fp32": grpc_body("fp32")}
for k, v in files.items():
    open(os.path.join(tmp, k), "wb").write(v)

log = os.path.join(tmp, "server.log")
srv = subprocess.Popen([os.path.join(ROOT, BUILD, "qatserve"), "--models", os.path.join(tmp, "models"),
                        "--port", "0", "--grpc-port", "0", "--threads", "2", "--quiet", "--conn-limit", "4096"],
                       stdout=open(log, "w"), stderr=subprocess.STDOUT)
http = grpcp = None
for _ in range(200):
    t = open(log).read()
    h = re.search(r"listening on http://127\.0\.0\.1:(\d+)", t)
    g = re.search(r"listening on grpc://127\.0\.0\.1:(\d+)", t)
    if h and g:
        http, grpcp = int(h.group(1)), int(g.group(1))
        break
    time.sleep(0.05)
if not grpcp:
    srv.kill()
    sys.exit("bench-grpc: server did not start\n" + open(log).read())


def cpu_ticks():
    f = open("/proc/%d/stat" % srv.pid).read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])  # utime, stime (fields 14, 15)


def grpc_ok():
    m = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % http).read().decode()
    g = re.search(r'endpoint="ModelInfer",code="OK",protocol="grpc"\} (\d+)', m)
    return int(g.group(1)) if g else 0


def run(target):
    args = ["h2load", "-c", str(CONNS), "-m", "1", "-t", "1", "-D", str(DURATION),
            "-d", os.path.join(tmp, target)]
    if target == "rest-binary":
        args += ["--h1", "-H", "Content-Type: application/octet-stream", "-H", "Accept: application/octet-stream",
                 "http://127.0.0.1:%d/predict?model=fashion-mnist" % http]
    else:
        args += ["-H", "content-type: application/grpc", "-H", "te: trailers",
                 "http://127.0.0.1:%d/inference.GRPCInferenceService/ModelInfer" % grpcp]
    ok0 = grpc_ok()
    c0 = cpu_ticks()
    out = subprocess.run(args, capture_output=True, text=True).stdout
    c1 = cpu_ticks()
    ok1 = grpc_ok()
    m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    if not m:
        sys.exit("bench-grpc: h2load failed (%s):\n%s" % (target, out))
    done, succeeded = int(m.group(1)), int(m.group(2))
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    if succeeded != done:
        sys.exit("bench-grpc: %d of %d requests failed (%s)" % (done - succeeded, done, target))
    if target != "rest-binary":
        # h2load sees HTTP 200 for any gRPC status: the server's count of OK
        # calls decides (it may also hold the few cut off at the end).
        if ok1 - ok0 < done:
            sys.exit("bench-grpc: server counted %d OK calls for %d answered (%s)" % (ok1 - ok0, done, target))
        done = ok1 - ok0
    return rps, (c1 - c0) / TICK * 1e6 / done


res = {k: [] for k in files}
try:
    for r in range(REPEAT):
        for target in files:
            res[target].append(run(target))
finally:
    srv.terminate()
    srv.wait()
    shutil.rmtree(tmp, ignore_errors=True)

lines = ["bench-grpc: %d cores, load average %s; %d connections, %d x %d s interleaved, medians" %
         (os.cpu_count(), open("/proc/loadavg").read().split()[0], CONNS, REPEAT, DURATION),
         "%-12s %10s %14s   (runs: req/s, cpu us/req)" % ("target", "req/s", "cpu us/req")]
csv = ["target,conns,req_s,cpu_us_per_req"]
for k, v in res.items():
    rps = statistics.median(a for a, _ in v)
    cpu = statistics.median(b for _, b in v)
    lines.append("%-12s %10.0f %14.1f   %s" % (k, rps, cpu, ", ".join("%.0f/%.1f" % p for p in v)))
    csv.append("%s,%d,%.0f,%.2f" % (k, CONNS, rps, cpu))
ratio = statistics.median(b for _, b in res["grpc-raw"]) / statistics.median(b for _, b in res["rest-binary"])
lines.append("grpc-raw CPU per request / rest-binary's: %.2f (target <= 1.00: %s)" %
             (ratio, "met" if ratio <= 1.0 else "MISSED"))
open(os.path.join(OUT, "grpc.txt"), "w").write("\n".join(lines) + "\n")
open(os.path.join(OUT, "grpc.csv"), "w").write("\n".join(csv) + "\n")
print("\n".join(lines))
