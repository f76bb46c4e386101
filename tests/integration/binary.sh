#!/usr/bin/env bash
# binary.sh - integration tests for binary payloads: /predict with raw
# float32 rows (application/octet-stream) in and out, and the KServe v2
# binary tensor extension (Inference-Header-Content-Length). The outputs
# must be the very floats core computes (qstool) and the JSON path answers,
# and the caps and errors must match the JSON path's.
#   BUILD=build tests/integration/binary.sh     (called by run.sh)
# Ends with "binary: N passed, M failed"; exits non-zero on any failure.
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.."
SERVER=$BUILD/qatserve
QSTOOL=$BUILD/qstool
PY=/usr/bin/python3
. tests/lib/server.sh # the shell-test harness: temp dir, server on a free port, cleanup
qs_init bin
tmp=$QS_TMP

mkdir -p "$tmp/models"
"$QSTOOL" mkmodel "$tmp/models/fmnist.safetensors" 784,32,10 1 class- >/dev/null || exit 1
"$QSTOOL" mkmodel "$tmp/models/tiny.safetensors" 8,16,4 2 >/dev/null || exit 1
"$QSTOOL" rows 3 784 7 >"$tmp/rows3.txt"
"$QSTOOL" rows 2 8 9 >"$tmp/rows_tiny.txt"
"$QSTOOL" expect "$tmp/models/fmnist.safetensors" "$tmp/rows3.txt" >"$tmp/e3.txt" || exit 1
"$QSTOOL" expect "$tmp/models/fmnist.safetensors" "$tmp/rows3.txt" dynamic >"$tmp/e3d.txt" || exit 1
"$QSTOOL" expect "$tmp/models/tiny.safetensors" "$tmp/rows_tiny.txt" >"$tmp/etiny.txt" || exit 1

: >"$tmp/server.log"
qs_start "$tmp/server.log" --models "$tmp/models" --threads 2 --max-body 1000000 \
  --max-batch 64 --quiet
PORT=$QS_PORT
[ -n "$PORT" ] || { cat "$tmp/server.log"; echo "binary: 0 passed, 1 failed"; exit 1; }

"$PY" - "$PORT" "$tmp" <<'EOF'
import ctypes, http.client, json, math, struct, sys

port, tmp = int(sys.argv[1]), sys.argv[2]
libc = ctypes.CDLL(None)
libc.strtof.restype = ctypes.c_float
libc.strtof.argtypes = [ctypes.c_char_p, ctypes.c_void_p]

def f32(text):
    """The float32 strtof reads from text (as the server's JSON parser does)."""
    return libc.strtof(text.encode(), None)

def pack(vals):
    return struct.pack("<%df" % len(vals), *vals)

def rows_of(path):
    return [line.split() for line in open(path).read().split("\n") if line.strip()]

def expect(path):
    lines = open(path).read().split("\n")
    outs, preds = [], []
    for i in range(0, len(lines) - 1, 2):
        outs.append(lines[i].split())
        preds.append(int(lines[i + 1].split(" ", 1)[0]))
    return outs, preds

rows3 = rows_of(tmp + "/rows3.txt")
x3 = pack([f32(t) for r in rows3 for t in r])
E3, P3 = expect(tmp + "/e3.txt")
E3D, _ = expect(tmp + "/e3d.txt")
y3 = pack([f32(t) for r in E3 for t in r])      # core's outputs as float32 bytes
y3d = pack([f32(t) for r in E3D for t in r])
rows_t = rows_of(tmp + "/rows_tiny.txt")
xt = pack([f32(t) for r in rows_t for t in r])
ET, _ = expect(tmp + "/etiny.txt")
yt = pack([f32(t) for r in ET for t in r])

passed = failed = 0
def check(desc, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", desc, detail, file=sys.stderr)

def req(method, path, body=b"", headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request(method, path, body=body, headers=headers or {})
    except (BrokenPipeError, ConnectionResetError):
        pass  # answered (413) before the whole body was sent
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data

def kv(v):
    """'a=1, b=2' -> {'a': 1.0, 'b': 2.0}"""
    return {k.strip(): float(x) for k, _, x in (p.partition("=") for p in v.split(",")) if k.strip()}

def is_error(status, hdrs, data, want):
    try:
        d = json.loads(data)
    except Exception:
        return False
    return status == want and isinstance(d.get("error"), str) and len(d) == 1 and \
        hdrs.get("content-type") == "application/json"

OCT = {"Content-Type": "application/octet-stream"}
OCT_OUT = {"Content-Type": "application/octet-stream", "Accept": "application/octet-stream"}

# ---- /predict binary in, JSON out: same answer as the JSON path ---------------
st, h, d = req("POST", "/predict?model=fmnist", x3, OCT)
check("binary in, JSON out is 200", st == 200, d[:200])
if st == 200:
    j = json.loads(d, parse_float=str, parse_int=str)
    check("binary in: int8 outputs equal core's bit for bit", j["outputs"] == E3)
    check("binary in: predictions equal core's", [int(p) for p in j["predictions"]] == P3)
jbody = json.dumps({"model": "fmnist", "inputs": [[float(t) for t in r] for r in rows3]})
st, h, dj = req("POST", "/predict", jbody.encode(), {"Content-Type": "application/json"})
if st == 200 and d:
    a = json.loads(d, parse_float=str)
    b = json.loads(dj, parse_float=str)
    check("binary and JSON /predict give the same outputs", a["outputs"] == b["outputs"] and
          a["predictions"] == b["predictions"] and a["labels"] == b["labels"])

# ---- binary in, binary out --------------------------------------------------------
st, h, d = req("POST", "/predict?model=fmnist", x3, OCT_OUT)
check("binary out is 200 application/octet-stream", st == 200 and h.get("content-type") == "application/octet-stream",
      "%d %s" % (st, h.get("content-type")))
check("binary out: raw float32 outputs equal core's bytes", d == y3, "len %d want %d" % (len(d), len(y3)))
check("binary out: shape header", h.get("x-shape") == "3,10")
check("binary out: predictions header", h.get("x-predictions") == ",".join(map(str, P3)))
mh = h.get("x-model", "").split("; ")
check("binary out: model header", len(mh) == 3 and mh[0] == "fmnist" and mh[1].startswith("version=") and
      mh[1][8:].isdigit() and mh[2] == "mode=static", h.get("x-model"))
lat = kv(h.get("x-latency-us", ""))
check("binary out: latency header", lat.get("int8", 0) > 0 and lat.get("fp32", 0) > 0 and
      abs(lat.get("speedup", 0) - lat.get("fp32", 0) / lat.get("int8", 1)) < 0.01 * lat.get("speedup", 0) + 0.01 and
      lat.get("total", 0) >= lat.get("int8", 1) and "queue" not in lat, str(lat))
dr = kv(h.get("x-drift", ""))
check("binary out: drift header", 0 <= dr.get("argmax_agreement", -1) <= 1 and dr.get("max_abs_diff", -1) >= 0, str(dr))
st, h, d = req("POST", "/predict", x3, dict(OCT_OUT, **{"X-Model": "fmnist"}))
check("model named by X-Model", st == 200 and d == y3)
st, h, d = req("POST", "/predict?model=fmnist&baseline=false", x3, OCT_OUT)
check("baseline=false: no fp32 figures", st == 200 and d == y3 and "fp32" not in kv(h.get("x-latency-us", "")) and
      "int8" in kv(h.get("x-latency-us", "")) and "x-drift" not in h)
st, h, d = req("POST", "/predict?model=fmnist&mode=dynamic", x3, OCT_OUT)
check("mode=dynamic equals core's dynamic path", st == 200 and d == y3d and h.get("x-model", "").endswith("mode=dynamic"))
st, h, d = req("POST", "/predict?model=tiny", xt, OCT_OUT)
check("binary on a second model (8 -> 4)", st == 200 and d == yt and h.get("x-shape") == "2,4")
st, h, d = req("POST", "/predict", jbody.encode(), {"Content-Type": "application/json", "Accept": "application/octet-stream"})
check("JSON in, Accept octet-stream: binary out", st == 200 and d == y3)
one = x3[: 784 * 4]
st, h, d = req("POST", "/predict?model=fmnist", one, OCT_OUT)
check("one row", st == 200 and d == y3[:40] and h.get("x-shape") == "1,10")

# ---- errors: same statuses as the JSON path ------------------------------------------
st, h, d = req("POST", "/predict?model=fmnist", x3 + b"\0\0\0\0", OCT_OUT)
check("size not a whole number of rows is 422", is_error(st, h, d, 422), d[:200])
st, h, d = req("POST", "/predict?model=fmnist", x3[:-4], OCT_OUT)
check("short last row is 422", is_error(st, h, d, 422))
for name, v in (("NaN", float("nan")), ("Infinity", float("inf")), ("-Infinity", float("-inf"))):
    bad = bytearray(x3)
    bad[4 * 800: 4 * 801] = struct.pack("<f", v)
    st, h, d = req("POST", "/predict?model=fmnist", bytes(bad), OCT_OUT)
    check("%s in a binary row is 422" % name, is_error(st, h, d, 422) and b"row 1, column 16" in d, d[:200])
st, h, d = req("POST", "/predict?model=fmnist", one * 65, OCT_OUT)
check("65 rows over --max-batch 64 is 413", is_error(st, h, d, 413), d[:200])
st, h, d = req("POST", "/predict?model=fmnist", one * 64, OCT_OUT)
check("64 rows (the cap) is 200", st == 200 and len(d) == 64 * 40 and d[:40] == y3[:40])
st, h, d = req("POST", "/predict?model=fmnist", b"\0" * 1000004, OCT_OUT)
check("body over --max-body is 413", is_error(st, h, d, 413))
st, h, d = req("POST", "/predict?model=fmnist", b"", OCT_OUT)
check("empty binary body is 400", is_error(st, h, d, 400))
st, h, d = req("POST", "/predict", x3, OCT_OUT)
check("no model named with two loaded is 400", is_error(st, h, d, 400))
st, h, d = req("POST", "/predict?model=nope", x3, OCT_OUT)
check("unknown model is 404", is_error(st, h, d, 404))
st, h, d = req("POST", "/predict?model=..%2Fx", x3, OCT_OUT)
check("bad model name is 400", is_error(st, h, d, 400))
st, h, d = req("POST", "/predict?model=" + "a" * 300, x3, OCT_OUT)
check("overlong model name is 400", is_error(st, h, d, 400))
st, h, d = req("POST", "/predict?model=fmnist&baseline=maybe", x3, OCT_OUT)
check("bad baseline is 400", is_error(st, h, d, 400))
st, h, d = req("POST", "/predict?model=fmnist&mode=fast", x3, OCT_OUT)
check("bad mode is 400", is_error(st, h, d, 400))

# ---- KServe v2 binary tensor extension ------------------------------------------------
def v2(header, tail=b"", extra=None):
    hb = json.dumps(header).encode()
    hd = {"Inference-Header-Content-Length": str(len(hb)), "Content-Type": "application/octet-stream"}
    hd.update(extra or {})
    return req("POST", "/v2/models/fmnist/infer", hb + tail, hd)

def split(h, d):
    n = int(h["inference-header-content-length"])
    return json.loads(d[:n], parse_float=str), d[n:]

inp = {"name": "input", "shape": [3, 784], "datatype": "FP32", "parameters": {"binary_data_size": len(x3)}}
st, h, d = v2({"id": "b1", "inputs": [inp]}, x3)
check("v2 binary in, JSON out is 200", st == 200 and h.get("content-type") == "application/json", d[:200])
if st == 200:
    j = json.loads(d, parse_float=str)
    check("v2 binary in: data equals core's", j["outputs"][0]["data"] == sum(E3, []) and j["id"] == "b1")
st, h, d = v2({"inputs": [inp], "parameters": {"binary_data_output": True}}, x3)
check("v2 binary_data_output answers binary", st == 200 and "inference-header-content-length" in h, d[:200])
if st == 200 and "inference-header-content-length" in h:
    j, raw = split(h, d)
    o = j["outputs"][0]
    check("v2 binary out: bytes equal core's", raw == y3)
    check("v2 binary out: header names the size, no data", o["parameters"]["binary_data_size"] == len(y3) and
          "data" not in o and o["shape"] == [3, 10] and o["datatype"] == "FP32")
    check("v2 binary out: timings in parameters", float(j["parameters"]["int8_us"]) > 0)
st, h, d = v2({"inputs": [inp], "outputs": [{"name": "output", "parameters": {"binary_data": True}}]}, x3)
check("v2 outputs[].binary_data answers binary", st == 200 and split(h, d)[1] == y3 if st == 200 else False)
st, h, d = v2({"inputs": [inp], "parameters": {"binary_data_output": True},
               "outputs": [{"name": "output", "parameters": {"binary_data": False}}]}, x3)
check("v2 per-output binary_data false wins over binary_data_output", st == 200 and
      "inference-header-content-length" not in h and json.loads(d)["outputs"][0]["data"])
jin = {"inputs": [{"name": "input", "shape": [3, 784], "datatype": "FP32",
                   "data": [float(t) for r in rows3 for t in r]}],
       "outputs": [{"name": "output", "parameters": {"binary_data": True}}]}
st, h, d = req("POST", "/v2/models/fmnist/infer", json.dumps(jin).encode(), {"Content-Type": "application/json"})
check("v2 JSON in, binary out", st == 200 and split(h, d)[1] == y3 if st == 200 else False, d[:200])
st, h, d = v2({"inputs": [dict(inp, parameters={"binary_data_size": len(x3) - 4})]}, x3[:-4])
check("v2 binary size not the shape's is 422", is_error(st, h, d, 422), d[:200])
st, h, d = v2({"inputs": [inp]}, x3 + b"\0\0\0\0")
check("v2 binary tail longer than binary_data_size is 422", is_error(st, h, d, 422))
bad = bytearray(x3)
bad[0:4] = struct.pack("<f", float("nan"))
st, h, d = v2({"inputs": [inp]}, bytes(bad))
check("v2 binary NaN is 422", is_error(st, h, d, 422))
st, h, d = v2({"inputs": [dict(inp, shape=[65, 784], parameters={"binary_data_size": 65 * 784 * 4})]}, one * 65)
check("v2 binary batch over --max-batch is 413", is_error(st, h, d, 413), d[:200])
st, h, d = v2({"inputs": [inp], "outputs": [{"name": "logits"}]}, x3)
check("v2 unknown output name is 400", is_error(st, h, d, 400))
st, h, d = req("POST", "/v2/models/fmnist/infer", b"{}", {"Inference-Header-Content-Length": "99"})
check("v2 header length past the body is 400", is_error(st, h, d, 400))
st, h, d = req("POST", "/v2/models/fmnist/infer", b"{}", {"Inference-Header-Content-Length": "x"})
check("v2 unparsable header length is 400", is_error(st, h, d, 400))
st, h, d = req("POST", "/v2/models/fmnist/infer", json.dumps({"inputs": [inp]}).encode(), {})
check("v2 binary_data_size without the header is 400", is_error(st, h, d, 400))
st, h, d = v2({"inputs": [dict(inp, data=[1.0])]}, x3)
check("v2 both data and binary_data_size is 400", is_error(st, h, d, 400))
st, h, d = req("GET", "/v2")
check("v2 server metadata lists binary_tensor_data", st == 200 and "binary_tensor_data" in json.loads(d)["extensions"])
st, h, d = req("POST", "/predict?model=fmnist", x3, OCT_OUT)
check("still right after the errors", st == 200 and d == y3)

print("binary: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
EOF
