#!/usr/bin/python3
"""test_onnx.py - ONNX in and out, with ONNX Runtime itself as the reference.

    /usr/bin/python3 tests/onnx/test_onnx.py --run-core build/run_core \
        --server build/qatserve --work build/onnx [--rows 10000]

Export (tools/qat2onnx.py): the shipped model (trained here, dequant_acc) and
random models with odd widths and zero points away from 0 (requant, ReLU at a
non-zero zero point, a ReLU last layer), in every form, run by ONNX Runtime
(tests/ort, onnxruntime-node) and by core: every output float identical on
every row. The fp32 graph against core's fp32 path (close, not exact: two
BLAS). Negative controls: one weight changed in the graph, and ONNX Runtime
with its graph optimizations off (QDQ computed in float), must show.

Import (tools/onnx2qat.py): graphs built here with python3-onnx in every form
(QDQ Gemm and MatMul, QGemm, QLinearMatMul, integer ops; uint8 and int8
activations; per-tensor and per-channel weights; Relu, Clip; opsets 13-17;
Flatten/Reshape inputs), random weights, run by ONNX Runtime, imported, served
by a real qatserve: /predict must answer ONNX Runtime's outputs exactly on
every row (Fashion-MNIST test rows and random rows). Refusals name node and
op and exit 2.
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
sys.path.insert(0, HERE)
import qatfile  # noqa: E402
import harness as H  # noqa: E402
from harness import check  # noqa: E402

F32 = np.float32
PY = sys.executable
COUNTS = {}  # what the report gives: identical rows per model and form


def tool(name, *args):
    p = subprocess.run([PY, os.path.join(ROOT, "tools", name)] + [str(a) for a in args],
                       capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def random_model(path, dims, seed, output_mode, relu_last=False):
    """A qatserve model with random integers: odd widths, zero points away
    from 0 (also under ReLU), per-channel scales spanning a decade."""
    g = np.random.default_rng(seed)
    n = len(dims) - 1
    in_s, in_zp = F32(g.uniform(0.004, 0.02)), int(g.integers(20, 120))
    layers = []
    s_prev = in_s
    for i in range(n):
        K, N = dims[i], dims[i + 1]
        wq = g.integers(-128, 128, (N, K)).astype(np.int8)
        ws = (10 ** g.uniform(-3.3, -2.3, N)).astype(F32)
        last = i + 1 == n
        # An output scale that keeps the typical |acc * M| inside the range.
        spread = float(np.median(ws)) * float(s_prev) * 128 * 60 * np.sqrt(K) / 255
        out_s = F32(spread * g.uniform(1.5, 3.0))
        out_zp = int(g.integers(30, 200))
        bias = (g.normal(0, 30, N) * ws * s_prev).astype(F32)
        layers.append({"wq": wq, "w_scale": ws, "bias": bias, "out_s": out_s, "out_zp": out_zp,
                       "relu": (not last) or relu_last,
                       "w_fp32": (wq.astype(F32) * ws[:, None] + g.normal(0, 1e-4, (N, K))).astype(F32),
                       "b_fp32": bias})
        s_prev = out_s
    meta = qatfile.base_meta(dims, [L["relu"] for L in layers], output_mode)
    meta["trained_with"] = "test_onnx random"
    qatfile.write(path, qatfile.model_tensors((in_s, in_zp), layers), meta)
    return in_s, in_zp


def test_export(a):
    """qatserve -> ONNX -> ONNX Runtime == core, every form."""
    d = os.path.join(a.work, "export")
    os.makedirs(d, exist_ok=True)
    models = []
    ship = os.path.join(ROOT, "models", "fashion-mnist.safetensors")
    real = H.fashion_rows(a.rows, a.fashion_all)
    if os.path.exists(ship):
        x = H.random_rows(a.rows, 784, 7)
        if real is not None:
            x = np.concatenate([real, x])
        models.append(("shipped", ship, x))
    for name, dims, mode, relu_last, seed in (
            ("random-requant", [37, 29, 13, 7], "requant", False, 1),
            ("random-dequant-relu", [45, 31, 11], "dequant_acc", True, 2),
            ("random-requant-relu", [23, 17, 5], "requant", True, 3)):
        p = os.path.join(d, name + ".safetensors")
        s, zp = random_model(p, dims, seed, mode, relu_last)
        models.append((name, p, H.rows_for(s, zp, a.rows, dims[0], seed + 100)))
    for name, path, x in models:
        core = H.run_core(a.run_core, path, x, d)
        for form in ("qdq", "qoperator", "integer"):
            out = os.path.join(d, "%s.%s.onnx" % (name, form))
            extra = ["--fp32", os.path.join(d, name + ".fp32.onnx")] if form == "qdq" else []
            rc, text = tool("qat2onnx.py", path, out, "--form", form, *extra)
            if not check(rc == 0, "qat2onnx %s --form %s (%s)" % (name, form, text.strip()[-120:])):
                continue
            ort = H.ort_run(out, x, d)
            same = H.same_rows(ort, core)
            COUNTS["export %s %s" % (name, form)] = [same, len(x)]
            check(same == len(x), "export %s %s: ONNX Runtime == qatserve on %d/%d rows"
                  % (name, form, same, len(x)))
        # The fp32 baseline graph: same math, another BLAS.
        f32 = H.ort_run(os.path.join(d, name + ".fp32.onnx"), x[:2000], d)
        c32 = H.run_core(a.run_core, path, x[:2000], d, "fp32")
        err = float(np.max(np.abs(f32 - c32)) / max(1.0, float(np.max(np.abs(c32)))))
        check(err < 1e-4, "export %s --fp32: ONNX Runtime fp32 ~ core fp32 (max rel err %.2g)"
              % (name, err))
    # Negative controls: the comparison sees one changed weight, and ONNX
    # Runtime without graph optimizations (QDQ in float) is not exact.
    import onnx
    from onnx import numpy_helper as nh
    name, path, x = models[1]
    m = onnx.load(os.path.join(d, "%s.qdq.onnx" % name))
    for t in m.graph.initializer:
        if t.name == "l1_weight_q":
            w = nh.to_array(t).copy()
            w[0, :] = np.where(w[0, :] < 127, w[0, :] + 1, w[0, :] - 1)
            t.CopyFrom(nh.from_array(w, t.name))
    bad = os.path.join(d, "mutated.onnx")
    onnx.save(m, bad)
    core = H.run_core(a.run_core, path, x, d)
    check(H.same_rows(H.ort_run(bad, x, d), core) < len(x),
          "negative control: one weight row changed by 1 in the graph -> rows differ")
    dis = H.same_rows(H.ort_run(os.path.join(d, "%s.qdq.onnx" % name), x, d, "disabled"), core)
    check(dis < len(x), "negative control: ONNX Runtime with optimizations off (QDQ in float): "
          "%d/%d rows identical" % (dis, len(x)))
    # Refusal: an unknown form.
    rc, text = tool("qat2onnx.py", path, os.path.join(d, "x.onnx"), "--form", "tflite")
    check(rc == 2 and "form" in text, "qat2onnx refuses an unknown --form (exit %d)" % rc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-core", required=True)
    ap.add_argument("--server")
    ap.add_argument("--work", required=True)
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--only", help="export or import")
    ap.add_argument("--fashion-all", action="store_true",
                    help="all 70,000 Fashion-MNIST images (train + test) as the real rows")
    ap.add_argument("--summary")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    t0 = time.time()
    tests = [test_export]
    if "test_import" in globals():
        tests.append(globals()["test_import"])
    for t in tests:
        if a.only and a.only not in t.__name__:
            continue
        t1 = time.time()
        try:
            t(a)
        except Exception as e:  # one broken part must not hide the others
            import traceback
            traceback.print_exc()
            check(False, "%s raised %s: %s" % (t.__name__, type(e).__name__, e))
        print("     (%s: %.1f s)" % (t.__name__, time.time() - t1), flush=True)
    print("onnx-test: %s in %.1f s" % ("FAILED (%d)" % len(H.FAILS) if H.FAILS else "passed",
                                       time.time() - t0))
    print("onnx-test identical rows: " + json.dumps(COUNTS))
    if a.summary:
        with open(a.summary, "w") as f:
            json.dump(COUNTS, f, indent=1)
    return 1 if H.FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
