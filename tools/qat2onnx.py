#!/usr/bin/python3
"""qat2onnx.py - a qatserve model as an ONNX graph that ONNX Runtime runs with
qatserve's exact integers (and its fp32 baseline as a float graph).

    /usr/bin/python3 tools/qat2onnx.py MODEL.safetensors OUT.onnx \
        [--form qdq|qoperator|integer] [--fp32 OUT32.onnx] [--opset 13..17]

Forms (docs/onnx.md):
  qdq        QuantizeLinear/DequantizeLinear around Gemm (the portable form;
             ONNX Runtime fuses each group into one QGemm)
  qoperator  com.microsoft.QGemm per layer (ONNX Runtime's own operator form)
  integer    MatMulInteger + int32 bias + Cast + Mul + QuantizeLinear
             (standard operators only)

Exactness. qatserve quantizes an input as rint(x * (1/s)) and requantizes
with M = (w_s * in_s) * (1/out_s); ONNX's QuantizeLinear divides by its
scale, and ONNX Runtime's QGemm multiplier is (a * b) / y. No choice of true
scales makes (a * b) / y equal to our M in every channel (about one channel
in eight has no float32 b that works), so the graph carries our numbers
themselves: the input is multiplied by 1/s (our float32 reciprocal) and then
quantized with scale 1; inside the graph activations are integers (scale 1,
their own zero points) and each layer's weight scale is its multiplier M[c]
(for a dequant_acc last layer: in_s * w_s[c]). (a * b) / y = (1 * M) / 1 = M
exactly, and the last layer's DequantizeLinear uses the true output scale.
The real scales are in the model's metadata_props (qatserve.*).

With ONNX Runtime's graph optimizations off, a QDQ graph is computed in float
(not exactly); the default (all) fuses it.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qatfile  # noqa: E402

F32 = np.float32
FORMS = ("qdq", "qoperator", "integer")


class Unsupported(Exception):
    pass


def graph_numbers(model):
    """Per layer: the int8 weights, int32 bias (bq), the per-channel scale the
    graph carries (M[c] or the dequant scale), zero points, relu, last."""
    r = model["rounding"]
    in_s, in_zp = model["in_s"], model["in_zp"]
    out = []
    n = len(model["layers"])
    for i, L in enumerate(model["layers"]):
        ws = L["w_scale"].astype(F32)
        bq = qatfile.bias_q(L["bias"], ws, in_s)
        last = i + 1 == n
        dq = last and model["output_mode"] == "dequant_acc"
        if dq or r == "onnxruntime-float":
            # (float)(acc + bq) * (in_s * w_s); onnxruntime-float then divides
            # by out_s in QuantizeLinear, as the graph it came from did.
            scale = (F32(in_s) * ws).astype(F32)
        else:
            scale = qatfile.multiplier(ws, in_s, L["out_s"], r).astype(F32)
        out.append({"wq": L["wq"].astype(np.int8), "bq": bq.astype(np.int32), "scale": scale,
                    "in_zp": in_zp, "out_zp": L["out_zp"], "out_s": L["out_s"],
                    "relu": L["relu"], "dequant_acc": dq, "qmax": L.get("qmax", 255),
                    "w_fp32": L["w_fp32"], "b_fp32": L["b_fp32"]})
        in_s, in_zp = L["out_s"], L["out_zp"]
    return out


def build(model, meta, form, opset):
    import onnx
    from onnx import TensorProto as T
    from onnx import helper as h
    from onnx import numpy_helper as nh

    layers = graph_numbers(model)
    rnd = model["rounding"]
    if rnd == "onnxruntime-float" and form != "integer":
        raise Unsupported("this model rounds like ONNX Runtime's integer ops (rounding "
                          "onnxruntime-float: two roundings per layer); only --form integer "
                          "computes that")
    nodes, inits = [], []

    def const(name, arr):
        inits.append(nh.from_array(np.asarray(arr), name))
        return name

    one = const("one", np.array(1.0, F32))
    K0 = layers[0]["wq"].shape[1]
    # Input quantization: ours is rint(x * (1/s)), ONNX's QuantizeLinear
    # divides; a Mul by our reciprocal, then QuantizeLinear with scale 1 (an
    # exact division) gives our integers. ONNX-imported models (rounding
    # onnxruntime*) divide like ONNX: keep the true scale there.
    zp_in = const("input_zp", np.array(model["in_zp"], np.uint8))
    if rnd == "pytorch":
        const("input_inv_scale", np.array(F32(1.0) / F32(model["in_s"]), F32))
        nodes.append(h.make_node("Mul", ["input", "input_inv_scale"], ["input_scaled"]))
        nodes.append(h.make_node("QuantizeLinear", ["input_scaled", one, zp_in], ["a0"]))
    else:
        const("input_scale", np.array(model["in_s"], F32))
        nodes.append(h.make_node("QuantizeLinear", ["input", "input_scale", zp_in], ["a0"]))
    cur = "a0"
    if model.get("in_qmax", 255) < 255:
        # Activations narrower than 8 bits: uint8 saturates at 255, a Clip of
        # the integers at qmax does the rest.
        const("input_qmax", np.array(model["in_qmax"], np.uint8))
        nodes.append(h.make_node("Clip", [cur, "", "input_qmax"], ["a0c"]))
        cur = "a0c"
    for i, L in enumerate(layers):
        N, K = L["wq"].shape
        p = "l%d_" % i
        azp = const(p + "in_zp", np.array(L["in_zp"], np.uint8))
        bias = const(p + "bias_q", L["bq"])
        if L["dequant_acc"]:
            out_name = "acc_out" if L["relu"] else "output"
        else:
            out_name = p + "q"
        yzp = None if L["dequant_acc"] else const(p + "out_zp", np.array(L["out_zp"], np.uint8))
        if form == "qoperator":
            w = const(p + "weight_q", L["wq"])  # [N, K], transB
            ws = const(p + "weight_scale", L["scale"])
            wz = const(p + "weight_zp", np.zeros(N, np.int8))
            ins = [cur, one, azp, w, ws, wz, bias]
            if not L["dequant_acc"]:
                ins += [one, yzp]
            nodes.append(h.make_node("QGemm", ins, [out_name], domain="com.microsoft",
                                     transB=1, name=p + "qgemm"))
        elif form == "qdq":
            w = const(p + "weight_q", L["wq"])
            ws = const(p + "weight_scale", L["scale"])
            wz = const(p + "weight_zp", np.zeros(N, np.int8))
            bz = const(p + "bias_zp", np.zeros(N, np.int32))
            nodes += [h.make_node("DequantizeLinear", [cur, one, azp], [p + "x"]),
                      h.make_node("DequantizeLinear", [w, ws, wz], [p + "w"], axis=0),
                      # bias scale = a * b = 1 * M[c]: ONNX Runtime adds bq as is
                      h.make_node("DequantizeLinear", [bias, ws, bz], [p + "b"], axis=0)]
            g = out_name if L["dequant_acc"] else p + "gemm"
            nodes.append(h.make_node("Gemm", [p + "x", p + "w", p + "b"], [g], transB=1,
                                     name=p + "gemm"))
            if not L["dequant_acc"]:
                src = g
                if L["relu"] and L["out_zp"] == 0:
                    # Relu before a zero-point-0 QuantizeLinear: ONNX Runtime
                    # drops it (the clamp at 0 is the same) and fuses the group.
                    nodes.append(h.make_node("Relu", [g], [p + "relu"]))
                    src = p + "relu"
                nodes.append(h.make_node("QuantizeLinear", [src, one, yzp], [out_name]))
        else:  # integer
            w = const(p + "weight_q_t", np.ascontiguousarray(L["wq"].T))  # [K, N]
            sc = const(p + "scale", L["scale"])
            nodes += [h.make_node("MatMulInteger", [cur, w, azp], [p + "acc"]),
                      h.make_node("Add", [p + "acc", bias], [p + "accb"]),
                      h.make_node("Cast", [p + "accb"], [p + "accf"], to=T.FLOAT)]
            v = out_name if L["dequant_acc"] else p + "v"
            nodes.append(h.make_node("Mul", [p + "accf", sc], [v]))
            if not L["dequant_acc"]:
                ys = one
                if rnd == "onnxruntime-float":
                    ys = const(p + "out_scale", np.array(L["out_s"], F32))
                nodes.append(h.make_node("QuantizeLinear", [v, ys, yzp], [out_name]))
        if L["dequant_acc"]:
            if L["relu"]:
                nodes.append(h.make_node("Relu", [out_name], ["output"]))
            break
        cur = out_name
        lo = L["out_zp"] if L["relu"] else 0
        if lo > 0 or L["qmax"] < 255:
            # ReLU clamps at the zero point, and activations narrower than 8
            # bits at qmax: a Clip on the uint8 values.
            ins = [cur, const(p + "clip_lo", np.array(lo, np.uint8)) if lo > 0 else ""]
            if L["qmax"] < 255:
                ins.append(const(p + "clip_hi", np.array(L["qmax"], np.uint8)))
            nodes.append(h.make_node("Clip", ins, [p + "qr"]))
            cur = p + "qr"
        if i + 1 == len(layers):
            const("output_scale", np.array(L["out_s"], F32))
            nodes.append(h.make_node("DequantizeLinear", [cur, "output_scale", yzp], ["output"]))
    n_out = layers[-1]["wq"].shape[0]
    X = h.make_tensor_value_info("input", T.FLOAT, ["batch", K0])
    Y = h.make_tensor_value_info("output", T.FLOAT, ["batch", n_out])
    graph = h.make_graph(nodes, "qatserve_int8", [X], [Y], inits)
    ops = [h.make_opsetid("", opset)]
    if form == "qoperator":
        ops.append(h.make_opsetid("com.microsoft", 1))
    m = h.make_model(graph, opset_imports=ops, producer_name="qatserve qat2onnx")
    m.ir_version = 8  # ONNX 1.12's; ONNX Runtime >= 1.12 reads it
    props = provenance_props(model, meta, form)
    h.set_model_props(m, props)
    onnx.checker.check_model(m)
    return m


def provenance_props(model, meta, form):
    props = {"qatserve.form": form, "qatserve.architecture": meta["architecture"],
             "qatserve.activations": meta["activations"],
             "qatserve.output_mode": meta["output_mode"],
             "qatserve.rounding": model["rounding"],
             "qatserve.input_scale": repr(float(model["in_s"])),
             "qatserve.input_zero_point": str(model["in_zp"]),
             "qatserve.activation_scales": ",".join(repr(float(L["out_s"]))
                                                    for L in model["layers"])}
    if "labels" in meta:
        props["qatserve.labels"] = meta["labels"]
    for k in ("trained_with", "engine", "source", "imported_from", "dataset"):
        if k in meta:
            props["qatserve." + k] = meta[k]
    return props


def build_fp32(model, meta, opset):
    import onnx
    from onnx import TensorProto as T
    from onnx import helper as h
    from onnx import numpy_helper as nh
    nodes, inits, cur = [], [], "input"
    n = len(model["layers"])
    for i, L in enumerate(model["layers"]):
        p = "l%d_" % i
        inits += [nh.from_array(L["w_fp32"].astype(F32), p + "weight"),
                  nh.from_array(L["b_fp32"].astype(F32), p + "bias")]
        o = "output" if i + 1 == n and not L["relu"] else p + "gemm"
        nodes.append(h.make_node("Gemm", [cur, p + "weight", p + "bias"], [o], transB=1))
        cur = o
        if L["relu"]:
            o = "output" if i + 1 == n else p + "relu"
            nodes.append(h.make_node("Relu", [cur], [o]))
            cur = o
    X = h.make_tensor_value_info("input", T.FLOAT, ["batch", model["layers"][0]["wq"].shape[1]])
    Y = h.make_tensor_value_info("output", T.FLOAT, ["batch", model["layers"][-1]["wq"].shape[0]])
    m = h.make_model(h.make_graph(nodes, "qatserve_fp32", [X], [Y], inits),
                     opset_imports=[h.make_opsetid("", opset)], producer_name="qatserve qat2onnx")
    m.ir_version = 8
    h.set_model_props(m, {"qatserve.form": "fp32", "qatserve.architecture": meta["architecture"]})
    onnx.checker.check_model(m)
    return m


def main(argv=None):
    ap = argparse.ArgumentParser(description="Export a qatserve model as ONNX (int8 graph "
                                             "with qatserve's exact integers; fp32 baseline).")
    ap.add_argument("model", help="qatserve model (.safetensors)")
    ap.add_argument("out", help="ONNX file to write (the int8 model)")
    ap.add_argument("--form", choices=FORMS, default="qdq")
    ap.add_argument("--fp32", metavar="OUT32.onnx", help="also write the fp32 baseline")
    ap.add_argument("--opset", type=int, default=13, choices=range(13, 18), metavar="13..17")
    a = ap.parse_args(argv)
    try:
        import onnx
    except ImportError:
        print("qat2onnx: needs the onnx module (Debian: python3-onnx; run /usr/bin/python3)",
              file=sys.stderr)
        return 1
    try:
        model, meta = qatfile.load_model(a.model)
        m = build(model, meta, a.form, a.opset)
        m32 = build_fp32(model, meta, a.opset) if a.fp32 else None
    except (OSError, qatfile.FormatError, KeyError, ValueError) as e:
        print("qat2onnx: %s: %s" % (a.model, e), file=sys.stderr)
        return 1
    except Unsupported as e:
        return qatfile.refuse("qat2onnx", e)
    onnx.save(m, a.out)
    print("qat2onnx: wrote %s: %s, form %s, opset %d"
          % (a.out, meta["architecture"], a.form, a.opset))
    if m32 is not None:
        onnx.save(m32, a.fp32)
        print("qat2onnx: wrote %s: the fp32 baseline" % a.fp32)
    return 0


if __name__ == "__main__":
    sys.exit(main())
