#!/usr/bin/python3
"""bench_torch.py - PyTorch and qatserve side by side, one run, one thread,
the same 784-256-128-10 weights: per-call latency at batch 1 and 64 (median
after warm-up) and Fashion-MNIST test accuracy.

    /usr/bin/python3 tests/torch/bench_torch.py --bench-core build/bench_core \
        --work build/torch-bench

Rows: PyTorch fp32 (the QAT-trained float weights in a plain Linear/ReLU
stack), PyTorch int8 under qnnpack and under onednn (the same converted
model, re-packed per engine at load), qatserve fp32 baseline and qatserve int8
(core through build/bench_core, no HTTP). PyTorch is timed from Python, as its
users call it (torch.inference_mode, one thread); qatserve from C.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import torch2qat  # noqa: E402


def median_us(fn, x, batch, calls):
    rows = len(x)
    warm = calls // 10 + 10
    t, r = [], 0
    for i in range(warm + calls):
        if r + batch > rows:
            r = 0
        xb = x[r:r + batch]
        t0 = time.perf_counter_ns()
        fn(xb)
        t1 = time.perf_counter_ns()
        if i >= warm:
            t.append((t1 - t0) / 1e3)
        r += batch
    return float(np.median(t))


def accuracy(fn, x, labels):
    hit = 0
    for r in range(0, len(x), 64):
        hit += int((fn(x[r:r + 64]).argmax(1) == labels[r:r + 64]).sum())
    return hit / len(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench-core", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()

    import torch
    import torch.nn as nn
    torch.set_num_threads(1)
    d = os.path.join(a.work, "qnnpack")
    if not os.path.exists(os.path.join(d, "quant.pt")):
        subprocess.run([sys.executable, os.path.join(HERE, "make_model.py"), "--out", d,
                        "--dims", "784,256,128,10", "--train-rows", "60000",
                        "--test-rows", "10000", "--steps", str(a.steps)], check=True)
    with open(os.path.join(d, "info.json")) as f:
        rows = json.load(f)["rows"]
    xnp = np.fromfile(os.path.join(d, "inputs.f32"), "<f4").reshape(rows, -1)
    labels_np = np.fromfile(os.path.join(d, "labels.u8"), np.uint8).astype(np.int64)
    x, labels = torch.from_numpy(xnp), torch.from_numpy(labels_np)

    st = os.path.join(a.work, "torch-fashion.safetensors")
    if torch2qat.main([os.path.join(d, "quant.pt"), st, "--float",
                       os.path.join(d, "float.pt")]) != 0:
        sys.exit("bench_torch: import failed")

    # PyTorch fp32: the same float weights, no fake quantization.
    sd = torch.load(os.path.join(d, "float.pt"))
    ws = [k[:-len(".weight")] for k, v in sd.items() if k.endswith(".weight") and v.dim() == 2]
    layers = []
    for i, k in enumerate(ws):
        lin = nn.Linear(sd[k + ".weight"].shape[1], sd[k + ".weight"].shape[0])
        lin.weight.data.copy_(sd[k + ".weight"])
        lin.bias.data.copy_(sd[k + ".bias"])
        layers += [lin] + ([nn.ReLU()] if i + 1 < len(ws) else [])
    fp32 = nn.Sequential(*layers).eval()

    # Rounds alternate PyTorch and qatserve so that both see the same machine
    # (other work on it comes and goes); each figure is the median over
    # rounds of per-round medians.
    cases = [("PyTorch fp32", fp32, None)]
    for engine in ("qnnpack", "onednn"):
        torch.backends.quantized.engine = engine
        q = torch.load(os.path.join(d, "quant.pt")).eval()  # packs for this engine
        cases.append(("PyTorch int8 (%s)" % engine, q, engine))
    inputs = os.path.join(d, "inputs.f32")
    per = {}
    core = None
    for rnd in range(a.rounds):
        with torch.inference_mode():
            for name, m, engine in cases:
                if engine:
                    torch.backends.quantized.engine = engine
                per.setdefault(name, []).append(
                    (median_us(m, x, 1, a.calls), median_us(m, x, 64, a.calls // 8 + 10)))
        p = subprocess.run([a.bench_core, st, inputs, str(rows), os.path.join(d, "labels.u8"),
                            str(a.calls)], capture_output=True, text=True, check=True)
        core = json.loads(p.stdout)
        per.setdefault("qatserve fp32 baseline (OpenBLAS)", []).append(
            (core["fp32_b1_us"], core["fp32_b64_us"]))
        per.setdefault("qatserve int8 (%s kernel)" % core["kernel"], []).append(
            (core["int8_b1_us"], core["int8_b64_us"]))
    acc = {}
    with torch.inference_mode():
        for name, m, engine in cases:
            if engine:
                torch.backends.quantized.engine = engine
            acc[name] = accuracy(m, x, labels)
    acc["qatserve fp32 baseline (OpenBLAS)"] = core["fp32_accuracy"]
    acc["qatserve int8 (%s kernel)" % core["kernel"]] = core["int8_accuracy"]
    results = [{"name": n, "b1_us": float(np.median([t[0] for t in v])),
                "b64_us": float(np.median([t[1] for t in v])), "accuracy": acc[n]}
               for n, v in per.items()]

    base = results[0]
    print("\n784-256-128-10, Fashion-MNIST test set (%d images), one thread, median per call "
          "(%d calls at batch 1, %d at batch 64, median of %d rounds)"
          % (rows, a.calls, a.calls // 8 + 10, a.rounds))
    print("\n| | batch 1 (µs) | batch 64 (µs) | vs PyTorch fp32, batch 1 / 64 | test accuracy |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        print("| %s | %.1f | %.1f | %.2fx / %.2fx | %.2f%% |"
              % (r["name"], r["b1_us"], r["b64_us"], base["b1_us"] / r["b1_us"],
                 base["b64_us"] / r["b64_us"], 100 * r["accuracy"]))
    with open(os.path.join(a.work, "bench.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
