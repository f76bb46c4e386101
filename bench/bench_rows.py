#!/usr/bin/python3
"""bench_rows.py - `make bench-rows`: /predict with 1, 16 and 64 rows per
request, one server per int8 kernel tier (QAT_KERNEL) side by side.

    bench_rows.py SERVER MODELS_DIR OUTDIR [ROUNDS] [TIERS]

For each tier a qatserve (2 HTTP threads) serves MODELS_DIR on a free
port. ROUNDS (default 5) rounds, the tiers and row counts interleaved
within each round, each a burst of requests over one keep-alive connection
(real Fashion-MNIST test images when Debian's dataset is installed). Per
tier and row count: the server's own int8 and fp32 compute time
(latency_us.int8 / .fp32, medians), the server process's CPU time per
request (/proc/PID/stat, utime + stime, over the whole burst), and the
client's round trip (median). Medians of the rounds are printed; OUTDIR/
rows.csv holds them. The tiers default to avx2 and every faster one the
machine runs (qstool tiers is not needed: a tier the CPU lacks refuses to
start and is skipped)."""
import gzip
import http.client
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time

server, models, out = sys.argv[1], sys.argv[2], sys.argv[3]
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 5
tiers = (sys.argv[5] if len(sys.argv) > 5 else "avx2 avxvnni avx512vnni").split()
ROWS = [1, 16, 64]
REQS = {1: 1000, 16: 300, 64: 100}  # >= 0.1 s of server CPU per burst: /proc ticks are 10 ms
TICK = os.sysconf("SC_CLK_TCK")

src = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
imgs = []
if os.path.exists(src):
    with gzip.open(src, "rb") as f:
        magic, count, r, c = struct.unpack(">IIII", f.read(16))
        for _ in range(min(count, 640)):
            imgs.append(f.read(r * c))
else:
    import random
    rnd = random.Random(1)
    imgs = [bytes(rnd.randrange(256) for _ in range(784)) for _ in range(640)]
rows_text = ["[" + ",".join("%.6g" % (p / 255.0) for p in img) + "]" for img in imgs]


def body(n, k):
    sel = [rows_text[(k * n + i) % len(rows_text)] for i in range(n)]
    return ('{"inputs":[' + ",".join(sel) + "]}").encode()


bodies = {n: [body(n, k) for k in range(8)] for n in ROWS}

procs, ports = {}, {}
logs = tempfile.mkdtemp(prefix="qs-rows.")
for t in tiers:
    log = open(os.path.join(logs, t + ".log"), "w+")
    env = dict(os.environ, QAT_KERNEL=t)
    p = subprocess.Popen([server, "--models", models, "--port", "0", "--threads", "2", "--max-batch", "64"],
                         stdout=log, stderr=subprocess.STDOUT, env=env)
    port = None
    for _ in range(200):
        time.sleep(0.05)
        log.seek(0)
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read())
        if m:
            port = int(m.group(1))
            break
        if p.poll() is not None:
            break
    if port is None:
        log.seek(0)
        print("bench-rows: tier %s skipped: %s" % (t, log.read().strip().splitlines()[-1:]))
        p.kill()
        continue
    procs[t], ports[t] = p, port
tiers = [t for t in tiers if t in ports]


def cpu_s(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def med(v):
    v = sorted(v)
    return v[len(v) // 2]


res = {(t, n): {"int8": [], "fp32": [], "cpu": [], "rtt": []} for t in tiers for n in ROWS}
conns = {t: http.client.HTTPConnection("127.0.0.1", ports[t], timeout=30) for t in tiers}
for t in tiers:  # warm-up
    for n in ROWS:
        for b in bodies[n][:4]:
            conns[t].request("POST", "/predict", b)
            conns[t].getresponse().read()
for r in range(rounds):
    for n in ROWS:
        for t in tiers:
            i8, f32, rtt = [], [], []
            c0 = cpu_s(procs[t].pid)
            for k in range(REQS[n]):
                t0 = time.perf_counter()
                conns[t].request("POST", "/predict", bodies[n][k % 8])
                d = json.loads(conns[t].getresponse().read())
                rtt.append((time.perf_counter() - t0) * 1e6)
                i8.append(d["latency_us"]["int8"])
                f32.append(d["latency_us"]["fp32"])
            cpu = (cpu_s(procs[t].pid) - c0) * 1e6 / REQS[n]
            e = res[(t, n)]
            e["int8"].append(med(i8))
            e["fp32"].append(med(f32))
            e["cpu"].append(cpu)
            e["rtt"].append(med(rtt))
for p in procs.values():
    p.terminate()
    p.wait()

load = open("/proc/loadavg").read().split()[:3]
lines = ["# reproduce: make bench-rows   (bench/bench_rows.py %s %s %s %d)" % (server, models, out, rounds),
         "# /predict, JSON, fp32 baseline on; one keep-alive connection per server; median of %d interleaved"
         " rounds; load average %s" % (rounds, " ".join(load)),
         "# server int8/fp32: latency_us the server reports around the model compute; CPU: the server"
         " process's CPU time per request (parsing, both models, printing)",
         "%-11s %4s | %10s %10s | %12s | %10s" % ("tier", "rows", "int8 us", "fp32 us", "CPU us/req", "round trip")]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "rows.csv"), "w") as f:
    f.write("tier,rows,int8_us,fp32_us,cpu_us_per_req,rtt_us\n")
    for n in ROWS:
        for t in tiers:
            e = res[(t, n)]
            v = [med(e["int8"]), med(e["fp32"]), med(e["cpu"]), med(e["rtt"])]
            lines.append("%-11s %4d | %10.1f %10.1f | %12.0f | %10.0f" % (t, n, *v))
            f.write("%s,%d,%.2f,%.2f,%.1f,%.1f\n" % (t, n, *v))
txt = "\n".join(lines) + "\n"
open(os.path.join(out, "rows.txt"), "w").write(txt)
print(txt, end="")
