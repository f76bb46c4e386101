#!/usr/bin/env python3
"""gendocs.py - regenerate the parts of the docs that come from the code.

A generated region in a Markdown file looks like

    <!-- gen: qatserve --help-markdown=api -->
    ...whatever the command prints...
    <!-- end gen -->

and `<!-- gen: qatserve --help | code -->` wraps the output in a ``` block.
The command is run from the build directory (qatserve -> BUILD/qatserve,
qat -> BUILD/qat); nothing else may be run. The tables themselves live in
server/options.c (qatserve's option table) and tools/ (qat's).

    tools/gendocs.py [--build DIR] FILE...           rewrite stale regions
    tools/gendocs.py --check [--build DIR] FILE...   exit 1 naming each stale region
"""
import difflib
import os
import re
import shlex
import subprocess
import sys

BEGIN = re.compile(r"^<!-- gen: (.+?)(\s*\|\s*code)?\s*-->\s*$")
END = "<!-- end gen -->"
PROGRAMS = {"qatserve", "qat"}


def render(cmd, code, build):
    argv = shlex.split(cmd)
    if not argv or argv[0] not in PROGRAMS:
        raise SystemExit(f"gendocs: only {sorted(PROGRAMS)} may generate docs, not {cmd!r}")
    argv[0] = os.path.join(build, argv[0])
    out = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "QAT_KERNEL": ""})
    if out.returncode != 0:
        raise SystemExit(f"gendocs: {cmd!r} exited {out.returncode}: {out.stderr.strip()}")
    text = out.stdout if out.stdout.endswith("\n") else out.stdout + "\n"
    return "```\n" + text + "```\n" if code else text


def process(path, build, check):
    lines = open(path, encoding="utf-8").read().split("\n")
    out, i, stale = [], 0, []
    while i < len(lines):
        m = BEGIN.match(lines[i])
        out.append(lines[i])
        if not m:
            i += 1
            continue
        start = i
        j = i + 1
        while j < len(lines) and lines[j].strip() != END:
            j += 1
        if j == len(lines):
            raise SystemExit(f"{path}:{start + 1}: '<!-- gen: ... -->' without '{END}'")
        old = "\n".join(lines[start + 1:j]) + ("\n" if j > start + 1 else "")
        new = render(m.group(1), bool(m.group(2)), build)
        if old != new:
            stale.append((start + 1, m.group(1), old, new))
        out.extend(new.rstrip("\n").split("\n"))
        out.append(lines[j])
        i = j + 1
    if stale and not check:
        open(path, "w", encoding="utf-8").write("\n".join(out))
    for line, cmd, old, new in stale:
        verb = "is stale" if check else "regenerated"
        print(f"{path}:{line}: generated region `{cmd}` {verb}", file=sys.stderr)
        if check:
            for d in difflib.unified_diff(old.split("\n"), new.split("\n"), "doc", "code", lineterm="", n=0):
                print("    " + d, file=sys.stderr)
    return len(stale)


def main():
    args = sys.argv[1:]
    check = "--check" in args
    args = [a for a in args if a != "--check"]
    build = "build"
    if args[:1] == ["--build"]:
        build, args = args[1], args[2:]
    n = sum(process(p, build, check) for p in args)
    if check and n:
        print(f"gendocs: {n} generated doc region(s) out of date: run `make docs` and commit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
