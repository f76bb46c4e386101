#!/usr/bin/python3
"""test_torch.py - PyTorch QAT models served by qatserve, integer for integer.

    /usr/bin/python3 tests/torch/test_torch.py --run-core build/run_core --work build/torch

1. Trains a small MLP with PyTorch's eager-mode QAT (qnnpack), converts it and
   saves it twice (torch.save, torch.jit.save); the same for onednn.
2. Imports each with tools/torch2qat.py (with and without --float).
3. Runs the test rows through core (run_core: qat_model_load + qat_infer_int8)
   and demands, on every row, dequantized outputs equal to PyTorch's as
   floats (so every uint8 equal) and equal argmax. Also checks our numpy
   emulation agrees, the fp32 baseline and what the metadata says.
4. onednn: core must equal PyTorch qnnpack on the same per-channel model;
   agreement with PyTorch's onednn engine is reported, not required.
5. Refusals: unsupported layers and parameters exit non-zero naming them.

Nothing is downloaded: data is Debian's Fashion-MNIST (or --synthetic).
"""
import argparse
import contextlib
import hashlib
import io
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
import torch2qat  # noqa: E402
import make_model  # noqa: E402

FAILS = []


def check(cond, what):
    print("%s %s" % ("ok  " if cond else "FAIL", what))
    if not cond:
        FAILS.append(what)
    return cond


def run_core(exe, model, inputs, rows, mode="int8"):
    p = subprocess.run([exe, model, inputs, str(rows), mode], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("run_core %s failed: %s" % (model, p.stderr.strip()))
    # float32(parse("%.9g")) round-trips the float exactly.
    return np.array([[float(v) for v in line.split()] for line in p.stdout.splitlines()],
                    dtype=np.float32)


def import_model(args, expect=0):
    """torch2qat in-process (saves a torch start-up); returns (rc, stderr+stdout)."""
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        rc = torch2qat.main(args)
    text = out.getvalue() + err.getvalue()
    if rc != expect:
        print(text)
    return rc, text


def make(work, name, engine, dims, extra, reuse=False):
    d = os.path.join(work, name)
    info_path = os.path.join(d, "info.json")
    if reuse and os.path.exists(info_path):
        with open(info_path) as f:
            info = json.load(f)
        if info.get("args") == [engine, dims] + extra:
            print("     (reusing the %s model in %s)" % (engine, d))
            return d, info
    # In-process: a second torch start-up costs seconds on a loaded machine.
    make_model.main(["--out", d, "--engine", engine, "--dims", dims] + extra)
    with open(info_path) as f:
        info = json.load(f)
    info["args"] = [engine, dims] + extra  # what --reuse compares
    with open(info_path, "w") as f:
        json.dump(info, f, indent=1)
    return d, info


def uint8_of(y, s, zp):
    return np.rint(y / np.float32(s)).astype(np.int64) + zp


def eq_hidden(fm, x):
    """The last layer's uint8 inputs (minus zero point), by emulation."""
    one = dict(fm, layers=fm["layers"][:-1])
    if not one["layers"]:
        q = torch2qat.quantize_u8(x, fm["in_s"], fm["in_zp"])
        return q - fm["in_zp"]
    q, _ = torch2qat.emulate(one, x)
    return q - one["layers"][-1]["out_zp"]


def float_bias_emulation(fm, x):
    """What PyTorch's onednn engine appears to compute on a VNNI CPU: exact
    int32 products, then the float bias added after scaling (no int32 bias).
    Only reported, to explain the 1-LSB differences."""
    q = torch2qat.quantize_u8(x, fm["in_s"], fm["in_zp"])
    in_s, in_zp = fm["in_s"], fm["in_zp"]
    for L in fm["layers"]:
        acc = ((q - in_zp) @ L["wq"].astype(np.int64).T).astype(np.float32)
        sc = np.float32(in_s) * L["w_scale"].astype(np.float32)
        v = np.rint((acc * sc + L["bias"].astype(np.float32)) / np.float32(L["out_s"]))
        v = v + np.float32(L["out_zp"])
        q = np.clip(v, L["out_zp"] if L["relu"] else 0, 255).astype(np.int64)
        in_s, in_zp = L["out_s"], L["out_zp"]
    return (q - in_zp).astype(np.float32) * np.float32(in_s)


def float_forward(sd_path, x):
    """The fp32 baseline the way a float MLP computes it (float64 reference)."""
    import torch
    sd = torch.load(sd_path, map_location="cpu")
    ws = [(k, v) for k, v in sd.items() if k.endswith(".weight") and v.dim() == 2]
    h = x.astype(np.float64)
    for i, (k, w) in enumerate(ws):
        h = h @ w.double().numpy().T + sd[k[:-6] + "bias"].double().numpy()
        if i + 1 < len(ws):
            h = np.maximum(h, 0)
    return h


def test_exact(a):
    exe = a.run_core
    d, info = make(a.work, "qnnpack", "qnnpack", a.dims, a.data, a.reuse)
    rows = info["rows"]
    inputs = os.path.join(d, "inputs.f32")
    x = np.fromfile(inputs, "<f4").reshape(rows, -1)
    labels = np.fromfile(os.path.join(d, "labels.u8"), np.uint8)
    theirs = np.fromfile(os.path.join(d, "torch_out.f32"), "<f4").reshape(rows, -1)

    st_pickle = os.path.join(d, "pickle.safetensors")
    st_jit = os.path.join(d, "jit.safetensors")
    rc, text = import_model([os.path.join(d, "quant.pt"), st_pickle,
                             "--float", os.path.join(d, "float.pt"),
                             "--labels", ",".join("c%d" % i for i in range(theirs.shape[1]))])
    check(rc == 0, "torch2qat imports the torch.save model")
    rc2, _ = import_model([os.path.join(d, "quant.jit.pt"), st_jit])
    check(rc2 == 0, "torch2qat imports the TorchScript model")
    if rc or rc2:
        return None

    tp, mp = torch2qat.read_safetensors(st_pickle)
    tj, mj = torch2qat.read_safetensors(st_jit)
    same_int = all(np.array_equal(tp[k], tj[k]) for k in tp
                   if not k.endswith("fp32") and k in tj)
    check(same_int and set(tp) == set(tj),
          "torch.save and TorchScript give the same integer model")
    check(mp["format_version"] == "2"
          and all(mp.get("sha256." + k) == hashlib.sha256(
              tp[k].astype(tp[k].dtype.newbyteorder("<")).tobytes()).hexdigest() for k in tp)
          and sum(k.startswith("sha256.") for k in mp) == len(tp),
          "format 2: every tensor's SHA-256 in the metadata, and only those")
    check(mp["baseline"] == "float-model" and mj["baseline"] == "dequantized",
          "metadata says where the fp32 baseline came from")
    check(mp["output_mode"] == "requant" and mp["engine"] == "qnnpack"
          and mp["architecture"] == a.dims.replace(",", "-"),
          "metadata: requant, qnnpack, architecture %s" % mp["architecture"])
    check(all(np.array_equal(tj["layers.%d.weight_fp32" % i],
                             tj["layers.%d.weight_q" % i].astype(np.float32)
                             * tj["layers.%d.weight_scale" % i][:, None])
              for i in range(len(mj["activations"].split(",")))),
          "dequantized baseline = weight_q * weight_scale")

    fm, _ = torch2qat.model_from_file(st_pickle)
    eq, ey = torch2qat.emulate(fm, x)
    check(np.array_equal(ey, theirs), "numpy emulation of the file == PyTorch qnnpack, %d rows" % rows)

    s, zp = fm["layers"][-1]["out_s"], fm["layers"][-1]["out_zp"]
    result = {"rows": rows, "torch_int8_accuracy": info["int8_accuracy"], "dims": a.dims,
              "source": info["source"]}
    for name, st in (("torch.save", st_pickle), ("TorchScript", st_jit)):
        t0 = time.time()
        ours = run_core(exe, st, inputs, rows)
        same = np.all(ours == theirs, axis=1)
        check(ours.shape == theirs.shape and bool(np.all(same)),
              "core int8 == PyTorch qnnpack as floats on %d/%d rows (%s)"
              % (int(same.sum()), rows, name))
        check(np.array_equal(uint8_of(ours, s, zp), eq),
              "core uint8 outputs == emulated uint8 (%s)" % name)
        check(np.array_equal(np.argmax(ours, 1), np.argmax(theirs, 1)),
              "core argmax == PyTorch argmax (%s)" % name)
        result["identical_rows_" + name] = float(same.mean())
        print("     (run_core %.2f s)" % (time.time() - t0))
    # The scalar reference kernel gives the same integers as the tier in use.
    ref_env = dict(os.environ, QAT_KERNEL="ref")
    p = subprocess.run([exe, st_pickle, inputs, str(rows), "int8"], capture_output=True,
                       text=True, env=ref_env)
    check(p.returncode == 0 and np.array_equal(
        np.array([[float(v) for v in l.split()] for l in p.stdout.splitlines()], np.float32),
        theirs), "core int8 with QAT_KERNEL=ref == PyTorch qnnpack")

    # Negative control: the comparison must see a one-LSB change in one weight
    # of the last layer (the bias_q stays valid: it does not depend on weights).
    t, meta = torch2qat.read_safetensors(st_pickle)
    last = len(meta["activations"].split(",")) - 1
    wq = t["layers.%d.weight_q" % last].copy()
    c = int(np.argmax(np.abs(wq).sum(1)))
    k = int(np.argmax(np.mean(np.abs(eq_hidden(fm, x)), 0)))
    wq[c, k] = wq[c, k] - 1 if wq[c, k] > -128 else wq[c, k] + 1
    t["layers.%d.weight_q" % last] = wq
    bad = os.path.join(d, "mutated.safetensors")
    torch2qat.write_safetensors(bad, list(t.items()), meta)
    mutated = run_core(exe, bad, inputs, rows)
    ndiff = int(np.sum(~np.all(mutated == theirs, axis=1)))
    check(ndiff > 0, "negative control: one weight changed by 1 LSB -> %d rows differ" % ndiff)

    # The loader recomputes bias_q from the float bias: one off must be refused.
    t, meta = torch2qat.read_safetensors(st_pickle)
    bq = t["layers.0.bias_q"].copy()
    bq[0] += 1
    t["layers.0.bias_q"] = bq
    torch2qat.write_safetensors(bad, list(t.items()), meta)
    p = subprocess.run([exe, bad, inputs, str(rows)], capture_output=True, text=True)
    check(p.returncode != 0 and "QAT_EBIAS" in p.stderr,
          "core refuses a bias_q one off its derivation (%s)" % p.stderr.strip()[:100])

    ours = run_core(exe, st_pickle, inputs, rows)
    result["qatserve_int8_accuracy"] = float(np.mean(np.argmax(ours, 1) == labels))

    # The fp32 baseline from --float is the float model's arithmetic.
    ref = float_forward(os.path.join(d, "float.pt"), x)
    f32 = run_core(exe, st_pickle, inputs, rows, "fp32").astype(np.float64)
    err = np.max(np.abs(f32 - ref)) / max(1.0, np.max(np.abs(ref)))
    check(err < 1e-4, "core fp32 baseline == float model (max rel err %.2g)" % err)
    result["fp32_accuracy"] = float(np.mean(np.argmax(f32, 1) == labels))
    return result


def test_server(a):
    """The imported qnnpack model served by build/qatserve: POST /predict
    answers PyTorch's outputs exactly (the server prints %.9g, which
    round-trips a float32), with the same argmax and labels."""
    if not a.server:
        return None
    import signal
    import urllib.error
    import urllib.request
    d = os.path.join(a.work, "qnnpack")
    with open(os.path.join(d, "info.json")) as f:
        rows = json.load(f)["rows"]
    x = np.fromfile(os.path.join(d, "inputs.f32"), "<f4").reshape(rows, -1)
    theirs = np.fromfile(os.path.join(d, "torch_out.f32"), "<f4").reshape(rows, -1)
    mdir = os.path.join(a.work, "served")
    os.makedirs(mdir, exist_ok=True)
    for f in os.listdir(mdir):
        os.remove(os.path.join(mdir, f))
    # The pickle import carries labels c0..c9; copy it under the served name.
    with open(os.path.join(d, "pickle.safetensors"), "rb") as src, \
            open(os.path.join(mdir, "torch-test.safetensors"), "wb") as dst:
        dst.write(src.read())
    log = os.path.join(a.work, "server.log")
    logf = open(log, "w")
    srv = subprocess.Popen([a.server, "--models", mdir, "--port", "0", "--host", "127.0.0.1",
                            "--threads", "2", "--quiet"], stdout=logf, stderr=subprocess.STDOUT)
    try:
        port = None
        for _ in range(200):  # up to 10 s to start
            with open(log) as f:
                for line in f:
                    if "listening on http://" in line:
                        port = int(line.rsplit(":", 1)[1])
            if port or srv.poll() is not None:
                break
            time.sleep(0.05)
        if not check(port is not None, "qatserve started (log: %s)" % log):
            return None
        ours, preds, labels = [], [], []
        for r in range(0, rows, 250):
            # %.9g round-trips each float32 input exactly.
            body = '{"model": "torch-test", "inputs": [%s]}' % ",".join(
                "[%s]" % ",".join("%.9g" % v for v in row) for row in x[r:r + 250])
            req = urllib.request.Request("http://127.0.0.1:%d/predict" % port,
                                         data=body.encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    ans = json.loads(resp.read())
            except urllib.error.HTTPError as e:
                check(False, "/predict answered %d: %s" % (e.code, e.read()[:300]))
                return None
            ours += ans["outputs"]
            preds += ans["predictions"]
            labels += ans.get("labels", [])
        ours = np.array(ours, dtype=np.float32)
        same = np.all(ours == theirs, axis=1)
        check(ours.shape == theirs.shape and bool(np.all(same)),
              "POST /predict == PyTorch qnnpack as floats on %d/%d rows" % (int(same.sum()), rows))
        argmax = np.argmax(theirs, 1)
        check(np.array_equal(np.array(preds), argmax), "/predict predictions == PyTorch argmax")
        check(labels == ["c%d" % i for i in argmax], "/predict labels name the argmax class")
        return {"server_identical_rows": float(same.mean())}
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            rc = srv.wait(timeout=15)
        except subprocess.TimeoutExpired:
            srv.kill()
            rc = srv.wait()
        logf.close()
        check(rc == 0, "qatserve exited 0 on SIGTERM")


def test_onednn(a):
    exe = a.run_core
    d, info = make(a.work, "onednn", "onednn", a.dims, a.data, a.reuse)
    rows = info["rows"]
    inputs = os.path.join(d, "inputs.f32")
    x = np.fromfile(inputs, "<f4").reshape(rows, -1)
    onednn = np.fromfile(os.path.join(d, "torch_out.f32"), "<f4").reshape(rows, -1)
    st = os.path.join(d, "model.safetensors")
    rc, text = import_model([os.path.join(d, "quant.jit.pt"), st])
    if not check(rc == 0, "torch2qat imports the onednn (per-channel) model"):
        return None
    check("warning: onednn model" in text, "torch2qat warns about onednn models")
    _, meta = torch2qat.read_safetensors(st)
    check(meta["engine"] == "onednn" and "per_channel" in meta["weight_qscheme"],
          "metadata: engine onednn, per-channel weights")
    qnn = torch2qat.torch_outputs(os.path.join(d, "quant.pt"), "qnnpack", x)
    ours = run_core(exe, st, inputs, rows)
    check(np.array_equal(ours, qnn),
          "core == PyTorch qnnpack on the per-channel onednn model, %d rows" % rows)
    fm, _ = torch2qat.model_from_file(st)
    s, zp = fm["layers"][-1]["out_s"], fm["layers"][-1]["out_zp"]
    same, am, lsb = torch2qat.agreement(uint8_of(ours, s, zp), ours, onednn, s, zp)
    elem = float(np.mean(ours == onednn))
    print("     onednn engine (this CPU: %s) vs qatserve: %.1f%% identical rows, %.1f%% "
          "identical outputs, argmax %.1f%%, max diff %d LSB"
          % (os.environ.get("ONEDNN_MAX_CPU_ISA", "default ISA"), 100 * same, 100 * elem,
             100 * am, lsb))
    check(am >= 0.9, "onednn argmax agreement >= 90%% (%.1f%%)" % (100 * am))
    fb = float(np.mean(np.all(float_bias_emulation(fm, x) == onednn, axis=1)))
    print("     onednn engine vs a float-bias emulation (rint((acc*in_s*w_s + bias) / out_s) "
          "+ zp): %.1f%% identical rows" % (100 * fb))
    res = {"onednn_identical_rows": same, "onednn_identical_outputs": elem,
           "onednn_argmax": am, "onednn_max_lsb": lsb, "onednn_float_bias_rows": fb}

    # The same model as PyTorch's onednn runs it on a CPU without VNNI (AVX2
    # only): its u8*s8 pair sums saturate at 16 bits. Reported, not required.
    noavx = os.path.join(d, "onednn_avx2.f32")
    code = ("import sys, numpy as np; sys.path.insert(0, %r); import torch2qat as T; "
            "x = np.fromfile(%r, '<f4').reshape(%d, -1); "
            "T.torch_outputs(%r, 'onednn', x).astype('<f4').tofile(%r)"
            % (os.path.join(ROOT, "tools"), inputs, rows, os.path.join(d, "quant.pt"), noavx))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2"))
    if check(p.returncode == 0, "PyTorch onednn restricted to AVX2 ran (%s)" % p.stderr[-200:]):
        o2 = np.fromfile(noavx, "<f4").reshape(rows, -1)
        same2, am2, lsb2 = torch2qat.agreement(uint8_of(ours, s, zp), ours, o2, s, zp)
        elem2 = float(np.mean(ours == o2))
        print("     onednn engine limited to AVX2 (no VNNI) vs qatserve: %.1f%% identical rows, "
              "%.1f%% identical outputs, argmax %.1f%%, max diff %d LSB"
              % (100 * same2, 100 * elem2, 100 * am2, lsb2))
        res.update({"onednn_avx2_identical_rows": same2, "onednn_avx2_identical_outputs": elem2,
                    "onednn_avx2_argmax": am2, "onednn_avx2_max_lsb": lsb2})
    return res


def refusal_models(work):
    """Converted models qatserve must refuse, each with the words the message
    must contain."""
    import torch
    import torch.nn as nn
    import torch.ao.quantization as tq
    torch.backends.quantized.engine = "qnnpack"
    cases = []

    def qat(model, example):
        model.train()
        model.qconfig = tq.get_default_qat_qconfig("qnnpack")
        tq.prepare_qat(model, inplace=True)
        model(example)
        model.eval()
        return model

    conv = qat(nn.Sequential(tq.QuantStub(), nn.Conv2d(1, 2, 3), nn.Flatten(),
                             nn.Linear(2 * 6 * 6, 4), tq.DeQuantStub()), torch.rand(2, 1, 8, 8))
    cases.append(("conv", tq.convert(conv), ["'1'", "Conv2d"]))

    # A float model never converted (a prepared one does not even pickle:
    # its observers hold local functions).
    plain = nn.Sequential(tq.QuantStub(), nn.Linear(8, 4), tq.DeQuantStub())
    cases.append(("not converted", plain, ["'0'", "QuantStub"]))

    dyn = tq.quantize_dynamic(nn.Sequential(nn.Linear(8, 4)), {nn.Linear}, dtype=torch.qint8)
    cases.append(("dynamic", dyn, ["'0'", "dynamic"]))

    ok = tq.convert(qat(nn.Sequential(tq.QuantStub(), nn.Linear(8, 4), tq.DeQuantStub()),
                        torch.rand(2, 8)))
    zp = tq.convert(qat(nn.Sequential(tq.QuantStub(), nn.Linear(8, 4), tq.DeQuantStub()),
                        torch.rand(2, 8)))
    w = torch.quantize_per_tensor(torch.randn(4, 8), 0.01, 3, torch.qint8)
    zp[1].set_weight_bias(w, torch.zeros(4))
    cases.append(("weight zero point", zp, ["'1'", "zero point 3"]))

    big = tq.convert(qat(nn.Sequential(tq.QuantStub(), nn.Linear(8, 4), tq.DeQuantStub()),
                         torch.rand(2, 8)))
    big[1].set_weight_bias(torch.quantize_per_tensor(torch.randn(4, 8), 1e-4, 0, torch.qint8),
                           torch.full((4,), 1e6))
    cases.append(("bias beyond int32 range", big, ["'1'", "exceeds 2^30"]))

    sig = nn.Sequential(ok[0], ok[1], nn.Sigmoid(), ok[2])
    cases.append(("sigmoid", sig, ["'2'", "Sigmoid"]))

    s8 = nn.Sequential(torch.ao.nn.quantized.Quantize(0.1, 0, torch.qint8), ok[1], ok[2])
    cases.append(("qint8 input", s8, ["'0'", "qint8"]))

    # A forward the modules' order does not describe (ReLU as a function):
    # only running the model can tell; torch2qat must refuse after verifying.
    class Hidden(nn.Module):
        def __init__(self, q):
            super().__init__()
            self.quant, self.fc1, self.fc2, self.dequant = q[0], q[1], q[2], q[3]

        def forward(self, x):
            h = torch.nn.functional.relu(self.fc1(self.quant(x)))
            return self.dequant(self.fc2(h))

    two = tq.convert(qat(nn.Sequential(tq.QuantStub(), nn.Linear(8, 6), nn.Linear(6, 4),
                                       tq.DeQuantStub()), torch.randn(64, 8)))
    cases.append(("hidden relu", torch.jit.script(Hidden(two)), ["does not reproduce"]))

    paths = []
    for i, (name, m, words) in enumerate(cases):
        p = os.path.join(work, "refuse%d.pt" % i)
        if isinstance(m, torch.jit.ScriptModule):
            torch.jit.save(m, p)
        else:
            torch.save(m, p)
        paths.append((name, p, words))
    sd = os.path.join(work, "refuse_sd.pt")
    torch.save(ok.state_dict(), sd)
    paths.append(("state dict", sd, ["state dict"]))
    return paths


CUSTOM = """
import sys, torch, torch.nn as nn, torch.ao.quantization as tq

class Net(nn.Module):  # a custom module: pickled as __main__.Net
    def __init__(self):
        super().__init__()
        self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
        self.fc1, self.relu, self.fc2 = nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4)

    def forward(self, x):
        return self.dequant(self.fc2(self.relu(self.fc1(self.quant(x)))))

if __name__ == "__main__":
    torch.backends.quantized.engine = "qnnpack"
    m = Net()  # not fused: the converted nn.ReLU runs on quantized tensors
    m.train()
    m.qconfig = tq.get_default_qat_qconfig("qnnpack")
    tq.prepare_qat(m, inplace=True)
    m(torch.rand(256, 16))
    m.eval()
    torch.save(tq.convert(m), sys.argv[1])
"""


def test_custom_class(a):
    """torch.save of a user's nn.Module class: refused without its code
    (naming --code), imported and verified with --code."""
    d = os.path.join(a.work, "custom")
    os.makedirs(d, exist_ok=True)
    code, pt = os.path.join(d, "model_def.py"), os.path.join(d, "custom.pt")
    out = os.path.join(d, "custom.safetensors")
    with open(code, "w") as f:
        f.write(CUSTOM)
    subprocess.run([sys.executable, code, pt], check=True)
    # In-process: the class lives in the maker's __main__, not in ours.
    rc, text = import_model([pt, out], expect=2)
    check(rc == 2 and "--code" in text,
          "custom class without --code: exit %d, message points to --code" % rc)
    rc, text = import_model([pt, out, "--code", code])
    check(rc == 0 and "100.00% identical rows" in text,
          "custom class with --code: imported, verified (%s)" % text.strip()[-80:])
    if rc == 0:
        _, meta = torch2qat.read_safetensors(out)
        check(meta["architecture"] == "16-8-4" and meta["activations"] == "relu,none",
              "custom class: architecture %s, activations %s (ReLU folded)"
              % (meta["architecture"], meta["activations"]))


def test_quant_wrapper(a):
    """QuantWrapper (stubs registered before the wrapped module), nested in a
    Sequential, with an unfused ReLU: imported and verified."""
    import torch
    import torch.nn as nn
    import torch.ao.quantization as tq
    torch.backends.quantized.engine = "qnnpack"
    inner = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))
    m = nn.Sequential(tq.QuantWrapper(inner))
    m.train()
    m.qconfig = tq.get_default_qat_qconfig("qnnpack")
    tq.prepare_qat(m, inplace=True)
    m(torch.rand(256, 16))
    m.eval()
    d = os.path.join(a.work, "wrapper")
    os.makedirs(d, exist_ok=True)
    pt, out = os.path.join(d, "wrapped.pt"), os.path.join(d, "wrapped.safetensors")
    torch.save(tq.convert(m), pt)
    rc, text = import_model([pt, out])
    ok = rc == 0 and "100.00% identical rows" in text
    if ok:
        _, meta = torch2qat.read_safetensors(out)
        ok = meta["architecture"] == "16-8-4" and meta["activations"] == "relu,none"
    check(ok, "QuantWrapper inside a Sequential: imported as 16-8-4 relu,none, verified")

    # A --float baseline that does not match the layers is refused, naming it.
    wrong = os.path.join(d, "wrong_float.pt")
    torch.save(nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 5)).state_dict(), wrong)
    rc, text = import_model([pt, out + ".2", "--float", wrong], expect=2)
    check(rc == 2 and "'2.weight' has shape (5, 8)" in text,
          "a --float baseline of the wrong shape is refused, naming the tensor")


def test_refusals(a):
    d = os.path.join(a.work, "refuse")
    os.makedirs(d, exist_ok=True)
    cases = refusal_models(d)
    out = os.path.join(d, "out.safetensors")
    for name, path, words in cases:
        if os.path.exists(out):
            os.remove(out)
        expect = 3 if name == "hidden relu" else 2
        rc, text = import_model([path, out], expect=expect)
        check(rc == expect and all(w in text for w in words) and not os.path.exists(out),
              "refused %s: exit %d, message names %s" % (name, rc, " ".join(words)))
    # Once through a real process: the exit status reaches the shell.
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "torch2qat.py"),
                        cases[0][1], out], capture_output=True, text=True)
    check(p.returncode == 2 and "Conv2d" in p.stderr,
          "torch2qat.py exits 2 naming Conv2d (stderr: %s)" % p.stderr.strip()[:120])
    # An exception from inside PyTorch (a TorchScript archive cut in half):
    # one line, exit 2, never a traceback.
    with open(cases[-2][1], "rb") as f:
        raw = f.read()
    cut = os.path.join(d, "truncated.pt")
    with open(cut, "wb") as f:
        f.write(raw[:len(raw) // 2])
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "torch2qat.py"), cut, out],
                       capture_output=True, text=True)
    check(p.returncode == 2 and "Traceback" not in p.stderr
          and len(p.stderr.strip().splitlines()) == 1,
          "a truncated TorchScript file: exit %d, one line (%s)"
          % (p.returncode, p.stderr.strip()[:120]))


def test_save_forms(a):
    """Every way PyTorch saves a converted model (torch.save, jit.script,
    jit.trace - the traced case once died with AttributeError: 'RecursiveScriptModule'
    object has no attribute 'dtype'), fused LinearReLU and unfused Linear + ReLU,
    per-tensor (qnnpack qconfig) and per-channel (onednn, fbgemm, x86 qconfigs)
    weights: core's integers == PyTorch qnnpack's on every test row. The
    model's own engine is compared where this PyTorch has it (reported)."""
    import torch
    import torch.nn as nn
    import torch.ao.quantization as tq
    d = os.path.join(a.work, "forms")
    os.makedirs(d, exist_ok=True)
    if a.synthetic or not os.path.isdir(make_model.DATA):
        xtr, ytr = make_model.synthetic(2000, 784, 10, 1)
        xte, _ = make_model.synthetic(a.form_rows, 784, 10, 2)
    else:
        xtr, ytr = make_model.load_fashion("train", 4000)
        xte, _ = make_model.load_fashion("test", a.form_rows)
    rows = len(xte)
    inputs = os.path.join(d, "inputs.f32")
    xte.astype("<f4").tofile(inputs)
    engines = torch.backends.quantized.supported_engines
    print("     this PyTorch %s runs the engines %s (no fbgemm/x86 in this build: their "
          "qconfigs are imported, their kernels cannot be compared here)"
          % (torch.__version__, ",".join(e for e in engines if e != "none")))
    res = {}
    for qc in ("qnnpack", "onednn", "fbgemm", "x86"):
        for fused in (True, False):
            torch.manual_seed(3)
            torch.backends.quantized.engine = "qnnpack"
            m = nn.Sequential(tq.QuantStub(), nn.Linear(784, 48), nn.ReLU(), nn.Linear(48, 10),
                              tq.DeQuantStub())
            m.eval()
            if fused:
                m = tq.fuse_modules(m, [["1", "2"]])
            m.train()
            m.qconfig = tq.get_default_qat_qconfig(qc)
            tq.prepare_qat(m, inplace=True)
            opt = torch.optim.Adam(m.parameters(), lr=2e-3)
            xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr)
            for step in range(80):
                i = torch.randint(0, len(xt), (64,))
                opt.zero_grad()
                nn.functional.cross_entropy(m(xt[i]), yt[i]).backward()
                opt.step()
            m.eval()
            q = tq.convert(m)
            with torch.no_grad():
                ref = q(torch.from_numpy(xte)).numpy().astype(np.float32)
            tag = "%s-%s" % (qc, "fused" if fused else "unfused")
            saves = {"torch.save": lambda p: torch.save(q, p),
                     "jit.script": lambda p: torch.jit.save(torch.jit.script(q), p),
                     "jit.trace": lambda p: torch.jit.save(
                         torch.jit.trace(q, torch.from_numpy(xte[:4])), p)}
            for form, save in saves.items():
                pt = os.path.join(d, "%s.%s.pt" % (tag, form))
                st = os.path.join(d, "%s.%s.safetensors" % (tag, form))
                save(pt)
                rc, text = import_model([pt, st, "--engine", qc, "--verify-rows", "64"])
                if not check(rc == 0 and "Traceback" not in text,
                             "torch2qat imports %s %s (exit %d)" % (tag, form, rc)):
                    continue
                _, meta = torch2qat.read_safetensors(st)
                ours = run_core(a.run_core, st, inputs, rows)
                same = int(np.sum(np.all(ours == ref, axis=1)))
                res["%s %s" % (tag, form)] = [same, rows]
                check(same == rows and meta["engine"] == qc
                      and meta["activations"] == "relu,none",
                      "%s %s: core == PyTorch qnnpack on %d/%d rows; metadata engine %s"
                      % (tag, form, same, rows, meta["engine"]))
            if qc != "qnnpack" and qc in engines:
                own = torch2qat.torch_outputs(os.path.join(d, "%s.jit.script.pt" % tag), qc, xte)
                same = int(np.sum(np.all(ours == own, axis=1)))
                res["%s vs PyTorch %s engine" % (tag, qc)] = [same, rows]
                print("     %s: core vs PyTorch's own %s engine: %d/%d identical rows "
                      "(reported, not required: docs/torch.md)" % (tag, qc, same, rows))
    # qat info says where the model came from.
    qat = os.path.join(os.path.dirname(a.run_core), "qat")
    st = os.path.join(d, "x86-fused.jit.trace.safetensors")
    if os.path.exists(qat) and os.path.exists(st):
        p = subprocess.run([qat, "info", st], capture_output=True, text=True)
        check(p.returncode == 0 and "source: imported from PyTorch, x86 engine" in p.stdout,
              "qat info: %s" % " / ".join(l for l in p.stdout.splitlines()
                                          if l.startswith("source")))
    return {"save_forms": res}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-core", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--server", help="build/qatserve: also compare POST /predict")
    ap.add_argument("--dims", default="784,64,32,10")
    ap.add_argument("--synthetic", action="store_true")
    ap.add_argument("--train-rows", type=int, default=4000)
    ap.add_argument("--test-rows", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--reuse", action="store_true",
                    help="reuse models trained by an earlier run with the same arguments")
    ap.add_argument("--form-rows", type=int, default=10000,
                    help="test rows for the save-form matrix (test_save_forms)")
    ap.add_argument("--quick", action="store_true",
                    help="skip the refusal cases (for long accuracy runs)")
    ap.add_argument("--summary", help="write the numbers as JSON here")
    a = ap.parse_args()
    a.data = (["--synthetic"] if a.synthetic else []) + [
        "--train-rows", str(a.train_rows), "--test-rows", str(a.test_rows),
        "--steps", str(a.steps)]
    os.makedirs(a.work, exist_ok=True)
    t0 = time.time()
    res = {}
    for t in (test_exact, test_server, test_onednn) + (() if a.quick else (test_refusals, test_custom_class, test_quant_wrapper, test_save_forms)):
        t1 = time.time()
        try:
            res.update(t(a) or {})
            print("     (%s: %.1f s)" % (t.__name__, time.time() - t1))
        except Exception as e:  # one broken part must not hide the others
            check(False, "%s raised %s: %s" % (t.__name__, type(e).__name__, e))
    print("torch-test: %s in %.1f s" % ("FAILED (%d)" % len(FAILS) if FAILS else "passed",
                                        time.time() - t0))
    print("torch-test numbers: " + json.dumps(res))
    if a.summary:
        with open(a.summary, "w") as f:
            json.dump(res, f, indent=1)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
