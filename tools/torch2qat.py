#!/usr/bin/python3
"""torch2qat.py - import a model quantized with PyTorch's eager-mode QAT into a
qatserve model file, integer for integer.

    /usr/bin/python3 tools/torch2qat.py quant.pt model.safetensors \
        [--float float.pt] [--labels a,b,c] [--engine qnnpack|onednn]

Input: a converted model (torch.ao.quantization.convert) saved whole with
torch.save or as TorchScript with torch.jit.save: QuantStub (now Quantize),
quantized Linear / LinearReLU (a quantized ReLU right after a Linear is folded
into it), DeQuantStub (DeQuantize); Identity, Dropout and Flatten are skipped.
Anything else is refused with a message naming it, exit status 2.

The modules are taken in registration order (what nn.Sequential runs). The
converter cannot read a custom forward(), so after writing it runs the PyTorch
model and the written file's integer arithmetic (emulated in numpy, exactly as
core does it) on the same inputs and refuses (exit 3) unless every output is
identical under the qnnpack engine. For onednn models it also reports the
agreement with PyTorch's onednn engine, which differs on CPUs without VNNI
(see docs/torch.md).

Output: docs/model-format.md (written by tools/qatfile.py), output_mode "requant":
the last layer requantizes to uint8 and dequantizes, as PyTorch's quantized
Linear followed by DeQuantize does.
"""
import argparse
import importlib.util
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qatfile  # noqa: E402

# Exit statuses: 1 usage / I/O, 2 unsupported model (qatfile.refuse), 3 verification failed.
EXIT_MISMATCH = 3


class Unsupported(Exception):
    """The model holds something qatserve does not serve."""


# The layer being read, so that an unexpected exception can still name it.
CURRENT = [None]


# ---------------------------------------------------------------- loading --

def qualname(m):
    """The module's class as 'torch.ao.nn.quantized.modules.linear.Linear',
    for eager modules and TorchScript modules alike."""
    c = getattr(m, "_c", None)
    if c is not None and hasattr(c, "qualified_name"):
        n = c.qualified_name
        n = n[len("__torch__."):] if n.startswith("__torch__.") else n
        # TorchScript renames a class it compiles twice in one process
        # ("...activation.___torch_mangle_55.ReLU"): the class is the same.
        return ".".join(p for p in n.split(".") if not p.startswith("___torch_mangle_"))
    t = type(m)
    return t.__module__ + "." + t.__name__


def classify(m):
    """What a module is to us: 'quantize', 'dequantize', 'linear',
    'linear_relu', 'relu', 'skip', 'container' or None (unsupported)."""
    q = qualname(m)
    short = q.rsplit(".", 1)[-1]
    if ".dynamic." in q:
        return None  # dynamic quantization: float activations, not ours
    if short == "Quantize" and ".quantized." in q:
        return "quantize"
    if short == "DeQuantize" and ".quantized." in q:
        return "dequantize"
    if short == "LinearReLU" and ".intrinsic.quantized." in q:
        return "linear_relu"
    if short == "Linear" and ".quantized." in q:
        return "linear"
    if q in ("torch.nn.modules.activation.ReLU", "torch.ao.nn.quantized.modules.activation.ReLU"):
        return "relu"
    if q in ("torch.nn.modules.linear.Identity", "torch.nn.modules.dropout.Dropout",
             "torch.nn.modules.flatten.Flatten"):
        return "skip"
    if q in ("torch.nn.modules.container.Sequential", "torch.nn.modules.container.ModuleList",
             "torch.ao.quantization.stubs.QuantWrapper"):
        return "container"
    return None


def load_user_code(path):
    """Imports a file defining the model's classes, visible where pickle looks
    for them (the file's module and __main__, where a training script's
    classes live)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(stem, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[stem] = mod  # classes pickled as <stem>.Net are found here
    spec.loader.exec_module(mod)
    main = sys.modules["__main__"]
    for k, v in vars(mod).items():
        if isinstance(v, type) and not hasattr(main, k):
            setattr(main, k, v)


def load_model(path):
    """TorchScript archive or a whole pickled module, loaded on the CPU."""
    import torch
    try:
        return torch.jit.load(path, map_location="cpu"), "torchscript"
    except RuntimeError:
        pass  # not TorchScript: a pickled module
    try:
        obj = torch.load(path, map_location="cpu")
    except (AttributeError, ModuleNotFoundError) as e:
        raise Unsupported("%s: cannot unpickle the model (%s); pass the file that defines "
                          "its class with --code, or save it with torch.jit.save" % (path, e))
    if isinstance(obj, dict):
        raise Unsupported("%s holds a state dict, not a model: its structure is unknown; "
                          "save the whole converted model (torch.save(model)) or TorchScript"
                          % path)
    if not isinstance(obj, torch.nn.Module):
        raise Unsupported("%s holds a %s, not a torch.nn.Module" % (path, type(obj).__name__))
    return obj, "pickle"


def walk(m, prefix=""):
    """Yields (name, module, kind) for every leaf we understand, in
    registration order; raises Unsupported for anything else."""
    for name, child in m.named_children():
        full = prefix + name
        kind = classify(child)
        if kind == "container":
            yield from walk(child, full + ".")
        elif kind is None:
            # A user module with children of its own is a container too, as
            # long as it keeps no parameters or buffers of its own (those
            # would mean arithmetic we cannot see).
            try:
                own = list(child.named_parameters(recurse=False)) + \
                    list(child.named_buffers(recurse=False))
                kids = list(child.named_children())
            except AttributeError:  # unpickled without Module state (quantized conv)
                own, kids = ["?"], []
            q = qualname(child)
            if kids and not own and not q.startswith("torch."):
                yield from walk(child, full + ".")
            elif ".dynamic." in q:
                raise Unsupported("layer '%s' (%s) is dynamically quantized (float "
                                  "activations): qatserve imports statically quantized "
                                  "(QAT or calibrated) models" % (full, q))
            else:
                raise Unsupported("layer '%s' (%s) is not supported: qatserve serves "
                                  "quantized Linear / LinearReLU between QuantStub and "
                                  "DeQuantStub" % (full, qualname(child)))
        else:
            yield full, child, kind


# --------------------------------------------------------------- extraction --

def scalar(v):
    """A Python number from a float/int, a 0-d or 1-element tensor."""
    if hasattr(v, "item"):
        return v.reshape(-1)[0].item() if v.numel() == 1 else None
    return v


def f32_scale(v, what):
    s = scalar(v)
    if s is None:
        raise Unsupported("%s: expected one scale, got %s" % (what, tuple(v.shape)))
    f = np.float32(s)
    if not (np.isfinite(f) and f > 0):
        raise Unsupported("%s: scale %r is not finite and positive in float32" % (what, s))
    return f


def is_quint8(dtype):
    import torch
    # TorchScript keeps the dtype as its ScalarType number (13 = quint8).
    return dtype == torch.quint8 or dtype == 13


def graph_constants(m, kinds, first):
    """Constant arguments of the first call to one of `kinds` in a traced
    module's forward graph, from argument index `first` on. torch.jit.trace
    bakes a module's plain attributes (scale, zero_point, dtype) into its
    graph as constants instead of keeping them as attributes."""
    g = getattr(m, "graph", None)
    if g is None:
        return None
    for node in g.nodes():
        if node.kind() in kinds:
            vals = []
            for v in list(node.inputs())[first:]:
                if v.node().kind() != "prim::Constant":
                    return None
                vals.append(v.toIValue())
            return vals
    return None


def module_qparam(m, name, attr_name):
    """scale / zero_point / dtype of a Quantize or quantized Linear module:
    an attribute (eager, TorchScript script) or, for a traced module, the
    constant its forward passes to the quantized op."""
    try:
        return getattr(m, attr_name)
    except AttributeError:
        pass
    kind = classify(m)
    if kind == "quantize":
        vals = graph_constants(m, ("aten::quantize_per_tensor",), 1)  # scale, zp, dtype
        idx = {"scale": 0, "zero_point": 1, "dtype": 2}
    else:
        vals = graph_constants(m, ("quantized::linear", "quantized::linear_relu"), 2)
        idx = {"scale": 0, "zero_point": 1}
    if not vals or attr_name not in idx or idx[attr_name] >= len(vals):
        raise Unsupported("layer '%s' (%s): no %s attribute, and its forward graph does not "
                          "pass one as a constant" % (name, qualname(m), attr_name))
    return vals[idx[attr_name]]


def linear_params(name, m):
    """(wq int8 [out,in], w_scale f32 [out], qscheme, bias f32 [out], out_s, out_zp)."""
    import torch
    if hasattr(m, "weight") and callable(m.weight) and not isinstance(m.weight, torch.Tensor):
        try:
            w, b = m.weight(), m.bias()
        except Exception:  # TorchScript methods may not be exported
            w, b = torch.ops.quantized.linear_unpack(m._packed_params._packed_params)
    else:
        w, b = torch.ops.quantized.linear_unpack(m._packed_params._packed_params)
    if w.dtype != torch.qint8:
        raise Unsupported("layer '%s': weight dtype %s is not served (qint8 only)" % (name, w.dtype))
    qs = w.qscheme()
    out_dim, in_dim = w.shape
    if qs in (torch.per_tensor_affine, torch.per_tensor_symmetric):
        if w.q_zero_point() != 0:
            raise Unsupported("layer '%s': weight zero point %d != 0 (qatserve weights are "
                              "symmetric)" % (name, w.q_zero_point()))
        ws = np.full(out_dim, f32_scale(w.q_scale(), "layer '%s' weight" % name), np.float32)
        if np.float64(ws[0]) != np.float64(w.q_scale()):
            print("torch2qat: warning: layer '%s' weight scale %r is not a float32 value"
                  % (name, w.q_scale()), file=sys.stderr)
    elif qs in (torch.per_channel_affine, torch.per_channel_symmetric):
        if w.q_per_channel_axis() != 0:
            raise Unsupported("layer '%s': per-channel weights along axis %d (only 0, the "
                              "output channel, is served)" % (name, w.q_per_channel_axis()))
        zps = w.q_per_channel_zero_points().numpy()
        if np.any(zps != 0):
            c = int(np.nonzero(zps)[0][0])
            raise Unsupported("layer '%s': weight zero point %d != 0 at channel %d (qatserve "
                              "weights are symmetric)" % (name, int(zps[c]), c))
        s64 = w.q_per_channel_scales().numpy().astype(np.float64)
        ws = s64.astype(np.float32)
        if not np.all(np.isfinite(ws) & (ws > 0)):
            raise Unsupported("layer '%s': a weight scale is not finite and positive" % name)
        if np.any(ws.astype(np.float64) != s64):
            print("torch2qat: warning: layer '%s' weight scales are not float32 values"
                  % name, file=sys.stderr)
    else:
        raise Unsupported("layer '%s': weight qscheme %s is not served" % (name, qs))
    wq = w.int_repr().numpy().astype(np.int8)
    bias = np.zeros(out_dim, np.float32) if b is None else \
        b.detach().float().numpy().astype(np.float32)
    out_s = f32_scale(module_qparam(m, name, "scale"), "layer '%s' output" % name)
    out_zp = int(scalar(module_qparam(m, name, "zero_point")))
    if not 0 <= out_zp <= 255:
        raise Unsupported("layer '%s': output zero point %d outside 0..255" % (name, out_zp))
    return wq, ws, str(qs).replace("torch.", ""), bias, out_s, out_zp


def extract(model):
    """The layer stack of a converted model, checked for shape and order.

    The Linear layers (and unfused ReLUs) are taken in registration order.
    QuantStub and DeQuantStub are markers that may be registered anywhere
    (models often declare both first); there must be one of each. Whether
    forward() really runs this stack is checked by running it (verify)."""
    input_qp, layers, n_dequant, last = None, [], 0, None
    for name, m, kind in walk(model):
        CURRENT[0] = name
        if kind == "skip":
            continue
        if kind == "quantize":
            if input_qp is not None:
                raise Unsupported("layer '%s': a second QuantStub is not supported" % name)
            dtype = module_qparam(m, name, "dtype")
            if not is_quint8(dtype):
                raise Unsupported("layer '%s': input dtype %s is not served (quint8 only)"
                                  % (name, dtype))
            zp = int(scalar(module_qparam(m, name, "zero_point")))
            if not 0 <= zp <= 255:
                raise Unsupported("layer '%s': input zero point %d outside 0..255" % (name, zp))
            input_qp = (f32_scale(module_qparam(m, name, "scale"), "input '%s'" % name), zp)
            continue  # a marker: does not end a Linear+ReLU pair
        if kind == "dequantize":
            n_dequant += 1
            if n_dequant > 1:
                raise Unsupported("layer '%s': a second DeQuantStub is not supported" % name)
            continue
        if kind in ("linear", "linear_relu"):
            wq, ws, qs, bias, out_s, out_zp = linear_params(name, m)
            if layers and layers[-1]["out_dim"] != wq.shape[1]:
                raise Unsupported("layer '%s': input width %d does not match the previous "
                                  "layer's %d outputs" % (name, wq.shape[1], layers[-1]["out_dim"]))
            layers.append({"name": name, "wq": wq, "w_scale": ws, "qscheme": qs,
                           "bias": bias, "out_s": out_s, "out_zp": out_zp,
                           "relu": kind == "linear_relu", "in_dim": wq.shape[1],
                           "out_dim": wq.shape[0]})
        elif kind == "relu":
            # relu(q) on a quantized tensor keeps the qparams and clamps at
            # the zero point: the same integers as the fused LinearReLU.
            if last not in ("linear", "linear_relu"):
                raise Unsupported("layer '%s' (ReLU) must follow a quantized Linear" % name)
            layers[-1]["relu"] = True
        last = kind
    if input_qp is None:
        raise Unsupported("no QuantStub/Quantize module: is the model converted "
                          "(torch.ao.quantization.convert)?")
    if not layers:
        raise Unsupported("no quantized Linear layers found")
    if not n_dequant:
        raise Unsupported("no DeQuantStub: qatserve returns floats")
    check_limits(input_qp, layers)
    return input_qp, layers


# What core's loader accepts (core/qat.h): refuse here, with the layer's name,
# rather than write a file the server will not load.
MAX_DIM, MAX_LAYERS, MAX_BIAS_Q = 32768, 64, 1 << 30


def check_limits(input_qp, layers):
    if len(layers) > MAX_LAYERS:
        raise Unsupported("%d layers; at most %d are served" % (len(layers), MAX_LAYERS))
    in_s = input_qp[0]
    for L in layers:
        for d in ("in_dim", "out_dim"):
            if not 1 <= L[d] <= MAX_DIM:
                raise Unsupported("layer '%s': %s %d outside 1..%d"
                                  % (L["name"], d, L[d], MAX_DIM))
        if not np.all(np.isfinite(L["bias"])):
            raise Unsupported("layer '%s': the bias is not finite" % L["name"])
        with np.errstate(over="ignore", invalid="ignore"):
            inv = np.float32(1.0) / (L["w_scale"].astype(np.float64) * np.float64(in_s)).astype(np.float32)
            bq = np.rint(L["bias"] * inv)
        if not np.all(np.abs(bq) <= MAX_BIAS_Q):
            c = int(np.argmax(~(np.abs(bq) <= MAX_BIAS_Q)))
            raise Unsupported("layer '%s': integer bias %g at channel %d exceeds 2^30 "
                              "(bias %g, scale %g)" % (L["name"], bq[c], c, L["bias"][c],
                                                       float(L["w_scale"][c]) * float(in_s)))
        in_s = L["out_s"]


# ---------------------------------------------------------------- baseline --

def float_weights(path, layers):
    """fp32 weights and biases from a float model or state dict, matched to
    the quantized layers by order and shape."""
    import torch
    try:
        obj = torch.jit.load(path, map_location="cpu")
    except RuntimeError:
        obj = torch.load(path, map_location="cpu")
    sd = obj.state_dict() if hasattr(obj, "state_dict") else obj
    if not isinstance(sd, dict):
        raise Unsupported("%s: neither a float model nor a state dict" % path)
    pairs = []
    for k, v in sd.items():
        if not (k == "weight" or k.endswith(".weight")):
            continue
        if not isinstance(v, torch.Tensor) or v.dim() != 2 or not v.is_floating_point():
            continue
        bk = k[:-len("weight")] + "bias"
        b = sd.get(bk)
        pairs.append((k, v.detach().float().numpy(),
                      None if b is None else b.detach().float().numpy()))
    if len(pairs) != len(layers):
        raise Unsupported("%s: %d float Linear weights, the quantized model has %d layers"
                          % (path, len(pairs), len(layers)))
    for (k, w, b), L in zip(pairs, layers):
        if w.shape != L["wq"].shape:
            raise Unsupported("%s: '%s' has shape %s, layer '%s' %s"
                              % (path, k, w.shape, L["name"], L["wq"].shape))
        L["w_fp32"] = np.ascontiguousarray(w, np.float32)
        L["b_fp32"] = np.zeros(w.shape[0], np.float32) if b is None else b.astype(np.float32)


# ------------------------------------------------------ integer arithmetic --

def bias_q(bias, w_scale, in_s):
    """The loader's integer bias derivation (tools/qatfile.py)."""
    return qatfile.bias_q(bias, w_scale, in_s)


def quantize_u8(x, s, zp):
    return qatfile.quantize_input(x, s, zp)


def emulate(model, x):
    """Our integer path (qnnpack semantics, tools/qatfile.py) on float rows x:
    returns (uint8 outputs of the last layer, dequantized float32 outputs)."""
    return qatfile.emulate(dict(model, output_mode="requant"), x)


# ----------------------------------------------------------------- writing --
# Files are written and read by tools/qatfile.py, the one module every Python
# tool shares (format version, checksums).

def write_safetensors(path, tensors, meta):
    qatfile.write(path, tensors, meta)


def read_safetensors(path):
    return qatfile.read(path)


def model_tensors(input_qp, layers):
    return qatfile.model_tensors(input_qp, layers)


def model_from_file(path):
    """The file's integer model in the form emulate() takes: what the C core
    will see, not what we meant to write."""
    return qatfile.load_model(path)


# ------------------------------------------------------------ verification --

def verify_inputs(input_qp, in_dim, rows, seed=0):
    """Rows spread over the whole input quantization range (plus a little
    outside it, to exercise clamping), with exact grid points and halfway
    points mixed in (rounding ties)."""
    s, zp = float(input_qp[0]), input_qp[1]
    lo, hi = s * (0 - zp), s * (255 - zp)
    g = np.random.default_rng(seed)
    x = g.uniform(lo - 4 * s, hi + 4 * s, (rows, in_dim)).astype(np.float32)
    grid = (g.integers(0, 256, (rows, in_dim)) - zp).astype(np.float32) * np.float32(s)
    half = grid + np.float32(s / 2)
    pick = g.integers(0, 3, (rows, in_dim))
    return np.where(pick == 0, x, np.where(pick == 1, grid, half)).astype(np.float32)


def torch_outputs(path, engine, x):
    """PyTorch's own quantized outputs for x, with the model (re)loaded under
    the given engine (packed weights are made at load time, per engine)."""
    import torch
    old = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    try:
        m, _ = load_model(path)
        m.eval()
        with torch.no_grad():
            return m(torch.from_numpy(x)).numpy().astype(np.float32)
    finally:
        torch.backends.quantized.engine = old


def agreement(ours_q, ours_y, theirs_y, out_s, out_zp):
    """Fraction of identical rows, argmax agreement and max |diff| in LSB."""
    tq = np.rint(theirs_y / np.float32(out_s)).astype(np.int64) + out_zp
    same_rows = float(np.mean(np.all(ours_y == theirs_y, axis=1)))
    argmax = float(np.mean(np.argmax(ours_y, axis=1) == np.argmax(theirs_y, axis=1)))
    return same_rows, argmax, int(np.max(np.abs(tq - ours_q)))


# -------------------------------------------------------------------- main --

def parse_labels(s, n):
    if s is None:
        return None
    labels = json.loads(s) if s.lstrip().startswith("[") else s.split(",")
    if len(labels) != n or not all(isinstance(v, str) for v in labels):
        raise Unsupported("--labels: %d labels for %d outputs" % (len(labels), n))
    return labels


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Import a PyTorch QAT-converted MLP into a qatserve model file.")
    ap.add_argument("model", help="converted model: torch.save(model) or torch.jit.save")
    ap.add_argument("out", help="qatserve model file to write (.safetensors)")
    ap.add_argument("--float", dest="float_path",
                    help="matching float model or state dict: the fp32 baseline")
    ap.add_argument("--labels", help="class names: a,b,c or a JSON array")
    ap.add_argument("--engine", choices=["qnnpack", "onednn", "fbgemm", "x86"],
                    help="engine whose qconfig the model was trained with, recorded in the "
                         "metadata (default: qnnpack for per-tensor weights, onednn for "
                         "per-channel)")
    ap.add_argument("--code", help="Python file defining the model's classes (torch.save "
                                   "of a custom nn.Module)")
    ap.add_argument("--verify-rows", type=int, default=512,
                    help="rows checked against PyTorch after writing (0: skip)")
    ap.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                    help="extra metadata (repeatable)")
    a = ap.parse_args(argv)

    try:
        import torch
    except ImportError:
        print("torch2qat: needs PyTorch (Debian: python3-torch, run /usr/bin/python3)",
              file=sys.stderr)
        return 1
    if not os.path.isfile(a.model):
        print("torch2qat: %s: no such file" % a.model, file=sys.stderr)
        return 1
    # Load under qnnpack: the engine whose integers we reproduce.
    torch.backends.quantized.engine = "qnnpack"
    try:
        if a.code:
            load_user_code(a.code)
        model, fmt = load_model(a.model)
        input_qp, layers = extract(model)
        if a.float_path:
            float_weights(a.float_path, layers)
            baseline = "float-model"
        else:
            for L in layers:  # the dequantized weights: all we have
                L["w_fp32"] = L["wq"].astype(np.float32) * L["w_scale"][:, None]
                L["b_fp32"] = L["bias"]
            baseline = "dequantized"
        labels = parse_labels(a.labels, layers[-1]["out_dim"])
    except Unsupported as e:
        return qatfile.refuse("torch2qat", e)
    except (FileNotFoundError, PermissionError, IsADirectoryError) as e:
        print("torch2qat: %s: %s" % (a.model, e), file=sys.stderr)
        return 1
    except Exception as e:  # never a traceback: one line naming the layer
        where = ("layer '%s': unsupported" % CURRENT[0] if CURRENT[0]
                 else "cannot read it as a converted PyTorch model")
        return qatfile.refuse("torch2qat", "%s: %s" % (a.model, where), e)

    per_channel = any(L["qscheme"].startswith("per_channel") for L in layers)
    engine = a.engine or ("onednn" if per_channel else "qnnpack")
    dims = [layers[0]["in_dim"]] + [L["out_dim"] for L in layers]
    meta = {"architecture": "-".join(str(d) for d in dims),
            "activations": ",".join("relu" if L["relu"] else "none" for L in layers),
            "weight_bits": ",".join("8" for _ in layers),
            "output_mode": "requant",
            "trained_with": "pytorch-%s-qat" % torch.__version__.split("+")[0],
            "imported_from": "pytorch",
            "engine": engine,
            "weight_qscheme": ",".join(L["qscheme"] for L in layers),
            "baseline": baseline,
            "source": "%s (%s)" % (os.path.basename(a.model), fmt),
            "converter": "tools/torch2qat.py"}
    if labels is not None:
        meta["labels"] = json.dumps(labels)
    for kv in a.meta:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            print("torch2qat: --meta %r: expected KEY=VALUE" % kv, file=sys.stderr)
            return 1
        if qatfile.reserved(k):
            print("torch2qat: --meta %r: %s is written by the converter" % (kv, k),
                  file=sys.stderr)
            return 1
        meta[k] = v
    write_safetensors(a.out, model_tensors(input_qp, layers), meta)
    print("torch2qat: wrote %s: %s, %s, weights %s, baseline %s"
          % (a.out, meta["architecture"], meta["activations"], meta["weight_qscheme"], baseline))

    if a.verify_rows > 0:
        try:
            return verify(a, input_qp, layers, dims, engine, torch)
        except Exception as e:  # running the model failed: not something we can serve
            if os.path.exists(a.out):
                os.remove(a.out)
            return qatfile.refuse("torch2qat", "%s: running it for the self-check failed"
                                  % a.model, e)
    return 0


def verify(a, input_qp, layers, dims, engine, torch):
    """Reads back what we wrote and runs it against PyTorch (qnnpack: must be
    identical; the model's own engine: reported)."""
    if True:
        fm, _ = model_from_file(a.out)
        x = verify_inputs(input_qp, dims[0], a.verify_rows)
        q, y = emulate(fm, x)
        last = layers[-1]
        same, am, lsb = agreement(q, y, torch_outputs(a.model, "qnnpack", x),
                                  last["out_s"], last["out_zp"])
        print("torch2qat: verify vs PyTorch qnnpack on %d rows: %.2f%% identical rows, "
              "argmax %.2f%%, max diff %d LSB" % (a.verify_rows, 100 * same, 100 * am, lsb))
        if engine != "qnnpack" and engine in torch.backends.quantized.supported_engines:
            same_o, am_o, lsb_o = agreement(q, y, torch_outputs(a.model, engine, x),
                                            last["out_s"], last["out_zp"])
            print("torch2qat: warning: %s model: qatserve computes it exactly with "
                  "qnnpack rounding; PyTorch's %s engine agrees on %.2f%% of rows "
                  "(argmax %.2f%%, max diff %d LSB) - see docs/torch.md"
                  % (engine, engine, 100 * same_o, 100 * am_o, lsb_o), file=sys.stderr)
        elif engine != "qnnpack":
            print("torch2qat: warning: %s model: qatserve computes it exactly with qnnpack "
                  "rounding; this PyTorch has no %s engine to compare with - see docs/torch.md"
                  % (engine, engine), file=sys.stderr)
        if same != 1.0:
            print("torch2qat: refused: the written model does not reproduce PyTorch's "
                  "integers (does forward() run the modules in registration order?)",
                  file=sys.stderr)
            os.remove(a.out)
            return EXIT_MISMATCH
    return 0


if __name__ == "__main__":
    sys.exit(main())
