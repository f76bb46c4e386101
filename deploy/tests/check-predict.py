#!/usr/bin/python3
"""check-predict.py - checks a running qatserve (any deployment) with real
Fashion-MNIST test images. Python standard library only.

Used as CHECK_CMD by `make docker-test`; works against any URL:
  deploy/tests/check-predict.py --url http://127.0.0.1:8080

Checks, in order (each one can fail the run):
  1. GET /v2/health/live and /v2/health/ready answer 200 (--page: and GET /
     serves the HTML page).
  2. GET /models lists at least one model of width 784 -> 10.
  3. POST /predict with test image --index (pixels/255): HTTP 200, one row of
     10 finite outputs, a prediction in 0..9 that is the argmax of the outputs,
     a label string if the model has labels.
  4. --reference "CMD": CMD ROWSFILE must print the same outputs (core's own
     int8 result, e.g. `build/qstool expect MODEL`); compared bit for bit as
     float32.
  5. --expect-correct: the prediction equals the image's true label.
  6. --min-accuracy A: a batch of the first --count test images is classified
     with accuracy >= A, and the single-image answer equals its batch row.
  7. --reload-dir DIR --reload-model FILE: copying FILE into the served
     directory DIR (a volume) makes a new model appear in /models and answer
     /predict; deleting it makes it disappear (hot reload).
Prints one line per check and exits 1 on the first failure.
"""
import argparse
import gzip
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

DATA = "/usr/share/datasets/fashion-mnist"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def fail(msg):
    print("check-predict: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def ok(msg):
    print("check-predict: ok: " + msg)


def load_images(n):
    """First n test images as lists of float32-exact pixel/255 values, and labels."""
    with gzip.open(os.path.join(DATA, "t10k-images-idx3-ubyte.gz"), "rb") as f:
        magic, count, rows, cols = struct.unpack(">IIII", f.read(16))
        if magic != 2051 or rows * cols != 784:
            fail("unexpected image file header")
        n = min(n, count)
        raw = f.read(n * 784)
    with gzip.open(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz"), "rb") as f:
        magic, count = struct.unpack(">II", f.read(8))
        if magic != 2049:
            fail("unexpected label file header")
        labels = list(f.read(n))
    images = []
    for i in range(n):
        # Round to float32 once, print with 9 digits: the server and the
        # reference both parse exactly this float32.
        images.append([f32(p / 255.0) for p in raw[i * 784:(i + 1) * 784]])
    return images, labels


def f32(v):
    return struct.unpack("f", struct.pack("f", v))[0]


def fmt(v):
    return "%.9g" % v


def request(base, path, body=None, timeout=10.0):
    data = None
    headers = {}
    if body is not None:
        data = body.encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(base + path, data=data, headers=headers,
                                 method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as e:
        fail("%s %s: %s" % ("POST" if body is not None else "GET", path, e))


def predict(base, rows, model=None):
    inputs = "[" + ",".join("[" + ",".join(fmt(v) for v in r) + "]" for r in rows) + "]"
    body = '{"inputs":' + inputs + (',"model":' + json.dumps(model) if model else "") + "}"
    code, text = request(base, "/predict", body)
    if code != 200:
        fail("POST /predict (%d rows): HTTP %d: %s" % (len(rows), code, text.strip()[:300]))
    try:
        return json.loads(text)
    except ValueError:
        fail("POST /predict: not JSON: %r" % text[:300])


def check_answer(ans, rows):
    outs, preds = ans.get("outputs"), ans.get("predictions")
    if not isinstance(outs, list) or len(outs) != rows:
        fail("outputs: want %d rows, got %r" % (rows, str(outs)[:200]))
    if not isinstance(preds, list) or len(preds) != rows:
        fail("predictions: want %d, got %r" % (rows, preds))
    for i, (o, p) in enumerate(zip(outs, preds)):
        if not isinstance(o, list) or len(o) != 10:
            fail("row %d: want 10 outputs, got %r" % (i, str(o)[:200]))
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in o):
            fail("row %d: non-finite or non-numeric output in %r" % (i, o))
        if not isinstance(p, int) or not 0 <= p < 10:
            fail("row %d: prediction %r is not a class index 0..9" % (i, p))
        if o[p] != max(o) or o.index(max(o)) != p:
            fail("row %d: prediction %d is not the argmax of %r" % (i, p, o))
    labels = ans.get("labels")
    if labels is not None:
        if len(labels) != rows or not all(isinstance(s, str) and s for s in labels):
            fail("labels: want %d non-empty strings, got %r" % (rows, labels))


def list_models(base):
    code, text = request(base, "/models")
    if code != 200:
        fail("GET /models: HTTP %d" % code)
    return {m["name"]: m for m in json.loads(text)["models"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default=None,
                    help="server base URL (default http://127.0.0.1:$PORT, PORT default 8080)")
    ap.add_argument("--model", default=None, help="model name (default: the only one)")
    ap.add_argument("--index", type=int, default=0, help="test image to send (default 0)")
    ap.add_argument("--reference", default=None,
                    help="command printing core's outputs for a rows file (appended)")
    ap.add_argument("--expect-correct", action="store_true",
                    help="the prediction must equal the true label")
    ap.add_argument("--min-accuracy", type=float, default=None)
    ap.add_argument("--count", type=int, default=200, help="batch size for --min-accuracy")
    ap.add_argument("--reload-dir", default=None, help="host path of the served directory")
    ap.add_argument("--reload-model", default=None, help="a .safetensors to copy there")
    ap.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for a reload")
    ap.add_argument("--page", action="store_true", help="GET / must serve the browser page")
    a = ap.parse_args()
    base = (a.url or "http://127.0.0.1:%s" % os.environ.get("PORT", "8080")).rstrip("/")

    for path in ("/v2/health/live", "/v2/health/ready"):
        code, text = request(base, path)
        if code != 200:
            fail("GET %s: HTTP %d %s" % (path, code, text.strip()))
    ok("GET /v2/health/live and /v2/health/ready: 200")

    if a.page:
        code, text = request(base, "/")
        if code != 200 or "<html" not in text.lower():
            fail("GET /: HTTP %d, want 200 and the HTML page: %r" % (code, text[:200]))
        ok("GET /: the browser page (%d bytes)" % len(text))

    models = list_models(base)
    fits = [n for n, m in models.items() if m.get("in_dim") == 784 and m.get("out_dim") == 10]
    if a.model and a.model not in fits:
        fail("model %r not loaded as 784 -> 10 (loaded: %s)" % (a.model, sorted(models)))
    if not fits:
        fail("no 784 -> 10 model loaded (loaded: %s)" % sorted(models))
    name = a.model or (fits[0] if len(models) == 1 else None)
    ok("GET /models: %s" % ", ".join(sorted(models)))

    n = max(a.index + 1, a.count if a.min_accuracy is not None else 0)
    images, labels = load_images(n)
    img, truth = images[a.index], labels[a.index]
    ans = predict(base, [img], name)
    check_answer(ans, 1)
    pred = ans["predictions"][0]
    lab = ans.get("labels", [None])[0]
    ok("POST /predict test image %d (true %d %s): HTTP 200, 10 outputs, predicted %d%s"
       % (a.index, truth, CLASSES[truth], pred, " (%s)" % lab if lab else ""))

    if a.reference:
        with tempfile.NamedTemporaryFile("w", suffix=".rows", delete=False) as f:
            f.write(" ".join(fmt(v) for v in img) + "\n")
            rows_file = f.name
        try:
            out = subprocess.run(a.reference + " " + rows_file, shell=True, check=True,
                                 capture_output=True, text=True).stdout.split("\n")
        except subprocess.CalledProcessError as e:
            fail("reference command failed: %s" % e.stderr.strip())
        finally:
            os.unlink(rows_file)
        want = [f32(float(t)) for t in out[0].split()]
        got = [f32(v) for v in ans["outputs"][0]]
        if want != got:
            fail("outputs differ from the reference:\n  server    %r\n  reference %r" % (got, want))
        if int(out[1].split()[0]) != pred:
            fail("prediction %d, reference %s" % (pred, out[1]))
        ok("outputs equal core's reference bit for bit (%s)" % a.reference.split()[0])

    if a.expect_correct:
        if pred != truth:
            fail("test image %d is a %s (%d), the model says %d" % (a.index, CLASSES[truth], truth, pred))
        ok("prediction equals the true label %d (%s)" % (truth, CLASSES[truth]))

    if a.min_accuracy is not None:
        batch = predict(base, images[:a.count], name)
        check_answer(batch, a.count)
        right = sum(p == t for p, t in zip(batch["predictions"], labels[:a.count]))
        acc = right / a.count
        if batch["outputs"][a.index] != ans["outputs"][0]:
            fail("image %d: batch row differs from the single-image answer" % a.index)
        if acc < a.min_accuracy:
            fail("accuracy %.3f on the first %d test images, want >= %.3f" % (acc, a.count, a.min_accuracy))
        ok("batch of %d: accuracy %.3f (>= %.3f); single answer equals its batch row"
           % (a.count, acc, a.min_accuracy))

    if a.reload_dir:
        if not a.reload_model:
            fail("--reload-dir needs --reload-model")
        new = "reload-check"
        dst = os.path.join(a.reload_dir, new + ".safetensors")
        tmp = os.path.join(a.reload_dir, ".reload-check.tmp")
        shutil.copyfile(a.reload_model, tmp)
        os.chmod(tmp, 0o644)
        os.rename(tmp, dst)  # atomic, as docs/deploy.md recommends
        try:
            t0 = time.time()
            while new not in list_models(base):
                if time.time() - t0 > a.timeout:
                    fail("%s did not appear in /models within %.0f s" % (new, a.timeout))
                time.sleep(0.1)
            appeared = time.time() - t0
            check_answer(predict(base, [img], new), 1)
        finally:
            os.unlink(dst)
        t0 = time.time()
        while new in list_models(base):
            if time.time() - t0 > a.timeout:
                fail("%s still in /models %.0f s after deletion" % (new, a.timeout))
            time.sleep(0.1)
        ok("hot reload: copied model served after %.1f s, gone %.1f s after deletion"
           % (appeared, time.time() - t0))
    print("check-predict: all checks passed against %s" % base)


if __name__ == "__main__":
    main()
