"""qatfile.py - the one place Python tools read and write qatserve model files.

Every importer and exporter in tools/ (torch2qat.py, onnx2qat.py, qat2onnx.py)
and the Python tests go through this module, so a change to the file format
(docs/model-format.md) is made here once:

    write(path, tensors, meta)   atomic write; stamp() sets the format keys
    read(path)                   (tensors, meta), checked by check_read()
    stamp(meta, blobs)           THE hook for format-level metadata computed
                                 from the data (format, version, rounding,
                                 per-tensor SHA-256)
    model_tensors(...)           a layer list -> the tensors, in core's order
    load_model(path)             the integer model as emulate() takes it
    emulate(model, x)            core's integer path in numpy, bit for bit,
                                 for every `rounding` convention
    refuse(tool, why, e)         the importers' one-line refusal, exit 2

No third-party dependency beyond numpy.
"""
import hashlib
import json
import os
import struct
import sys
import tempfile

import numpy as np

F32 = np.float32
FORMAT = "qatserve"
# docs/model-format.md: version 2 = per-tensor SHA-256 in the metadata;
# version 3 = version 2 + the `rounding` key, written only for a model that
# needs ONNX Runtime's rounding (every other file stays a version-2 file).
FORMAT_VERSION = "2"
FORMAT_VERSION_ROUNDING = "3"
READS = ("1", "2", "3")
ROUNDINGS = ("pytorch", "onnxruntime", "onnxruntime-float")
# Metadata keys the format owns: a tool's --meta cannot set them.
RESERVED = ("format", "format_version", "architecture", "activations", "weight_bits",
            "output_mode", "labels", "rounding")

_DT = {np.dtype(np.int8): "I8", np.dtype(np.int32): "I32", np.dtype(np.float32): "F32"}
_NP = {"I8": "<i1", "I32": "<i4", "F32": "<f4"}


# What an importer (onnx2qat, torch2qat, qat2onnx) exits with when it refuses
# a model it cannot reproduce exactly (docs/onnx.md, docs/torch.md).
EXIT_UNSUPPORTED = 2


class FormatError(Exception):
    """A file this module cannot read as a qatserve model."""


def reserved(key):
    return key in RESERVED or key.startswith("sha256.")


# --------------------------------------------------------------- the file --

def stamp(meta, blobs):
    """Sets the keys the format owns on `meta` (in place) for a file whose
    tensors' bytes are `blobs` (dict name -> bytes). Every writer passes
    through here: version, rounding and the per-tensor SHA-256."""
    meta["format"] = FORMAT
    r = meta.get("rounding", "pytorch")
    if r not in ROUNDINGS:
        raise ValueError("rounding %r is not one of %s" % (r, ", ".join(ROUNDINGS)))
    if r == "pytorch":
        meta.pop("rounding", None)  # the default
        meta["format_version"] = FORMAT_VERSION
    else:
        meta["format_version"] = FORMAT_VERSION_ROUNDING
    for k in [k for k in meta if k.startswith("sha256.")]:
        del meta[k]
    for name, raw in blobs.items():
        meta["sha256." + name] = hashlib.sha256(raw).hexdigest()
    return meta


def check_read(meta, blobs):
    """What a reader checks of the format keys (the counterpart of stamp)."""
    if meta.get("format") != FORMAT:
        raise FormatError("metadata 'format' is %r, not %r" % (meta.get("format"), FORMAT))
    v = meta.get("format_version")
    if v not in READS:
        raise FormatError("format_version %r; this tool reads %s" % (v, ", ".join(READS)))
    if v != "1":
        for name, raw in blobs.items():
            if meta.get("sha256." + name) != hashlib.sha256(raw).hexdigest():
                raise FormatError("tensor %s: SHA-256 does not match its metadata key" % name)


def write(path, tensors, meta):
    """tensors: list of (name, np.ndarray) with dtype int8/int32/float32, in
    the order their data is laid out; meta: dict of str -> str (format keys
    are set by stamp()). Header padded with spaces to a multiple of 8 so the
    data stays aligned. Written to a temporary file in the same directory,
    fsync'd and renamed: a reader never sees half a model."""
    header, blobs, off = {}, {}, 0
    for name, a in tensors:
        a = np.ascontiguousarray(a)
        if a.dtype not in _DT:
            raise ValueError("tensor %s: dtype %s is not I8/I32/F32" % (name, a.dtype))
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": _DT[a.dtype], "shape": [int(d) for d in a.shape],
                        "data_offsets": [off, off + len(raw)]}
        blobs[name] = raw
        off += len(raw)
    data = b"".join(blobs.values())
    meta = stamp(dict(meta), blobs)
    for k, v in meta.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise ValueError("metadata %r: keys and values must be strings" % (k,))
    header = dict({"__metadata__": meta}, **header)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()
    h += b" " * (-(8 + len(h)) % 8)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".tmp.", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(h)))
            f.write(h)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def read(path):
    """(tensors dict name -> np.ndarray, metadata dict) of a model file."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise FormatError("%s: shorter than 8 bytes" % path)
    n = struct.unpack("<Q", raw[:8])[0]
    if n > len(raw) - 8:
        raise FormatError("%s: header length %d past the end of the file" % (path, n))
    try:
        header = json.loads(raw[8:8 + n])
    except ValueError as e:
        raise FormatError("%s: header is not JSON (%s)" % (path, e))
    meta = header.pop("__metadata__", None)
    if not isinstance(meta, dict):
        raise FormatError("%s: no __metadata__" % path)
    base, out, blobs = 8 + n, {}, {}
    for k, v in header.items():
        b, e = v["data_offsets"]
        blobs[k] = raw[base + b:base + e]
        out[k] = np.frombuffer(blobs[k], dtype=_NP[v["dtype"]]).reshape(v["shape"])
    check_read(meta, blobs)
    return out, meta


# ------------------------------------------------------- integer arithmetic --

def bias_q(bias, w_scale, in_s):
    """bq[c] = rint(bias[c] * (1.0f / (float)((double)w_s[c] * (double)in_s))),
    float32, ties to even: the loader recomputes it and must agree."""
    inv = F32(1.0) / (w_scale.astype(np.float64) * np.float64(in_s)).astype(F32)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.rint(np.asarray(bias, F32) * inv).astype(np.int64)


def bias_for(bq, w_scale, in_s):
    """A float32 bias whose derivation (bias_q) gives exactly the int32 bias
    bq, for files imported from formats that store the integer bias. Returns
    (bias, ok): ok[c] False where no float32 reproduces bq[c]."""
    bq = np.asarray(bq, np.int64)
    inv = F32(1.0) / (w_scale.astype(np.float64) * np.float64(in_s)).astype(F32)
    b = (bq.astype(np.float64) / inv.astype(np.float64)).astype(F32)
    for _ in range(4):  # at most a few ulps away
        got = np.rint(b * inv).astype(np.int64)
        if np.array_equal(got, bq):
            break
        b = np.where(got < bq, np.nextafter(b, F32(np.inf)),
                     np.where(got > bq, np.nextafter(b, F32(-np.inf)), b)).astype(F32)
    return b, np.rint(b * inv).astype(np.int64) == bq


def multiplier(w_scale, in_s, out_s, rounding="pytorch"):
    """core's requantization multiplier M[c] (core/layer.c)."""
    ws = np.asarray(w_scale, F32)
    if rounding == "pytorch":
        return (ws * F32(in_s)) * (F32(1.0) / F32(out_s))
    return (F32(in_s) * ws) / F32(out_s)  # ONNX Runtime's (a * b) / y


def quantize_input(x, s, zp, qmax=255, rounding="pytorch"):
    x = np.asarray(x, F32)
    if rounding == "pytorch":
        v = np.rint(x * (F32(1.0) / F32(s)))
    else:
        v = np.rint(x / F32(s))  # ONNX QuantizeLinear divides
    return np.clip(v + F32(zp), 0, qmax).astype(np.int64)


def load_model(path):
    """The file's integer model, as emulate() takes it: what the C core will
    see, not what a tool meant to write. Checks bias_q as the loader does."""
    t, meta = read(path)
    acts = meta["activations"].split(",")
    n = len(acts)
    s, zp, qm = t["activations.scale"], t["activations.zero_point"], t["activations.qmax"]
    layers = []
    for i in range(n):
        L = {"wq": t["layers.%d.weight_q" % i], "w_scale": t["layers.%d.weight_scale" % i],
             "bias": t["layers.%d.bias" % i], "out_s": s[i + 1], "out_zp": int(zp[i + 1]),
             "qmax": int(qm[i + 1]), "relu": acts[i] == "relu",
             "w_fp32": t["layers.%d.weight_fp32" % i], "b_fp32": t["layers.%d.bias_fp32" % i]}
        if np.any(bias_q(L["bias"], L["w_scale"], s[i]) != t["layers.%d.bias_q" % i]):
            raise FormatError("%s: layers.%d.bias_q disagrees with the float bias" % (path, i))
        layers.append(L)
    model = {"in_s": s[0], "in_zp": int(zp[0]), "in_qmax": int(qm[0]), "layers": layers,
             "output_mode": meta["output_mode"],
             "rounding": meta.get("rounding", "pytorch") if meta["format_version"] == "3"
             else "pytorch"}
    return model, meta


def emulate(model, x, upto=None):
    """core's int8 path (docs/model-format.md, Inference semantics) on float
    rows x. Returns (q, y): the last layer's uint8 outputs (None for
    dequant_acc) and the float outputs. upto: stop after that many layers and
    return their uint8 outputs."""
    r = model.get("rounding", "pytorch")
    in_s, in_zp = model["in_s"], model["in_zp"]
    q = quantize_input(x, in_s, in_zp, model.get("in_qmax", 255), r)
    layers = model["layers"] if upto is None else model["layers"][:upto]
    for i, L in enumerate(layers):
        acc = (q - in_zp) @ L["wq"].astype(np.int64).T
        acc = (acc + bias_q(L["bias"], L["w_scale"], in_s)).astype(F32)
        last = upto is None and i + 1 == len(model["layers"])
        if last and model.get("output_mode") == "dequant_acc":
            y = acc * (F32(in_s) * L["w_scale"].astype(F32))
            return None, (np.maximum(y, F32(0)) if L["relu"] else y).astype(F32)
        if r == "onnxruntime-float":
            v = np.rint((acc * (F32(in_s) * L["w_scale"].astype(F32))) / F32(L["out_s"]))
        else:
            v = np.rint(acc * multiplier(L["w_scale"], in_s, L["out_s"], r))
        lo = L["out_zp"] if L["relu"] else 0
        q = np.clip(v + F32(L["out_zp"]), lo, L.get("qmax", 255)).astype(np.int64)
        in_s, in_zp = L["out_s"], L["out_zp"]
    y = (q - in_zp).astype(F32) * F32(in_s)
    return q, y


def fp32_forward(model, x):
    """The fp32 baseline in float64 (a reference, not core's exact floats)."""
    h = np.asarray(x, np.float64)
    for L in model["layers"]:
        h = h @ L["w_fp32"].astype(np.float64).T + L["b_fp32"].astype(np.float64)
        if L["relu"]:
            h = np.maximum(h, 0)
    return h


# ---------------------------------------------------------------- writing --

def model_tensors(input_qp, layers, last_qp=None):
    """Tensors of a model in core's data order. input_qp = (scale, zp[,
    qmax]); each layer a dict with wq (int8 [out,in]), w_scale, bias (float32
    [out]), out_s, out_zp (, qmax), w_fp32, b_fp32. last_qp: qparams for the
    last layer's unused output slot (dequant_acc models), default {1, 0}."""
    t = []
    in_s = input_qp[0]
    for i, L in enumerate(layers):
        t += [("layers.%d.weight_scale" % i, np.asarray(L["w_scale"], F32)),
              ("layers.%d.bias" % i, np.asarray(L["bias"], F32)),
              ("layers.%d.bias_q" % i, bias_q(L["bias"], np.asarray(L["w_scale"], F32),
                                              in_s).astype(np.int32)),
              ("layers.%d.weight_fp32" % i, np.asarray(L["w_fp32"], F32)),
              ("layers.%d.bias_fp32" % i, np.asarray(L["b_fp32"], F32))]
        in_s = L.get("out_s", 1.0)
    scales = [input_qp[0]] + [L.get("out_s", 1.0) for L in layers]
    zps = [input_qp[1]] + [L.get("out_zp", 0) for L in layers]
    qmax = [input_qp[2] if len(input_qp) > 2 else 255] + [L.get("qmax", 255) for L in layers]
    if last_qp is not None:
        scales[-1], zps[-1] = last_qp
    t += [("activations.scale", np.array(scales, F32)),
          ("activations.zero_point", np.array(zps, np.int32)),
          ("activations.qmax", np.array(qmax, np.int32))]
    t += [("layers.%d.weight_q" % i, np.asarray(L["wq"], np.int8)) for i, L in enumerate(layers)]
    return t


def base_meta(dims, relus, output_mode, rounding="pytorch", weight_bits=None):
    """The required metadata keys for a layer stack."""
    m = {"architecture": "-".join(str(int(d)) for d in dims),
         "activations": ",".join("relu" if r else "none" for r in relus),
         "weight_bits": ",".join(str(b) for b in (weight_bits or [8] * len(relus))),
         "output_mode": output_mode}
    if rounding != "pytorch":
        m["rounding"] = rounding
    return m


def parse_labels(s, n):
    """--labels a,b,c or a JSON array -> list of n strings (ValueError)."""
    if s is None:
        return None
    labels = json.loads(s) if s.lstrip().startswith("[") else s.split(",")
    if len(labels) != n or not all(isinstance(v, str) for v in labels):
        raise ValueError("--labels: %d labels for %d outputs" % (len(labels), n))
    return labels


# ------------------------------------------------------------ refusals --

def first_line(e):
    """An exception's message as one line of at most 300 characters."""
    t = str(e).strip()
    return t.splitlines()[0][:300] if t else ""


def refuse(tool, why, e=None):
    """Prints TOOL's refusal as one line on stderr, 'TOOL: refused: WHY',
    followed by ' (Type: first line)' when E, an exception nobody expected,
    is given: never a traceback. Returns EXIT_UNSUPPORTED, for main() to
    return."""
    if e is not None:
        why = "%s (%s: %s)" % (why, type(e).__name__, first_line(e))
    print("%s: refused: %s" % (tool, why), file=sys.stderr)
    return EXIT_UNSUPPORTED
