#!/usr/bin/python3
"""onnx2qat.py - import an int8 MLP from ONNX into a qatserve model file that
reproduces ONNX Runtime's integers exactly.

    /usr/bin/python3 tools/onnx2qat.py IN.onnx OUT.safetensors \
        [--labels a,b,c] [--float FP32.onnx] [--meta KEY=VALUE]

Accepted (docs/onnx.md): one float input, one float output, a chain of
layers in any of these forms, opsets 13-17:
  QDQ         DequantizeLinear -> Gemm / MatMul (weights int8 + DequantizeLinear,
              or float + QuantizeLinear + DequantizeLinear; bias int32 +
              DequantizeLinear) -> [Relu | Clip] -> QuantizeLinear
  QOperator   com.microsoft.QGemm, QLinearMatMul
  integer ops MatMulInteger -> [Add int32 bias] -> Cast -> Mul -> [Relu | Clip]
              -> QuantizeLinear
uint8 or int8 activations (int8 is stored shifted by 128, the same
integers), int8 weights per tensor or per output channel (uint8 or a zero
point where every weight minus it fits int8), Flatten / Reshape / Identity
of the input, a last layer that ends in DequantizeLinear (output_mode
requant) or in float (QGemm without y_scale, Cast + Mul, a QDQ Gemm without
QuantizeLinear: dequant_acc).

ONNX Runtime rounds differently from PyTorch (its QuantizeLinear divides,
its QGemm multiplier is (a * b) / y, the integer-op form rounds twice), so
the file says `rounding: onnxruntime` (or `onnxruntime-float` for integer
ops) and qatserve then computes exactly what ONNX Runtime computes.

Anything else is refused with one line naming the node and op, exit 2;
never a traceback. Exit 1: usage or I/O.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qatfile  # noqa: E402

F32 = np.float32
OPSETS = range(13, 18)


class Refused(Exception):
    """The graph holds something qatserve cannot reproduce exactly."""


def where(node):
    return "node '%s' (%s)" % (node.name or node.output[0], node.op_type)


class Graph:
    def __init__(self, model):
        from onnx import numpy_helper as nh
        g = model.graph
        self.model = model
        self.consts = {t.name: nh.to_array(t) for t in g.initializer}
        self.nodes = []
        for n in g.node:
            if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
                for a in n.attribute:
                    if a.name == "value":
                        self.consts[n.output[0]] = nh.to_array(a.t)
                    else:
                        raise Refused("%s: Constant with attribute '%s' (only 'value')"
                                      % (where(n), a.name))
                continue
            self.nodes.append(n)
        self.consumers = {}
        for n in self.nodes:
            for i in n.input:
                if i:
                    self.consumers.setdefault(i, []).append(n)
        self.inputs = [i for i in g.input if i.name not in self.consts]
        self.outputs = [o.name for o in g.output]
        self.used = set()

    def const(self, node, name, what):
        if not name:
            return None
        if name not in self.consts:
            raise Refused("%s: %s '%s' is computed in the graph, not a constant"
                          % (where(node), what, name))
        return self.consts[name]

    def producer(self, name):
        for n in self.nodes:
            if name in n.output:
                return n
        return None

    def next(self, tensor):
        """The one node that consumes `tensor` (a chain), or None at the output."""
        cs = self.consumers.get(tensor, [])
        if tensor in self.outputs:
            if cs:
                raise Refused("tensor '%s' is a graph output and also feeds %s"
                              % (tensor, where(cs[0])))
            return None
        if len(cs) != 1:
            raise Refused("tensor '%s' feeds %d nodes (%s): qatserve imports a chain of "
                          "layers" % (tensor, len(cs), ", ".join(where(c) for c in cs[:3])))
        self.used.add(id(cs[0]))
        return cs[0]


def attr(node, name, default=None):
    from onnx import helper
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def scalar(node, arr, what):
    a = np.asarray(arr)
    if a.size != 1:
        raise Refused("%s: %s must be one value (per tensor), has shape %s"
                      % (where(node), what, list(a.shape)))
    return a.reshape(-1)[0]


def scale_of(node, arr, what):
    s = F32(scalar(node, arr, what))
    if not (np.isfinite(s) and s > 0):
        raise Refused("%s: %s %r is not finite and positive" % (where(node), what, float(s)))
    return s


class Act:
    """A quantized activation: scale, zero point and whether its ONNX type
    is int8 (stored shifted by 128: the same integers)."""

    def __init__(self, node, scale, zp_arr):
        self.scale = scale_of(node, scale, "scale")
        zp = np.asarray(zp_arr) if zp_arr is not None else np.array(0, np.uint8)
        if zp.dtype not in (np.uint8, np.int8):
            raise Refused("%s: activation type %s; qatserve serves uint8 and int8 activations"
                          % (where(node), zp.dtype))
        self.signed = zp.dtype == np.int8
        self.zp_onnx = int(scalar(node, zp, "zero point"))
        self.zp = self.zp_onnx + (128 if self.signed else 0)

    def same(self, other):
        return (self.scale == other.scale and self.zp == other.zp
                and self.signed == other.signed)

    def qmax_onnx(self):
        return 127 if self.signed else 255

    def qmin_onnx(self):
        return -128 if self.signed else 0


def weights_from(g, node, name, axis_n, what="weight"):
    """(wq int8 [N, K], scale f32 [N], float weights or None, scheme) of a
    QDQ weight input: DequantizeLinear(W_int) or
    DequantizeLinear(QuantizeLinear(W_float)). (QOperator and integer-op
    weights are initializers: int_weights directly.)"""
    dq = g.producer(name)
    if dq is None or dq.op_type != "DequantizeLinear":
        raise Refused("%s: %s '%s' is not the output of a DequantizeLinear (float weights "
                      "are not quantized)" % (where(node), what, name))
    g.used.add(id(dq))
    src = dq.input[0]
    s = g.const(dq, dq.input[1], "weight scale")
    zp = g.const(dq, dq.input[2] if len(dq.input) > 2 else "", "weight zero point")
    axis = attr(dq, "axis", 1)
    w_float = None
    if src in g.consts:
        w = g.consts[src]
    else:
        q = g.producer(src)
        if q is None or q.op_type != "QuantizeLinear":
            raise Refused("%s: weight '%s' is computed in the graph" % (where(dq), src))
        g.used.add(id(q))
        w_float = g.const(q, q.input[0], "float weight").astype(F32)
        qs = g.const(q, q.input[1], "weight scale")
        qz = g.const(q, q.input[2] if len(q.input) > 2 else "", "weight zero point")
        if not (np.array_equal(qs, s) and (qz is None and zp is None or np.array_equal(qz, zp))):
            raise Refused("%s: QuantizeLinear and DequantizeLinear of weight '%s' use "
                          "different scales or zero points" % (where(dq), src))
        qaxis = attr(q, "axis", 1)
        # ONNX Runtime folds this constant QuantizeLinear: x / s, ties to even.
        w = quantize_like_onnx(w_float, qs, qz, qaxis, q)
    return int_weights(dq, w, s, zp, axis, axis_n, w_float)


def quantize_like_onnx(x, s, zp, axis, node):
    s = np.asarray(s, F32)
    zp = np.zeros(s.shape, np.uint8) if zp is None else np.asarray(zp)
    if s.size > 1:
        shape = [1] * x.ndim
        shape[axis] = -1
        s, zpv = s.reshape(shape), zp.astype(np.int64).reshape(shape)
    else:
        s, zpv = s.reshape(()), zp.astype(np.int64).reshape(())
    lo, hi = (-128, 127) if zp.dtype == np.int8 else (0, 255)
    q = np.clip(np.rint(x / s) + zpv, lo, hi)
    return q.astype(zp.dtype)


def int_weights(node, w, s, zp, axis, axis_n, w_float=None):
    """w: integer weights laid out with output channels on axis_n (0 or 1).
    Returns (wq int8 [N, K], w_scale f32 [N], w_float [N, K] or None)."""
    w = np.asarray(w)
    if w.ndim != 2:
        raise Refused("%s: weight has %d dimensions, expected 2" % (where(node), w.ndim))
    if w.dtype not in (np.int8, np.uint8):
        raise Refused("%s: weight type %s; int8 (or uint8) only" % (where(node), w.dtype))
    N = w.shape[axis_n]
    s = np.asarray(s, F32).reshape(-1)
    zp = np.zeros(1, w.dtype) if zp is None else np.asarray(zp).reshape(-1)
    if s.size not in (1, N) or zp.size not in (1, N):
        raise Refused("%s: weight scale/zero point of size %d/%d for %d output channels "
                      "(per tensor or per output channel only)" % (where(node), s.size, zp.size, N))
    if s.size == N and N > 1 and axis is not None and axis % 2 != axis_n:
        raise Refused("%s: per-channel weights along axis %d, not the output channel axis %d"
                      % (where(node), axis, axis_n))
    if not np.all(np.isfinite(s) & (s > 0)):
        raise Refused("%s: a weight scale is not finite and positive" % where(node))
    wi = w.astype(np.int64)
    if axis_n == 1:
        wi = wi.T
        if w_float is not None:
            w_float = w_float.T
    wi = wi - zp.astype(np.int64).reshape(-1, 1)
    if wi.min() < -128 or wi.max() > 127:
        raise Refused("%s: weights minus their zero point span %d..%d, beyond int8 (qatserve "
                      "weights are symmetric int8)" % (where(node), wi.min(), wi.max()))
    ws = np.broadcast_to(s, (N,)).astype(F32)
    scheme = "per_channel" if s.size == N and N > 1 and len(set(s.tolist())) > 1 else "per_tensor"
    return (np.ascontiguousarray(wi, np.int8), ws,
            None if w_float is None else np.ascontiguousarray(w_float, F32), scheme)


def bias_from_dq(g, node, name, N):
    """int32 bias from DequantizeLinear(int32 initializer)."""
    dq = g.producer(name)
    if dq is None or dq.op_type != "DequantizeLinear":
        raise Refused("%s: bias '%s' is float (not DequantizeLinear of int32): ONNX Runtime "
                      "then adds it in float" % (where(node), name))
    g.used.add(id(dq))
    b = g.const(dq, dq.input[0], "bias")
    if b.dtype != np.int32:
        raise Refused("%s: bias type %s, int32 expected" % (where(dq), b.dtype))
    zp = g.const(dq, dq.input[2] if len(dq.input) > 2 else "", "bias zero point")
    if zp is not None and np.any(zp != 0):
        raise Refused("%s: bias zero point is not 0" % where(dq))
    bs = np.asarray(g.const(dq, dq.input[1], "bias scale"), F32).reshape(-1)
    return int_bias(dq, b, N), bs


def int_bias(node, b, N):
    b = np.asarray(b).reshape(-1)
    if b.dtype != np.int32:
        raise Refused("%s: bias type %s, int32 expected" % (where(node), b.dtype))
    if b.size == 1:
        b = np.full(N, b[0], np.int32)
    if b.size != N:
        raise Refused("%s: bias has %d values for %d outputs" % (where(node), b.size, N))
    return b.astype(np.int64)


def relu_node(g, node):
    """A Relu or Clip(0, hi) in float between a layer and its QuantizeLinear.
    Returns (tensor after it, clip max or None)."""
    if node.op_type == "Relu":
        return node.output[0], None
    lo = g.const(node, node.input[1], "Clip min") if len(node.input) > 1 else None
    hi = g.const(node, node.input[2], "Clip max") if len(node.input) > 2 else None
    if lo is None or float(scalar(node, lo, "Clip min")) != 0.0:
        raise Refused("%s: Clip with min %s: only Clip(0, max) acts as ReLU"
                      % (where(node), None if lo is None else float(scalar(node, lo, "min"))))
    return node.output[0], None if hi is None else F32(scalar(node, hi, "Clip max"))


class Importer:
    def __init__(self, model):
        self.g = Graph(model)
        self.layers = []
        self.input_act = None
        self.forms = set()
        self.roundings = set()
        self.output_mode = None
        self.in_dim = None

    # -- helpers ----------------------------------------------------------

    def add_layer(self, node, wq, ws, bq, a_in, out_act, relu, w_float, b_float, scheme,
                  form, rounding):
        if self.layers and self.layers[-1]["out_dim"] != wq.shape[1]:
            raise Refused("%s: takes %d inputs, the previous layer gives %d"
                          % (where(node), wq.shape[1], self.layers[-1]["out_dim"]))
        if not self.layers and self.in_dim is not None and self.in_dim != wq.shape[1]:
            raise Refused("%s: takes %d inputs, the graph input has %d"
                          % (where(node), wq.shape[1], self.in_dim))
        N = wq.shape[0]
        if np.any(np.abs(bq) > (1 << 30)):
            raise Refused("%s: int32 bias beyond 2^30 (qatserve's limit)" % where(node))
        bias, ok = qatfile.bias_for(bq, ws, a_in.scale)
        if not np.all(ok):
            c = int(np.argmin(ok))
            raise Refused("%s: int32 bias %d of channel %d has no float32 bias that qatserve "
                          "derives it from (too large for its scale)" % (where(node), bq[c], c))
        self.layers.append({
            "name": node.name or node.output[0], "wq": wq, "w_scale": ws, "bias": bias,
            "out_s": out_act.scale if out_act else F32(1.0),
            "out_zp": out_act.zp if out_act else 0, "out_act": out_act,
            "relu": relu, "in_dim": wq.shape[1], "out_dim": N, "scheme": scheme,
            "w_float": w_float, "b_float": b_float, "bq": bq})
        self.forms.add(form)
        self.roundings.add(rounding)

    def check_in(self, node, a_in, scale, zp):
        got = Act(node, scale, zp)
        if not got.same(a_in):
            raise Refused("%s: input scale/zero point (%r, %d) differ from the quantized "
                          "tensor's (%r, %d)" % (where(node), float(got.scale), got.zp_onnx,
                                                 float(a_in.scale), a_in.zp_onnx))

    # -- the walk ---------------------------------------------------------

    def run(self):
        g = self.g
        if len(g.inputs) != 1 or len(g.outputs) != 1:
            raise Refused("the graph has %d inputs and %d outputs; qatserve serves one of each"
                          % (len(g.inputs), len(g.outputs)))
        from onnx import TensorProto
        inp = g.inputs[0]
        if inp.type.tensor_type.elem_type != TensorProto.FLOAT:
            raise Refused("graph input '%s' is not float32" % inp.name)
        dims = [d.dim_value if d.HasField("dim_value") else None
                for d in inp.type.tensor_type.shape.dim]
        self.in_dim = int(np.prod(dims[1:])) if dims[1:] and all(dims[1:]) else None
        t = inp.name
        act = None      # the current quantized activation (None: float)
        dq_act = None   # after DequantizeLinear (QDQ): the activation it came from
        while True:
            n = g.next(t)
            if n is None:
                break
            op = n.op_type
            if n.domain not in ("", "ai.onnx", "com.microsoft"):
                raise Refused("%s: domain '%s' is not supported" % (where(n), n.domain))
            if op in ("Flatten", "Reshape", "Identity"):
                if self.layers:
                    raise Refused("%s: only the input may be flattened or reshaped" % where(n))
                if op == "Flatten" and attr(n, "axis", 1) != 1:
                    raise Refused("%s: axis %d (only 1: [N, ...] -> [N, K])"
                                  % (where(n), attr(n, "axis", 1)))
                if op == "Reshape":
                    shp = g.const(n, n.input[1], "shape").reshape(-1)
                    if len(shp) != 2 or shp[0] not in (-1, 0) and self.in_dim is None:
                        raise Refused("%s: reshape to %s (only [N, K] with N -1 or 0)"
                                      % (where(n), shp.tolist()))
                    if shp[1] > 0 and self.in_dim and shp[1] != self.in_dim:
                        raise Refused("%s: reshape to %s of a %d-value row"
                                      % (where(n), shp.tolist(), self.in_dim))
                t = n.output[0]
                continue
            if act is None and dq_act is None:
                if op != "QuantizeLinear":
                    raise Refused("%s: the graph must quantize its float input first "
                                  "(QuantizeLinear); %s on float is not supported" % (where(n), op))
                if self.input_act is not None:
                    raise Refused("%s: a second quantization of float values (float "
                                  "arithmetic between layers is not served)" % where(n))
                act = Act(n, g.const(n, n.input[1], "input scale"),
                          g.const(n, n.input[2] if len(n.input) > 2 else "", "input zero point"))
                self.input_act = act
                t = n.output[0]
                continue
            if dq_act is not None:
                t, act = self.qdq_layer(n, dq_act)
                dq_act = None
                if act is None:
                    t = self.after_float_output(t)
                    break
                continue
            # A quantized tensor.
            if op == "DequantizeLinear":
                got = Act(n, g.const(n, n.input[1], "scale"),
                          g.const(n, n.input[2] if len(n.input) > 2 else "", "zero point"))
                if not got.same(act):
                    raise Refused("%s: dequantizes with (%r, %d), the tensor was quantized with "
                                  "(%r, %d)" % (where(n), float(got.scale), got.zp_onnx,
                                                float(act.scale), act.zp_onnx))
                nxt = g.next(n.output[0])
                if nxt is None:  # the graph's output: the last layer requantized
                    if not self.layers:
                        raise Refused("%s: the graph has no layer" % where(n))
                    self.output_mode = "requant"
                    break
                dq_act, t = act, n.output[0]
                continue
            if op == "QGemm":
                t, act = self.qgemm(n, act)
                if act is None:
                    t = self.after_float_output(t)
                    break
                continue
            if op == "QLinearMatMul":
                t, act = self.qlinearmatmul(n, act)
                continue
            if op == "MatMulInteger":
                t, act = self.integer_layer(n, act)
                if act is None:
                    t = self.after_float_output(t)
                    break
                continue
            if op in ("Clip", "Relu"):
                t = self.integer_relu(n, act)
                continue
            raise Refused("%s is not supported here (after a quantized tensor)" % where(n))
        if not self.layers:
            raise Refused("no layer found (QGemm, QLinearMatMul, MatMulInteger or a QDQ "
                          "Gemm/MatMul)")
        if self.output_mode is None:
            raise Refused("the graph does not end in float: its output must be "
                          "DequantizeLinear or a float layer result")
        self.check_unused()
        if len(self.roundings) > 1:
            raise Refused("the graph mixes integer-op layers (MatMulInteger) with fused ones "
                          "(QGemm, QLinearMatMul, QDQ): one model rounds one way")
        return self

    def check_unused(self):
        # Nodes we never reached would be arithmetic we ignored.
        for n in self.g.nodes:
            if id(n) not in self.g.used:
                raise Refused("%s is not part of the input-to-output chain" % where(n))

    def after_float_output(self, t):
        """dequant_acc last layer; optional Relu after it."""
        self.output_mode = "dequant_acc"
        n = self.g.next(t)
        if n is None:
            return t
        if n.op_type != "Relu":
            raise Refused("%s after the last layer's float output (only Relu)" % where(n))
        if self.g.next(n.output[0]) is not None:
            raise Refused("%s: more nodes after the last layer" % where(n))
        self.layers[-1]["relu"] = True
        return n.output[0]

    def integer_relu(self, n, act):
        """Relu/Clip on quantized integers: a clamp at the zero point is ReLU."""
        if not self.layers:
            raise Refused("%s on the quantized input (before any layer)" % where(n))
        L = self.layers[-1]
        if n.op_type == "Relu":
            if not act.signed or act.zp_onnx != 0:
                raise Refused("%s on %s values with zero point %d clamps at %d, not at the "
                              "zero point" % (where(n), "int8" if act.signed else "uint8",
                                              act.zp_onnx, 0))
        else:
            lo = self.g.const(n, n.input[1], "Clip min") if len(n.input) > 1 else None
            hi = self.g.const(n, n.input[2], "Clip max") if len(n.input) > 2 else None
            lo = act.qmin_onnx() if lo is None else int(scalar(n, lo, "Clip min"))
            hi = act.qmax_onnx() if hi is None else int(scalar(n, hi, "Clip max"))
            if hi < act.qmax_onnx() or lo not in (act.zp_onnx, act.qmin_onnx()):
                raise Refused("%s: Clip(%d, %d) on quantized values: only a clamp at the zero "
                              "point %d (ReLU) with the top open is served"
                              % (where(n), lo, hi, act.zp_onnx))
            if lo == act.qmin_onnx():
                return n.output[0]  # a no-op
        L["relu"] = True
        return n.output[0]

    def float_activation(self, n, t):
        """Relu/Clip between a layer's float result and its QuantizeLinear.
        Returns (tensor after it, relu, clip max or None, the node or None)."""
        if n is not None and n.op_type in ("Relu", "Clip"):
            t, hi = relu_node(self.g, n)
            return t, True, hi, n
        return t, False, None, None

    def check_clip(self, cn, hi, out, how):
        """Clip(0, hi) before QuantizeLinear is ReLU when hi does not cut below
        the quantized range's top. Fused (QDQ): ONNX Runtime drops the Clip
        only when the whole range (qmax - zp) * y lies under hi; integer ops:
        the float arithmetic itself, rint(hi / y) + zp must reach qmax."""
        if hi is None:
            return
        if how == "fused":
            ok = F32(out.scale) * F32(out.qmax_onnx() - out.zp_onnx) <= F32(hi)
        else:
            ok = np.rint(F32(hi) / out.scale) + out.zp_onnx >= out.qmax_onnx()
        if not ok:
            raise Refused("%s: Clip max %r is below the top of the quantized range (%r): "
                          "qatserve clamps only at the range" % (where(cn), float(hi),
                                                                  float((out.qmax_onnx() - out.zp_onnx)
                                                                        * out.scale)))

    # -- the forms --------------------------------------------------------

    def qdq_layer(self, n, a_in):
        g = self.g
        op = n.op_type
        if op == "Gemm":
            if attr(n, "transA", 0) != 0 or attr(n, "alpha", 1.0) != 1.0 or \
                    attr(n, "beta", 1.0) != 1.0:
                raise Refused("%s: transA, alpha or beta not at their defaults" % where(n))
            transB = attr(n, "transB", 0)
            wq, ws, wf, scheme = weights_from(g, n, n.input[1], 0 if transB else 1)
            N = wq.shape[0]
            if len(n.input) > 2 and n.input[2]:
                bq, bscale = bias_from_dq(g, n, n.input[2], N)
                bf = (bq.astype(F32) * np.broadcast_to(bscale, (N,))).astype(F32)
            else:
                bq, bf = np.zeros(N, np.int64), np.zeros(N, F32)
            t = n.output[0]
        elif op == "MatMul":
            wq, ws, wf, scheme = weights_from(g, n, n.input[1], 1)
            N = wq.shape[0]
            bq, bf = np.zeros(N, np.int64), np.zeros(N, F32)
            t = n.output[0]
            nx = g.consumers.get(t, [])
            if len(nx) == 1 and nx[0].op_type == "Add":
                raise Refused("%s: MatMul + Add: write the layer as Gemm with the int32 bias "
                              "as its third input (ONNX Runtime fuses DequantizeLinear -> Gemm "
                              "-> QuantizeLinear into one QGemm)" % where(nx[0]))
        else:
            raise Refused("%s after DequantizeLinear: QDQ layers are Gemm or MatMul" % where(n))
        nxt = g.next(t)
        if nxt is None:  # float output: QGemm with float output after fusion
            self.add_layer(n, wq, ws, bq, a_in, None, False, wf, bf, scheme, "qdq", "onnxruntime")
            return t, None
        t, relu, hi, cn = self.float_activation(nxt, t)
        nq = g.next(t) if cn is not None else nxt
        if nq is None:  # Relu on the float output of the last layer
            if cn.op_type != "Relu":
                raise Refused("%s before the graph output: only Relu after a float output"
                              % where(cn))
            self.add_layer(n, wq, ws, bq, a_in, None, True, wf, bf, scheme, "qdq", "onnxruntime")
            return t, None
        if nq.op_type != "QuantizeLinear":
            raise Refused("%s after %s: expected QuantizeLinear" % (where(nq), where(n)))
        out = Act(nq, g.const(nq, nq.input[1], "output scale"),
                  g.const(nq, nq.input[2] if len(nq.input) > 2 else "", "output zero point"))
        if relu and out.zp_onnx != out.qmin_onnx():
            # ONNX Runtime drops Relu/Clip before QuantizeLinear only when the
            # zero point is the range's minimum; otherwise it keeps it, does
            # not fuse the group, and computes the layer in float.
            raise Refused("%s before QuantizeLinear with zero point %d: ONNX Runtime does "
                          "not fuse it (it computes the layer in float), which qatserve "
                          "cannot reproduce; quantize ReLU outputs with zero point %d"
                          % (where(cn), out.zp_onnx, out.qmin_onnx()))
        self.check_clip(cn, hi, out, "fused")
        self.add_layer(n, wq, ws, bq, a_in, out, relu, wf, bf, scheme, "qdq", "onnxruntime")
        return nq.output[0], out

    def qgemm(self, n, a_in):
        g = self.g
        if n.domain != "com.microsoft":
            raise Refused("%s: QGemm outside com.microsoft" % where(n))
        if attr(n, "transA", 0) != 0 or attr(n, "alpha", 1.0) != 1.0:
            raise Refused("%s: transA or alpha not at their defaults" % where(n))
        self.check_in(n, a_in, g.const(n, n.input[1], "a_scale"),
                      g.const(n, n.input[2], "a_zero_point"))
        transB = attr(n, "transB", 0)
        w = g.const(n, n.input[3], "B")
        wq, ws, wf, scheme = int_weights(n, w, g.const(n, n.input[4], "b_scale"),
                                         g.const(n, n.input[5], "b_zero_point"), None,
                                         0 if transB else 1)
        N = wq.shape[0]
        c = n.input[6] if len(n.input) > 6 else ""
        bq = int_bias(n, g.const(n, c, "C"), N) if c else np.zeros(N, np.int64)
        ys = n.input[7] if len(n.input) > 7 else ""
        bf = (bq.astype(F32) * (a_in.scale * ws)).astype(F32)
        if not ys:
            self.add_layer(n, wq, ws, bq, a_in, None, False, wf, bf, scheme, "qoperator",
                           "onnxruntime")
            return n.output[0], None
        out = Act(n, g.const(n, ys, "y_scale"),
                  g.const(n, n.input[8] if len(n.input) > 8 else "", "y_zero_point"))
        self.add_layer(n, wq, ws, bq, a_in, out, False, wf, bf, scheme, "qoperator",
                       "onnxruntime")
        return n.output[0], out

    def qlinearmatmul(self, n, a_in):
        g = self.g
        self.check_in(n, a_in, g.const(n, n.input[1], "a_scale"),
                      g.const(n, n.input[2], "a_zero_point"))
        w = g.const(n, n.input[3], "b")
        wq, ws, wf, scheme = int_weights(n, w, g.const(n, n.input[4], "b_scale"),
                                         g.const(n, n.input[5], "b_zero_point"), None, 1)
        out = Act(n, g.const(n, n.input[6], "y_scale"), g.const(n, n.input[7], "y_zero_point"))
        N = wq.shape[0]
        self.add_layer(n, wq, ws, np.zeros(N, np.int64), a_in, out, False, wf,
                       np.zeros(N, F32), scheme, "qlinearmatmul", "onnxruntime")
        return n.output[0], out

    def integer_layer(self, n, a_in):
        """MatMulInteger -> [Add int32] -> Cast(float) -> Mul(S) -> [Relu|Clip]
        -> QuantizeLinear, or the float output."""
        g = self.g
        azp = g.const(n, n.input[2], "a_zero_point") if len(n.input) > 2 and n.input[2] else None
        got = Act(n, np.array(a_in.scale, F32),
                  azp if azp is not None else np.array(0, np.int8 if a_in.signed else np.uint8))
        if got.zp != a_in.zp or got.signed != a_in.signed:
            raise Refused("%s: a_zero_point %d differs from the tensor's %d"
                          % (where(n), got.zp_onnx, a_in.zp_onnx))
        w = g.const(n, n.input[1], "B")
        bzp = g.const(n, n.input[3], "b_zero_point") if len(n.input) > 3 and n.input[3] else None
        K, N = w.shape
        wq, _, _, _ = int_weights(n, w, np.ones(1, F32), bzp, None, 1)
        t = n.output[0]
        m = g.next(t)
        bq = np.zeros(N, np.int64)
        if m is not None and m.op_type == "Add":
            other = m.input[1] if m.input[0] == t else m.input[0]
            bq = int_bias(m, g.const(m, other, "bias"), N)
            t = m.output[0]
            m = g.next(t)
        if m is None or m.op_type != "Cast" or attr(m, "to") != 1:
            raise Refused("%s: after MatMulInteger expected Cast to float"
                          % (where(m) if m is not None else "the graph output"))
        t = m.output[0]
        m = g.next(t)
        if m is None or m.op_type != "Mul":
            raise Refused("%s: after Cast expected Mul by the scale"
                          % (where(m) if m is not None else "the graph output"))
        other = m.input[1] if m.input[0] == t else m.input[0]
        S = np.asarray(g.const(m, other, "scale"), F32).reshape(-1)
        if S.size not in (1, N):
            raise Refused("%s: scale of %d values for %d outputs" % (where(m), S.size, N))
        S = np.broadcast_to(S, (N,)).astype(F32)
        nm = g.consumers.get(m.output[0], [])
        if len(nm) == 1 and nm[0].op_type == "Mul":
            raise Refused("%s: a second Mul: fold the scales into one (each Mul rounds)"
                          % where(nm[0]))
        ws = self.scale_for_product(m, a_in.scale, S)
        scheme = "per_channel" if len(set(S.tolist())) > 1 else "per_tensor"
        bf = (bq.astype(F32) * S).astype(F32)
        t = m.output[0]
        nxt = g.next(t)
        if nxt is None:
            self.add_layer(n, wq, ws, bq, a_in, None, False, None, bf, scheme, "integer",
                           "onnxruntime-float")
            return t, None
        t, relu, hi, cn = self.float_activation(nxt, t)
        nq = g.next(t) if cn is not None else nxt
        if nq is None:  # Relu on the float output of the last layer
            if cn.op_type != "Relu":
                raise Refused("%s before the graph output: only Relu after a float output"
                              % where(cn))
            self.add_layer(n, wq, ws, bq, a_in, None, True, None, bf, scheme, "integer",
                           "onnxruntime-float")
            return t, None
        if nq.op_type != "QuantizeLinear":
            raise Refused("%s: expected QuantizeLinear" % where(nq))
        out = Act(nq, g.const(nq, nq.input[1], "output scale"),
                  g.const(nq, nq.input[2] if len(nq.input) > 2 else "", "output zero point"))
        self.check_clip(cn, hi, out, "division")
        self.add_layer(n, wq, ws, bq, a_in, out, relu, None, bf, scheme, "integer",
                       "onnxruntime-float")
        return nq.output[0], out

    @staticmethod
    def scale_for_product(node, a, S):
        """float32 w_s with a * w_s == S exactly (float32), per channel: the
        file stores w_s, qatserve recomputes in_s * w_s."""
        a = F32(a)
        ws = (S.astype(np.float64) / np.float64(a)).astype(F32)
        for _ in range(3):
            ws = np.where(a * ws < S, np.nextafter(ws, F32(np.inf)),
                          np.where(a * ws > S, np.nextafter(ws, F32(0)), ws)).astype(F32)
        bad = (a * ws) != S
        if np.any(bad):
            # Search the neighbourhood: float32 products skip some values.
            for c in np.nonzero(bad)[0]:
                u = ws[c:c + 1].view(np.int32)[0]
                cand = (u + np.arange(-8, 9, dtype=np.int32)).view(F32)
                hit = cand[(a * cand) == S[c]]
                if len(hit) == 0:
                    raise Refused("%s: scale %r of channel %d is not input scale %r times any "
                                  "float32 weight scale" % (where(node), float(S[c]), int(c),
                                                            float(a)))
                ws[c] = hit[0]
        if not np.all(np.isfinite(ws) & (ws > 0)):
            raise Refused("%s: scales must be finite and positive" % where(node))
        return ws


def float_model_weights(path, layers):
    """fp32 weights of a float ONNX model: its 2-D float initializers feeding
    Gemm / MatMul, in node order, matched to the layers by shape."""
    import onnx
    from onnx import numpy_helper as nh
    m = onnx.load(path)
    inits = {t.name: nh.to_array(t) for t in m.graph.initializer}
    pairs = []
    for n in m.graph.node:
        if n.op_type in ("Gemm", "MatMul"):
            w = inits.get(n.input[1])
            if w is None or w.ndim != 2:
                continue
            tb = attr(n, "transB", 0) if n.op_type == "Gemm" else 0
            w = w if tb else w.T
            b = inits.get(n.input[2]) if n.op_type == "Gemm" and len(n.input) > 2 else None
            if n.op_type == "MatMul":
                for c in m.graph.node:
                    if c.op_type == "Add" and n.output[0] in c.input:
                        o = c.input[1] if c.input[0] == n.output[0] else c.input[0]
                        b = inits.get(o)
            pairs.append((n.name or n.output[0], w.astype(F32),
                          None if b is None else np.asarray(b, F32).reshape(-1)))
    if len(pairs) != len(layers):
        raise Refused("--float %s: %d float layers, the int8 graph has %d"
                      % (path, len(pairs), len(layers)))
    for (name, w, b), L in zip(pairs, layers):
        if w.shape != L["wq"].shape:
            raise Refused("--float %s: node '%s' weight %s, layer '%s' %s"
                          % (path, name, w.shape, L["name"], L["wq"].shape))
        L["w_fp32"] = np.ascontiguousarray(w)
        L["b_fp32"] = np.zeros(w.shape[0], F32) if b is None else b


def main(argv=None):
    ap = argparse.ArgumentParser(description="Import an int8 ONNX MLP into a qatserve model "
                                             "that reproduces ONNX Runtime's integers.")
    ap.add_argument("model", help="ONNX file (QDQ, QOperator or integer-op int8 MLP)")
    ap.add_argument("out", help="qatserve model file to write (.safetensors)")
    ap.add_argument("--labels", help="class names: a,b,c or a JSON array (default: the "
                                     "graph's qatserve.labels metadata, if any)")
    ap.add_argument("--float", dest="float_path",
                    help="the matching float ONNX model: its weights become the fp32 baseline")
    ap.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                    help="extra metadata (repeatable)")
    a = ap.parse_args(argv)
    try:
        import onnx
    except ImportError:
        print("onnx2qat: needs the onnx module (Debian: python3-onnx; run /usr/bin/python3)",
              file=sys.stderr)
        return 1
    try:
        model = onnx.load(a.model)
    except Exception as e:  # protobuf decode errors have many types
        print("onnx2qat: %s: cannot read as ONNX: %s" % (a.model, str(e).splitlines()[0]
                                                         if str(e) else type(e).__name__),
              file=sys.stderr)
        return 1
    try:
        opset = None
        for o in model.opset_import:
            if o.domain in ("", "ai.onnx"):
                opset = o.version
            elif o.domain != "com.microsoft":
                raise Refused("operator set domain '%s' is not supported" % o.domain)
        if opset not in OPSETS:
            raise Refused("opset %s: qatserve imports opsets 13-17" % opset)
        imp = Importer(model).run()
        layers = imp.layers
        baseline = "float-weights" if all(L["w_float"] is not None for L in layers) \
            else "dequantized"
        for L in layers:
            if baseline == "float-weights":
                L["w_fp32"] = L["w_float"]
            else:
                L["w_fp32"] = (L["wq"].astype(F32) * L["w_scale"][:, None]).astype(F32)
            L["b_fp32"] = L["b_float"]
        if a.float_path:
            float_model_weights(a.float_path, layers)
            baseline = "float-model"
        props = {p.key: p.value for p in model.metadata_props}
        label_src = a.labels if a.labels is not None else props.get("qatserve.labels")
        try:
            labels = qatfile.parse_labels(label_src, layers[-1]["out_dim"])
        except ValueError as e:
            raise Refused(str(e))
        ia = imp.input_act
        rounding = imp.roundings.pop()
        dims = [layers[0]["in_dim"]] + [L["out_dim"] for L in layers]
        meta = qatfile.base_meta(dims, [L["relu"] for L in layers], imp.output_mode, rounding)
        meta.update({
            "imported_from": "onnx",
            "onnx_form": "+".join(sorted(imp.forms)),
            "onnx_opset": str(opset),
            "onnx_producer": ("%s %s" % (model.producer_name, model.producer_version)).strip()
            or "unknown",
            "activation_type": "int8" if ia.signed else "uint8",
            "weight_qscheme": ",".join(L["scheme"] for L in layers),
            "baseline": baseline,
            "source": os.path.basename(a.model),
            "converter": "tools/onnx2qat.py"})
        if labels is not None:
            meta["labels"] = json.dumps(labels)
        for kv in a.meta:
            k, sep, v = kv.partition("=")
            if not sep or not k or qatfile.reserved(k):
                print("onnx2qat: --meta %r: expected KEY=VALUE with a key the format does not "
                      "own" % kv, file=sys.stderr)
                return 1
            meta[k] = v
        if imp.output_mode == "requant":
            last_qp = None
        else:
            last_qp = (1.0, 0)
        tensors = qatfile.model_tensors((ia.scale, ia.zp), layers, last_qp)
        for name, t in tensors:  # the core's loader would refuse these; say so here
            if name.endswith("weight_scale") or name == "activations.scale":
                if not np.all(np.isfinite(t) & (t > 0)):
                    raise Refused("tensor %s: a scale is not finite and positive" % name)
        for i, L in enumerate(layers):
            in_s = ia.scale if i == 0 else layers[i - 1]["out_s"]
            d = np.float32(in_s) * L["w_scale"]
            if not np.all(np.isfinite(d) & (d > 0)):
                raise Refused("layer '%s': input scale x weight scale underflows" % L["name"])
            if len(L["wq"].shape) != 2 or max(L["wq"].shape) > 32768:
                raise Refused("layer '%s': width beyond 32768" % L["name"])
        if len(layers) > 64:
            raise Refused("%d layers; at most 64 are served" % len(layers))
    except Refused as e:
        return qatfile.refuse("onnx2qat", e)
    except Exception as e:  # never a traceback: name what we were doing
        return qatfile.refuse("onnx2qat", "%s: unsupported graph" % a.model, e)
    try:
        qatfile.write(a.out, tensors, meta)
    except OSError as e:
        print("onnx2qat: %s: %s" % (a.out, e), file=sys.stderr)
        return 1
    print("onnx2qat: wrote %s: %s, %s, form %s, %s activations, weights %s, rounding %s, "
          "output %s, baseline %s" % (a.out, meta["architecture"], meta["activations"],
                                      meta["onnx_form"], meta["activation_type"],
                                      meta["weight_qscheme"], rounding, imp.output_mode,
                                      baseline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
