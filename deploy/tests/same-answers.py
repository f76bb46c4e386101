#!/usr/bin/python3
"""same-answers.py - checks that two running qatserve instances (say, the
container and the host build) give the same answers bit for bit, and waits
for a hot reload to show up. Python standard library only.

  same-answers.py same URL_A URL_B [--model NAME] [--count N]
      POST /predict with Fashion-MNIST test images 0..N-1 (one batch) and image
      0 alone, and POST /v2/models/NAME/infer with image 0, to both; every
      answer must be 200 and the outputs and predictions must be the same text
      (the numbers are compared as the server printed them, not re-parsed).
  same-answers.py wait-model URL NAME FILE [--timeout S]
      waits until GET /models lists NAME with the crc32 of FILE (a new or
      replaced model was loaded from the volume).
  same-answers.py wait-gone URL NAME [--timeout S]
      waits until NAME is no longer listed.
Prints one line per check; exit status 1 on the first failure.
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time
import urllib.error
import urllib.request
import zlib

DATA = "/usr/share/datasets/fashion-mnist"


def fail(msg):
    print("same-answers: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def images(n):
    with gzip.open(os.path.join(DATA, "t10k-images-idx3-ubyte.gz"), "rb") as f:
        f.read(16)
        raw = f.read(n * 784)
    # float32-exact pixel/255 printed with 9 digits: both servers parse the same float32.
    f32 = lambda v: struct.unpack("f", struct.pack("f", v))[0]
    return [["%.9g" % f32(p / 255.0) for p in raw[i * 784:(i + 1) * 784]] for i in range(n)]


def http(url, body=None, timeout=10.0):
    req = urllib.request.Request(url, data=body.encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"} if body else {},
                                 method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e)


def exact(text):
    """The answer with every number kept as the server's own text."""
    return json.loads(text, parse_float=str, parse_int=str)


def post_both(urls, path, body, keys):
    got = []
    for u in urls:
        code, text = http(u + path, body)
        if code != 200:
            fail("POST %s%s: HTTP %d: %s" % (u, path, code, text.strip()[:300]))
        j = exact(text)
        got.append({k: j.get(k) for k in keys})
    if got[0] != got[1]:
        fail("POST %s: answers differ:\n  %s: %s\n  %s: %s" % (
            path, urls[0], str(got[0])[:400], urls[1], str(got[1])[:400]))
    return got[0]


def cmd_same(a):
    rows = images(a.count)
    model = (',"model":' + json.dumps(a.model)) if a.model else ""
    batch = '{"inputs":[' + ",".join("[" + ",".join(r) + "]" for r in rows) + "]" + model + "}"
    one = '{"inputs":[[' + ",".join(rows[0]) + "]]" + model + "}"
    urls = [a.url_a.rstrip("/"), a.url_b.rstrip("/")]
    got = post_both(urls, "/predict", batch, ["outputs", "predictions"])
    if len(got["outputs"] or []) != len(rows):
        fail("/predict: want %d rows, got %s" % (len(rows), str(got)[:200]))
    print("same-answers: ok: /predict, %d images: the same %d outputs from both" % (
        len(rows), sum(len(o) for o in got["outputs"])))
    got1 = post_both(urls, "/predict", one, ["outputs", "predictions"])
    if got1["outputs"][0] != got["outputs"][0]:
        fail("/predict: image 0 alone differs from its batch row")
    print("same-answers: ok: /predict, image 0 alone: the same, and equal to its batch row")
    name = a.model
    if not name:
        code, text = http(urls[0] + "/models")
        names = [m["name"] for m in json.loads(text)["models"]] if code == 200 else []
        if len(names) != 1:
            fail("--model is needed: %s serves %r" % (urls[0], names))
        name = names[0]
    v2 = json.dumps({"id": "same", "inputs": [{"name": "input", "shape": [1, 784], "datatype": "FP32",
                                              "data": [float(v) for v in rows[0]]}]})
    got2 = post_both(urls, "/v2/models/%s/infer" % name, v2, ["model_name", "outputs"])
    data = got2["outputs"][0]["data"]
    if [str(v) for v in data] != [str(v) for v in got["outputs"][0]]:
        # The v2 answer is the same int8 result: same numbers as /predict.
        if [float(v) for v in data] != [float(v) for v in got["outputs"][0]]:
            fail("/v2/models/%s/infer: outputs %r differ from /predict's %r" % (name, data, got["outputs"][0]))
    print("same-answers: ok: /v2/models/%s/infer: the same from both, equal to /predict" % name)


def listed(url):
    code, text = http(url.rstrip("/") + "/models")
    if code != 200:
        return None
    return {m["name"]: m for m in json.loads(text)["models"]}


def cmd_wait_model(a):
    with open(a.file, "rb") as f:
        want = "%08x" % (zlib.crc32(f.read()) & 0xffffffff)
    t0 = time.monotonic()
    seen = None
    while time.monotonic() - t0 < a.timeout:
        models = listed(a.url) or {}
        m = models.get(a.name)
        seen = m and m.get("checksum", {}).get("value")
        if seen == want:
            print("same-answers: ok: %s serves %s version %s (crc32 %s) after %.1f s" % (
                a.url, a.name, m.get("version"), want, time.monotonic() - t0))
            return
        time.sleep(0.1)
    fail("%s: %s never served crc32 %s (last seen: %s)" % (a.url, a.name, want, seen))


def cmd_wait_gone(a):
    t0 = time.monotonic()
    while time.monotonic() - t0 < a.timeout:
        models = listed(a.url)
        if models is not None and a.name not in models:
            print("same-answers: ok: %s unloaded %s after %.1f s" % (a.url, a.name, time.monotonic() - t0))
            return
        time.sleep(0.1)
    fail("%s: %s is still listed after %.0f s" % (a.url, a.name, a.timeout))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("same")
    s.add_argument("url_a")
    s.add_argument("url_b")
    s.add_argument("--model")
    s.add_argument("--count", type=int, default=64)
    w = sub.add_parser("wait-model")
    w.add_argument("url")
    w.add_argument("name")
    w.add_argument("file")
    w.add_argument("--timeout", type=float, default=15)
    g = sub.add_parser("wait-gone")
    g.add_argument("url")
    g.add_argument("name")
    g.add_argument("--timeout", type=float, default=15)
    a = ap.parse_args()
    {"same": cmd_same, "wait-model": cmd_wait_model, "wait-gone": cmd_wait_gone}[a.cmd](a)


if __name__ == "__main__":
    main()
