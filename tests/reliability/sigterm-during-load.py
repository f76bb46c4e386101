#!/usr/bin/python3
"""sigterm-during-load.py - SIGTERM is handled while a model file is being
loaded: loads run on the loader thread, and the exit does not wait for one
past --drain-timeout (0 here).

    /usr/bin/python3 tests/reliability/sigterm-during-load.py BUILD

A ~270 MB model (4096 -> 16384 -> 10) is dropped into the watched directory;
once its load has started, SIGTERM must end the process within 1 s (exit 0,
nothing in flight), well before the load itself could finish, and the log
must say the load was cut short. Before the loader thread, the control
thread read, hashed and packed the whole file before it saw the signal.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
tmp = tempfile.mkdtemp(prefix="qs-sigload.")
try:
    os.mkdir(tmp + "/models")
    subprocess.run([BUILD + "/qstool", "mkmodel", tmp + "/small.safetensors", "4,3,2", "1"],
                   check=True, capture_output=True)
    shutil.copy(tmp + "/small.safetensors", tmp + "/models/small.safetensors")
    t0 = time.monotonic()
    subprocess.run([BUILD + "/qstool", "mkmodel", tmp + "/big.safetensors", "4096,16384,10", "2"],
                   check=True, capture_output=True)
    size = os.path.getsize(tmp + "/big.safetensors")
    logf = open(tmp + "/server.log", "w")
    srv = subprocess.Popen([BUILD + "/qatserve", "--models", tmp + "/models", "--host", "127.0.0.1",
                            "--port", "0", "--quiet", "--drain-timeout", "0"],
                           stdout=logf, stderr=logf)
    for _ in range(200):
        if "listening on" in open(tmp + "/server.log").read():
            break
        time.sleep(0.05)
    os.rename(tmp + "/big.safetensors", tmp + "/models/big.safetensors")
    # Wait for the load to start (the debounce is 200 ms).
    for _ in range(200):
        if re.search(r"reload \(directory changed\): scanning", open(tmp + "/server.log").read()):
            break
        time.sleep(0.01)
    time.sleep(0.15)  # into the read and hash of the big file (~1 s in all)
    t = time.monotonic()
    srv.send_signal(signal.SIGTERM)
    try:
        rc = srv.wait(timeout=10)
    except subprocess.TimeoutExpired:
        srv.kill()
        rc = None
    dt = time.monotonic() - t
    log = open(tmp + "/server.log").read()
    loaded = "model big: loaded" in log
    cut = "still running at the drain deadline" in log
    ok = rc == 0 and dt < 1.0 and (cut or not loaded)
    print(("ok   " if ok else "FAIL ") + "SIGTERM during the load of a %.0f MB model: exit %s after "
          "%.0f ms (--drain-timeout 0; load %s)" % (size / 1e6, rc, dt * 1e3,
                                                    "cut short" if cut else
                                                    "finished first" if loaded else "not begun"))
    if not ok or os.environ.get("VERBOSE"):
        print(log[-3000:])
        sys.exit(1)
    print("sigterm-during-load: passed")
finally:
    shutil.rmtree(tmp, ignore_errors=True)
