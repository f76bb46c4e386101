#!/usr/bin/python3
"""prometheus-test.py - `make prometheus-test`: a real Prometheus (Debian's
`prometheus` package) scraping a real qatserve, queried through its HTTP API.

  deploy/prometheus/prometheus-test.py --server build/qatserve --qstool build/qstool

1. promtool: `check rules` on alerts.yml, `test rules` on alerts_test.yml,
   and a copy of alerts.yml with a wrong threshold must fail those tests;
2. qatserve on a free port with a copy of the shipped model; Prometheus on
   another free port with deploy/prometheus/prometheus.yml (the shipped
   config: its job, its rule file), only the target and the 1 s scrape and
   evaluation intervals changed (`promtool check config` on it);
3. before any request: the model's request counter and latency histograms
   are already in Prometheus at 0 (series exported from the model's load);
4. every metric family documented in docs/api.md is in Prometheus's metadata
   with its type, and every family the server exports is documented;
5. traffic (/predict, /v2/.../infer, bad requests): each counter rises by
   exactly the number of requests sent;
6. histogram_quantile of the int8, fp32 and whole-request latencies: finite,
   p50 <= p90 <= p99, and the model compute below the whole request;
7. a model replaced on disk shows up as +1 reload; a broken file as +1
   refusal, and the QatserveModelRefused alert fires in Prometheus;
8. qatserve stopped: `up` goes to 0 and QatserveDown is pending.
Everything runs on 127.0.0.1 in a temporary directory, removed at the end.
"""
import argparse
import glob
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
failures = 0


def check(cond, what):
    global failures
    print(("  ok    " if cond else "  FAIL  ") + what, flush=True)
    if not cond:
        failures += 1
    return cond


def fatal(msg):
    print("prometheus-test: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


class Prom:
    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port

    def get(self, path, **params):
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        with urllib.request.urlopen(url, timeout=10) as r:
            j = json.loads(r.read())
        if j.get("status") != "success":
            raise RuntimeError("%s: %s" % (path, j))
        return j["data"]

    def query(self, q):
        return self.get("/api/v1/query", query=q)["result"]

    def value(self, q):
        """The single value of q, or None when there is no series."""
        r = self.query(q)
        if len(r) > 1:
            raise RuntimeError("%s: %d series" % (q, len(r)))
        return float(r[0]["value"][1]) if r else None

    def wait(self, q, pred, timeout=15.0):
        t0 = time.monotonic()
        v = None
        while time.monotonic() - t0 < timeout:
            try:
                v = self.value(q)
            except (OSError, RuntimeError):
                v = None
            if v is not None and pred(v):
                return v, time.monotonic() - t0
            time.sleep(0.2)
        return v, None


def documented_families():
    """Metric families named in docs/api.md's GET /metrics section, with their types."""
    text = open(os.path.join(ROOT, "docs", "api.md")).read()
    # Every name the section shows: the scrape excerpt and the ones named in
    # its prose (qatserve_build_info), wherever the doc puts its code blocks.
    sec = text.split("## GET /metrics", 1)[1].split("\n## ", 1)[0]
    names = set(re.findall(r"\b(qatserve_[a-z0-9_]+)", sec))
    fams = {}
    for n in names:
        base = re.sub(r"_(bucket|sum|count)$", "", n)
        if base + "_bucket" in names:
            fams[base] = "histogram"
        elif n not in fams:
            fams[n] = "counter" if n.endswith("_total") else "gauge"
    return fams


def start_server(server, models):
    log = open(os.path.join(models, "..", "server.log"), "w")
    p = subprocess.Popen([server, "--models", models, "--port", "0", "--threads", "2"],
                         stdout=log, stderr=subprocess.STDOUT)
    path = log.name
    for _ in range(200):
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", open(path).read())
        if m:
            return p, int(m.group(1)), path
        time.sleep(0.05)
    p.kill()
    fatal("qatserve did not start: " + open(path).read()[-500:])


def images(n):
    import gzip
    import struct
    with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", "rb") as f:
        f.read(16)
        raw = f.read(784 * n)
    f32 = lambda v: struct.unpack("f", struct.pack("f", v))[0]
    return [["%.9g" % f32(p / 255.0) for p in raw[i * 784:(i + 1) * 784]] for i in range(n)]


def traffic(port, model, n_predict, n_v2, n_bad):
    rows = images(16)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    codes = {}

    def post(path, body):
        c.request("POST", path, body, {"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        codes[(path, r.status)] = codes.get((path, r.status), 0) + 1

    for i in range(n_predict):
        post("/predict", '{"model":%s,"inputs":[[%s]]}' % (json.dumps(model), ",".join(rows[i % 16])))
    for i in range(n_v2):
        post("/v2/models/%s/infer" % model, json.dumps({"inputs": [{"name": "input", "shape": [1, 784],
                                                                   "datatype": "FP32", "data": [float(v) for v in rows[i % 16]]}]}))
    for i in range(n_bad):  # wrong width: 422, counted under the model
        post("/predict", '{"model":%s,"inputs":[[0.5,0.5]]}' % json.dumps(model))
    c.close()
    return codes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default=os.path.join(ROOT, "build", "qatserve"))
    ap.add_argument("--qstool", default=os.path.join(ROOT, "build", "qstool"))
    a = ap.parse_args()
    for tool in ("prometheus", "promtool"):
        if not shutil.which(tool):
            fatal("%s is not installed (deploy/install-deps.sh --infra installs Debian's prometheus)" % tool)
    t_start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="qs-prom.")
    procs = []
    try:
        # --- 1. the rules, offline ----------------------------------------------
        print("prometheus-test: promtool")
        r = run(["promtool", "check", "rules", "alerts.yml"], cwd=HERE)
        check(r.returncode == 0, "promtool check rules alerts.yml: %s" % (r.stdout.strip().splitlines() or [r.stderr])[-1].strip())
        r = run(["promtool", "test", "rules", "alerts_test.yml"], cwd=HERE)
        check(r.returncode == 0, "promtool test rules alerts_test.yml: %s" % (r.stdout + r.stderr).strip().splitlines()[-1].strip())
        bad = os.path.join(tmp, "rules-bad")
        os.mkdir(bad)
        rules = open(os.path.join(HERE, "alerts.yml")).read()
        open(os.path.join(bad, "alerts.yml"), "w").write(rules.replace("> 0.05\n        for: 5m", "> 0.5\n        for: 5m"))
        shutil.copy(os.path.join(HERE, "alerts_test.yml"), bad)
        r = run(["promtool", "test", "rules", "alerts_test.yml"], cwd=bad)
        check(r.returncode != 0 and "QatserveHighErrorRatio" in r.stdout + r.stderr,
              "promtool test rules fails on a copy whose error-ratio threshold is 0.5 instead of 0.05")

        # --- 2. qatserve and Prometheus -----------------------------------------
        models = os.path.join(tmp, "models")
        os.mkdir(models)
        shipped = sorted(glob.glob(os.path.join(ROOT, "models", "*.safetensors")))
        if shipped:
            shutil.copy(shipped[0], models)
            name = os.path.basename(shipped[0])[:-len(".safetensors")]
        else:
            name = "random"
            subprocess.run([a.qstool, "mkmodel", os.path.join(models, "random.safetensors"), "784,32,10", "11", "class"],
                           check=True, capture_output=True)
        srv, port, srv_log = start_server(a.server, models)
        procs.append(srv)
        cfg = yaml.safe_load(open(os.path.join(HERE, "prometheus.yml")))
        cfg["global"]["scrape_interval"] = "1s"
        cfg["global"]["evaluation_interval"] = "1s"
        cfg["rule_files"] = [os.path.join(HERE, f) for f in cfg["rule_files"]]
        job = next(j for j in cfg["scrape_configs"] if j["job_name"] == "qatserve")
        job["static_configs"] = [{"targets": ["127.0.0.1:%d" % port]}]
        cfg_path = os.path.join(tmp, "prometheus.yml")
        yaml.safe_dump(cfg, open(cfg_path, "w"))
        r = run(["promtool", "check", "config", cfg_path])
        check(r.returncode == 0, "promtool check config: the shipped prometheus.yml, target 127.0.0.1:%d, 1 s intervals" % port)
        pport = free_port()
        plog = open(os.path.join(tmp, "prometheus.log"), "w")
        prom = subprocess.Popen(["prometheus", "--config.file", cfg_path, "--storage.tsdb.path", os.path.join(tmp, "data"),
                                 "--web.listen-address", "127.0.0.1:%d" % pport, "--log.level", "warn"],
                                stdout=plog, stderr=subprocess.STDOUT)
        procs.append(prom)
        P = Prom(pport)
        t0 = time.monotonic()
        while True:
            try:
                with urllib.request.urlopen(P.base + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if prom.poll() is not None or time.monotonic() - t0 > 30:
                fatal("prometheus did not start: " + open(plog.name).read()[-800:])
            time.sleep(0.2)
        v, dt = P.wait('up{job="qatserve"}', lambda x: x == 1)
        version = (run(["prometheus", "--version"]).stdout.split() + ["?"] * 3)[2]
        check(dt is not None, "Prometheus %s (port %d) scrapes qatserve (port %d): up == 1, %.1f s after its start" % (
            version, pport, port, time.monotonic() - t0))

        # --- 3. the model's series exist at zero before any request -------------
        sel = 'model="%s"' % name
        print("prometheus-test: before any request")
        for q in ('qatserve_requests_total{%s,endpoint="predict",code="200"}' % sel,
                  'qatserve_requests_total{%s,endpoint="v2_infer",code="200"}' % sel,
                  'qatserve_requests_total{%s,endpoint="predict",code="422"}' % sel,
                  'qatserve_int8_latency_seconds_count{%s}' % sel,
                  'qatserve_fp32_latency_seconds_count{%s}' % sel,
                  'qatserve_total_latency_seconds_bucket{%s,le="+Inf"}' % sel,
                  'qatserve_drift_rows_total{%s}' % sel):
            v = P.value(q)
            check(v == 0, "%s is in Prometheus at 0 (got %s)" % (q, v))

        # --- 4. documented families and their types -----------------------------
        print("prometheus-test: metric families (docs/api.md vs Prometheus metadata)")
        meta = P.get("/api/v1/metadata")
        doc = documented_families()
        for fam, typ in sorted(doc.items()):
            got = [m["type"] for m in meta.get(fam, [])]
            check(got == [typ], "%s: %s (Prometheus has %s)" % (fam, typ, got or "nothing"))
        extra = sorted(f for f in meta if f.startswith("qatserve_") and f not in doc)
        check(not extra, "every family the server exports is documented in docs/api.md%s" % (
            "" if not extra else ": undocumented " + ", ".join(extra)))

        # --- 5. counters rise by what was sent ----------------------------------
        print("prometheus-test: traffic")
        qs = {
            "predict 200": 'qatserve_requests_total{%s,endpoint="predict",code="200"}' % sel,
            "v2_infer 200": 'qatserve_requests_total{%s,endpoint="v2_infer",code="200"}' % sel,
            "predict 422": 'qatserve_requests_total{%s,endpoint="predict",code="422"}' % sel,
            "int8 latency count": 'qatserve_int8_latency_seconds_count{%s}' % sel,
            "fp32 latency count": 'qatserve_fp32_latency_seconds_count{%s}' % sel,
            "drift rows": 'qatserve_drift_rows_total{%s}' % sel,
        }
        before = {k: P.value(q) for k, q in qs.items()}
        n_predict, n_v2, n_bad = 600, 200, 7
        t_send = time.monotonic()
        codes = traffic(port, name, n_predict, n_v2, n_bad)
        t_send = time.monotonic() - t_send
        want = {"predict 200": n_predict, "v2_infer 200": n_v2, "predict 422": n_bad,
                "int8 latency count": n_predict + n_v2, "fp32 latency count": n_predict + n_v2,
                "drift rows": n_predict + n_v2}
        check(codes.get(("/predict", 200)) == n_predict and codes.get(("/predict", 422)) == n_bad,
              "sent %d /predict (200), %d /v2/models/%s/infer, %d bad /predict (422) in %.2f s: %s" % (
                  n_predict, n_v2, name, n_bad, t_send, {"%s %d" % k: v for k, v in codes.items()}))
        for k, q in qs.items():
            v, dt = P.wait(q, lambda x, k=k: x - before[k] == want[k], timeout=10)
            check(dt is not None, "%s rose by %d in Prometheus (%s -> %s)" % (k, want[k], before[k], v))

        # --- 6. quantiles ----------------------------------------------------------
        print("prometheus-test: histogram_quantile over the last 30 s")
        time.sleep(1.5)
        qv = {}
        for kind in ("int8", "fp32", "total"):
            for q in (0.5, 0.9, 0.99):
                qv[kind, q] = P.value('histogram_quantile(%g, sum by (le) (rate(qatserve_%s_latency_seconds_bucket{%s}[30s])))' % (q, kind, sel))
            ok = all(qv[kind, q] is not None and math.isfinite(qv[kind, q]) and qv[kind, q] > 0 for q in (0.5, 0.9, 0.99))
            check(ok and qv[kind, 0.5] <= qv[kind, 0.9] <= qv[kind, 0.99],
                  "%s latency p50 %s <= p90 %s <= p99 %s, finite" % (kind, *("%.1f us" % (qv[kind, q] * 1e6) if qv[kind, q] is not None else "none" for q in (0.5, 0.9, 0.99))))
        check(qv["int8", 0.5] <= qv["total", 0.5] and qv["fp32", 0.5] <= qv["total", 0.5],
              "model compute below the whole request: int8 p50 %.1f us, fp32 p50 %.1f us <= total p50 %.1f us" % (
                  qv["int8", 0.5] * 1e6, qv["fp32", 0.5] * 1e6, qv["total", 0.5] * 1e6))
        dis = P.value('sum(rate(qatserve_argmax_disagreements_total{%s}[30s])) / sum(rate(qatserve_drift_rows_total{%s}[30s]))' % (sel, sel))
        md = P.value('histogram_quantile(0.99, sum by (le) (rate(qatserve_drift_max_abs_diff_bucket{%s}[30s])))' % sel)
        check(dis is not None and 0 <= dis <= 1 and md is not None and math.isfinite(md),
              "drift: argmax disagreement ratio %s, p99 of max |int8 - fp32| %s (the alert's inputs)" % (dis, md))

        # --- 7. reload and refusal ------------------------------------------------
        print("prometheus-test: reload and refusal")
        rel0 = P.value("qatserve_model_reloads_total")
        ref0 = P.value("qatserve_model_refusals_total")
        new = os.path.join(tmp, "replacement.safetensors")
        subprocess.run([a.qstool, "mkmodel", new, "784,24,10", "13", "class"], check=True, capture_output=True)
        shutil.copy(new, os.path.join(models, ".incoming"))
        os.rename(os.path.join(models, ".incoming"), os.path.join(models, name + ".safetensors"))
        v, dt = P.wait("qatserve_model_reloads_total", lambda x: x == rel0 + 1)
        check(dt is not None, "model replaced on disk: qatserve_model_reloads_total %s -> %s" % (rel0, v))
        with open(os.path.join(models, "broken.safetensors"), "wb") as f:
            f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}  ")
        v, dt = P.wait("qatserve_model_refusals_total", lambda x: x == ref0 + 1)
        check(dt is not None, "broken model file: qatserve_model_refusals_total %s -> %s" % (ref0, v))
        v, dt = P.wait('ALERTS{alertname="QatserveModelRefused",alertstate="firing"}', lambda x: x == 1)
        check(dt is not None, "alert QatserveModelRefused firing in Prometheus (%.1f s after the refusal was scraped)" % (dt or 0))
        v = P.value('qatserve_models_loaded')
        check(v == 1, "the refused file is not served: qatserve_models_loaded %s" % v)

        # --- 8. the server goes away ------------------------------------------------
        srv.send_signal(signal.SIGTERM)
        rc = srv.wait(timeout=20)
        check(rc == 0, "qatserve SIGTERM: exit %d" % rc)
        v, dt = P.wait('up{job="qatserve"}', lambda x: x == 0)
        check(dt is not None, "qatserve stopped: up == 0 in Prometheus after %.1f s" % (dt or 0))
        v, dt = P.wait('ALERTS{alertname="QatserveDown"}', lambda x: x == 1)
        check(dt is not None, "alert QatserveDown pending (it fires after its 1 m 'for')")
        r = run(["grep", "-ci", "level=error", plog.name])
        check(r.stdout.strip() == "0", "Prometheus logged no errors (%s)" % r.stdout.strip())
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    print("prometheus-test: %s in %.0f s" % ("PASS" if not failures else "%d FAILED" % failures, time.monotonic() - t_start))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
