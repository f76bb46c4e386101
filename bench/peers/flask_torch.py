#!/usr/bin/python3
"""flask_torch.py - the Flask + gunicorn + PyTorch int8 peer qatserve is
measured against: the same model file, the same /predict JSON in and out,
done the usual Python way.

    QS_MODEL=models/fashion-mnist.safetensors \
      gunicorn -w 2 -b 127.0.0.1:PORT --chdir bench/peers flask_torch:app

The model is rebuilt from our safetensors file as PyTorch quantized modules:
the input quantized per tensor (quint8) with the trained scale and zero
point, each layer a torch.ao.nn.quantized.Linear with the file's int8
weights (per output channel), int32-equivalent bias and output qparams,
ReLU on the quantized tensor, the last layer dequantized; the fp32 baseline
is a plain Linear/ReLU stack with the file's fp32 weights. Both run per
request as ours do, with one PyTorch thread per worker.

    /usr/bin/python3 bench/peers/flask_torch.py --bench MODEL   times the
    bare models in-process (batch 1 and 64, median), no HTTP.
"""
import json
import os
import struct
import sys
import time

import numpy as np
import torch

torch.set_num_threads(1)


def load_safetensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    meta = h.pop("__metadata__", {})
    dt = {"F32": np.float32, "I32": np.int32, "I8": np.int8}
    t = {}
    for k, v in h.items():
        s, e = v["data_offsets"]
        t[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=dt[v["dtype"]]).reshape(v["shape"])
    return t, meta


def pick_engine():
    engines = torch.backends.quantized.supported_engines
    for e in ("qnnpack", "fbgemm", "x86", "onednn"):
        if e in engines:
            return e
    return engines[0]


class Models:
    def __init__(self, path):
        t, meta = load_safetensors(path)
        self.labels = json.loads(meta.get("labels", "[]"))
        self.name = os.path.basename(path).rsplit(".", 1)[0]
        acts = meta["activations"].split(",")
        n = len(acts)
        a_s = t["activations.scale"].astype(np.float64)
        a_z = t["activations.zero_point"]
        self.in_s, self.in_z = float(a_s[0]), int(a_z[0])
        self.q, self.f = [], []
        for i in range(n):
            wq = torch.from_numpy(t["layers.%d.weight_q" % i].copy())
            ws = torch.from_numpy(t["layers.%d.weight_scale" % i].astype(np.float64))
            out_dim, in_dim = wq.shape
            w = torch._make_per_channel_quantized_tensor(wq, ws, torch.zeros(out_dim, dtype=torch.int64), 0)
            lin = torch.ao.nn.quantized.Linear(in_dim, out_dim, dtype=torch.qint8)
            lin.set_weight_bias(w, torch.from_numpy(t["layers.%d.bias" % i].copy()))
            lin.scale, lin.zero_point = float(a_s[i + 1]), int(a_z[i + 1])
            self.q.append((lin, acts[i] == "relu"))
            fl = torch.nn.Linear(in_dim, out_dim)
            with torch.no_grad():
                fl.weight.copy_(torch.from_numpy(t["layers.%d.weight_fp32" % i].copy()))
                fl.bias.copy_(torch.from_numpy(t["layers.%d.bias_fp32" % i].copy()))
            self.f.append((fl, acts[i] == "relu"))
        self.in_dim = self.q[0][0].in_features

    def int8(self, x):
        with torch.inference_mode():
            h = torch.quantize_per_tensor(x, self.in_s, self.in_z, torch.quint8)
            for lin, relu in self.q:
                h = lin(h)
                if relu:
                    h = torch.nn.functional.relu(h)
            return h.dequantize()

    def fp32(self, x):
        with torch.inference_mode():
            h = x
            for lin, relu in self.f:
                h = lin(h)
                if relu:
                    h = torch.relu(h)
            return h


torch.backends.quantized.engine = pick_engine()
app = None
if __name__ != "__main__":
    from flask import Flask, jsonify, request

    M = Models(os.environ.get("QS_MODEL", "models/fashion-mnist.safetensors"))
    app = Flask(__name__)

    @app.post("/predict")
    def predict():
        t0 = time.perf_counter_ns()
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict) or "inputs" not in body:
            return jsonify(error="send {\"inputs\": [[...]]}"), 400
        try:
            x = torch.tensor(body["inputs"], dtype=torch.float32)
        except (TypeError, ValueError):
            return jsonify(error="inputs must be rows of numbers"), 400
        if x.dim() == 1:
            x = x.unsqueeze(0)
        if x.dim() != 2 or x.shape[1] != M.in_dim:
            return jsonify(error="wrong input width"), 422
        if not torch.isfinite(x).all():
            return jsonify(error="non-finite number"), 422
        baseline = body.get("baseline", True)
        t1 = time.perf_counter_ns()
        y8 = M.int8(x)
        t2 = time.perf_counter_ns()
        y32 = M.fp32(x) if baseline else None
        t3 = time.perf_counter_ns()
        pred = y8.argmax(dim=1).tolist()
        us8, us32 = (t2 - t1) / 1e3, (t3 - t2) / 1e3
        out = {"model": M.name, "outputs": y8.tolist(), "predictions": pred,
               "latency_us": {"int8": us8, "fp32": us32 if baseline else None,
                              "speedup": us32 / us8 if baseline else None}}
        if M.labels:
            out["labels"] = [M.labels[p] for p in pred]
        if baseline:
            out["drift"] = {"max_abs_diff": float((y8 - y32).abs().max()),
                            "argmax_agreement": float((y32.argmax(dim=1) == y8.argmax(dim=1)).float().mean())}
        else:
            out["drift"] = None
        out["latency_us"]["total"] = (time.perf_counter_ns() - t0) / 1e3
        return jsonify(out)


def bench(path):
    m = Models(path)
    print("# PyTorch %s, engine %s, 1 thread; whole MLP from %s; median of 200 calls" %
          (torch.__version__, torch.backends.quantized.engine, path))
    for batch in (1, 64):
        x = torch.rand(batch, m.in_dim)
        for name, fn in (("int8", m.int8), ("fp32", m.fp32)):
            for _ in range(20):
                fn(x)
            ts = []
            for _ in range(200):
                t0 = time.perf_counter_ns()
                fn(x)
                ts.append(time.perf_counter_ns() - t0)
            ts.sort()
            print("pytorch %s batch %3d: %10.2f us" % (name, batch, ts[len(ts) // 2] / 1e3))


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--bench":
    bench(sys.argv[2])
