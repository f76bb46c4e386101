#!/usr/bin/python3
"""bench_mlp.py - the whole MLP, no HTTP (`make bench-mlp`): qatserve's core
(int8 path and fp32 baseline, through tests/torch/bench_core.c) against
PyTorch int8 and fp32 built from the same model file
(bench/peers/flask_torch.py), batch 1 and 64, one thread each, on
Fashion-MNIST test images. Median per call; REPEAT rounds interleaved, the
median of the rounds reported.

    bench_mlp.py BENCH_CORE MODEL OUTDIR [REPEAT]"""
import gzip
import json
import os
import statistics
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "peers"))
import torch  # noqa: E402

import flask_torch  # noqa: E402

core, model, out = sys.argv[1], sys.argv[2], sys.argv[3]
repeat = int(sys.argv[4]) if len(sys.argv) > 4 else 3
os.makedirs(out, exist_ok=True)
rows = 1000
xs = os.path.join(out, "mlp_inputs.f32")
ls = os.path.join(out, "mlp_labels.u8")
src = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
if os.path.exists(src):
    with gzip.open(src) as f:
        f.read(16)
        px = f.read(rows * 784)
    with gzip.open(src.replace("images-idx3", "labels-idx1")) as f:
        f.read(8)
        lab = f.read(rows)
else:
    import random
    rnd = random.Random(1)
    px = bytes(rnd.randrange(256) for _ in range(rows * 784))
    lab = bytes(rnd.randrange(10) for _ in range(rows))
open(xs, "wb").write(struct.pack("<%df" % len(px), *[p / 255.0 for p in px]))
open(ls, "wb").write(lab)
x = torch.tensor([p / 255.0 for p in px], dtype=torch.float32).reshape(rows, 784)
m = flask_torch.Models(model)


def torch_us(fn, batch, calls=300):
    for i in range(30):
        fn(x[i:i + batch])
    ts, r = [], 0
    for _ in range(calls):
        if r + batch > rows:
            r = 0
        xb = x[r:r + batch]
        t0 = time.perf_counter_ns()
        fn(xb)
        ts.append(time.perf_counter_ns() - t0)
        r += batch
    return statistics.median(ts) / 1e3


res = {k: [] for k in ("ours_int8_1", "ours_int8_64", "ours_fp32_1", "ours_fp32_64",
                       "torch_int8_1", "torch_int8_64", "torch_fp32_1", "torch_fp32_64")}
env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
for _ in range(repeat):
    j = json.loads(subprocess.run([core, model, xs, str(rows), ls], capture_output=True, text=True,
                                  env=env, check=True).stdout)
    res["ours_int8_1"].append(j["int8_b1_us"])
    res["ours_int8_64"].append(j["int8_b64_us"])
    res["ours_fp32_1"].append(j["fp32_b1_us"])
    res["ours_fp32_64"].append(j["fp32_b64_us"])
    for b in (1, 64):
        res["torch_int8_%d" % b].append(torch_us(m.int8, b))
        res["torch_fp32_%d" % b].append(torch_us(m.fp32, b))
med = {k: statistics.median(v) for k, v in res.items()}
macs = sum(l.in_features * l.out_features for l, _ in m.q)
lines = ["# whole MLP %s (%s), one thread, no HTTP; median per call, median of %d interleaved rounds" %
         (os.path.basename(model), "-".join([str(m.in_dim)] + [str(l.out_features) for l, _ in m.q]), repeat),
         "# PyTorch %s, quantized engine %s, timed from Python as its users call it" %
         (torch.__version__, torch.backends.quantized.engine),
         "%-14s %12s %10s %12s %10s" % ("", "batch 1 us", "GOP/s", "batch 64 us", "GOP/s")]
for name, key in (("qatserve int8", "ours_int8"), ("qatserve fp32", "ours_fp32"),
                  ("PyTorch int8", "torch_int8"), ("PyTorch fp32", "torch_fp32")):
    a, b = med[key + "_1"], med[key + "_64"]
    lines.append("%-14s %12.2f %10.1f %12.2f %10.1f" % (name, a, 2 * macs / a / 1e3, b, 2 * macs * 64 / b / 1e3))
lines.append("ratios: qatserve int8 vs PyTorch int8 %.1fx (batch 1), %.1fx (batch 64); "
             "vs our fp32 baseline %.2fx (batch 1), %.2fx (batch 64)" %
             (med["torch_int8_1"] / med["ours_int8_1"], med["torch_int8_64"] / med["ours_int8_64"],
              med["ours_fp32_1"] / med["ours_int8_1"], med["ours_fp32_64"] / med["ours_int8_64"]))
lines.append("accuracy on these %d images: qatserve int8 %.3f, fp32 %.3f" % (rows, j["int8_accuracy"], j["fp32_accuracy"]))
text = "\n".join(lines) + "\n"
open(os.path.join(out, "mlp.txt"), "w").write(text)
sys.stdout.write(text)
