#!/usr/bin/python3
"""hostile-models.py - model files no control loop may stall on, against the
real server, while a well-behaved client checks every answer bit for bit.

    /usr/bin/python3 tests/reliability/hostile-models.py BUILD

Cases, in order (each must pass; the client's answers must stay exact and
200 throughout, and the old model must keep serving through every refusal):
  1. a file name holding a newline and a forged log line is logged escaped;
  2. a flipped bit in every tensor of the served model's file (format 2):
     each copy refused with ECHECKSUM naming that tensor;
  3. a header of 200,000 metadata keys: refused (ELIMIT) in well under 1 s;
  4. a sparse 1 GiB file: refused without being read (peak RSS + < 64 MB);
  5. a FIFO swapped in and out under a model's name for 3 s with SIGHUPs:
     the control loop keeps handling signals (no blocked open());
  6. 500 model files: 256 load (name order), the rest refused for the cap
     exactly once each, however many events follow;
  7. a junk file rewritten every 100 ms while the model is replaced: the new
     model serves within 1.5 s of the replacement;
  8. SIGTERM exits within --drain-timeout (2 s here), with code 0.
"""
import http.client
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
QSTOOL = os.path.join(BUILD, "qstool")
SERVER = os.path.join(BUILD, "qatserve")
fails = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        fails.append(what)


def run(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


tmp = tempfile.mkdtemp(prefix="qs-hostile.")
models = os.path.join(tmp, "models")
os.mkdir(models)
run(QSTOOL, "mkmodel", tmp + "/A.safetensors", "784,64,10", "101")
run(QSTOOL, "mkmodel", tmp + "/B.safetensors", "784,64,10", "202")
run(QSTOOL, "mkmodel", tmp + "/tiny.safetensors", "4,3,2", "7")
open(tmp + "/rows.txt", "w").write(run(QSTOOL, "rows", "1", "784", "5"))
row = open(tmp + "/rows.txt").read().split()
want = {m: run(QSTOOL, "expect", "%s/%s.safetensors" % (tmp, m), tmp + "/rows.txt")
        .splitlines()[0].split() for m in "AB"}
assert want["A"] != want["B"]
body = ('{"model":"fm","inputs":[[%s]]}' % ",".join(row)).encode()
shutil.copy(tmp + "/A.safetensors", models + "/fm.safetensors")

log_path = tmp + "/server.log"
logf = open(log_path, "w")
srv = subprocess.Popen([SERVER, "--models", models, "--host", "127.0.0.1", "--port", "0",
                        "--quiet", "--drain-timeout", "2"], stdout=logf, stderr=logf)


def log():
    return open(log_path, errors="replace").read()


port = None
for _ in range(200):
    m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log())
    if m:
        port = int(m.group(1))
        break
    time.sleep(0.05)
if not port:
    print(log())
    sys.exit("hostile-models: server did not start")


def wait_log(pattern, timeout=5.0, start=0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        m = re.search(pattern, log()[start:])
        if m:
            return m
        time.sleep(0.02)
    return None


# The well-behaved client: every answer 200 and exactly the expected model's.
expect = {"now": {"A"}}
stats = {"ok": 0, "bad": 0, "B_at": None}
stop = threading.Event()


def client():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while not stop.is_set():
        try:
            c.request("POST", "/predict", body, {"Content-Type": "application/json"})
            r = c.getresponse()
            raw = r.read()
        except Exception as e:  # noqa: BLE001 - any transport failure is a failure
            stats["bad"] += 1
            print("client error:", repr(e))
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        got = None
        if r.status == 200:
            out = json.loads(raw, parse_float=str, parse_int=str)["outputs"][0]
            got = next((k for k in "AB" if out == want[k]), None)
        if got in expect["now"]:
            stats["ok"] += 1
            if got == "B" and stats["B_at"] is None:
                stats["B_at"] = time.monotonic()
        else:
            stats["bad"] += 1
            print("client: status %d, answer %s, expected %s: %s"
                  % (r.status, got, expect["now"], raw[:160]))
        time.sleep(0.005)


ct = threading.Thread(target=client)
ct.start()
time.sleep(0.3)


def put(name, data):
    """Atomic replace, as a deployment would."""
    t = os.path.join(models, ".tmp-" + name)
    with open(t, "wb") as f:
        f.write(data)
    os.rename(t, os.path.join(models, name))


# 1. A forged log line in a file name.
evil = "evil\n2026-01-01T00:00:00.000Z model fm: loaded fake.safetensors"
put(evil, b"x")
m = wait_log(r"ignoring evil\\x0a2026")
check(m is not None, "a newline in a file name is logged escaped (\\x0a)")
check(not re.search(r"^2026-01-01T00:00:00\.000Z model fm", log(), re.M),
      "no forged log line")
os.unlink(os.path.join(models, evil))

# 2. A flipped bit in every tensor.
A = open(tmp + "/A.safetensors", "rb").read()
hlen = struct.unpack("<Q", A[:8])[0]
hdr = json.loads(A[8:8 + hlen])
names = sorted(k for k in hdr if k != "__metadata__")
check(hdr["__metadata__"]["format_version"] == "2", "qstool writes format 2")
named = 0
for i, name in enumerate(names):
    b, e = hdr[name]["data_offsets"]
    pos = 8 + hlen + b + (i * 7919) % (e - b)
    bad = bytearray(A)
    bad[pos] ^= 1 << (i % 8)
    start = len(log())
    put("fm.safetensors", bytes(bad))
    m = wait_log(r"model fm: refused: .*tensor (\S+): data SHA-256.*QAT_ECHECKSUM", 5, start)
    if m and m.group(1).rstrip(":") == name:
        named += 1
    else:
        print("no checksum refusal naming %s: %s" % (name, m and m.group(0)))
    wait_log(r"keeps serving version", 2, start)
check(named == len(names), "a flipped bit in each of the %d tensors: refused, naming it (%d)"
      % (len(names), named))
put("fm.safetensors", A)  # the same model again (a reload to A)
time.sleep(0.6)

# 3. 200,000 metadata keys (3.4 MB).
keys = ",".join('"k%d":""' % i for i in range(200000))
h = ('{"__metadata__":{"format":"qatserve",%s}}' % keys).encode()
start = len(log())
t0 = time.monotonic()
put("keys.safetensors", struct.pack("<Q", len(h)) + h)
m = wait_log(r"model keys: refused: .*QAT_ELIMIT", 5, start)
dt = time.monotonic() - t0
check(m is not None and dt < 1.0, "200,000-key header refused (ELIMIT) in %.0f ms "
      "(incl. the 200 ms debounce)" % (dt * 1e3))
os.unlink(models + "/keys.safetensors")


# 4. A sparse 1 GiB file.
def hwm_kb():
    for ln in open("/proc/%d/status" % srv.pid):
        if ln.startswith("VmHWM:"):
            return int(ln.split()[1])
    return 0


before = hwm_kb()
start = len(log())
t = models + "/.sparse"
shutil.copy(tmp + "/A.safetensors", t)
os.truncate(t, 1 << 30)
os.rename(t, models + "/sparse.safetensors")
m = wait_log(r"model sparse: refused: .*after the last tensor.*QAT_EOVERLAP", 5, start)
grew = (hwm_kb() - before) / 1024
check(m is not None and grew < 64, "sparse 1 GiB file refused unread (EOVERLAP), peak RSS "
      "+%.1f MB" % grew)
os.unlink(models + "/sparse.safetensors")

# 5. A FIFO swapped in and out under a model name, with SIGHUPs.
start = len(log())
end = time.monotonic() + 3
hups = 0
while time.monotonic() < end:
    put("race.safetensors", b"junk")
    f = models + "/.fifo"
    os.mkfifo(f)
    os.rename(f, models + "/race.safetensors")
    srv.send_signal(signal.SIGHUP)
    hups += 1
    time.sleep(0.03)
os.unlink(models + "/race.safetensors")
time.sleep(0.5)
srv.send_signal(signal.SIGHUP)
m = wait_log(r"reload \(SIGHUP\): \d+ models serving", 3, len(log()) - 200)
last = log()[start:].count("reload (SIGHUP): scanning")
check(m is not None and last >= 2, "FIFO swapped under a model name for 3 s with %d SIGHUPs: "
      "the control loop kept answering (%d syncs)" % (hups, last))

# 6. 500 model files: 256 load in name order, the rest refused once each.
start = len(log())
tiny = open(tmp + "/tiny.safetensors", "rb").read()
for i in range(500):
    with open(models + "/.m", "wb") as f:
        f.write(tiny)
    os.rename(models + "/.m", models + "/m%03d.safetensors" % i)
time.sleep(1.5)
for _ in range(3):  # more events: nothing may be re-refused or re-logged
    open(models + "/note.txt", "w").write("x")
    time.sleep(0.4)
srv.send_signal(signal.SIGHUP)
time.sleep(0.8)
capped = re.findall(r"model (m\d+): not loaded: 256 models are loaded", log()[start:])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
c.request("GET", "/models")
listed = [x["name"] for x in json.loads(c.getresponse().read())["models"]]
check(len(listed) == 256 and listed[0] == "fm" and listed[-1] == "m254",
      "500 files: 256 models loaded in name order (fm, m000..m254): %d, last %s"
      % (len(listed), listed[-1]))
check(sorted(capped) == ["m%03d" % i for i in range(255, 500)],
      "the 245 files past the cap refused once each (%d cap lines after 4 more events)"
      % len(capped))
for i in range(500):
    os.unlink(models + "/m%03d.safetensors" % i)
os.unlink(models + "/note.txt")
time.sleep(0.8)

# 7. Steady writes during a reload.
writing = threading.Event()


def writer():
    k = 0
    while not writing.is_set():
        with open(models + "/junk.safetensors", "wb") as f:
            f.write(os.urandom(100 + k % 50))
        k += 1
        time.sleep(0.1)


wt = threading.Thread(target=writer)
wt.start()
time.sleep(1.0)
expect["now"] = {"A", "B"}
t0 = time.monotonic()
put("fm.safetensors", open(tmp + "/B.safetensors", "rb").read())
while stats["B_at"] is None and time.monotonic() < t0 + 5:
    time.sleep(0.01)
delay = (stats["B_at"] or time.monotonic() + 99) - t0
time.sleep(2.0)
writing.set()
wt.join()
expect["now"] = {"B"}
check(delay < 1.5, "a file rewritten every 100 ms does not hold up a reload: B served "
      "%.0f ms after the replacement" % (delay * 1e3))
os.unlink(models + "/junk.safetensors")
time.sleep(0.5)

stop.set()
ct.join()
check(stats["bad"] == 0 and stats["ok"] > 100,
      "the well-behaved client got %d exact answers, %d others" % (stats["ok"], stats["bad"]))

# 8. SIGTERM within --drain-timeout.
t0 = time.monotonic()
srv.send_signal(signal.SIGTERM)
try:
    rc = srv.wait(timeout=5)
except subprocess.TimeoutExpired:
    srv.kill()
    rc = None
dt = time.monotonic() - t0
check(rc == 0 and dt < 2.5, "SIGTERM: exit %s after %.0f ms (drain timeout 2 s)" % (rc, dt * 1e3))

if fails:
    print("---- server log (tail) ----")
    print(log()[-4000:])
    print("hostile-models: %d failed" % len(fails))
    shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1)
shutil.rmtree(tmp, ignore_errors=True)
print("hostile-models: passed")
