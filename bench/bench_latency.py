#!/usr/bin/python3
"""bench_latency.py - the distribution of the server's own per-request
compute latency, int8 against the fp32 baseline (`make bench-latency`).

    bench_latency.py PORT OUTDIR [N]

Sends N (default 3000) batch-1 /predict requests, one Fashion-MNIST test
image each (cycling through the first 1000), one after another over one
keep-alive connection, and records each answer's latency_us.int8 and
latency_us.fp32 (timed by the server around the model compute alone).
Writes OUTDIR/latency.csv (int8_us,fp32_us per request) and
OUTDIR/latency_cdf.csv, and prints percentiles."""
import gzip
import http.client
import json
import os
import struct
import sys

port, out = int(sys.argv[1]), sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
src = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
imgs = []
if os.path.exists(src):
    with gzip.open(src, "rb") as f:
        magic, count, r, c = struct.unpack(">IIII", f.read(16))
        for _ in range(min(count, 1000)):
            imgs.append(f.read(r * c))
else:  # synthetic images when Debian's dataset is not installed
    import random
    rnd = random.Random(1)
    imgs = [bytes(rnd.randrange(256) for _ in range(784)) for _ in range(100)]
bodies = [('{"inputs":[[' + ",".join("%.6g" % (p / 255.0) for p in img) + "]]}").encode() for img in imgs]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
for b in bodies[:50]:  # warm-up
    conn.request("POST", "/predict", b, {"Content-Type": "application/json"})
    conn.getresponse().read()
i8, f32 = [], []
for i in range(n):
    conn.request("POST", "/predict", bodies[i % len(bodies)], {"Content-Type": "application/json"})
    r = conn.getresponse()
    d = json.loads(r.read())
    if r.status != 200:
        sys.exit("bench-latency: /predict answered %d: %s" % (r.status, d))
    i8.append(d["latency_us"]["int8"])
    f32.append(d["latency_us"]["fp32"])
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "latency.csv"), "w") as f:
    f.write("int8_us,fp32_us\n")
    for a, b in zip(i8, f32):
        f.write("%.3f,%.3f\n" % (a, b))
s8, s32 = sorted(i8), sorted(f32)
with open(os.path.join(out, "latency_cdf.csv"), "w") as f:
    f.write("fraction,int8_us,fp32_us\n")
    for k in range(n):
        f.write("%.5f,%.3f,%.3f\n" % ((k + 1) / n, s8[k], s32[k]))


def pct(s, p):
    return s[min(len(s) - 1, int(p / 100.0 * len(s)))]


lines = ["# per-request compute latency reported by the server (latency_us), %d batch-1 requests, "
         "one connection, Fashion-MNIST test images" % n,
         "%-6s %9s %9s %9s %9s %9s" % ("", "p50 us", "p90 us", "p99 us", "p99.9 us", "max us")]
for name, s in (("int8", s8), ("fp32", s32)):
    lines.append("%-6s %9.2f %9.2f %9.2f %9.2f %9.2f" % (name, pct(s, 50), pct(s, 90), pct(s, 99), pct(s, 99.9), s[-1]))
lines.append("fp32/int8 at p50: %.2fx, at p99: %.2fx" % (pct(s32, 50) / pct(s8, 50), pct(s32, 99) / pct(s8, 99)))
text = "\n".join(lines) + "\n"
open(os.path.join(out, "latency.txt"), "w").write(text)
sys.stdout.write(text)
