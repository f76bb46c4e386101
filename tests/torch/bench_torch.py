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

# Debian's PyTorch does its fp32 GEMMs in the system OpenBLAS (pthreads),
# which torch.set_num_threads(1) does not reach: it ran on every core, and
# after each call its worker threads spin for a while (OpenBLAS busy-waits
# before sleeping). bench_core, started right after PyTorch's batch-64 loop,
# measured its int8 rows (the first it times) next to those spinning threads:
# 499-526 us for a call that takes ~220 us alone (issue 18). One thread for
# both, set before torch loads OpenBLAS.
# --keep-blas-threads leaves it as it was, to show the distortion.
if "--keep-blas-threads" not in sys.argv:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"

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


def run_core(bench_core, st, inputs, rows, labels, calls):
    p = subprocess.run([bench_core, st, inputs, str(rows), labels, str(calls)],
                       capture_output=True, text=True, check=True)
    return json.loads(p.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench-core", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--keep-blas-threads", action="store_true",
                    help="leave PyTorch's OpenBLAS threads as they are (shows the distortion)")
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
    labels_f = os.path.join(d, "labels.u8")
    # The sanity reference: bench_core alone, with no PyTorch work around it
    # (this process only waits), the same file, inputs and calls; twice
    # before the rounds and twice after, so that a slow spell of the shared
    # machine does not make the reference itself the outlier.
    alone = [run_core(a.bench_core, st, inputs, rows, labels_f, a.calls) for _ in range(2)]
    per = {}
    core = None
    for rnd in range(a.rounds):
        with torch.inference_mode():
            for name, m, engine in cases:
                if engine:
                    torch.backends.quantized.engine = engine
                per.setdefault(name, []).append(
                    (median_us(m, x, 1, a.calls), median_us(m, x, 64, a.calls // 8 + 10)))
        core = run_core(a.bench_core, st, inputs, rows, labels_f, a.calls)
        per.setdefault("qatserve fp32 baseline (OpenBLAS)", []).append(
            (core["fp32_b1_us"], core["fp32_b64_us"]))
        per.setdefault("qatserve int8 (%s kernel)" % core["kernel"], []).append(
            (core["int8_b1_us"], core["int8_b64_us"]))
    alone += [run_core(a.bench_core, st, inputs, rows, labels_f, a.calls) for _ in range(2)]
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
    # Sanity: each qatserve figure of the table against bench_core run alone
    # (median of four runs) for the same call. More than 25% apart is
    # flagged; more than 50% (issue 18 saw 2.3x) means the harness disturbed
    # what it measured, and the run fails.
    ref = {k: float(np.median([c[k] for c in alone])) for k in
           ("int8_b1_us", "int8_b64_us", "fp32_b1_us", "fp32_b64_us")}
    print("\nsanity check: the table's qatserve figures against build/bench_core run alone "
          "(same model, inputs and calls; `%s %s %s %d %s %d`)"
          % (a.bench_core, st, inputs, rows, labels_f, a.calls))
    print("| call | in the table (µs) | bench_core alone (µs) | ratio |")
    print("|---|---:|---:|---:|")
    bad = []
    for key, row, col in (("int8_b1_us", "qatserve int8", "b1_us"),
                          ("int8_b64_us", "qatserve int8", "b64_us"),
                          ("fp32_b1_us", "qatserve fp32", "b1_us"),
                          ("fp32_b64_us", "qatserve fp32", "b64_us")):
        got = next(r[col] for r in results if r["name"].startswith(row))
        ratio = got / ref[key]
        print("| %s, batch %s | %.1f | %.1f | %.2f |" % (row, col[1:-3], got, ref[key], ratio))
        if not 0.8 <= ratio <= 1.25:
            print("  ^ more than 25% apart: a noisy machine, or a disturbed measurement")
        if not 2 / 3 <= ratio <= 1.5:
            bad.append(key)
    with open(os.path.join(a.work, "bench.json"), "w") as f:
        json.dump({"results": results, "bench_core_alone": ref}, f, indent=1)
    if bad:
        sys.exit("bench_torch: %s differ from bench_core alone by more than 50%%: the "
                 "measurement was disturbed (load on the machine?); rerun" % ", ".join(bad))
    print("sanity check: every qatserve figure within 50% of bench_core alone")


if __name__ == "__main__":
    main()
