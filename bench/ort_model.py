#!/usr/bin/python3
"""ort_model.py - bench-only: the shipped model as ONNX graphs for ONNX
Runtime, from the integer parameters bench_kernels computed with libqat's
own functions (so the arithmetic is ours by construction):

  int8: x -> Mul(1/in_scale) -> QuantizeLinear(1, in_zp)        (= quantize_u8)
          -> per hidden layer QGemm(com.microsoft; a_scale 1, a_zp in_zp,
             B = wq [N][K] transB, b_scale = M[c] per column, C = bq,
             y_scale 1, y_zp out_zp) [-> Max(out_zp) for ReLU if out_zp > 0]
          -> last layer MatMulInteger(a_zp) -> Add(bq) -> Cast -> Mul(deq)
     QGemm requantizes float(acc + bq) * (a_scale * b_scale / y_scale),
     rounded to nearest even, + y_zp, saturated: with a_scale = y_scale = 1
     its multiplier is exactly our M[c], so the outputs are ours bit for bit
     (bench_kernels checks that on its input before timing).
  fp32: Gemm(+bias) -> Relu per layer, the float weights.

  noop: y = x[:, :10] (one Slice): what a call costs through onnxruntime-node
        with next to no compute, subtracted by bench_kernels to estimate
        ORT's own time per run.

  /usr/bin/python3 bench/ort_model.py SPEC.json INT8.onnx FP32.onnx NOOP.onnx
"""
import json
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def f32(v):
    return np.array(v, dtype=np.float32)


def main():
    spec = json.load(open(sys.argv[1]))
    layers = spec["layers"]
    K0 = layers[0]["in_dim"]
    inits, nodes = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(arr, name))
        return name

    x = "x"
    nodes.append(helper.make_node("Mul", [x, const("in_inv", f32(spec["in_inv"]))], ["xs"]))
    nodes.append(helper.make_node("QuantizeLinear", ["xs", const("one", f32(1.0)),
                                  const("in_zp", np.array(spec["in_zp"], dtype=np.uint8))], ["q0"]))
    cur = "q0"
    for i, L in enumerate(layers):
        N, K = L["out_dim"], L["in_dim"]
        w = np.array(L["wq"], dtype=np.int8).reshape(N, K)
        azp = const(f"azp{i}", np.array(L["in_zp"], dtype=np.uint8))
        last = i + 1 == len(layers)
        if not last:
            out = f"q{i + 1}"
            nodes.append(helper.make_node(
                "QGemm",
                [cur, const(f"as{i}", f32(1.0)), azp, const(f"w{i}", w),
                 const(f"bs{i}", f32(L["mult"])), const(f"bzp{i}", np.zeros(N, dtype=np.int8)),
                 const(f"bq{i}", np.array(L["bias_q"], dtype=np.int32)),
                 const(f"ys{i}", f32(1.0)), const(f"yzp{i}", np.array(L["out_zp"], dtype=np.uint8))],
                [out if not (L["relu"] and L["out_zp"] > 0) else out + "r"],
                domain="com.microsoft", transB=1, alpha=1.0))
            if L["relu"] and L["out_zp"] > 0:
                nodes.append(helper.make_node("Max", [out + "r", f"yzp{i}"], [out]))
            cur = out
        else:
            nodes.append(helper.make_node("MatMulInteger",
                                          [cur, const(f"wt{i}", np.ascontiguousarray(w.T)), azp],
                                          [f"acc{i}"]))
            nodes.append(helper.make_node("Add", [f"acc{i}", const(f"bq{i}", np.array(L["bias_q"], dtype=np.int32))],
                                          [f"accb{i}"]))
            nodes.append(helper.make_node("Cast", [f"accb{i}"], [f"accf{i}"], to=TensorProto.FLOAT))
            nodes.append(helper.make_node("Mul", [f"accf{i}", const(f"deq{i}", f32(L["deq"]))], ["y"]))
    N_out = layers[-1]["out_dim"]
    g = helper.make_graph(nodes, "qatserve_int8", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", K0])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", N_out])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 8
    onnx.save(m, sys.argv[2])

    inits, nodes, cur = [], [], "x"
    for i, L in enumerate(layers):
        N, K = L["out_dim"], L["in_dim"]
        out = "y" if i + 1 == len(layers) else f"h{i}"
        pre = out + "p" if L["relu"] else out
        nodes.append(helper.make_node("Gemm", [cur, const(f"w{i}", f32(L["w_fp32"]).reshape(N, K)),
                                               const(f"b{i}", f32(L["b_fp32"]))], [pre], transB=1))
        if L["relu"]:
            nodes.append(helper.make_node("Relu", [pre], [out]))
        cur = out
    g = helper.make_graph(nodes, "qatserve_fp32", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", K0])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", N_out])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, sys.argv[3])

    inits = []
    nodes = [helper.make_node("Slice", ["x", const("st", np.array([0], dtype=np.int64)),
                                        const("en", np.array([N_out], dtype=np.int64)),
                                        const("ax", np.array([1], dtype=np.int64))], ["y"])]
    g = helper.make_graph(nodes, "noop", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", K0])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", N_out])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, sys.argv[4])


if __name__ == "__main__":
    main()
