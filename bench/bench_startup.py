#!/usr/bin/python3
"""bench_startup.py - start-up time and resident memory of qatserve with the
shipped models (`make bench-startup`).

    bench_startup.py BUILD/qatserve MODELS_DIR [REPEAT]

Start-up: from just before the process is spawned to the first 200 from
GET /v2/health/ready (polled every 0.2 ms over fresh connections), median of
REPEAT starts. Memory: VmRSS and VmHWM from /proc/PID/status once ready, and
again after 2000 /predict requests (context pools and buffers warm)."""
import json
import os
import socket
import statistics
import subprocess
import sys
import time

server, models = sys.argv[1], sys.argv[2]
repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 7


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def get(port, path, body=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    if body is None:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
    else:
        s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Content-Length: %d\r\nConnection: close\r\n\r\n" % (path, len(body))).encode() + body)
    data = b""
    while True:
        k = s.recv(65536)
        if not k:
            break
        data += k
    s.close()
    return data


def status(pid):
    out = {}
    for line in open("/proc/%d/status" % pid):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0])  # kB
    return out


times, mem_ready, mem_warm = [], [], []
body = None
bpath = os.path.join(os.path.dirname(server), "wrk", "predict_b1.json")
if os.path.exists(bpath):
    body = open(bpath, "rb").read()
for i in range(repeat):
    port = free_port()
    t0 = time.perf_counter()
    p = subprocess.Popen([server, "--models", models, "--port", str(port), "--quiet"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ready = None
    while time.perf_counter() - t0 < 10:
        try:
            if get(port, "/v2/health/ready").startswith(b"HTTP/1.1 200"):
                ready = time.perf_counter() - t0
                break
        except OSError:
            pass
        time.sleep(0.0002)
    if ready is None:
        p.kill()
        sys.exit("bench-startup: server not ready within 10 s")
    times.append(ready * 1e3)
    mem_ready.append(status(p.pid))
    if i == 0 and body:
        for _ in range(2000):
            get(port, "/predict", body)
        mem_warm.append(status(p.pid))
    p.terminate()
    p.wait()

names = sorted(f for f in os.listdir(models) if f.endswith(".safetensors"))
size = sum(os.path.getsize(os.path.join(models, f)) for f in names)
print("# qatserve start-up with %s (%d model file(s), %.1f kB): spawn -> first 200 from /v2/health/ready"
      % (models, len(names), size / 1024))
print("start-up ms: median %.1f  min %.1f  max %.1f  (%d starts)" %
      (statistics.median(times), min(times), max(times), repeat))
print("VmRSS once ready: median %.1f MB (VmHWM %.1f MB)" %
      (statistics.median(m["VmRSS"] for m in mem_ready) / 1024,
       statistics.median(m["VmHWM"] for m in mem_ready) / 1024))
if mem_warm:
    print("VmRSS after 2000 /predict requests: %.1f MB (VmHWM %.1f MB)" %
          (mem_warm[0]["VmRSS"] / 1024, mem_warm[0]["VmHWM"] / 1024))
