"""build_graphs.py - int8 MLPs written as ONNX graphs by hand, the way other
tools write them, for the import test: random weights, odd widths, zero
points away from 0, every form tools/onnx2qat.py accepts. Independent of
qat2onnx.py on purpose (a second producer).

    graph(spec) -> (onnx.ModelProto, (input scale, zero point as float))

spec keys: form (qdq | qdq-float-weights | qdq-matmul | qgemm | qlinearmatmul |
integer), dims, signed (int8 activations), per_channel, act (relu | clip |
none, hidden layers), last (requant | float), opset, prep (None | flatten |
reshape), seed.
"""
import numpy as np
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

F32 = np.float32


class B:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def c(self, name, arr):
        self.inits.append(nh.from_array(np.asarray(arr), name))
        return name

    def node(self, op, ins, outs=None, domain=None, **kw):
        self.n += 1
        outs = outs or ["t%d" % self.n]
        self.nodes.append(h.make_node(op, ins, outs, name="%s_%d" % (op.lower(), self.n),
                                      domain=domain, **kw))
        return outs[0]


def graph(spec):
    g = np.random.default_rng(spec["seed"])
    form, dims, signed = spec["form"], spec["dims"], spec.get("signed", False)
    qdt = np.int8 if signed else np.uint8
    qmin, qmax = (-128, 127) if signed else (0, 255)
    b = B()
    K0 = dims[0]
    # The input: [N, K] or [N, 1, K] (flattened or reshaped in the graph).
    prep = spec.get("prep")
    in_shape = ["N", K0] if prep is None else ["N", 1, K0]
    x = "input"
    if prep == "flatten":
        x = b.node("Flatten", [x], axis=1)
    elif prep == "reshape":
        x = b.node("Reshape", [x, b.c("rs_shape", np.array([-1, K0], np.int64))])
    s_in = F32(spec.get("in_scale", g.uniform(0.004, 0.02)))
    zp_in = int(g.integers(20, 120)) + (qmin if signed else 0)
    q = b.node("QuantizeLinear", [x, b.c("in_s", np.array(s_in, F32)),
                                  b.c("in_zp", np.array(zp_in, qdt))])
    a_s, a_zp = s_in, zp_in
    n = len(dims) - 1
    for i in range(n):
        K, N = dims[i], dims[i + 1]
        last = i + 1 == n
        p = "l%d_" % i
        wq = g.integers(-127, 128, (N, K)).astype(np.int8)
        if spec.get("per_channel", True):
            ws = (10 ** g.uniform(-3.3, -2.3, N)).astype(F32)
        else:
            ws = np.full(N, 10 ** g.uniform(-3.3, -2.3), F32)
        bias = np.rint(g.normal(0, 2000, N)).astype(np.int32)
        spread = float(np.median(ws)) * float(a_s) * 128 * 60 * np.sqrt(K) / 255
        y = F32(spread * g.uniform(1.5, 3.0))
        act = "none" if last else spec.get("act", "relu")
        float_out = last and spec.get("last", "requant") == "float"
        # ReLU outputs: QDQ groups fuse only with the zero point at the minimum.
        if act != "none" and form.startswith("qdq"):
            y_zp = qmin
        else:
            y_zp = int(g.integers(30, 200)) + (qmin if signed else 0)
        ws_arg = ws if spec.get("per_channel", True) else ws[:1].reshape(())
        if form.startswith("qdq"):
            xf = b.node("DequantizeLinear", [q, b.c(p + "a_s", np.array(a_s, F32)),
                                             b.c(p + "a_zp", np.array(a_zp, qdt))])
            if form == "qdq-float-weights":
                wf = ((wq.astype(F32) + g.uniform(-0.3, 0.3, wq.shape).astype(F32))
                      * ws[:, None]).astype(F32)
                wqq = b.node("QuantizeLinear", [b.c(p + "wf", wf), b.c(p + "ws", ws_arg),
                                                b.c(p + "wz", np.zeros(np.shape(ws_arg), np.int8))],
                             axis=0)
                w = b.node("DequantizeLinear", [wqq, p + "ws", p + "wz"], axis=0)
                trans = 1
            elif form == "qdq-matmul":
                w = b.node("DequantizeLinear", [b.c(p + "wq", np.ascontiguousarray(wq.T)),
                                                b.c(p + "ws", ws_arg),
                                                b.c(p + "wz", np.zeros(np.shape(ws_arg), np.int8))],
                           axis=1)
            else:
                w = b.node("DequantizeLinear", [b.c(p + "wq", wq), b.c(p + "ws", ws_arg),
                                                b.c(p + "wz", np.zeros(np.shape(ws_arg), np.int8))],
                           axis=0)
                trans = 1
            if form == "qdq-matmul":
                r = b.node("MatMul", [xf, w])
            else:
                bs = (F32(a_s) * ws).astype(F32)
                bd = b.node("DequantizeLinear", [b.c(p + "bq", bias), b.c(p + "bs", bs),
                                                 b.c(p + "bz", np.zeros(N, np.int32))], axis=0)
                r = b.node("Gemm", [xf, w, bd], transB=trans)
            if float_out:
                out = r
            else:
                if act == "relu":
                    r = b.node("Relu", [r])
                elif act == "clip":
                    r = b.node("Clip", [r, b.c(p + "cmin", np.array(0, F32)),
                                        b.c(p + "cmax", np.array(1e4, F32))])
                q = b.node("QuantizeLinear", [r, b.c(p + "y", np.array(y, F32)),
                                              b.c(p + "yz", np.array(y_zp, qdt))])
        elif form in ("qgemm", "qlinearmatmul"):
            ins = [q, b.c(p + "a_s", np.array(a_s, F32)), b.c(p + "a_zp", np.array(a_zp, qdt))]
            if form == "qgemm":
                ins += [b.c(p + "wq", wq), b.c(p + "ws", ws_arg),
                        b.c(p + "wz", np.zeros(np.shape(ws_arg), np.int8)), b.c(p + "bq", bias)]
                if float_out:
                    out = b.node("QGemm", ins, domain="com.microsoft", transB=1)
                else:
                    ins += [b.c(p + "y", np.array(y, F32)), b.c(p + "yz", np.array(y_zp, qdt))]
                    q = b.node("QGemm", ins, domain="com.microsoft", transB=1)
            else:
                ins += [b.c(p + "wq", np.ascontiguousarray(wq.T)), b.c(p + "ws", ws_arg),
                        b.c(p + "wz", np.zeros(np.shape(ws_arg), np.int8)),
                        b.c(p + "y", np.array(y, F32)), b.c(p + "yz", np.array(y_zp, qdt))]
                q = b.node("QLinearMatMul", ins)
            if not float_out and act != "none":
                # ReLU on the integers: a clamp at the zero point.
                q = b.node("Clip", [q, b.c(p + "relu_lo", np.array(y_zp, qdt))])
        elif form == "integer":
            acc = b.node("MatMulInteger", [q, b.c(p + "wq", np.ascontiguousarray(wq.T)),
                                           b.c(p + "a_zp", np.array(a_zp, qdt))])
            acc = b.node("Add", [acc, b.c(p + "bq", bias)])
            accf = b.node("Cast", [acc], to=T.FLOAT)
            S = (F32(a_s) * ws).astype(F32)  # float32(a * b): what Mul by the scales carries
            v = b.node("Mul", [accf, b.c(p + "S", S if spec.get("per_channel", True)
                                          else S[:1].reshape(()))])
            if float_out:
                out = v
            else:
                if act == "relu":
                    v = b.node("Relu", [v])
                elif act == "clip":
                    v = b.node("Clip", [v, b.c(p + "cmin", np.array(0, F32)),
                                        b.c(p + "cmax", np.array(1e4, F32))])
                q = b.node("QuantizeLinear", [v, b.c(p + "y", np.array(y, F32)),
                                              b.c(p + "yz", np.array(y_zp, qdt))])
        else:
            raise ValueError(form)
        a_s, a_zp = y, y_zp
    if spec.get("last", "requant") != "float":
        out = b.node("DequantizeLinear", [q, b.c("out_s", np.array(a_s, F32)),
                                          b.c("out_zp", np.array(a_zp, qdt))])
    if spec.get("last_relu") and spec.get("last") == "float":
        out = b.node("Relu", [out])
    b.nodes[-1].output[0] = "output"
    X = h.make_tensor_value_info("input", T.FLOAT, in_shape)
    Y = h.make_tensor_value_info("output", T.FLOAT, ["N", dims[-1]])
    ops = [h.make_opsetid("", spec.get("opset", 13))]
    if form == "qgemm":
        ops.append(h.make_opsetid("com.microsoft", 1))
    m = h.make_model(h.make_graph(b.nodes, "test_" + form, [X], [Y], b.inits),
                     opset_imports=ops, producer_name="tests/onnx/build_graphs.py")
    m.ir_version = 8
    return m, (float(s_in), zp_in - (qmin if signed else 0))
