#!/usr/bin/python3
"""test_manifests.py - `make deploy-test`: parses every deployment file and
checks it against what the server really does.

The facts come from the server itself, not from this file:
  - routes: the string literals matched against the URL in server/http/http.c;
  - default port, drain timeout and environment variables: `qatserve --help`;
  - the probe: `qatserve --probe` must fail on a closed port.
Then every Kubernetes manifest (deploy/k8s/**/*.yaml), the compose file, the
Dockerfile and the systemd unit are parsed and their probe paths, ports,
environment variables, users and signals compared with those facts. Last, a
few deliberately broken copies must be caught (the checks can fail).

  deploy/tests/test_manifests.py --server build/qatserve
Prints `deploy-test: N passed, M failed`; exit status 1 if M > 0.
"""
import argparse
import copy
import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    print("deploy-test: python3-yaml is missing (deploy/install-deps.sh installs it)", file=sys.stderr)
    sys.exit(1)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class Results:
    def __init__(self, quiet=False):
        self.passed = 0
        self.failed = 0
        self.quiet = quiet
        self.failures = []

    def check(self, cond, what):
        if cond:
            self.passed += 1
            if not self.quiet:
                print("  ok    " + what)
        else:
            self.failed += 1
            self.failures.append(what)
            if not self.quiet:
                print("  FAIL  " + what)
        return cond


# --- facts from the server ------------------------------------------------------

def server_facts(server):
    src = open(os.path.join(ROOT, "server", "http", "http.c")).read()
    exact = set(re.findall(r'strcmp\(url,\s*"([^"]+)"\)\s*==\s*0', src))
    prefixes = set(re.findall(r'strncmp\(url,\s*"([^"]+)"', src))
    helptext = subprocess.run([server, "--help"], capture_output=True, text=True, check=True).stdout
    port_line = next(l for l in helptext.splitlines() if l.strip().startswith("--port"))
    drain_line = next(l for l in helptext.splitlines() if l.strip().startswith("--drain-timeout"))
    envs = set(re.findall(r"env ([A-Z_][A-Z0-9_]*)", helptext))
    flags = set(re.findall(r"(--[a-z][a-z-]*)", helptext))
    return {
        "routes": exact,
        "prefixes": prefixes,
        "port": int(re.search(r"default (\d+)", port_line).group(1)),
        "drain": int(re.search(r"default (\d+)", drain_line).group(1)),
        "grpc_port": int(re.search(r"--grpc-port.*?default (\d+)", helptext, re.S).group(1)),
        "envs": envs,
        "flags": flags,
        "help": helptext,
    }


def route_ok(facts, path):
    if path in facts["routes"]:
        return True
    # /v2/models/NAME/infer style: a known prefix followed by a name and a known tail.
    return any(path.startswith(p) and len(path) > len(p) for p in facts["prefixes"])


# --- Kubernetes ---------------------------------------------------------------------

def load_k8s():
    docs = []
    files = sorted(glob.glob(os.path.join(ROOT, "deploy", "k8s", "**", "*.yaml"), recursive=True))
    for f in files:
        with open(f) as fh:
            for d in yaml.safe_load_all(fh):
                if d is not None:
                    docs.append((os.path.relpath(f, ROOT), d))
    return docs


def container_port(container, ref):
    """A probe/targetPort reference (name or number) -> containerPort or None."""
    for p in container.get("ports", []):
        if ref == p.get("name") or ref == p.get("containerPort"):
            return p["containerPort"]
    return None


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def check_k8s(R, facts, docs):
    kinds = {}
    patches = []
    for f, d in docs:
        if "kind" in d:
            kinds.setdefault(d["kind"], []).append((f, d))
        else:
            patches.append((f, d))
    R.check(len(kinds.get("Deployment", [])) == 1, "k8s: exactly one Deployment")
    R.check(len(kinds.get("Service", [])) == 1, "k8s: exactly one Service")
    R.check(len(kinds.get("HorizontalPodAutoscaler", [])) == 1, "k8s: exactly one HorizontalPodAutoscaler")
    if not kinds.get("Deployment"):
        return
    _, dep = kinds["Deployment"][0]
    name = dep["metadata"]["name"]
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    R.check(all(labels.get(k) == v for k, v in spec["selector"]["matchLabels"].items()),
            "Deployment: selector matches the pod labels")
    cs = [c for c in pod["containers"] if c["name"] == "qatserve"]
    if not R.check(len(cs) == 1, "Deployment: one container named qatserve"):
        return
    c = cs[0]
    env = env_of(c)
    R.check(set(env) <= facts["envs"],
            "Deployment: env names %s are all read by the server (%s)" % (sorted(env), sorted(facts["envs"])))
    port = int(env.get("PORT", facts["port"]))
    R.check(port == facts["port"], "Deployment: PORT %d is the server default %d" % (port, facts["port"]))
    R.check(env.get("QATSERVE_HOST") in ("0.0.0.0", "::"),
            "Deployment: QATSERVE_HOST listens on all addresses (%r)" % env.get("QATSERVE_HOST"))
    R.check(container_port(c, "http") == port, "Deployment: containerPort 'http' == PORT %d" % port)
    for probe, want in (("readinessProbe", "/v2/health/ready"), ("livenessProbe", "/v2/health/live")):
        p = c.get(probe, {}).get("httpGet", {})
        path = p.get("path")
        R.check(path == want and path in facts["routes"],
                "Deployment: %s path %r is the server route %s" % (probe, path, want))
        R.check(container_port(c, p.get("port")) == port,
                "Deployment: %s port %r resolves to PORT %d" % (probe, p.get("port"), port))
    res = c.get("resources", {})
    R.check(all(k in res.get(kind, {}) for kind in ("requests", "limits") for k in ("cpu", "memory")),
            "Deployment: cpu and memory requests and limits are set")
    threads = env.get("QATSERVE_THREADS")
    lim = str(res.get("limits", {}).get("cpu", ""))
    R.check(threads is not None and lim and float(lim.rstrip("m")) / (1000 if lim.endswith("m") else 1) == float(threads),
            "Deployment: QATSERVE_THREADS %r matches the CPU limit %r" % (threads, lim))
    psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
    R.check(psc.get("runAsNonRoot") is True and int(psc.get("runAsUser", 0)) != 0,
            "Deployment: runAsNonRoot with a non-zero runAsUser")
    R.check(psc.get("runAsUser") == dockerfile_user(),
            "Deployment: runAsUser %r is the image's USER %r" % (psc.get("runAsUser"), dockerfile_user()))
    R.check(csc.get("readOnlyRootFilesystem") is True, "Deployment: readOnlyRootFilesystem")
    R.check(csc.get("allowPrivilegeEscalation") is False, "Deployment: allowPrivilegeEscalation false")
    R.check(csc.get("capabilities", {}).get("drop") == ["ALL"], "Deployment: drops all capabilities")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    R.check(grace > facts["drain"],
            "Deployment: terminationGracePeriodSeconds %d > drain timeout %d" % (grace, facts["drain"]))
    ann = spec["template"]["metadata"].get("annotations", {})
    if "prometheus.io/path" in ann:
        R.check(ann["prometheus.io/path"] in facts["routes"] and int(ann["prometheus.io/port"]) == port,
                "Deployment: prometheus annotations point at a real route and PORT")

    _, svc = kinds["Service"][0]
    R.check(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()),
            "Service: selector matches the Deployment's pods")
    for p in svc["spec"]["ports"]:
        R.check(container_port(c, p["targetPort"]) == port,
                "Service: targetPort %r resolves to PORT %d" % (p["targetPort"], port))

    _, hpa = kinds["HorizontalPodAutoscaler"][0]
    ref = hpa["spec"]["scaleTargetRef"]
    R.check(ref["kind"] == "Deployment" and ref["name"] == name, "HPA: targets the Deployment %s" % name)
    ms = hpa["spec"].get("metrics", [])
    R.check(any(m.get("type") == "Resource" and m["resource"]["name"] == "cpu" for m in ms), "HPA: scales on CPU")
    R.check(1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"], "HPA: 1 <= minReplicas <= maxReplicas")

    pvcs = kinds.get("PersistentVolumeClaim", [])
    for f, patch in patches:
        ps = patch["spec"]["template"]["spec"]
        mounts = [m for pc in ps["containers"] if pc["name"] == "qatserve" for m in pc.get("volumeMounts", [])]
        mm = [m for m in mounts if m["mountPath"] == env.get("QATSERVE_MODELS", "/models")]
        R.check(len(mm) == 1 and mm[0].get("readOnly") is True,
                "%s: mounts the models directory %s read-only" % (f, env.get("QATSERVE_MODELS")))
        claims = [v["persistentVolumeClaim"]["claimName"] for v in ps.get("volumes", []) if "persistentVolumeClaim" in v]
        R.check(all(cl in [p["metadata"]["name"] for _, p in pvcs] for cl in claims),
                "%s: claims %s exist in deploy/k8s/" % (f, claims))


# --- compose ---------------------------------------------------------------------------

def check_compose(R, facts, comp):
    svcs = comp.get("services", {})
    if not R.check("qatserve" in svcs, "compose: a qatserve service"):
        return
    s = svcs["qatserve"]
    env = s.get("environment", {})
    R.check(set(env) <= facts["envs"], "compose: env names %s are read by the server" % sorted(env))
    port = int(env.get("PORT", facts["port"]))
    R.check(port == facts["port"], "compose: PORT %d is the server default" % port)
    R.check(env.get("QATSERVE_HOST") in ("0.0.0.0", "::"), "compose: QATSERVE_HOST listens on all addresses")
    inner = [int(str(p).split(":")[-1].split("/")[0]) for p in s.get("ports", [])]
    R.check(inner == [port], "compose: published container port %s == PORT %d" % (inner, port))
    test = s.get("healthcheck", {}).get("test", [])
    R.check(test[:1] == ["CMD"] and "--probe" in test and test[1].endswith("qatserve"),
            "compose: healthcheck runs `qatserve --probe` (no shell or curl in the image)")
    vols = [v.split(":") for v in s.get("volumes", [])]
    models = env.get("QATSERVE_MODELS", "/models")
    R.check(any(len(v) >= 2 and v[1] == models for v in vols), "compose: a volume on the models directory %s" % models)
    R.check(s.get("stop_signal") == "SIGTERM", "compose: stop_signal SIGTERM")
    w = svcs.get("wrk")
    if not R.check(w is not None and "loadtest" in w.get("profiles", []), "compose: a wrk service in the loadtest profile"):
        return
    cmd = w.get("command", [])
    urls = [a for a in cmd if a.startswith("http://")]
    ok = len(urls) == 1
    if ok:
        m = re.match(r"http://([^:/]+):(\d+)(/.*)$", urls[0])
        ok = bool(m) and m.group(1) == "qatserve" and int(m.group(2)) == port and route_ok(facts, m.group(3))
    R.check(ok, "compose: wrk targets a real route on qatserve:%d (%s)" % (port, urls))
    R.check(w.get("depends_on", {}).get("qatserve", {}).get("condition") == "service_healthy",
            "compose: wrk waits for a healthy qatserve")
    scripts = [a for a in cmd if a.endswith(".lua")]
    host = {}
    for v in w.get("volumes", []):
        src, dst = v.split(":")[:2]
        host[dst] = os.path.normpath(os.path.join(ROOT, "deploy", src))
    if not os.path.isdir(os.path.join(ROOT, "deploy", "wrk")):
        if not R.quiet:
            print("  skip  deploy/wrk/ not there yet (it comes with make loadtest)")
        scripts = []
    for sc in scripts:
        d = os.path.dirname(sc)
        path = os.path.join(host.get(d, "/nonexistent"), os.path.basename(sc))
        R.check(os.path.isfile(path), "compose: wrk script %s exists (%s)" % (sc, os.path.relpath(path, ROOT)))
    b = w.get("build", {})
    if b:
        R.check(os.path.isfile(os.path.join(ROOT, "deploy", b.get("context", "."), b.get("dockerfile", "Dockerfile"))),
                "compose: wrk build file exists")


# --- Dockerfile ------------------------------------------------------------------------

def dockerfile_final_stage():
    text = open(os.path.join(ROOT, "Dockerfile")).read()
    text = re.sub(r"\\\n", " ", text)
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]
    last = max(i for i, l in enumerate(lines) if l.upper().startswith("FROM "))
    return lines[last:]


def dockerfile_user():
    for l in dockerfile_final_stage():
        if l.upper().startswith("USER "):
            return int(l.split()[1].split(":")[0])
    return None


def check_dockerfile(R, facts):
    st = dockerfile_final_stage()
    instr = {}
    for l in st:
        k, _, v = l.partition(" ")
        instr.setdefault(k.upper(), []).append(v.strip())
    env = {}
    for v in instr.get("ENV", []):
        for k, val in re.findall(r"([A-Z_][A-Z0-9_]*)=(\S+)", v):
            env[k] = val
    R.check(set(env) - {"PATH"} <= facts["envs"], "Dockerfile: ENV names %s are read by the server" % sorted(env))
    R.check(int(env.get("PORT", 0)) == facts["port"], "Dockerfile: ENV PORT == server default %d" % facts["port"])
    R.check(env.get("QATSERVE_HOST") in ("0.0.0.0", "::"), "Dockerfile: QATSERVE_HOST listens on all addresses")
    R.check(instr.get("EXPOSE") == ["%d %d" % (facts["port"], facts["grpc_port"])],
            "Dockerfile: EXPOSE %d %d (HTTP, gRPC)" % (facts["port"], facts["grpc_port"]))
    R.check(instr.get("STOPSIGNAL") == ["SIGTERM"], "Dockerfile: STOPSIGNAL SIGTERM")
    hc = " ".join(instr.get("HEALTHCHECK", []))
    R.check('"--probe"' in hc and "qatserve" in hc, "Dockerfile: HEALTHCHECK is `qatserve --probe`")
    u = dockerfile_user()
    R.check(u is not None and u != 0, "Dockerfile: USER is numeric and not root (%r)" % u)


# --- systemd ---------------------------------------------------------------------------

def parse_unit(path):
    sec, out = None, {}
    for l in open(path):
        l = l.strip()
        if not l or l.startswith("#"):
            continue
        if l.startswith("["):
            sec = l.strip("[]")
            continue
        k, _, v = l.partition("=")
        out.setdefault((sec, k), []).append(v)
    return out


def check_systemd(R, facts, server, unit_path):
    u = parse_unit(unit_path)
    g = lambda k: u.get(("Service", k), [])
    envs = dict(e.split("=", 1) for e in g("Environment"))
    R.check(set(envs) <= facts["envs"], "systemd: Environment names %s are read by the server" % sorted(envs))
    R.check(int(envs.get("PORT", facts["port"])) == facts["port"], "systemd: PORT is the server default")
    R.check(g("ExecReload") == ["/bin/kill -HUP $MAINPID"], "systemd: reload sends SIGHUP")
    for k, v in (("DynamicUser", "yes"), ("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"),
                 ("KillSignal", "SIGTERM")):
        R.check(g(k) == [v], "systemd: %s=%s" % (k, v))
    models = envs.get("QATSERVE_MODELS")
    R.check(models is not None and models in " ".join(g("ReadOnlyPaths")).split(),
            "systemd: the models directory %s is a ReadOnlyPath" % models)
    stop = int(g("TimeoutStopSec")[0]) if g("TimeoutStopSec") else 90
    R.check(stop > facts["drain"], "systemd: TimeoutStopSec %d > drain timeout %d" % (stop, facts["drain"]))
    sa = shutil.which("systemd-analyze")
    if sa:
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "qatserve.service")
            text = open(unit_path).read().replace("/usr/local/bin/qatserve", os.path.abspath(server))
            open(p, "w").write(text)
            r = subprocess.run([sa, "verify", p], capture_output=True, text=True)
            msg = (r.stdout + r.stderr).strip()
            R.check(r.returncode == 0 and not msg, "systemd: `systemd-analyze verify` is clean%s" % (": " + msg if msg else ""))
    else:
        print("  skip  systemd-analyze not installed")


# --- the probe --------------------------------------------------------------------------

def check_probe(R, server):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    env = dict(os.environ, PORT=str(port), QATSERVE_HOST="0.0.0.0")
    r = subprocess.run([server, "--probe"], env=env, capture_output=True, timeout=10)
    R.check(r.returncode == 1, "qatserve --probe exits 1 when nothing listens on $PORT")


# --- the checks must be able to fail ------------------------------------------------------

def mutation_tests(R, facts, docs, comp):
    base = Results(quiet=True)
    check_k8s(base, facts, docs)
    check_compose(base, facts, comp)
    R.check(base.failed == 0, "negative controls start from files that pass")

    def fails(fn, what):
        q = Results(quiet=True)
        fn(q)
        R.check(q.failed > 0, "negative control caught: " + what)

    def dep_of(ds):
        return next(d for _, d in ds if d.get("kind") == "Deployment")

    def k8s_mut(mut):
        ds = copy.deepcopy(docs)
        mut(dep_of(ds)["spec"]["template"]["spec"]["containers"][0], ds)
        return lambda q: check_k8s(q, facts, ds)

    fails(k8s_mut(lambda c, ds: c["readinessProbe"]["httpGet"].update(path="/healthz")), "readiness path /healthz")
    fails(k8s_mut(lambda c, ds: c["livenessProbe"]["httpGet"].update(path="/v2/health/ready")), "liveness on the ready path")
    fails(k8s_mut(lambda c, ds: c["ports"][0].update(containerPort=9090)), "containerPort 9090")
    fails(k8s_mut(lambda c, ds: c["env"].append({"name": "QATSERVE_PROT", "value": "1"})), "misspelt env name")
    fails(k8s_mut(lambda c, ds: c["securityContext"].update(readOnlyRootFilesystem=False)), "writable root filesystem")
    c2 = copy.deepcopy(comp)
    c2["services"]["qatserve"]["healthcheck"]["test"] = ["CMD", "curl", "-f", "http://localhost:8080/v2/health/ready"]
    fails(lambda q: check_compose(q, facts, c2), "compose healthcheck with curl")
    c3 = copy.deepcopy(comp)
    c3["services"]["wrk"]["command"] = [a.replace("/predict", "/predictt") for a in c3["services"]["wrk"]["command"]]
    fails(lambda q: check_compose(q, facts, c3), "wrk against a route that does not exist")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default=os.path.join(ROOT, "build", "qatserve"))
    a = ap.parse_args()
    R = Results()
    facts = server_facts(a.server)
    R.check({"/v2/health/ready", "/v2/health/live", "/predict"} <= facts["routes"],
            "server/http/http.c routes include /predict and the v2 health endpoints (%d routes)" % len(facts["routes"]))
    R.check({"PORT", "QATSERVE_HOST", "QATSERVE_MODELS"} <= facts["envs"],
            "qatserve --help lists the environment variables %s" % sorted(facts["envs"]))
    check_probe(R, a.server)
    docs = load_k8s()
    print("k8s (%d documents):" % len(docs))
    check_k8s(R, facts, docs)
    with open(os.path.join(ROOT, "deploy", "docker-compose.yml")) as fh:
        comp = yaml.safe_load(fh)
    print("compose:")
    check_compose(R, facts, comp)
    dc = shutil.which("docker-compose")  # Debian's docker-compose 1.29: schema check, offline
    if dc:
        r = subprocess.run([dc, "-f", os.path.join(ROOT, "deploy", "docker-compose.yml"), "--profile", "loadtest",
                            "config", "-q"], capture_output=True, text=True)
        R.check(r.returncode == 0, "compose: `docker-compose config` accepts the file%s"
                % (": " + (r.stdout + r.stderr).strip()[:300] if r.returncode else ""))
    else:
        print("  skip  docker-compose not installed (optional: its `config` validates the schema)")
    print("Dockerfile:")
    check_dockerfile(R, facts)
    print("systemd:")
    check_systemd(R, facts, a.server, os.path.join(ROOT, "deploy", "qatserve.service"))
    print("negative controls:")
    mutation_tests(R, facts, docs, comp)
    print("deploy-test: %d passed, %d failed" % (R.passed, R.failed))
    sys.exit(1 if R.failed else 0)


if __name__ == "__main__":
    main()
