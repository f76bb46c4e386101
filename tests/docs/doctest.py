#!/usr/bin/env python3
"""doctest.py - run every shell and curl example in the docs against a real
server and fail when what the doc shows differs from what happens.

    tests/docs/doctest.py [--build DIR] [--keep] FILE.md...    (make docs-test)

For each file, every ```sh / ```bash / ```console block is run, in order, by
one bash process (so variables and files made by one example are there for
the next), in a scratch directory that looks like the repository (build/,
tools/, deploy/, ... are links to it) except that models/ is a copy: an
example that trains into models/ changes the copy only. The harness starts
its own qatserve on a free port serving that models/ copy; every `:8080` in
a command is rewritten to that port; every `build/` path in a command names
the build directory in use (--build: `make docs-test SAN=1` runs the docs'
`build/qat ...` as `build/san/qat ...`, so a tree with only the sanitizer
build passes alone; `make` in a command gets SAN=1 from make's MAKEFLAGS),
and a line that starts a server in the
background (`make run &`, `build/qatserve ... &`) stands for the harness's
server and is not run.

What is compared (the doc is the expectation):
- `cmd   # 422 ...` or a next line `# 422 ...`: the HTTP status of the
  command's (last) curl. When the comment goes on with JSON (`# 422
  {"error":"..."}`), that JSON too; `# {"ready":true}` compares JSON alone.
- a ```json block right after a sh block: the output of the block's last
  command, compared as JSON: the same members (none missing, none extra),
  strings equal, numbers equal to 1e-4 relative; timings (`latency_us`,
  `*_us`, `load_ms`, `speedup`, `loaded_at`) only need the same type.
- a ```text block (or one without a language) right after a sh block: each
  of its lines (but `...`) must be a line of the output, where numbers
  outside double quotes match any number (values vary, label values not).
- every command must exit 0 unless its comment shows an HTTP error status.

Directives, HTML comments visible in the doc source, apply to the next
code block:
  <!-- doctest: skip REASON -->          not run here (docker, systemd, ...)
  <!-- doctest: replace OLD => NEW; REASON -->  run with OLD replaced by NEW
                                         (tiny training settings); repeatable
  <!-- doctest: illustrative REASON -->  the next output block is not compared
                                         (it cannot be reproduced: say why)
  <!-- doctest: server tiny -->          from here on, the harness's server
                                         serves a 4 -> 8 -> 3 test model named
                                         fashion-mnist (qstool, seed 7) instead
                                         of models/ (a directive for the rest
                                         of the file, not just one block)
Output names the doc line and what differed, e.g.
  docs/api.md:35: `curl -s ...`: status 400, the doc shows 422
"""
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHELL_LANGS = {"sh", "bash", "console", "shell"}
OUTPUT_LANGS = {"json", "text", ""}
VOLATILE = re.compile(r"(^|_)(us|ms)$|^latency_us$|^speedup$|^loaded_at$|^int8$|^fp32$|^total$|^kernel$")
SERVER_LINE = re.compile(r"^\s*(make\s+run|(\S*/)?build/qatserve\b[^&]*|qatserve\b[^&]*)&\s*(#.*)?$")
DIRECTIVE = re.compile(r"^\s*<!--\s*doctest:\s*(\w+)\s*(.*?)\s*-->\s*$")
CMD_TIMEOUT_S = int(os.environ.get("DOCTEST_CMD_TIMEOUT", "300")) # one command; a server left in the foreground hangs here


def fail(msgs, where, text):
    msgs.append(f"{where}: {text}")


# ---------------------------------------------------------------- parsing

class Cmd:
    def __init__(self, line, text):
        self.line = line          # 1-based line in the doc
        self.text = text          # the command as written (may span lines)
        self.status = None        # expected HTTP status
        self.json = None          # expected JSON (text)
        self.json_line = None
        self.text_out = None      # expected lines
        self.server = False       # stands for the harness's server
        self.idx = None


def shell_scan(text, stop_at_comment):
    """Walks TEXT as the shell reads its quotes and comments. Returns
    (i, q): i the index of the first unquoted comment '#' when
    stop_at_comment (else None: comments are skipped to their line's end),
    and q the quote still open at the end of TEXT (None if none is)."""
    q, i = None, 0
    while i < len(text):
        c = text[i]
        if q:
            if c == "\\" and q == '"':
                i += 1
            elif c == q:
                q = None
        elif c in "'\"":
            q = c
        elif c == "\\":
            i += 1
        elif c == "#" and (i == 0 or text[i - 1] in " \t\n"):
            if stop_at_comment:
                return i, None
            while i < len(text) and text[i] != "\n":
                i += 1
        i += 1
    return None, q


def comment_split(line):
    """(code, comment) with the comment starting at an unquoted '#'."""
    i, _ = shell_scan(line, True)
    if i is None:
        return line.rstrip(), ""
    return line[:i].rstrip(), line[i + 1:].strip()


def quote_open(text):
    """Whether a quote opened in TEXT is still open at its end."""
    return shell_scan(text, False)[1] is not None


def expectation(cmd, comment, line):
    m = re.match(r"^(\d{3})\b\s*(.*)$", comment)
    if m:
        cmd.status = int(m.group(1))
        rest = m.group(2)
        if rest.startswith("{"):
            cmd.json, cmd.json_line = rest, line
        return True
    if comment.startswith("{"):
        cmd.json, cmd.json_line = comment, line
        return True
    return False


def split_commands(block, first_line):
    """Commands of a shell block: continuation lines and heredocs kept whole."""
    cmds, i = [], 0
    while i < len(block):
        raw = block[i]
        if not raw.strip():
            i += 1
            continue
        if raw.lstrip().startswith("#"):
            # `# 422 {...}` under a command belongs to it
            if cmds and expectation(cmds[-1], raw.lstrip()[1:].strip(), first_line + i):
                pass
            i += 1
            continue
        start = i
        parts, comments = [], []
        while True:
            if quote_open("\n".join(parts)) and parts:
                # inside a quoted string that spans lines: the line is data
                parts.append(block[i])
                code = block[i]
            else:
                code, com = comment_split(block[i])
                if com:
                    comments.append(com)
                parts.append(code)
            if (code.endswith("\\") or quote_open("\n".join(parts))) and i + 1 < len(block):
                i += 1
                continue
            break
        text = "\n".join(parts)
        hd = re.search(r"<<-?\s*'?\"?(\w+)'?\"?", text)
        if hd:
            end = hd.group(1)
            body = []
            i += 1
            while i < len(block) and block[i].strip() != end:
                body.append(block[i])
                i += 1
            text = text + "\n" + "\n".join(body) + "\n" + end
        c = Cmd(first_line + start, text)
        for com in comments:
            expectation(c, com, first_line + start)
        c.server = (bool(SERVER_LINE.match(block[start])) and "&" in text and not hd
                    and not re.search(r"--port[ =](?!8080\b)", text))
        cmds.append(c)
        i += 1
    return cmds


def parse(path):
    """[(kind, ...)] items in order: ("block", cmds, skip, replaces, line),
    ("server", name, line)."""
    lines = open(path, encoding="utf-8").read().split("\n")
    items, pending_skip, pending_repl = [], None, []
    pending_illustrative = None
    i = 0
    last_block = None
    while i < len(lines):
        d = DIRECTIVE.match(lines[i])
        if d:
            kind, arg = d.group(1), d.group(2)
            if kind == "skip":
                pending_skip = arg or "(no reason given)"
            elif kind == "replace":
                m = re.match(r"^(.*?)\s*=>\s*(.*?)\s*;\s*(.+)$", arg)
                if not m:
                    raise SystemExit(f"{path}:{i + 1}: replace directive wants 'OLD => NEW; REASON'")
                pending_repl.append((m.group(1), m.group(2), m.group(3)))
            elif kind == "illustrative":
                pending_illustrative = (arg or "(no reason given)", i + 1)
            elif kind == "server":
                items.append(("server", arg, i + 1))
            else:
                raise SystemExit(f"{path}:{i + 1}: unknown doctest directive '{kind}'")
            i += 1
            continue
        m = re.match(r"^(\s*)```(\w*)\s*$", lines[i])
        if not m:
            if lines[i].strip():
                last_block = None
            i += 1
            continue
        lang = m.group(2)
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith("```"):
            j += 1
        body = lines[i + 1:j]
        if lang in SHELL_LANGS:
            cmds = split_commands(body, i + 2)
            items.append(("block", cmds, pending_skip, pending_repl, i + 1))
            last_block = items[-1]
            pending_skip, pending_repl = None, []
        elif lang in OUTPUT_LANGS and pending_illustrative:
            items.append(("note", f"output not compared: {pending_illustrative[0]}", pending_illustrative[1]))
            pending_illustrative = None
            last_block = None
        elif lang in OUTPUT_LANGS and last_block is not None and last_block[1]:
            target = last_block[1][-1]
            if lang == "json":
                target.json, target.json_line = "\n".join(body), i + 2
            else:
                target.text_out = (body, i + 2)
            last_block = None
        else:
            last_block = None
            pending_skip, pending_repl = None, []
        i = j + 1
    return items


# ---------------------------------------------------------------- comparing

def json_diff(doc, got, path="", key=""):
    """First difference between the doc's JSON and the server's, or None."""
    where = path or "the answer"
    if VOLATILE.search(key):
        if doc is None or got is None:
            return None if (doc is None) == (got is None) else f"{where}: doc {json.dumps(doc)}, server {json.dumps(got)}"
        if isinstance(doc, (int, float)) and isinstance(got, (int, float)):
            return None
        if isinstance(doc, str) and isinstance(got, str):
            return None
    if isinstance(doc, dict):
        if not isinstance(got, dict):
            return f"{where}: doc shows an object, server sent {json.dumps(got)[:80]}"
        missing = [k for k in doc if k not in got]
        extra = [k for k in got if k not in doc]
        if missing:
            return f"{where}: doc shows member(s) {missing} the server does not send"
        if extra:
            return f"{where}: server sends member(s) {extra} the doc does not show"
        for k in doc:
            d = json_diff(doc[k], got[k], f"{path}.{k}" if path else k, k)
            if d:
                return d
        return None
    if isinstance(doc, list):
        if not isinstance(got, list):
            return f"{where}: doc shows an array, server sent {json.dumps(got)[:80]}"
        if len(doc) != len(got):
            return f"{where}: doc shows {len(doc)} element(s), server sent {len(got)}"
        for n, (a, b) in enumerate(zip(doc, got)):
            d = json_diff(a, b, f"{path}[{n}]", key)
            if d:
                return d
        return None
    if isinstance(doc, bool) or isinstance(got, bool) or doc is None or got is None:
        return None if doc == got and type(doc) == type(got) else f"{where}: doc {json.dumps(doc)}, server {json.dumps(got)}"
    if isinstance(doc, (int, float)) and isinstance(got, (int, float)):
        if math.isclose(doc, got, rel_tol=1e-4, abs_tol=1e-7):
            return None
        return f"{where}: doc {doc!r}, server {got!r}"
    if doc != got:
        return f"{where}: doc {json.dumps(doc)}, server {json.dumps(got)}"
    return None


NUM = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def line_pattern(line):
    """Regex for one expected output line: numbers outside quotes are wild."""
    out, q = [], False
    pos = 0
    for part in re.split(r'("(?:[^"\\]|\\.)*")', line):
        if part.startswith('"') and part.endswith('"') and len(part) >= 2:
            out.append(re.escape(part))
            continue
        last = 0
        for m in NUM.finditer(part):
            # a number glued to letters (avx2, fp32, p99) is a word, not a value
            if (m.start() > 0 and part[m.start() - 1].isalnum()) or \
               (m.end() < len(part) and (part[m.end()].isalpha() or part[m.end()] == "_")):
                continue
            out.append(re.escape(part[last:m.start()]))
            out.append(NUM.pattern)
            last = m.end()
        out.append(re.escape(part[last:]))
    del q, pos
    return re.compile("^" + "".join(out).replace("\\ ", r"\s+") + r"\s*$")


# ---------------------------------------------------------------- running

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, build, models, log):
        self.log = open(log, "w")
        self.proc = subprocess.Popen([os.path.join(build, "qatserve"), "--models", models, "--port", "0",
                                      "--host", "127.0.0.1", "--quiet", "--drain-timeout", "2"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.port = None
        deadline = time.time() + 20
        while time.time() < deadline and self.port is None:
            time.sleep(0.05)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", open(log).read())
            if m:
                self.port = int(m.group(1))
            if self.proc.poll() is not None:
                break
        if self.port is None:
            raise SystemExit(f"doctest: the server did not start:\n{open(log).read()}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def rewrite_ports(text, port, ports):
    """:8080 is the harness's server; any other port in an example (a
    second server the example starts) gets a free port of its own, the
    same one everywhere in the file."""
    def sub(m):
        n = int(m.group(2))
        if n == 8080:
            new = port
        else:
            new = ports.setdefault(n, free_port())
        return m.group(1) + str(new)
    return re.sub(r"((?:localhost|127\.0\.0\.1|\[::1\]):|--port[ =]|PORT=)(8\d\d\d|9\d\d\d)\b", sub, text)


def rewrite_build(text, build):
    """`build/X` in a doc command -> X in the build directory in use. Only a
    path that starts with build/ (not .../build/ inside a URL or a longer
    path) is a path into the build directory."""
    rel = os.path.relpath(build, ROOT)
    if rel == "build":
        return text
    if rel.startswith(".."):
        rel = build
    return re.sub(r"(?<![\w./-])build/", rel + "/", text)


def server_formats():
    """Every string literal in server/ (adjacent literals joined), as a
    regex: printf conversions match any text."""
    pats = []
    for dirpath, _dirs, files in os.walk(os.path.join(ROOT, "server")):
        for f in files:
            if not f.endswith(".c"):
                continue
            src = open(os.path.join(dirpath, f), errors="replace").read()
            src = re.sub(r"//[^\n]*|/\*.*?\*/", " ", src, flags=re.S)
            for m in re.finditer(r'"(?:[^"\\\n]|\\.)*"(?:\s*"(?:[^"\\\n]|\\.)*")*', src):
                lit = "".join(re.findall(r'"((?:[^"\\\n]|\\.)*)"', m.group(0)))
                lit = lit.encode().decode("unicode_escape", errors="replace")
                if len(re.sub(r"%[-+ #0-9.*]*[a-zA-Z]+", "", lit)) < 8:
                    continue
                parts = re.split(r"%[-+ #0-9.*]*(?:zu|zd|llu|lld|lu|ld|[a-zA-Z])", lit)
                pats.append(re.compile(".+?".join(re.escape(x) for x in parts)))
    return pats


def check_error_tables(path, outputs, msgs):
    """A table with an "example message" column: each message must be one
    the server gave to an example of this file, or fit a string in the
    server's source."""
    lines = open(os.path.join(ROOT, path), encoding="utf-8").read().split("\n")
    col, formats = None, None
    seen = set(re.findall(r'"error":"((?:[^"\\]|\\.)*)"', "\n".join(outputs)))
    seen = {json.loads('"' + e + '"') for e in seen}
    for n, line in enumerate(lines):
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]] if line.startswith("|") else None
        if not cells:
            col = None
            continue
        if any("example message" in c for c in cells):
            col = next(i for i, c in enumerate(cells) if "example message" in c)
            continue
        if col is None or col >= len(cells) or set(cells[col]) <= set("-: "):
            continue
        for msg in re.findall(r"`([^`]+)`", cells[col]):
            if msg in seen:
                continue
            if formats is None:
                formats = server_formats()
            rx = re.compile(".*".join(re.escape(x) for x in msg.split("...")) + "$")
            if any(f.fullmatch(msg) for f in formats) or any(
                    rx.match(f.pattern.replace("\\", "")) for f in formats):
                continue
            fail(msgs, f"{path}:{n + 1}", f"the error message `{msg}` is neither an answer to an "
                 "example in this file nor a string in server/: the server says something else now")


def make_workdir(tmp):
    work = os.path.join(tmp, "work")
    os.makedirs(work)
    for name in os.listdir(ROOT):
        if name in ("models", ".git") or name.startswith("."):
            continue
        os.symlink(os.path.join(ROOT, name), os.path.join(work, name))
    os.makedirs(os.path.join(work, "models"))
    for name in os.listdir(os.path.join(ROOT, "models")):
        src = os.path.join(ROOT, "models", name)
        if os.path.isfile(src):
            shutil.copy(src, os.path.join(work, "models", name))
    return work


def make_tiny(build, tmp):
    d = os.path.join(tmp, "tiny")
    os.makedirs(d)
    subprocess.run([os.path.join(build, "qstool"), "mkmodel", os.path.join(d, "fashion-mnist.safetensors"),
                    "4,8,3", "7", "cls-"], check=True)
    return d


def run_file(path, build, keep):
    items = parse(os.path.join(ROOT, path))
    msgs, notes = [], []
    runnable = [c for it in items if it[0] == "block" and not it[2] for c in it[1]]
    skipped = [(it[4], it[2]) for it in items if it[0] == "block" and it[2]]
    skipped += [(it[2], it[1]) for it in items if it[0] == "note"]
    for line, why in sorted(skipped):
        notes.append(f"{path}:{line}: {why if why.startswith('output not') else 'skipped: ' + why}")
    if not runnable:
        return msgs, notes, 0
    tmp = tempfile.mkdtemp(prefix="qat-doctest.")
    servers, proc = [], None
    try:
        work = make_workdir(tmp)
        wrap = os.path.join(tmp, "bin")
        os.makedirs(wrap)
        with open(os.path.join(wrap, "curl"), "w") as f:
            f.write('#!/bin/sh\nexec /usr/bin/curl --max-time 30 -w "%{stderr}@@HTTP %{http_code}\\n" "$@"\n')
        os.chmod(os.path.join(wrap, "curl"), 0o755)
        servers.append(Server(build, os.path.join(work, "models"), os.path.join(tmp, "server-models.log")))
        port = servers[-1].port
        script = ["set +e", f"cd {work}", f"export PATH={wrap}:$PATH",
                  "export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}"]
        cmds, ports = [], {}
        for it in items:
            if it[0] == "note":
                continue
            if it[0] == "server":
                if it[1] == "tiny":
                    tiny = make_tiny(build, tmp)
                    servers.append(Server(build, tiny, os.path.join(tmp, "server-tiny.log")))
                    port = servers[-1].port
                else:
                    raise SystemExit(f"{path}:{it[2]}: unknown server '{it[1]}' (tiny)")
                continue
            _, block_cmds, skip, repl, _line = it
            if skip:
                continue
            for c in block_cmds:
                c.idx = len(cmds)
                cmds.append(c)
                if c.server:
                    notes.append(f"{path}:{c.line}: `{c.text.strip()}` stands for the harness's server (port {port})")
                    continue
                text = c.text
                for old, new, _why in repl:
                    text = text.replace(old, new)
                text = rewrite_ports(text, port, ports)
                text = rewrite_build(text, build)
                o = os.path.join(tmp, f"out{c.idx}")
                script.append(f"echo {c.idx} > {tmp}/progress")
                script.append(f"{{ {text}\n}} >{o}.stdout 2>{o}.stderr </dev/null; echo $? >{o}.rc")
        sh = os.path.join(tmp, "run.sh")
        open(sh, "w").write("\n".join(script) + "\n")
        t0 = time.time()
        # Its own process group: whatever an example leaves running in the
        # background is stopped with it.
        proc = subprocess.Popen(["bash", sh], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        hung = None
        prog = os.path.join(tmp, "progress")
        while proc.poll() is None:
            time.sleep(0.2)
            try:
                started = os.path.getmtime(prog)
            except OSError:
                continue
            if time.time() - started > CMD_TIMEOUT_S:
                hung = cmds[int(open(prog).read().strip())]
                fail(msgs, f"{path}:{hung.line}", f"`{hung.text.splitlines()[0]}` still running after "
                     f"{CMD_TIMEOUT_S} s (a server in the foreground? mark the block "
                     "<!-- doctest: skip REASON -->); the rest of the file was not run")
                break
        secs = time.time() - t0
        try:
            os.killpg(proc.pid, 15)
        except ProcessLookupError:
            pass
        proc.wait()
        outputs = []
        for c in cmds:
            if c.server:
                continue
            if hung and c.idx >= hung.idx:
                break
            check(path, c, os.path.join(tmp, f"out{c.idx}"), msgs)
            try:
                outputs.append(open(os.path.join(tmp, f"out{c.idx}.stdout"), errors="replace").read())
            except OSError:
                pass
        check_error_tables(path, outputs, msgs)
        return msgs, notes, secs
    finally:
        if proc:
            try:
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass
        for s in servers:
            s.stop()
        if keep:
            print(f"doctest: kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def check(path, c, o, msgs):
    where = f"{path}:{c.line}"
    short = c.text.splitlines()[0]
    short = "`" + (short if len(short) <= 90 else short[:87] + "...") + "`"
    if not os.path.exists(o + ".rc"):
        fail(msgs, where, f"{short} did not run (an earlier command hung or the shell stopped)")
        return
    rc = int(open(o + ".rc").read().strip() or 1)
    out = open(o + ".stdout", errors="replace").read()
    err = open(o + ".stderr", errors="replace").read()
    statuses = [int(s) for s in re.findall(r"^@@HTTP (\d+)$", err, re.M)]
    err_clean = re.sub(r"^@@HTTP \d+\n?", "", err, flags=re.M).strip()
    if c.status is not None:
        got = statuses[-1] if statuses else None
        if got != c.status:
            fail(msgs, where, f"{short}: status {got}, the doc shows {c.status}; answer: {out.strip()[:200]}")
            return
    elif statuses and statuses[-1] >= 400:
        fail(msgs, where, f"{short}: status {statuses[-1]} but the doc shows no error; answer: {out.strip()[:200]}")
        return
    if rc != 0 and not (c.status and c.status >= 400 and rc in (0, 22)):
        fail(msgs, where, f"{short}: exit status {rc}; stderr: {err_clean[-300:] or '(empty)'}")
        return
    if c.json is not None:
        try:
            doc = json.loads(c.json)
        except ValueError as e:
            fail(msgs, f"{path}:{c.json_line}", f"the doc's JSON for {short} does not parse: {e}")
            return
        try:
            got = json.loads(out)
        except ValueError:
            fail(msgs, where, f"{short}: the doc shows JSON, the command printed: {out.strip()[:200]!r}")
            return
        d = json_diff(doc, got)
        if d:
            fail(msgs, f"{path}:{c.json_line}", f"{short}: {d}")
    if c.text_out is not None:
        body, line0 = c.text_out
        got_lines = out.split("\n")
        for n, want in enumerate(body):
            if not want.strip() or want.strip() == "...":
                continue
            pat = line_pattern(want.strip())
            if not any(pat.match(g.strip()) for g in got_lines):
                fail(msgs, f"{path}:{line0 + n}", f"{short}: no output line matches the doc's `{want.strip()[:120]}`")


def selftest(path, build):
    """The doc test must catch a wrong doc: FILE lists, in a
    `<!-- doctest-expect: LINE ... -->` comment, exactly the lines it must
    report."""
    want = set()
    for line in open(os.path.join(ROOT, path)):
        m = re.match(r"^<!-- doctest-expect: ([\d ]+) -->", line)
        if m:
            want = {int(x) for x in m.group(1).split()}
    msgs, _notes, _secs = run_file(path, build, False)
    got = {int(re.match(r"^[^:]+:(\d+):", m).group(1)) for m in msgs}
    if got != want:
        for m in msgs:
            print("  reported: " + m, file=sys.stderr)
        print(f"doctest selftest: {path}: reported lines {sorted(got)}, expected {sorted(want)} "
              f"(missed {sorted(want - got)}, unexpected {sorted(got - want)})", file=sys.stderr)
        return 1
    print(f"doctest selftest: all {len(want)} deliberate mistakes in {path} caught")
    return 0


def main():
    args = sys.argv[1:]
    build, keep = os.path.join(ROOT, "build"), False
    while args and args[0].startswith("--"):
        if args[0] == "--build":
            build = os.path.abspath(args[1])
            args = args[2:]
        elif args[0] == "--selftest":
            break
        elif args[0] == "--keep":
            keep = True
            args = args[1:]
        else:
            raise SystemExit(__doc__)
    for b in ("qatserve", "qat", "qstool"):
        if not os.access(os.path.join(build, b), os.X_OK):
            raise SystemExit(f"doctest: {build}/{b} missing (make {build}/{b})")
    if args[:1] == ["--selftest"]:
        return selftest(args[1], build)
    all_msgs, total = [], 0
    for path in args:
        msgs, notes, secs = run_file(path, build, keep)
        n = sum(1 for _ in notes)
        for note in notes:
            print("  " + note)
        print(f"doctest: {path}: {'ok' if not msgs else f'{len(msgs)} difference(s)'} ({secs:.1f} s)")
        all_msgs += msgs
        total += n
    for m in all_msgs:
        print("DOC MISMATCH " + m, file=sys.stderr)
    if all_msgs:
        print(f"doctest: {len(all_msgs)} example(s) differ from what the code does: fix the doc "
              "(or the code) at the lines above", file=sys.stderr)
        return 1
    print("doctest: every example ran as documented")
    return 0


if __name__ == "__main__":
    sys.exit(main())
