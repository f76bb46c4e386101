#!/usr/bin/python3
"""test_grpc.py - the gRPC listener against a real client: Python's grpcio
with stubs generated from proto/grpc_predict_v2.proto at test time.

  /usr/bin/python3 tests/grpc/test_grpc.py BUILD_DIR     (make grpc-test)

Every RPC; ModelInfer outputs bit for bit against /predict (JSON and binary)
for batches of 1, 7 and 64 rows, inputs as raw_input_contents and as
contents.fp32_contents; every error code; a client that cancels mid-call; a
100 MB message refused before it is buffered (server peak RSS checked);
HTTP/1.1 and garbage bytes on the gRPC port; drain on SIGTERM. Servers run
on free loopback ports and are stopped by the test. Ends with
"grpc: N passed, M failed"; exits non-zero on any failure."""
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
SERVER = os.path.join(ROOT, BUILD, "qatserve")
QSTOOL = os.path.join(ROOT, BUILD, "qstool")
TMP = tempfile.mkdtemp(prefix="qs-grpc.")

subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I" + os.path.join(ROOT, "proto"),
                "--python_out=" + TMP, "--grpc_python_out=" + TMP,
                os.path.join(ROOT, "proto", "grpc_predict_v2.proto")], check=True)
sys.path.insert(0, TMP)
import grpc  # noqa: E402
import grpc_predict_v2_pb2 as pb  # noqa: E402
import grpc_predict_v2_pb2_grpc as pbg  # noqa: E402

passed = failed = 0
servers = []


def check(desc, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL: %s %s" % (desc, detail), file=sys.stderr)


class Server:
    def __init__(self, *args, env=None):
        self.log = os.path.join(TMP, "server%d.log" % len(servers))
        e = dict(os.environ)
        e.update(env or {})
        self.p = subprocess.Popen([SERVER, "--models", os.path.join(TMP, "models"), "--host", "127.0.0.1",
                                   "--port", "0", "--grpc-port", "0", "--threads", "2", "--max-body", "3000000",
                                   "--max-batch", "256"] + list(args),
                                  stdout=open(self.log, "w"), stderr=subprocess.STDOUT, env=e)
        servers.append(self)
        self.http = self.grpc = None
        for _ in range(200):
            text = open(self.log).read()
            h = re.search(r"listening on http://127\.0\.0\.1:(\d+)", text)
            g = re.search(r"listening on grpc://127\.0\.0\.1:(\d+)", text)
            if h and g:
                self.http, self.grpc = int(h.group(1)), int(g.group(1))
                break
            if self.p.poll() is not None:
                break
            time.sleep(0.05)
        if not self.grpc:
            raise SystemExit("grpc: server did not start:\n" + open(self.log).read())
        self.ch = grpc.insecure_channel("127.0.0.1:%d" % self.grpc,
                                        options=[("grpc.max_send_message_length", -1),
                                                 ("grpc.max_receive_message_length", -1)])
        self.stub = pbg.GRPCInferenceServiceStub(self.ch)

    def stop(self):
        self.ch.close()
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()

    def post(self, path, body, headers):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.http, path), data=body, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def get(self, path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.http, path), timeout=30) as r:
            return r.read().decode()

    def rss_peak_kb(self):
        for line in open("/proc/%d/status" % self.p.pid):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0


def f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


def rows_of(n, k, seed):
    r = random.Random(seed)
    # 17-digit decimals as real clients print them; values exact as float32.
    return [[f32(r.uniform(-1.0, 2.0)) for _ in range(k)] for _ in range(n)]


def infer_request(model, rows, form, **kw):
    k = len(rows[0])
    flat = [v for row in rows for v in row]
    t = pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP32", shape=[len(rows), k])
    req = pb.ModelInferRequest(model_name=model, inputs=[t], **kw)
    if form == "raw":
        req.raw_input_contents.append(struct.pack("<%df" % len(flat), *flat))
    else:
        req.inputs[0].contents.fp32_contents.extend(flat)
    return req


def code_of(fn):
    try:
        fn()
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


def param(resp, key):
    p = resp.parameters[key]
    return getattr(p, p.WhichOneof("parameter_choice"))


try:
    os.makedirs(os.path.join(TMP, "models"))
    subprocess.run([QSTOOL, "mkmodel", os.path.join(TMP, "models", "m.safetensors"), "24,32,5", "3", "c-"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([QSTOOL, "mkmodel", os.path.join(TMP, "models", "w.safetensors"), "784,32,10", "4"],
                   check=True, stdout=subprocess.DEVNULL)
    S = Server("--conn-timeout", "5")
    st = S.stub

    # ---- every RPC ---------------------------------------------------------
    check("ServerLive", st.ServerLive(pb.ServerLiveRequest()).live is True)
    check("ServerReady", st.ServerReady(pb.ServerReadyRequest()).ready is True)
    md = st.ServerMetadata(pb.ServerMetadataRequest())
    check("ServerMetadata", md.name == "qatserve" and re.match(r"\d+\.\d+", md.version), str(md))
    mm = st.ModelMetadata(pb.ModelMetadataRequest(name="m"))
    check("ModelMetadata shapes", mm.name == "m" and list(mm.inputs[0].shape) == [-1, 24] and
          list(mm.outputs[0].shape) == [-1, 5] and mm.inputs[0].datatype == "FP32" and
          mm.outputs[0].name == "output" and len(mm.versions) == 1 and mm.platform, str(mm))
    ver = mm.versions[0]
    check("ModelReady known", st.ModelReady(pb.ModelReadyRequest(name="m")).ready is True)
    check("ModelReady known, its version", st.ModelReady(pb.ModelReadyRequest(name="m", version=ver)).ready is True)
    check("ModelReady unknown is false", st.ModelReady(pb.ModelReadyRequest(name="nope")).ready is False)
    check("ModelReady other version is false",
          st.ModelReady(pb.ModelReadyRequest(name="m", version="999")).ready is False)

    # ---- ModelInfer bit for bit against /predict ---------------------------
    for model, k in (("m", 24), ("w", 784)):
        for n in (1, 7, 64):
            rows = rows_of(n, k, n * 31 + k)
            body = json.dumps({"model": model, "inputs": rows}).encode()
            code, out, _ = S.post("/predict", body, {"Content-Type": "application/json"})
            ref = json.loads(out)
            ref8 = [f32(v) for row in ref["outputs"] for v in row]
            flat = [v for row in rows for v in row]
            code_b, out_b, hdr_b = S.post("/predict?model=" + model, struct.pack("<%df" % len(flat), *flat),
                                          {"Content-Type": "application/octet-stream",
                                           "Accept": "application/octet-stream"})
            for form in ("raw", "fp32"):
                r = st.ModelInfer(infer_request(model, rows, form, id="req-%s-%d" % (form, n)))
                got = r.raw_output_contents[0]
                vals = list(struct.unpack("<%df" % (len(got) // 4), got))
                tag = "%s %d rows %s" % (model, n, form)
                check("ModelInfer %s: outputs equal /predict's bit for bit" % tag,
                      code == 200 and vals == ref8, "(%d vs %d values)" % (len(vals), len(ref8)))
                check("ModelInfer %s: raw bytes equal binary /predict's" % tag, code_b == 200 and got == out_b)
                check("ModelInfer %s: shape, names, id, version" % tag,
                      list(r.outputs[0].shape) == [n, len(ref["outputs"][0])] and r.outputs[0].datatype == "FP32"
                      and r.outputs[0].name == "output" and r.id == "req-%s-%d" % (form, n)
                      and r.model_name == model and r.model_version == str(ref["version"]))
                check("ModelInfer %s: drift equals /predict's" % tag,
                      f32(param(r, "max_abs_diff")) == f32(ref["drift"]["max_abs_diff"]) and
                      abs(param(r, "argmax_agreement") - ref["drift"]["argmax_agreement"]) < 1e-6)
                check("ModelInfer %s: latencies" % tag,
                      param(r, "int8_us") > 0 and param(r, "fp32_us") > 0 and param(r, "total_us") >= param(r, "int8_us")
                      and param(r, "mode") == "static" and abs(param(r, "speedup") - param(r, "fp32_us") / param(r, "int8_us")) < 1e-3 * param(r, "speedup") + 1e-3)

    rows = rows_of(7, 24, 5)
    code, out, _ = S.post("/predict", json.dumps({"model": "m", "inputs": rows, "mode": "dynamic"}).encode(),
                          {"Content-Type": "application/json"})
    ref = json.loads(out)
    p = {"mode": pb.InferParameter(string_param="dynamic"), "baseline": pb.InferParameter(bool_param=False)}
    r = st.ModelInfer(infer_request("m", rows, "raw", parameters=p))
    vals = list(struct.unpack("<35f", r.raw_output_contents[0]))
    check("ModelInfer dynamic mode equals /predict's", vals == [f32(v) for row in ref["outputs"] for v in row])
    check("baseline false: no fp32 time nor drift", "fp32_us" not in r.parameters and
          "max_abs_diff" not in r.parameters and param(r, "mode") == "dynamic")
    r = st.ModelInfer(infer_request("m", rows, "raw", model_version=ver,
                                    outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="output")]))
    check("model_version and a requested output are accepted", len(r.raw_output_contents) == 1)

    # ---- errors ------------------------------------------------------------
    IA, NF, RE = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.RESOURCE_EXHAUSTED

    def bad(desc, want, req, text=None, call=None):
        c, d = code_of(lambda: (call or st.ModelInfer)(req))
        check("%s -> %s" % (desc, want.name), c == want and (text is None or text in d), "(got %s: %s)" % (c, d))

    good = infer_request("m", rows_of(2, 24, 1), "raw")
    r = pb.ModelInferRequest()
    r.CopyFrom(good)
    r.inputs[0].datatype = "INT32"
    bad("INT32 input", IA, r, "FP32")
    r.CopyFrom(good)
    r.inputs[0].shape[:] = [2, 23]
    bad("wrong width", IA, r, "width")
    r.CopyFrom(good)
    r.inputs[0].shape[:] = [2, 24, 1]
    bad("three dimensions", IA, r, "shape")
    r.CopyFrom(good)
    r.inputs[0].shape[:] = [0, 24]
    bad("zero rows", IA, r, "shape")
    r.CopyFrom(good)
    r.raw_input_contents[0] = r.raw_input_contents[0][:-4]
    bad("raw bytes short of the shape", IA, r, "bytes")
    r.CopyFrom(good)
    r.raw_input_contents.append(b"")
    bad("two raw entries for one input", IA, r, "entries")
    r.CopyFrom(good)
    r.inputs[0].contents.fp32_contents.extend([1.0] * 48)
    bad("raw and contents both", IA, r, "both")
    r = infer_request("m", rows_of(2, 24, 1), "fp32")
    del r.inputs[0].contents.fp32_contents[-1]
    bad("fp32_contents short of the shape", IA, r, "fp32_contents")
    r = infer_request("m", rows_of(2, 24, 1), "fp32")
    r.inputs[0].contents.fp32_contents[30] = float("nan")
    bad("NaN input", IA, r, "row 1, column 6")
    r = infer_request("m", rows_of(2, 24, 1), "fp32")
    r.inputs[0].contents.ClearField("fp32_contents")
    r.inputs[0].contents.int_contents.extend([1] * 48)
    bad("int_contents for FP32", IA, r, "fp32_contents")
    r = infer_request("m", rows_of(2, 24, 1), "fp32")
    r.inputs[0].contents.ClearField("fp32_contents")
    bad("no data", IA, r, "no data")
    r.CopyFrom(good)
    r.parameters["baseline"].string_param = "yes"
    bad("baseline as a string", IA, r, "baseline")
    r.CopyFrom(good)
    r.parameters["mode"].string_param = "fast"
    bad("unknown mode", IA, r, "mode")
    r.CopyFrom(good)
    r.outputs.add(name="probs")
    bad("unknown output", IA, r, "probs")
    r.CopyFrom(good)
    r.inputs.add(name="second", datatype="FP32", shape=[1, 24])
    bad("two inputs", IA, r, "one input")
    r.CopyFrom(good)
    r.model_name = "bad name!"
    bad("invalid model name", IA, r)
    raw_call = S.ch.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                                request_serializer=lambda b: b, response_deserializer=lambda b: b)
    bad("malformed protobuf", IA, b"\x0a\xff\xff\xff\xff\x0f", "malformed", call=raw_call)
    r.CopyFrom(good)
    r.model_name = "nope"
    bad("unknown model", NF, r, "nope")
    r.CopyFrom(good)
    r.model_version = "12345"
    bad("unknown version", NF, r, "version")
    bad("ModelMetadata of an unknown model", NF, pb.ModelMetadataRequest(name="nope"), call=st.ModelMetadata)
    bad("257 rows (--max-batch 256)", RE, infer_request("m", rows_of(257, 24, 2), "raw"), "max-batch")
    big = infer_request("w", rows_of(1, 784, 2), "raw")
    big.raw_input_contents[0] = b"\0" * 3000001
    bad("message over --max-body", RE, big, "max-body")
    unimpl = S.ch.unary_unary("/inference.GRPCInferenceService/RepositoryIndex",
                              request_serializer=lambda b: b, response_deserializer=lambda b: b)
    c, d = code_of(lambda: unimpl(b""))
    check("an unknown method -> UNIMPLEMENTED", c == grpc.StatusCode.UNIMPLEMENTED, "(got %s)" % c)
    check("the server still serves after the errors", st.ModelInfer(good).raw_output_contents[0])
    check("a message with a % and non-ASCII bytes comes back intact",
          code_of(lambda: st.ModelInfer(pb.ModelInferRequest(model_name="n%\u00e9")))[1].startswith("invalid model name"))

    # ---- a 100 MB message is refused before it is buffered -----------------
    base = S.rss_peak_kb()
    huge = infer_request("w", rows_of(1, 784, 2), "raw")
    huge.raw_input_contents[0] = b"\0" * (100 * 1024 * 1024)
    t0 = time.time()
    c, d = code_of(lambda: st.ModelInfer(huge, timeout=60))
    peak = S.rss_peak_kb()
    check("100 MB message -> RESOURCE_EXHAUSTED", c == RE and "max-body" in d,
          "(got %s: %s)\n%s" % (c, d, open(S.log).read()[-800:]))
    check("100 MB message: server peak RSS grew < 20 MB (%d -> %d kB)" % (base, peak), peak - base < 20 * 1024)
    print("grpc: 100 MB message refused in %.2f s; server peak RSS %d -> %d kB" % (time.time() - t0, base, peak))
    check("serving after the 100 MB message", st.ModelInfer(good).raw_output_contents[0])

    # ---- HTTP/1.1 and garbage on the gRPC port ------------------------------
    s = socket.create_connection(("127.0.0.1", S.grpc), timeout=5)
    s.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n")
    reply = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
    s.close()
    check("HTTP/1.1 on the gRPC port gets a plain 505 and a close", reply.startswith(b"HTTP/1.1 505") and
          b"gRPC" in reply, repr(reply[:80]))
    rnd = random.Random(9)
    for i in range(20):
        s = socket.create_connection(("127.0.0.1", S.grpc), timeout=5)
        junk = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 3000)))
        if i % 2:  # a valid preface, then garbage frames
            junk = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + junk
        try:
            s.sendall(junk)
            s.settimeout(5)
            while s.recv(4096):
                pass
        except OSError:
            pass
        s.close()
    check("garbage bytes: the server keeps serving gRPC", st.ServerLive(pb.ServerLiveRequest()).live)
    check("garbage bytes: and HTTP", json.loads(S.get("/v2/health/live"))["live"] is True)

    # ---- concurrency: many clients, every answer exact ----------------------
    rows = rows_of(3, 784, 77)
    want = st.ModelInfer(infer_request("w", rows, "raw")).raw_output_contents[0]
    errors = []

    def hammer(i):
        ch = grpc.insecure_channel("127.0.0.1:%d" % S.grpc)
        stb = pbg.GRPCInferenceServiceStub(ch)
        for j in range(40):
            try:
                got = stb.ModelInfer(infer_request("w", rows, "raw" if j % 2 else "fp32")).raw_output_contents[0]
                if got != want:
                    errors.append("mismatch")
            except grpc.RpcError as e:
                errors.append(str(e.code()))
        ch.close()
    th = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
    [t.start() for t in th]
    [t.join() for t in th]
    check("8 clients x 40 calls: all OK and identical", not errors, str(errors[:3]))

    # ---- metrics by protocol ------------------------------------------------
    m = S.get("/metrics")
    g = re.search(r'qatserve_requests_total\{model="w",endpoint="ModelInfer",code="OK",protocol="grpc"\} (\d+)', m)
    check("metrics count gRPC calls by method and status", g and int(g.group(1)) >= 320)
    check("metrics count gRPC errors", 'endpoint="ModelInfer",code="NOT_FOUND",protocol="grpc"' in m and
          'code="RESOURCE_EXHAUSTED",protocol="grpc"' in m)
    check("HTTP series carry protocol=\"http\"", 'endpoint="predict",code="200",protocol="http"' in m)
    S.stop()

    # ---- a client that goes away mid-call; drain on SIGTERM -----------------
    D = Server("--drain-timeout", "10", env={"QATSERVE_TEST_DELAY_MS": "700"})
    good_w = infer_request("m", rows_of(2, 24, 1), "raw")
    fut = D.stub.ModelInfer.future(good_w)
    time.sleep(0.2)
    fut.cancel()
    ch2 = grpc.insecure_channel("127.0.0.1:%d" % D.grpc)
    f2 = pbg.GRPCInferenceServiceStub(ch2).ModelInfer.future(good_w)
    time.sleep(0.2)
    ch2.close()  # the whole connection goes
    time.sleep(1.0)
    check("after clients left mid-call the server answers", D.stub.ModelInfer(good_w).raw_output_contents[0])
    c, d = code_of(lambda: D.stub.ModelInfer(good_w, timeout=0.3))
    check("a call slower than its deadline -> DEADLINE_EXCEEDED", c == grpc.StatusCode.DEADLINE_EXCEEDED,
          "(got %s)" % c)
    time.sleep(0.8)  # the server finishes that call (the test delay) into the reset stream
    # Calls run on the I/O thread as soon as their message is in, so these two
    # were answered into a reset stream / a closed socket: nothing may leak.
    check("no call is left in flight after clients went away",
          re.search(r"^qatserve_requests_in_flight 1$", D.get("/metrics"), re.M))  # 1: the /metrics request itself
    # A client that goes away while its message is still arriving.
    mid = infer_request("w", rows_of(1, 784, 2), "raw")
    mid.raw_input_contents[0] = b"\0" * (2900000 // 3136 * 3136)
    mid.inputs[0].shape[:] = [2900000 // 3136, 784]
    for _ in range(5):
        ch3 = grpc.insecure_channel("127.0.0.1:%d" % D.grpc)
        f3 = pbg.GRPCInferenceServiceStub(ch3).ModelInfer.future(mid)
        time.sleep(0.002)
        ch3.close()
    time.sleep(0.5)
    check("after uploads cut off the server answers", D.stub.ModelInfer(good_w).raw_output_contents[0])
    check("and nothing is left in flight",
          re.search(r"^qatserve_requests_in_flight 1$", D.get("/metrics"), re.M))  # 1: the /metrics request itself
    slow = D.stub.ModelInfer.future(good_w)
    time.sleep(0.05)
    # Same connection, so it waits behind the slow call on the server's I/O
    # thread and is read only after SIGTERM, past the GOAWAY's last stream:
    # refused (REFUSED_STREAM), which the client retries, finds the port
    # closed, and reports UNAVAILABLE.
    queued = D.stub.ModelInfer.future(good_w)
    time.sleep(0.15)
    D.p.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    c, d = code_of(lambda: D.stub.ModelInfer(good_w, timeout=5))
    check("a call after SIGTERM -> UNAVAILABLE", c == grpc.StatusCode.UNAVAILABLE, "(got %s: %s)" % (c, d))
    c, d = code_of(lambda: queued.result(timeout=10))
    check("a call that reaches the server while it drains -> UNAVAILABLE",
          c == grpc.StatusCode.UNAVAILABLE, "(got %s: %s)" % (c, d))
    try:
        ok = slow.result(timeout=10).raw_output_contents[0]
    except grpc.RpcError as e:
        ok = None
        print("  in-flight call failed:", e.code(), e.details(), file=sys.stderr)
    check("the call in flight at SIGTERM completes", ok)
    try:
        rc = D.p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        rc = None
    check("drained server exits 0", rc == 0, "(rc %s)" % rc)
    D.stop()

    # ---- connection limit and idle timeout ------------------------------------
    L = Server("--conn-limit", "2", "--conn-timeout", "1")
    held = []
    for _ in range(2):
        s = socket.create_connection(("127.0.0.1", L.grpc), timeout=5)
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        held.append(s)
    time.sleep(0.2)
    s = socket.create_connection(("127.0.0.1", L.grpc), timeout=5)
    try:
        third = s.recv(100)
    except OSError:
        third = b""
    s.close()
    check("--conn-limit 2: a third connection is closed at once", third == b"", repr(third[:20]))
    t0 = time.time()
    closed = 0
    for h in held:
        try:
            while h.recv(4096):
                pass
            closed += 1
        except OSError:
            pass
        h.close()
    check("--conn-timeout 1: idle connections are closed (%.1f s)" % (time.time() - t0),
          closed == 2 and time.time() - t0 < 4)
    check("after the limit and the timeout a client is served", L.stub.ServerLive(pb.ServerLiveRequest()).live)
    L.stop()

    # ---- --grpc-port -1 -------------------------------------------------------
    out = subprocess.run([SERVER, "--models", os.path.join(TMP, "models"), "--port", "0", "--grpc-port", "x"],
                         capture_output=True, text=True)
    check("--grpc-port x is refused with exit 2", out.returncode == 2)
    off = subprocess.Popen([SERVER, "--models", os.path.join(TMP, "models"), "--port", "0", "--grpc-port", "-1"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    banner = ""
    for _ in range(100):
        line = off.stdout.readline()
        banner += line
        if "listening on http" in line or not line:
            break
    off.kill()
    off.wait()
    check("--grpc-port -1: no gRPC listener", "listening on http" in banner and "grpc://" not in banner, banner)
finally:
    for s in servers:
        s.stop()
    shutil.rmtree(TMP, ignore_errors=True)

print("grpc: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
