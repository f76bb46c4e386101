"""abuse.py - hostile requests against a running qatserve (started by abuse.sh).

Every case checks the status and that the body is exactly {"error": "..."};
all the while a well-behaved client on its own keep-alive connection posts a
real request every few milliseconds and compares each answer, number for
number (the same shortest round-trip text), with core's outputs computed by qstool.

    abuse.py PORT EXPECT_JSON CONN_TIMEOUT_S
EXPECT_JSON: {"row": [784 numbers as text], "outputs": [...], "prediction": k}
Ends with "abuse-test: N passed, M failed"; exit 1 on any failure.
Python stdlib only.
"""
import http.client
import json
import os
import socket
import sys
import threading
import time

PORT = int(sys.argv[1])
EXP = json.load(open(sys.argv[2]))
CONN_TIMEOUT = float(sys.argv[3])
SERVER_PID = int(sys.argv[4]) if len(sys.argv) > 4 else 0
HOST = "127.0.0.1"
GOOD_BODY = ('{"model":"fm","inputs":[[' + ",".join(EXP["row"]) + "]]}").encode()
ROW = "[" + ",".join(EXP["row"]) + "]"

passed = 0
failed = 0


def ok(desc):
    global passed
    passed += 1


def bad(desc, detail=""):
    global failed
    failed += 1
    print("FAIL: %s %s" % (desc, detail), file=sys.stderr)


def check(desc, cond, detail=""):
    if cond:
        ok(desc)
    else:
        bad(desc, detail)


# ---- the well-behaved client -------------------------------------------------

class Good(threading.Thread):
    """Posts the reference request on one keep-alive connection until stopped;
    every answer must be 200 with exactly core's outputs."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.n_ok = 0
        self.errors = []
        self.max_latency = 0.0

    def run(self):
        conn = http.client.HTTPConnection(HOST, PORT, timeout=10)
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                conn.request("POST", "/predict", GOOD_BODY, {"Content-Type": "application/json"})
                r = conn.getresponse()
                body = r.read()
            except Exception as e:  # a dropped connection is a failure too
                self.errors.append("connection: %r" % (e,))
                conn.close()
                conn = http.client.HTTPConnection(HOST, PORT, timeout=10)
                time.sleep(0.05)
                continue
            dt = time.monotonic() - t0
            self.max_latency = max(self.max_latency, dt)
            if r.status != 200:
                self.errors.append("status %d: %r" % (r.status, body[:200]))
                continue
            s = json.loads(body, parse_float=str, parse_int=str)
            if s["outputs"] != [EXP["outputs"]] or s["predictions"] != [str(EXP["prediction"])]:
                self.errors.append("wrong answer: %r" % (body[:200],))
            else:
                self.n_ok += 1
            time.sleep(0.005)
        conn.close()


# ---- helpers -------------------------------------------------------------------

def request(method, path, body=None, headers=None, timeout=20):
    """One request on a new connection: (status, parsed JSON or None, headers,
    raw body). A server may answer before the body is all sent (413 on the
    Content-Length) and close: the send error is ignored and the answer read."""
    h = {"Content-Type": "application/json", "Host": "x"}
    h.update(headers or {})
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogateescape")
    head = "%s %s HTTP/1.1\r\n" % (method, path)
    for k, v in h.items():
        head += "%s: %s\r\n" % (k, v)
    if body is not None:
        head += "Content-Length: %d\r\n" % len(body)
    head += "Connection: close\r\n\r\n"
    s = socket.create_connection((HOST, PORT), timeout=timeout)
    try:
        s.sendall(head.encode("latin-1") + (body or b""))
    except (BrokenPipeError, ConnectionResetError):
        pass
    out = b""
    try:
        while True:
            k = s.recv(1 << 16)
            if not k:
                break
            out += k
    except ConnectionResetError:
        pass
    s.close()
    headpart, _, raw = out.partition(b"\r\n\r\n")
    lines = headpart.split(b"\r\n")
    hdrs = []
    for l in lines[1:]:
        k, _, v = l.partition(b":")
        hdrs.append((k.decode("latin-1").strip(), v.decode("latin-1").strip()))
    if any(k.lower() == "transfer-encoding" and "chunked" in v for k, v in hdrs):
        dec = b""
        rest = raw
        while rest:
            n, _, rest = rest.partition(b"\r\n")
            size = int(n.split(b";")[0] or b"0", 16)
            if size == 0:
                break
            dec += rest[:size]
            rest = rest[size + 2:]
        raw = dec
    try:
        d = json.loads(raw)
    except Exception:
        d = None
    return status_of(out), d, hdrs, raw


def is_error(d):
    return isinstance(d, dict) and list(d.keys()) == ["error"] and isinstance(d["error"], str) and d["error"]


def expect(desc, status, method, path, body=None, headers=None):
    """status: one code or a tuple of acceptable ones."""
    want = status if isinstance(status, tuple) else (status,)
    try:
        st, d, _, raw = request(method, path, body, headers)
    except Exception as e:
        bad(desc, "request failed: %r" % (e,))
        return
    if st in want and (st == 200 or is_error(d)):
        ok(desc)
    else:
        bad(desc, "want %s + JSON error, got %d %r" % (want, st, raw[:160]))


def predict(desc, status, body):
    expect(desc, status, "POST", "/predict", body)


def raw_exchange(data, timeout=10):
    """Sends raw bytes on a new socket; returns the first response's bytes."""
    s = socket.create_connection((HOST, PORT), timeout=timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            k = s.recv(65536)
            if not k:
                break
            out += k
            if b"\r\n\r\n" in out:
                head, _, rest = out.partition(b"\r\n\r\n")
                cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if cl and len(rest) >= int(cl[0].split(b":")[1]):
                    break
    except socket.timeout:
        pass
    s.close()
    return out


def status_of(resp):
    try:
        return int(resp.split(b" ", 2)[1])
    except Exception:
        return 0


def body_of(resp):
    try:
        return json.loads(resp.partition(b"\r\n\r\n")[2])
    except Exception:
        return None


def fd_count():
    try:
        return len(os.listdir("/proc/%d/fd" % SERVER_PID))
    except Exception:
        return -1


def rss_kb():
    try:
        for l in open("/proc/%d/status" % SERVER_PID):
            if l.startswith("VmRSS:"):
                return int(l.split()[1])
    except Exception:
        pass
    return -1


# ---- the cases -------------------------------------------------------------------

def case_json():
    predict("malformed JSON", 400, '{"model":"fm","inputs":[[1,2,}')
    predict("truncated JSON", 400, GOOD_BODY[: len(GOOD_BODY) // 2])
    predict("empty body", 400, "")
    predict("not an object", 400, "[1,2,3]")
    predict("trailing garbage", 400, GOOD_BODY.decode() + "xyz")
    predict("missing inputs", 400, '{"model":"fm"}')
    predict("inputs not an array", 400, '{"model":"fm","inputs":"abc"}')
    predict("empty inputs", 422, '{"model":"fm","inputs":[]}')
    predict("duplicate keys", 400, '{"model":"fm","model":"fm","inputs":[%s]}' % ROW)
    predict("duplicate inputs", 400, '{"model":"fm","inputs":[%s],"inputs":[%s]}' % (ROW, ROW))
    predict("invalid UTF-8 in a string", 400, b'{"model":"f\xffm","inputs":[' + ROW.encode() + b"]}")
    predict("invalid UTF-8 in an unknown member", 400, b'{"x":"\xc3\x28","model":"fm","inputs":[' + ROW.encode() + b"]}")
    predict("NUL byte in the body", 400, GOOD_BODY + b"\0")
    predict("wrong option type", 400, '{"model":"fm","baseline":"yes","inputs":[%s]}' % ROW)
    predict("unknown mode", 400, '{"model":"fm","mode":"turbo","inputs":[%s]}' % ROW)
    deep = '{"model":"fm","inputs":' + "[" * 1000000 + "]" * 1000000 + "}"
    t0 = time.monotonic()
    predict("JSON nested a million levels deep", 400, deep)
    check("nested body refused fast", time.monotonic() - t0 < 5.0, "%.1f s" % (time.monotonic() - t0))
    deep2 = '{"x":' + "[" * 1000000 + "]" * 1000000 + ',"model":"fm","inputs":[%s]}' % ROW
    predict("deep nesting in another member", 400, deep2)
    deepo = '{"x":' + '{"a":' * 200000 + "1" + "}" * 200000 + ',"model":"fm","inputs":[%s]}' % ROW
    predict("deep object nesting", 400, deepo)


def case_numbers():
    vals = EXP["row"]

    def with_first(tok):
        return '{"model":"fm","inputs":[[' + ",".join([tok] + vals[1:]) + "]]}"

    for tok, st, name in [('"0.5"', 400, "string"), ("null", 400, "null"), ("true", 400, "true"),
                          ("false", 400, "false"), ("{}", 400, "object"), ("[0]", 400, "array"),
                          ("NaN", 422, "NaN"), ("Infinity", 422, "Infinity"), ("-Infinity", 422, "-Infinity"),
                          ("1e999", 422, "1e999"), ("-1e999", 422, "-1e999"), ("1e+99999999999", 422, "huge exponent"),
                          ("3.5e38", 422, "beyond float"), ("0x10", 400, "hex"), ("0x1p3", 400, "hex float"),
                          ("+1", 400, "leading plus"), ("01", 400, "leading zero"), (".5", 400, "bare fraction"),
                          ("1.", 400, "bare point"), ("1e", 400, "bare exponent"), ("--1", 400, "double minus"),
                          ("1" * 600, 400, "600-digit number")]:
        predict("number slot holds %s" % name, st, with_first(tok))
    # Valid oddities answer 200.
    for tok, name in [("-0", "-0"), ("1e-99999", "tiny exponent"), ("0.0e0", "0.0e0"), ("1E+2", "1E+2"),
                      ("3.4028234e38", "float max")]:
        predict("number slot holds %s (valid)" % name, 200, with_first(tok))


def case_shapes():
    predict("wrong width (783)", 422, '{"model":"fm","inputs":[[' + ",".join(EXP["row"][:-1]) + "]]}")
    predict("wrong width (785)", 422, '{"model":"fm","inputs":[[' + ",".join(EXP["row"] + ["0"]) + "]]}")
    predict("ragged rows", 422, '{"model":"fm","inputs":[%s,[1,2]]}' % ROW)
    predict("empty row", 422, '{"model":"fm","inputs":[[]]}')
    predict("batch over --max-batch (1025 rows)", 413, '{"model":"tiny","inputs":[' + ",".join(["[0,1]"] * 1025) + "]}")
    predict("1025 rows of 784 over the body cap", 413, '{"model":"fm","inputs":[' + ",".join([ROW] * 1025) + "]}")
    # A million rows of the 2-wide model is 6 MB (over the body cap); 600k
    # rows fit the cap and meet --max-batch instead: both 413.
    t0 = time.monotonic()
    predict("a batch of a million rows", 413, '{"model":"tiny","inputs":[' + ",".join(["[0,0]"] * 1000000) + "]}")
    predict("600k rows inside the body cap", 413, '{"model":"tiny","inputs":[' + ",".join(["[0,1]"] * 600000) + "]}")
    check("million-row batch refused fast", time.monotonic() - t0 < 10.0)
    v2 = {"inputs": [{"name": "input", "shape": [1000000, 784], "datatype": "FP32", "data": [0.0] * 784}]}
    expect("v2 shape claims a million rows", 413, "POST", "/v2/models/fm/infer", json.dumps(v2))
    v2["inputs"][0]["shape"] = [1, 783]
    expect("v2 wrong width", 422, "POST", "/v2/models/fm/infer", json.dumps(v2))
    v2["inputs"][0]["shape"] = [2, 784]
    expect("v2 data shorter than shape", 422, "POST", "/v2/models/fm/infer", json.dumps(v2))
    v2["inputs"][0]["shape"] = [1, 784]
    v2["inputs"][0]["datatype"] = "INT64"
    expect("v2 wrong datatype", 400, "POST", "/v2/models/fm/infer", json.dumps(v2))
    v2["inputs"][0]["datatype"] = "FP32"
    v2["inputs"][0]["shape"] = [-1, 784]
    expect("v2 negative batch", 400, "POST", "/v2/models/fm/infer", json.dumps(v2))
    v2["inputs"][0]["shape"] = [99999999999999999999999, 784]
    expect("v2 batch beyond int64", 400, "POST", "/v2/models/fm/infer", json.dumps(v2))


def case_names():
    predict("unknown model", 404, '{"model":"nope","inputs":[%s]}' % ROW)
    predict("model name ../", 400, '{"model":"../fm","inputs":[%s]}' % ROW)
    predict("model name with a NUL", 400, '{"model":"fm\\u0000x","inputs":[%s]}' % ROW)
    predict("model name of 10 kB", 400, '{"model":"%s","inputs":[%s]}' % ("a" * 10240, ROW))
    predict("model name not a string", 400, '{"model":7,"inputs":[%s]}' % ROW)
    body = json.dumps({"inputs": [{"name": "input", "shape": [1, 784], "datatype": "FP32", "data": [0.0] * 784}]})
    for path, st, name in [("/v2/models/nope/infer", 404, "unknown"),
                           ("/v2/models/../fm/infer", (400, 404), "../"),
                           ("/v2/models/..%2ffm/infer", (400, 404), "..%2f"),
                           ("/v2/models/%2e%2e/infer", 400, "%2e%2e"),
                           ("/v2/models/%2e%2e%2f%2e%2e%2fetc%2fpasswd/infer", (400, 404), "%2e%2e%2f..."),
                           ("/v2/models/fm%00/infer", 400, "%00"),
                           ("/v2/models/fm%00x/infer", 400, "%00x"),
                           ("/v2/models/" + "a" * 10240 + "/infer", 400, "10 kB"),
                           ("/v2/models/.hidden/infer", 400, "leading dot")]:
        expect("v2 model name %s" % name, st, "POST", path, body)
    for path, st, name in [("/v2/models/fm%00", 400, "GET %00"), ("/models/%2e%2e", 400, "GET /models/%2e%2e"),
                           ("/models/fm%00x", 400, "GET /models/fm%00x")]:
        expect("model info %s" % name, st, "GET", path)


def case_methods():
    for m, p, st in [("GET", "/predict", 405), ("PUT", "/predict", 405), ("DELETE", "/predict", 405),
                     ("PATCH", "/v2/models/fm/infer", 405), ("GET", "/v2/models/fm/infer", 405),
                     ("POST", "/v2/health/live", 405), ("POST", "/metrics", 405), ("DELETE", "/models", 405),
                     ("BREW", "/predict", 405), ("GET", "/nowhere", 404), ("POST", "/predict/extra", 404)]:
        expect("%s %s" % (m, p), st, m, p, GOOD_BODY if m in ("POST", "PUT", "PATCH") else None)
    st, d, hdrs, _ = request("GET", "/predict")
    check("405 names the allowed method", dict((k.lower(), v) for k, v in hdrs).get("allow") == "POST")


def case_content_type():
    expect("multipart body", 415, "POST", "/predict", GOOD_BODY,
           {"Content-Type": "multipart/form-data; boundary=x"})
    expect("form body", 400, "POST", "/predict", "model=fm&inputs=1",
           {"Content-Type": "application/x-www-form-urlencoded"})
    # JSON only as JSON: text/plain is what a form on another site can post
    # without a CORS preflight; look-alike types are not the real ones.
    for ct in ("text/plain", "text/plain; charset=utf-8", "application/jsonx",
               "application/octet-streamX", "application/octet-stream-x", "json", "",
               "application/", "/json"):
        expect("Content-Type %r refused" % ct, 415, "POST", "/predict", GOOD_BODY,
               {"Content-Type": ct})
    for ct in ("application/json", "APPLICATION/JSON", "application/json; charset=utf-8",
               " application/json ;charset=UTF-8"):
        expect("Content-Type %r accepted" % ct, 200, "POST", "/predict", GOOD_BODY,
               {"Content-Type": ct})
    # Accept: q=0 is "not acceptable"; the most specific range decides.
    for acc, binary in (("application/octet-stream", True),
                        ("application/octet-stream;q=0", False),
                        ("application/octet-stream; q=0.0", False),
                        ("application/octet-stream;q=0.5, application/json", False),
                        ("application/json;q=0.2, application/octet-stream;q=0.9", True),
                        ("application/octet-streamX", False),
                        ("*/*", False),
                        ("application/octet-stream, */*;q=0.1", True)):
        st, _, hdrs, raw = request("POST", "/predict", GOOD_BODY, {"Accept": acc})
        ct = dict((k.lower(), v) for k, v in hdrs).get("content-type", "")
        got = ct.startswith("application/octet-stream")
        check("Accept %r -> %s reply" % (acc, "binary" if binary else "JSON"),
              st == 200 and got == binary, "%d %s" % (st, ct))


def raw_all(data, timeout=3.0):
    """Sends raw bytes; reads until the server closes or timeout: (bytes,
    closed by the server, seconds taken)."""
    s = socket.create_connection((HOST, PORT), timeout=timeout)
    t0 = time.monotonic()
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    out, closed = b"", False
    try:
        while True:
            k = s.recv(65536)
            if not k:
                closed = True
                break
            out += k
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    s.close()
    return out, closed, time.monotonic() - t0


def case_framing():
    """RFC 9112 framing: an ambiguous body length is one 4xx/501 and the
    connection closed, so nothing hidden after it runs as a second request."""
    hidden = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    n = str(len(GOOD_BODY)).encode()
    cases = [
        ("two different Content-Lengths", 400,
         head + b"Content-Length: 5\r\nContent-Length: " + n + b"\r\n\r\n" + GOOD_BODY + hidden),
        ("two equal Content-Lengths", 400,
         head + b"Content-Length: " + n + b"\r\nContent-Length: " + n + b"\r\n\r\n" + GOOD_BODY + hidden),
        ("Content-Length with Transfer-Encoding: chunked", 400,
         head + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden),
        ("Transfer-Encoding: gzip", 501, head + b"Transfer-Encoding: gzip\r\n\r\nxyz"),
        ("Transfer-Encoding: gzip, chunked", 501,
         head + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + hidden),
        ("Transfer-Encoding: chunked, chunked", 400,
         head + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n" + hidden),
        ("two Transfer-Encoding lines", 400,
         head + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden),
        ("Transfer-Encoding in HTTP/1.0", 400,
         head.replace(b"HTTP/1.1", b"HTTP/1.0") + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("GET with two Content-Lengths", 400,
         b"GET /models HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 3\r\n\r\n" + hidden),
    ]
    for desc, want, data in cases:
        out, closed, dt = raw_all(data)
        lines = [x for x in out.split(b"\r\n") if x.startswith(b"HTTP/1.1 ")]
        ok_ = (status_of(out) == want and len(lines) == 1 and closed and dt < 2.5
               and b"live" not in out)
        check("%s: one %d, connection closed (%.2f s)" % (desc, want, dt), ok_, repr(out[:120]))
    # A chunked body alone is fine.
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(GOOD_BODY), GOOD_BODY)
    out, closed, dt = raw_all(head + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunked)
    check("a chunked body is served", status_of(out) == 200 and b"outputs" in out, repr(out[:120]))
    # Invalid Content-Length values are answered by libmicrohttpd 0.9.75
    # itself, before any callback of ours: a 400 whose header block it
    # repeats, then the connection closed. What matters for smuggling: the
    # request hidden after it never runs (docs/reliability.md).
    # The same for a HTTP/1.1 request without Host (MHD_OPTION_STRICT_FOR_CLIENT).
    for v in (b"-5", b"abc", b"18446744073709551616", b"5 5", b"0x10", None):
        if v is None:
            out, closed, dt = raw_all(b"GET /models HTTP/1.1\r\n\r\n" + hidden)
        else:
            out, closed, dt = raw_all(head + b"Content-Length: " + v + b"\r\n\r\n" + hidden)
        statuses = [int(x.split(b" ", 2)[1]) for x in out.split(b"\r\n") if x.startswith(b"HTTP/1.1 ")]
        check("%s: 4xx only, connection closed, hidden request not run"
              % ("Content-Length %r" % v if v else "HTTP/1.1 without Host"),
              statuses and all(400 <= x < 500 for x in statuses) and closed and b"live" not in out,
              repr(out[:160]))


def case_big_body():
    # Content-Length of 100 MB: answered 413 before the body is read.
    size = 100 * 1024 * 1024
    rss0 = rss_kb()
    s = socket.create_connection((HOST, PORT), timeout=10)
    t0 = time.monotonic()
    s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % size)
    sent = 0
    chunk = b"[" * (1 << 20)
    resp = b""
    s.settimeout(0.001)
    try:
        while sent < size:
            try:
                k = s.recv(65536)
                if k:
                    resp += k
                    break
                break
            except socket.timeout:
                pass
            s.settimeout(5)
            sent += s.send(chunk)
            s.settimeout(0.001)
    except (BrokenPipeError, ConnectionResetError):
        pass
    s.settimeout(5)
    try:
        while b"\r\n\r\n" not in resp:
            k = s.recv(65536)
            if not k:
                break
            resp += k
    except Exception:
        pass
    dt = time.monotonic() - t0
    s.close()
    check("100 MB body (Content-Length) refused 413", status_of(resp) == 413, repr(resp[:120]))
    check("100 MB body refused within 2 s", dt < 2.0, "%.2f s" % dt)
    check("100 MB body not buffered (sent %d MB before the answer)" % (sent >> 20), sent < size)
    print("  100 MB body: 413 after %.3f s, %d MB sent, server RSS %d -> %d kB" % (dt, sent >> 20, rss0, rss_kb()))
    # Chunked, no Content-Length: libmicrohttpd cannot answer mid-body, so
    # the server keeps nothing past --max-body, answers 413 at the end of an
    # 8 MB body, and closes a 100 MB one at 16 x --max-body.
    for total, name in ((8 << 20, "8 MB"), (size, "100 MB")):
        s = socket.create_connection((HOST, PORT), timeout=10)
        t0 = time.monotonic()
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        sent = 0
        piece = b"%x\r\n" % (1 << 20) + b"[" * (1 << 20) + b"\r\n"
        cut = False
        try:
            while sent < total:
                s.sendall(piece)
                sent += 1 << 20
            s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            cut = True
        resp = b""
        try:
            while b"\r\n\r\n" not in resp:
                k = s.recv(65536)
                if not k:
                    break
                resp += k
        except (ConnectionResetError, socket.timeout):
            pass
        dt = time.monotonic() - t0
        s.close()
        if total < size:
            check("%s chunked body answered 413" % name, status_of(resp) == 413 and is_error(body_of(resp)),
                  repr(resp[:120]))
        else:
            check("100 MB chunked body: connection cut (%d MB sent)" % (sent >> 20),
                  (cut or status_of(resp) == 0) and sent <= 80 << 20, repr(resp[:80]))
        check("%s chunked body over within 5 s (%.2f s)" % (name, dt), dt < 5.0)
    check("100 MB bodies left RSS below +64 MB", rss_kb() - rss0 < 65536, "%d -> %d kB" % (rss0, rss_kb()))
    r = raw_exchange(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n")
    check("Content-Length beyond 64 bits refused", status_of(r) in (400, 413), repr(r[:80]))
    r = raw_exchange(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")
    check("negative Content-Length refused", status_of(r) in (400, 413), repr(r[:80]))


def case_slow_clients(good):
    """Slow clients trickle a header byte a second; others are answered at once.
    A client that stalls mid-header, and one that keeps trickling, is cut
    after --conn-timeout."""
    line = b"POST /predict HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    socks = []
    for _ in range(8):
        s = socket.create_connection((HOST, PORT), timeout=5)
        socks.append(s)
    stalled = socket.create_connection((HOST, PORT), timeout=CONN_TIMEOUT + 10)
    stalled.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")  # then nothing
    t_stall = time.monotonic()
    worst = 0.0
    pos = 0
    t_end = time.monotonic() + CONN_TIMEOUT + 2
    while time.monotonic() < t_end:
        for s in socks:
            try:
                s.send(line[pos:pos + 1])
            except OSError:
                pass
        pos = (pos + 1) % len(line)
        t0 = time.monotonic()
        st, d, _, _ = request("POST", "/predict", GOOD_BODY)
        worst = max(worst, time.monotonic() - t0)
        check("request answered while 8 clients trickle headers", st == 200)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))
    check("normal request prompt under slow clients (worst %.3f s)" % worst, worst < 0.5)
    try:
        stalled.settimeout(CONN_TIMEOUT + 5)
        k = stalled.recv(100)
        closed = True  # a 408 or a plain close: both end it
    except socket.timeout:
        closed = False
    except OSError:
        closed = True
    dt = time.monotonic() - t_stall
    check("stalled client cut after --conn-timeout (%.1f s)" % dt, closed and dt < CONN_TIMEOUT + 4)
    # The tricklers sent a byte a second for longer than --conn-timeout:
    # each must have been cut (the whole request has that long).
    cut = 0
    for s in socks:
        s.settimeout(2)
        try:
            cut += s.recv(100) == b""
        except OSError:
            cut += 1
        s.close()
    check("clients trickling headers cut after --conn-timeout (%d of 8)" % cut, cut == 8)
    stalled.close()


def case_idle_connections(good):
    """2000 idle connections: past --conn-limit they are refused; the ones
    held are cut at --conn-timeout; the keep-alive client never notices;
    afterwards new connections are served and the fds are back."""
    fd0 = fd_count()
    n0 = good.n_ok
    socks = []
    for _ in range(2000):
        try:
            s = socket.create_connection((HOST, PORT), timeout=2)
            socks.append(s)
        except OSError:
            break
    check("opened 2000 idle connections", len(socks) == 2000, "opened %d" % len(socks))
    fd_mid = fd_count()
    time.sleep(1.0)
    check("keep-alive client served while 2000 idle connections are open", good.n_ok > n0 + 10,
          "%d answers" % (good.n_ok - n0))
    time.sleep(CONN_TIMEOUT + 2)
    t0 = time.monotonic()
    st = 0
    while time.monotonic() - t0 < 5:
        try:
            st, _, _, _ = request("POST", "/predict", GOOD_BODY, timeout=2)
            if st == 200:
                break
        except OSError:
            time.sleep(0.2)
    check("new connection served after idle ones time out", st == 200)
    for s in socks:
        s.close()
    time.sleep(0.5)
    fd1 = fd_count()
    print("  idle connections: server fds %d -> %d (2000 open) -> %d" % (fd0, fd_mid, fd1))
    check("server fds back after idle connections close", fd1 <= fd0 + 4, "%d -> %d" % (fd0, fd1))


def main():
    good = Good()
    good.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    for f in (case_json, case_numbers, case_shapes, case_names, case_methods, case_content_type,
              case_framing, case_big_body):
        f()
    case_slow_clients(good)
    case_idle_connections(good)
    good.stop.set()
    good.join(15)
    check("well-behaved client got only right answers (%d answers, %d errors)" % (good.n_ok, len(good.errors)),
          not good.errors and good.n_ok > 100, "; ".join(good.errors[:3]))
    print("  well-behaved client: %d correct answers, worst latency %.3f s, %d errors; cases took %.1f s"
          % (good.n_ok, good.max_latency, len(good.errors), time.monotonic() - t0))
    print("abuse-test: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


main()
