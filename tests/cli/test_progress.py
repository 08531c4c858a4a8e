#!/usr/bin/env python3
"""kiln build's progress on stderr: on a terminal one status line that
overwrites itself and is erased at the end; elsewhere (a CI log, a pipe) one
line per phase, no carriage returns, and never a flood; --quiet prints none,
while warnings and errors still print. On the ref backend, so only the
command's own phases show here: the cuda backend's lowering and tactic
timing ("build: timing tactics layer 12/53: ...", at most one line per
tenth of the layers off a terminal) need a GPU. Every case prints ok/FAIL;
exit 1 if any failed.
usage: test_progress.py KILN_BIN MODEL.onnx"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

KILN, MODEL = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
TMP = tempfile.mkdtemp(prefix="kiln-progress-")
ENV = {k: v for k, v in os.environ.items()
       if k not in ("KILN_LOG_LEVEL", "KILN_REMOTE_URL", "KILN_S3_ENDPOINT") and not k.startswith("AWS_")}
ENV["KILN_CACHE_DIR"] = os.path.join(TMP, "cache")
PHASE = re.compile(r"^\[ *\d+\.\ds\] build: ")
passed = failed = skipped = 0


def check(label, ok, detail=""):
    global passed, failed
    passed += bool(ok)
    failed += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {label}" + ("" if ok else f"\n     {detail.strip()[:800]}"))


def build(*args, env=None):
    p = subprocess.run([KILN, "build", MODEL, "--backend", "ref", *args], capture_output=True, text=True, cwd=TMP,
                       env=env or ENV, timeout=300)
    return p.returncode, p.stdout, p.stderr


# ---- stderr not a terminal: phase lines, plain, few
plan = os.path.join(TMP, "t.plan")
code, so, se = build("-o", plan)
lines = se.splitlines()
detail = f"exit {code}\n     stdout: {so[:300]}\n     stderr: {se[:600]}"
check("build -o: exit 0, the plan written", code == 0 and f"wrote    {plan}" in so and os.path.exists(plan), detail)
check("  stderr: every line a phase line ([  0.0s] build: ...)", lines and all(PHASE.match(l) for l in lines), detail)
check("  the phases: importing and building, saving the plan",
      any("for the ref backend (fp32): importing and building" in l for l in lines)
      and any(l.endswith(f"saving the plan to {plan}") for l in lines), detail)
check("  not a flood: at most 10 lines, no carriage returns or escapes",
      len(lines) <= 10 and "\r" not in se and "\033" not in se, f"{len(lines)} lines\n     {se[:600]}")
check("  stdout as before (no progress there)", "build:" not in so and so.startswith("model    "), detail)

code, so, se = build("--cache")
check("build --cache: the cache lookup is a phase",
      code == 0 and "looking in the cache, else building" in se and all(PHASE.match(l) for l in se.splitlines()),
      f"exit {code}\n     stderr: {se[:600]}")

# ---- --quiet: no progress; stdout unchanged; warnings and errors still print
code, so, se = build("-o", plan, "--quiet")
check("build --quiet: nothing on stderr, stdout as without it",
      code == 0 and se == "" and f"wrote    {plan}" in so, f"exit {code}\n     stderr: {se[:600]}")
bad = os.path.join(TMP, "bad.onnx")
with open(bad, "wb") as f:
    f.write(b"\x08\x07not a model at all" * 8)
for quiet in ((), ("--quiet",)):
    p = subprocess.run([KILN, "build", bad, "--backend", "ref", "-o", os.path.join(TMP, "bad.plan"), *quiet],
                       capture_output=True, text=True, cwd=TMP, env=ENV, timeout=300)
    check(f"a failing build{' --quiet' if quiet else ''}: the error prints, exit 1",
          p.returncode == 1 and "kiln: error: " in p.stderr and bad in p.stderr
          and (not quiet or "build:" not in p.stderr), f"exit {p.returncode}\n     stderr: {p.stderr[:600]}")
blocker = os.path.join(TMP, "a-file")
open(blocker, "w").close()
code, so, se = build("--cache", "--quiet", "--cache-dir", os.path.join(blocker, "sub"))
check("a warning still prints under --quiet (a cache folder that cannot be made)",
      code == 0 and "kiln: warning: cache: " in se and "build:" not in se, f"exit {code}\n     stderr: {se[:600]}")
env = dict(ENV, KILN_LOG_LEVEL="error")
code, so, se = build("--cache", "--quiet", "--cache-dir", os.path.join(blocker, "sub"), env=env)
check("  and not when $KILN_LOG_LEVEL=error asks for errors only", code == 0 and se == "",
      f"exit {code}\n     stderr: {se[:600]}")

# ---- stderr a terminal: one status line, overwritten, erased at the end
try:
    import pty
    master, slave = pty.openpty()
except (ImportError, OSError) as e:
    skipped += 1
    print(f"skip build on a terminal: no pseudo-terminal here ({e})")
else:
    p = subprocess.Popen([KILN, "build", MODEL, "--backend", "ref", "-o", plan], stdout=subprocess.PIPE,
                         stderr=slave, cwd=TMP, env=dict(ENV, TERM="xterm"))
    os.close(slave)
    tty = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        tty += chunk
    so = p.stdout.read().decode()
    p.wait(timeout=300)
    os.close(master)
    text = tty.decode(errors="replace")
    check("build on a terminal: status lines overwritten in place (\\r, erase), no newlines",
          p.returncode == 0 and "\r\033[K" in text and "build: " in text and "\n" not in text,
          f"exit {p.returncode}\n     stderr: {text[:600]!r}")
    check("  and erased at the end", text.endswith("\r\033[K"), repr(text[-120:]))
    check("  each status line fits the terminal (at most 79 columns)",
          all(len(s) <= 79 for s in text.split("\r\033[K")), repr(text[:600]))
    check("  stdout as off a terminal", f"wrote    {plan}" in so, so[:300])

print(f"{passed} passed, {failed} failed, {skipped} skipped")
shutil.rmtree(TMP, ignore_errors=True)
sys.exit(1 if failed else 0)
