"""harness.py - what the ONNX tests share: ONNX Runtime (tests/ort/run.js via
node), core (build/run_core), a real qatserve on a free port, test rows.
"""
import gzip
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RUNJS = os.path.join(ROOT, "tests", "ort", "run.js")
FASHION = "/usr/share/datasets/fashion-mnist"
F32 = np.float32

FAILS = []


def check(cond, what):
    print("%s %s" % ("ok  " if cond else "FAIL", what), flush=True)
    if not cond:
        FAILS.append(what)
    return bool(cond)


def fashion_rows(n=10000, everything=False):
    """Fashion-MNIST test images (all 70,000 with everything) as float32
    pixels / 255, what clients send."""
    out = []
    for name in ("t10k", "train") if everything else ("t10k",):
        p = os.path.join(FASHION, "%s-images-idx3-ubyte.gz" % name)
        if not os.path.exists(p):
            return None
        with gzip.open(p, "rb") as f:
            raw = f.read()
        nd = raw[3]
        dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
        out.append(np.frombuffer(raw, np.uint8, offset=4 + 4 * nd).reshape(dims[0], -1))
    x = np.concatenate(out)
    if not everything:
        x = x[:n]
    return x.astype(F32) / F32(255.0)


def random_rows(n, k, seed, lo=-0.25, hi=1.25):
    """Uniform rows in [lo, hi), plus exact multiples of 1/255 and their
    half-way points mixed in (rounding ties of the usual input scale)."""
    g = np.random.default_rng(seed)
    x = g.uniform(lo, hi, (n, k)).astype(F32)
    grid = (g.integers(-64, 320, (n, k)).astype(F32) / F32(255.0)).astype(F32)
    half = (grid + F32(0.5 / 255)).astype(F32)
    pick = g.integers(0, 4, (n, k))
    return np.where(pick == 0, grid, np.where(pick == 1, half, x)).astype(F32)


def ort_run(model, x, work, opt=None):
    """ONNX Runtime's outputs for rows x (its CPU provider, default options
    unless opt)."""
    fd, xin = tempfile.mkstemp(suffix=".f32", dir=work)
    os.close(fd)
    out = xin[:-4] + ".out.f32"
    np.ascontiguousarray(x, "<f4").tofile(xin)
    cmd = ["node", RUNJS, model, xin, str(len(x)), out] + (["--opt", opt] if opt else [])
    p = subprocess.run(cmd, capture_output=True, text=True)
    os.remove(xin)
    if p.returncode != 0:
        raise RuntimeError("ONNX Runtime on %s: %s" % (model, p.stderr.strip()))
    y = np.fromfile(out, "<f4").reshape(len(x), -1)
    os.remove(out)
    return y


def run_core(exe, model, x, work, mode="int8"):
    fd, xin = tempfile.mkstemp(suffix=".f32", dir=work)
    os.close(fd)
    np.ascontiguousarray(x, "<f4").tofile(xin)
    p = subprocess.run([exe, model, xin, str(len(x)), mode], capture_output=True, text=True)
    os.remove(xin)
    if p.returncode != 0:
        raise RuntimeError("run_core %s: %s" % (model, p.stderr.strip()))
    return np.array([[float(v) for v in line.split()] for line in p.stdout.splitlines()], F32)


class Server:
    """build/qatserve on 127.0.0.1, port 0, serving one directory."""

    def __init__(self, exe, models, work):
        self.log = os.path.join(work, "server.log")
        self.logf = open(self.log, "w")
        self.p = subprocess.Popen([exe, "--models", models, "--port", "0", "--host", "127.0.0.1",
                                   "--threads", "2", "--quiet"], stdout=self.logf,
                                  stderr=subprocess.STDOUT)
        self.port = None
        for _ in range(400):  # up to 20 s
            with open(self.log) as f:
                for line in f:
                    if "listening on http://" in line:
                        self.port = int(line.rsplit(":", 1)[1])
            if self.port or self.p.poll() is not None:
                break
            time.sleep(0.05)
        if self.port is None:
            self.stop()
            with open(self.log) as f:
                raise RuntimeError("qatserve did not start: " + f.read()[-500:])

    def predict(self, name, x, chunk=1024):
        """Binary /predict in chunks (the JSON path gives the same integers:
        docs/binary.md); returns the float32 outputs."""
        out = []
        for r in range(0, len(x), chunk):
            body = np.ascontiguousarray(x[r:r + chunk], "<f4").tobytes()
            req = urllib.request.Request(
                "http://127.0.0.1:%d/predict?model=%s&baseline=false" % (self.port, name),
                data=body, method="POST",
                headers={"Content-Type": "application/octet-stream",
                         "Accept": "application/octet-stream"})
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:
                    out.append(np.frombuffer(resp.read(), "<f4").reshape(len(x[r:r + chunk]), -1))
            except urllib.error.HTTPError as e:
                raise RuntimeError("/predict %s: %d %s" % (name, e.code, e.read()[:300]))
        return np.concatenate(out)

    def predict_json(self, name, x):
        body = json.dumps({"model": name, "inputs": [[float(v) for v in row] for row in x]})
        req = urllib.request.Request("http://127.0.0.1:%d/predict" % self.port,
                                     data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.logf.close()
        return self.p.returncode


def same_rows(a, b):
    """Rows where every output is the same float32."""
    if a.shape != b.shape:
        return 0
    return int(np.sum(np.all(a == b, axis=1)))


def rows_for(s, zp, n, k, seed):
    """Rows over an input quantization range (a little past both ends), with
    exact grid points and half-way points (ties) mixed in."""
    s = float(s)
    g = np.random.default_rng(seed)
    lo, hi = s * (0 - zp) - 3 * s, s * (255 - zp) + 3 * s
    x = g.uniform(lo, hi, (n, k)).astype(F32)
    grid = ((g.integers(-2, 258, (n, k)) - zp).astype(F32) * F32(s)).astype(F32)
    half = (grid + F32(s / 2)).astype(F32)
    pick = g.integers(0, 3, (n, k))
    return np.where(pick == 0, x, np.where(pick == 1, grid, half)).astype(F32)
