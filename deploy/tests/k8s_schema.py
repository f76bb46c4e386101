#!/usr/bin/python3
"""k8s_schema.py - checks every Kubernetes manifest in deploy/k8s/ against the
Kubernetes API schema with the official Python client's models (Debian's
python3-kubernetes), for the kinds podman does not play (Service,
HorizontalPodAutoscaler) and the ones it does (Deployment,
PersistentVolumeClaim, and the Deployment with the models-volume patch).

How: each object goes through kubernetes.client.ApiClient.deserialize into its
model class (V1Service, V1Deployment, ...) with client-side validation on, as
if the API server had returned it: a missing required field or a value of the
wrong type raises. The model is then serialized back and compared with the
file: a field the schema does not know (a misspelt key) is dropped by the
model, and a value the schema coerced (8080 given where a string belongs)
changes, so both show up as differences. Last, the objects must fit together
(Service selector = pod labels, named target port exists, HPA target = the
Deployment, CPU requests present for a Utilization target, the claim exists),
and broken copies must be caught (the checks can fail).

python3-kubernetes 22.6 (Kubernetes 1.22) predates autoscaling/v2 (GA in
1.23); v2 is v2beta2 promoted without field changes, so autoscaling/v2 is
checked with the V2beta2 models.

  deploy/tests/k8s_schema.py [--write-play FILE --image IMG --host-port N --models-claim]
Prints one line per check; exit status 1 if any fails.
"""
import argparse
import copy
import glob
import json
import os
import re
import sys

import yaml

try:
    import kubernetes.client as kc
except ImportError:
    print("k8s-schema: python3-kubernetes is missing (deploy/install-deps.sh --containers)", file=sys.stderr)
    sys.exit(1)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
K8S = os.path.join(ROOT, "deploy", "k8s")

MODELS = {
    ("v1", "Service"): "V1Service",
    ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "V2beta2HorizontalPodAutoscaler",
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler"): "V2beta2HorizontalPodAutoscaler",
    ("autoscaling/v1", "HorizontalPodAutoscaler"): "V1HorizontalPodAutoscaler",
}

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print("  ok    " + what)
    else:
        failed += 1
        print("  FAIL  " + what)
    return cond


class _Resp:
    def __init__(self, obj):
        self.data = json.dumps(obj)


def diff(a, b, path=""):
    """Differences between the file (a) and its round trip (b)."""
    out = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in a:
            if k not in b:
                out.append("%s.%s: not a field of the schema" % (path, k))
            else:
                out += diff(a[k], b[k], "%s.%s" % (path, k))
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            out += diff(x, y, "%s[%d]" % (path, i))
    elif a != b or type(a) != type(b):
        out.append("%s: %r does not fit the schema (read as %r)" % (path or ".", a, b))
    return out


def validate(obj):
    """Errors for one object (an empty list if it fits the schema)."""
    if not isinstance(obj, dict):
        return ["not a mapping"]
    key = (obj.get("apiVersion"), obj.get("kind"))
    cls = MODELS.get(key)
    if not cls:
        return ["%s/%s: no schema known here" % key]
    api = kc.ApiClient()
    try:
        model = api.deserialize(_Resp(obj), cls)
    except (ValueError, TypeError) as e:
        return ["%s: %s" % (cls, e)]
    back = api.sanitize_for_serialization(model)
    return ["%s%s" % (cls, d) for d in diff(obj, back)] + ["%s%s" % (cls, e) for e in int_or_string(obj)]


def int_or_string(o, path=""):
    """Ports typed IntOrString are plain `object` in the client models: check
    them as the API server does (1..65535, or an IANA service name)."""
    out = []
    if isinstance(o, dict):
        for k, v in o.items():
            if k in ("port", "targetPort") and not isinstance(v, dict):
                ok = (isinstance(v, int) and not isinstance(v, bool) and 0 < v < 65536) or (
                    isinstance(v, str) and 0 < len(v) <= 15 and re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", v)
                    and re.search("[a-z]", v))
                if not ok:
                    out.append("%s.%s: %r is neither a port number nor a port name" % (path, k, v))
            else:
                out += int_or_string(v, "%s.%s" % (path, k))
    elif isinstance(o, list):
        for i, v in enumerate(o):
            out += int_or_string(v, "%s[%d]" % (path, i))
    return out


def strategic_merge(base, patch):
    """The subset of kubectl's strategic merge the patch uses: maps merge,
    lists of named maps (containers, volumes, volumeMounts) merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = strategic_merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(patch, list) and all(
            isinstance(x, dict) and "name" in x for x in base + patch):
        out = [copy.deepcopy(x) for x in base]
        for p in patch:
            for i, x in enumerate(out):
                if x["name"] == p["name"]:
                    out[i] = strategic_merge(x, p)
                    break
            else:
                out.append(copy.deepcopy(p))
        return out
    return copy.deepcopy(patch)


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def manifests():
    objs = {}
    for path in sorted(glob.glob(os.path.join(K8S, "**", "*.yaml"), recursive=True)):
        for d in load(path):
            if "kind" in d:
                objs[(d["kind"], d["metadata"]["name"])] = (os.path.relpath(path, ROOT), d)
    patch = load(os.path.join(K8S, "extra", "models-volume-patch.yaml"))[0]
    return objs, patch


def fit_together(dep, svc, hpa, pvc):
    errs = []
    pod = dep["spec"]["template"]
    labels = pod["metadata"].get("labels", {})
    sel = svc["spec"].get("selector", {})
    if not sel or any(labels.get(k) != v for k, v in sel.items()):
        errs.append("Service selector %r does not select the pods (labels %r)" % (sel, labels))
    msel = dep["spec"]["selector"].get("matchLabels", {})
    if any(labels.get(k) != v for k, v in msel.items()):
        errs.append("Deployment selector %r does not match its pod labels" % msel)
    names = {p.get("name") for c in pod["spec"]["containers"] for p in c.get("ports", [])}
    nums = {p.get("containerPort") for c in pod["spec"]["containers"] for p in c.get("ports", [])}
    for p in svc["spec"]["ports"]:
        t = p.get("targetPort", p.get("port"))
        if (isinstance(t, str) and t not in names) or (isinstance(t, int) and t not in nums):
            errs.append("Service targetPort %r is not a container port" % t)
    ref = hpa["spec"]["scaleTargetRef"]
    if (ref.get("apiVersion"), ref.get("kind"), ref.get("name")) != (dep["apiVersion"], dep["kind"], dep["metadata"]["name"]):
        errs.append("HPA scaleTargetRef %r is not the Deployment" % ref)
    for m in hpa["spec"].get("metrics", []):
        r = m.get("resource", {})
        if m.get("type") == "Resource" and r.get("target", {}).get("type") == "Utilization":
            if not all(r["name"] in c.get("resources", {}).get("requests", {}) for c in pod["spec"]["containers"]):
                errs.append("HPA Utilization of %s needs %s requests on every container" % (r["name"], r["name"]))
    if hpa["spec"].get("minReplicas", 1) > hpa["spec"]["maxReplicas"]:
        errs.append("HPA minReplicas > maxReplicas")
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["spec"].get("volumes", []) if "persistentVolumeClaim" in v}
    if pvc and claims and pvc["metadata"]["name"] not in claims:
        errs.append("the patch mounts claim %r, the PVC is %r" % (claims, pvc["metadata"]["name"]))
    mounts = {m["name"] for c in pod["spec"]["containers"] for m in c.get("volumeMounts", [])}
    vols = {v["name"] for v in pod["spec"].get("volumes", [])}
    if mounts - vols:
        errs.append("volumeMounts without a volume: %r" % sorted(mounts - vols))
    return errs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--write-play", help="write the Deployment (+ models patch and PVC) for podman kube play here")
    ap.add_argument("--image", default="localhost/qatserve:test")
    ap.add_argument("--host-port", type=int, default=0)
    a = ap.parse_args()

    objs, patch = manifests()
    dep = objs[("Deployment", "qatserve")][1]
    svc = objs[("Service", "qatserve")][1]
    hpa = objs[("HorizontalPodAutoscaler", "qatserve")][1]
    pvc = objs.get(("PersistentVolumeClaim", "qatserve-models"), (None, None))[1]
    merged = strategic_merge(dep, patch)

    print("k8s-schema: deploy/k8s/ against the Kubernetes API schema (python3-kubernetes %s)" % kc.__version__
          if hasattr(kc, "__version__") else "k8s-schema:")
    for (kind, name), (path, obj) in sorted(objs.items()):
        errs = validate(obj)
        check(not errs, "%s %s/%s (%s) fits the schema%s" % (path, kind, name, MODELS.get((obj["apiVersion"], kind)), "" if not errs else ": " + "; ".join(errs)))
    errs = validate(merged)
    check(not errs, "deployment.yaml + extra/models-volume-patch.yaml fits the schema" + ("" if not errs else ": " + "; ".join(errs)))
    errs = fit_together(merged, svc, hpa, pvc)
    check(not errs, "Service, HPA, PVC and Deployment fit together" + ("" if not errs else ": " + "; ".join(errs)))

    # Broken copies: each must be caught.
    def broken(what, obj, fn, together=False):
        o = copy.deepcopy(obj)
        fn(o)
        if together:
            errs = fit_together(o if o.get("kind") == "Deployment" else merged,
                                o if o.get("kind") == "Service" else svc,
                                o if o.get("kind") == "HorizontalPodAutoscaler" else hpa, pvc)
        else:
            errs = validate(o)
        check(bool(errs), "caught: %s (%s)" % (what, errs[0] if errs else "NOT CAUGHT"))

    broken("Service with a misspelt field (tragetPort)", svc,
           lambda o: o["spec"]["ports"][0].__setitem__("tragetPort", o["spec"]["ports"][0].pop("targetPort")))
    broken("Service port as a word", svc, lambda o: o["spec"]["ports"][0].__setitem__("port", "eighty"))
    broken("Service port missing", svc, lambda o: o["spec"]["ports"][0].pop("port"))
    broken("HPA without maxReplicas", hpa, lambda o: o["spec"].pop("maxReplicas"))
    broken("HPA with autoscaling/v1 fields under v2 (targetCPUUtilizationPercentage)", hpa,
           lambda o: o["spec"].__setitem__("targetCPUUtilizationPercentage", 70))
    broken("HPA metric target without its type", hpa, lambda o: o["spec"]["metrics"][0]["resource"]["target"].pop("type"))
    broken("Deployment without a selector", dep, lambda o: o["spec"].pop("selector"))
    broken("Deployment probe port as a list", dep,
           lambda o: o["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"].__setitem__("port", [8080]))
    broken("Deployment replicas as a word", dep, lambda o: o["spec"].__setitem__("replicas", "two"))
    broken("Deployment container 'image' misspelt", dep,
           lambda o: o["spec"]["template"]["spec"]["containers"][0].__setitem__("imag", o["spec"]["template"]["spec"]["containers"][0].pop("image")))
    broken("Service selecting other pods", svc, lambda o: o["spec"].__setitem__("selector", {"app": "other"}), True)
    broken("Service targetPort naming no container port", svc, lambda o: o["spec"]["ports"][0].__setitem__("targetPort", "grpc"), True)
    broken("HPA aimed at another Deployment", hpa, lambda o: o["spec"]["scaleTargetRef"].__setitem__("name", "qatserv"), True)

    if a.write_play:
        play = copy.deepcopy(merged)
        c = play["spec"]["template"]["spec"]["containers"][0]
        c["image"] = a.image
        c["imagePullPolicy"] = "Never"
        if a.host_port:
            for p in c["ports"]:
                if p["name"] == "http":
                    p["hostPort"] = a.host_port
                    p["hostIP"] = "127.0.0.1"
        play["spec"]["replicas"] = 1
        with open(a.write_play, "w") as f:
            yaml.safe_dump_all([pvc, play], f, sort_keys=False)
        print("k8s-schema: wrote %s (the Deployment with the models volume; image %s, 1 replica, hostPort %d)" % (
            a.write_play, a.image, a.host_port))

    print("k8s-schema: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
