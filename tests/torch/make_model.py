#!/usr/bin/python3
"""make_model.py - train a small MLP with PyTorch's own eager-mode QAT, convert
it to a quantized model and save everything the torch test needs.

The model is nn.Sequential(QuantStub, Linear, ReLU, Linear, ReLU, ..., Linear,
DeQuantStub): Linear+ReLU pairs are fused (fuse_modules), the default QAT
qconfig of the chosen engine is applied, prepare_qat, a few hundred Adam steps,
convert. Data: Fashion-MNIST read from Debian's dataset-fashion-mnist (gzip +
numpy, no download); --synthetic uses random data instead.

Writes into --out DIR:
  quant.pt        torch.save of the whole converted model
  quant.jit.pt    torch.jit.save of torch.jit.script(converted)
  float.pt        state dict of the QAT-trained float model (fp32 baseline)
  inputs.f32      [rows][784] float32 little-endian, the test rows
  labels.u8       [rows] the test labels
  torch_out.f32   [rows][classes] float32: the quantized model's outputs
  info.json       engine, dims, rows, accuracy of the int8 model on the rows
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.ao.quantization as tq

DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """Reads an IDX file (gzipped): magic 0x0000 0x08 ndim, big-endian dims."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError("%s: not an unsigned-byte IDX file" % path)
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    return data.reshape(dims)


def load_fashion(split, n):
    pre = "train" if split == "train" else "t10k"
    x = read_idx(os.path.join(DATA, "%s-images-idx3-ubyte.gz" % pre))[:n]
    y = read_idx(os.path.join(DATA, "%s-labels-idx1-ubyte.gz" % pre))[:n]
    # Pixels to [0, 1] as float32, the same division the server's clients use.
    return (x.reshape(len(x), -1).astype(np.float32) / np.float32(255.0)), y.astype(np.int64)


def synthetic(n, dim, classes, seed):
    """Random inputs labelled by a fixed random linear map (learnable)."""
    g = np.random.default_rng(seed)
    x = g.random((n, dim), dtype=np.float32)
    w = np.random.default_rng(1234).standard_normal((dim, classes)).astype(np.float32)
    y = np.argmax((x - 0.5) @ w, axis=1)
    return x, y.astype(np.int64)


def build(dims):
    mods = [tq.QuantStub()]
    for i in range(len(dims) - 1):
        mods.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            mods.append(nn.ReLU())
    mods.append(tq.DeQuantStub())
    return nn.Sequential(*mods)


def fuse_pairs(dims):
    # Sequential indices: 0 QuantStub, then Linear,ReLU pairs; the last Linear alone.
    return [[str(1 + 2 * i), str(2 + 2 * i)] for i in range(len(dims) - 2)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--engine", default="qnnpack", choices=["qnnpack", "onednn"])
    ap.add_argument("--dims", default="784,64,10")
    ap.add_argument("--train-rows", type=int, default=4000)
    ap.add_argument("--test-rows", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--synthetic", action="store_true")
    a = ap.parse_args(argv)

    dims = [int(d) for d in a.dims.split(",")]
    torch.manual_seed(a.seed)
    torch.set_num_threads(1)
    torch.backends.quantized.engine = a.engine
    t0 = time.time()
    if a.synthetic or not os.path.isdir(DATA):
        xtr, ytr = synthetic(a.train_rows, dims[0], dims[-1], a.seed)
        xte, yte = synthetic(a.test_rows, dims[0], dims[-1], a.seed + 1)
        source = "synthetic"
    else:
        if dims[0] != 784 or dims[-1] != 10:
            sys.exit("Fashion-MNIST needs dims 784,...,10 (or pass --synthetic)")
        xtr, ytr = load_fashion("train", a.train_rows)
        xte, yte = load_fashion("test", a.test_rows)
        source = "fashion-mnist"

    model = build(dims)
    model.eval()
    if len(dims) > 2:
        model = tq.fuse_modules(model, fuse_pairs(dims))
    model.train()
    model.qconfig = tq.get_default_qat_qconfig(a.engine)
    tq.prepare_qat(model, inplace=True)

    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    lossf = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr)
    g = torch.Generator().manual_seed(a.seed)
    for step in range(a.steps):
        idx = torch.randint(0, len(xt), (a.batch,), generator=g)
        opt.zero_grad()
        loss = lossf(model(xt[idx]), yt[idx])
        loss.backward()
        opt.step()

    model.eval()
    os.makedirs(a.out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(a.out, "float.pt"))
    qmodel = tq.convert(model, inplace=False)
    qmodel.eval()
    torch.save(qmodel, os.path.join(a.out, "quant.pt"))
    torch.jit.save(torch.jit.script(qmodel), os.path.join(a.out, "quant.jit.pt"))

    with torch.no_grad():
        out = qmodel(torch.from_numpy(xte)).numpy().astype(np.float32)
    xte.astype("<f4").tofile(os.path.join(a.out, "inputs.f32"))
    yte.astype(np.uint8).tofile(os.path.join(a.out, "labels.u8"))
    out.astype("<f4").tofile(os.path.join(a.out, "torch_out.f32"))
    acc = float(np.mean(np.argmax(out, axis=1) == yte))
    info = {"engine": a.engine, "dims": dims, "rows": int(len(xte)),
            "source": source, "steps": a.steps, "int8_accuracy": acc,
            "torch": torch.__version__, "seconds": round(time.time() - t0, 2)}
    with open(os.path.join(a.out, "info.json"), "w") as f:
        json.dump(info, f, indent=1)
    print("make_model: %s %s %d steps, int8 accuracy %.4f on %d %s rows (%.1f s)"
          % (a.engine, a.dims, a.steps, acc, len(xte), source, time.time() - t0))


if __name__ == "__main__":
    main()
