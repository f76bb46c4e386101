#!/usr/bin/python3
"""check_layers.py - the server's layering, computed from what the object
files really define and call (nm), and from their #include lines.

Each folder of server/ is a layer; LAYERS says which folders each one may
use. The check fails when an object calls a function (or reads a variable)
defined in a folder it may not use - a leaf calling upward, the pipeline
calling the HTTP glue -, when a source file includes a header of such a
folder, when a folder is missing from the table, or when the folders'
edges form a circle (even among allowed edges, so a later edit of the
table cannot bring one in).

usage: check_layers.py OBJDIR SRCDIR     (OBJDIR = build/obj/server)
       check_layers.py --self-test OBJDIR SRCDIR
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

# folder -> folders it may import. "" is server/ itself (main.c).
LAYERS = {
    "base": set(),
    "model": {"base"},
    "infer": {"model", "base"},
    "api": {"infer", "model", "base"},
    "grpc": {"api", "model", "base"},  # the HTTP/2 transport; its codec is api/grpc_*.c
    "http": {"api", "model", "base"},
    "control": {"http", "grpc", "model", "base"},
    "": None,  # main.c: anything
}


def folder_of(rel):
    parts = rel.split(os.sep)
    return parts[0] if len(parts) > 1 else ""


def objects(objdir):
    for root, _, files in os.walk(objdir):
        for f in files:
            if f.endswith(".o"):
                p = os.path.join(root, f)
                yield os.path.relpath(p, objdir), p


def nm(path):
    out = subprocess.run(["nm", "--defined-only", path], capture_output=True, text=True, check=True).stdout
    defined = {l.split()[-1] for l in out.splitlines() if len(l.split()) == 3 and l.split()[1] in "TDBRVWC"}
    out = subprocess.run(["nm", "--undefined-only", path], capture_output=True, text=True, check=True).stdout
    undef = {l.split()[-1] for l in out.splitlines() if l.strip()}
    return defined, undef


def includes(srcdir):
    """(file, folder it includes) for every #include "folder/x.h" in server/."""
    for root, _, files in os.walk(srcdir):
        for f in files:
            if not f.endswith((".c", ".h")):
                continue
            p = os.path.join(root, f)
            rel = os.path.relpath(p, srcdir)
            for n, line in enumerate(open(p, errors="replace"), 1):
                m = re.match(r'\s*#\s*include\s+"([a-z_]+)/[^"]+"', line)
                if m:
                    yield "%s:%d" % (rel, n), folder_of(rel), m.group(1)


def cycles(edges):
    """Every circle among folders (as a list of folder lists)."""
    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    found, state, stack = [], {}, []

    def visit(v):
        state[v] = 1
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if state.get(w) == 1:
                found.append(stack[stack.index(w):] + [w])
            elif not state.get(w):
                visit(w)
        stack.pop()
        state[v] = 2

    for v in sorted(graph):
        if not state.get(v):
            visit(v)
    return found


def check(objdir, srcdir):
    owner, uses = {}, []
    for rel, path in objects(objdir):
        d, u = nm(path)
        f = folder_of(rel)
        for s in d:
            owner[s] = (f, rel)
        uses.append((rel, f, u))
    errors, edges, why = [], set(), {}
    for rel, f, undef in uses:
        if f not in LAYERS:
            errors.append("%s: folder server/%s/ is not in the layer table (tests/layering/check_layers.py)" % (rel, f))
            continue
        for s in sorted(undef):
            if s not in owner:
                continue  # libc, libqat, libraries
            g, where = owner[s]
            if g == f:
                continue
            edges.add((f, g))
            why.setdefault((f, g), "%s calls %s (%s)" % (rel, s, where))
            if LAYERS[f] is not None and g not in LAYERS[f]:
                errors.append("%s calls %s, defined in %s: server/%s/ may not use server/%s/ (allowed: %s)"
                              % (rel, s, where, f or ".", g or ".", ", ".join(sorted(LAYERS[f])) or "nothing"))
    for loc, f, g in includes(srcdir):
        if f not in LAYERS or g == f:
            continue
        if g not in LAYERS:
            errors.append("%s includes a header of server/%s/, which is not in the layer table" % (loc, g))
            continue
        edges.add((f, g))
        why.setdefault((f, g), "%s includes %s/" % (loc, g))
        if LAYERS[f] is not None and g not in LAYERS[f]:
            errors.append("%s includes a header of server/%s/: server/%s/ may not use it" % (loc, g, f or "."))
    for c in cycles(e for e in edges if e[0] != ""):
        errors.append("import circle: %s (%s)" % (" -> ".join(c), "; ".join(why[(c[i], c[i + 1])] for i in range(len(c) - 1))))
    return errors, edges


def self_test(objdir, srcdir):
    """The check must be able to fail: a copy of the tree plus one object in
    base/ that calls the infer step, and one circle via includes."""
    tmp = tempfile.mkdtemp()
    try:
        o, s = os.path.join(tmp, "obj"), os.path.join(tmp, "src")
        shutil.copytree(objdir, o)
        shutil.copytree(srcdir, s)
        bad_c = os.path.join(tmp, "bad.c")
        with open(bad_c, "w") as f:
            f.write("int qs_infer_run(void);\nint bad_leaf(void);\nint bad_leaf(void) { return qs_infer_run(); }\n")
        subprocess.run(["cc", "-c", bad_c, "-o", os.path.join(o, "base", "bad_leaf.o")], check=True)
        errors, _ = check(o, s)
        if not any("bad_leaf.o calls qs_infer_run" in e for e in errors):
            return ["self-test: an upward call from base/ was not caught"]
        if not any(e.startswith("import circle") for e in errors):
            return ["self-test: the circle base -> infer -> ... -> base was not caught"]
        os.remove(os.path.join(o, "base", "bad_leaf.o"))
        with open(os.path.join(s, "model", "bad.h"), "w") as f:
            f.write('#include "api/api.h"\n')
        errors, _ = check(o, s)
        if not any("model/bad.h:1 includes a header of server/api/" in e for e in errors):
            return ["self-test: an upward include was not caught"]
        return []
    finally:
        shutil.rmtree(tmp)


def main():
    args = sys.argv[1:]
    st = args and args[0] == "--self-test"
    if st:
        args = args[1:]
    objdir, srcdir = args
    errors, edges = check(objdir, srcdir)
    if st and not errors:
        errors = self_test(objdir, srcdir)
    for e in errors:
        print("layering: " + e)
    if errors:
        sys.exit(1)
    print("layering: %d edges between folders, all allowed, no circle%s"
          % (len(edges), "; self-test caught the planted bad edges" if st else ""))
    for a, b in sorted(edges):
        print("  %s -> %s" % (a or "main", b))


main()
