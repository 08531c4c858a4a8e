#!/usr/bin/env python3
"""docs/tutorial.md, run (issue #18): every ```sh and ```python block in
order, as a reader would type them into one shell, each checked for exit
status 0 and for the output the page shows after it.

The blocks run in a scratch copy of a built checkout (build/kiln and
build/libkiln.so: $KILN_CLI and $KILN_LIBRARY, the ones under test; models/,
python/, include/kiln.h), starting in its root, with $HOME in the scratch
folder too (the tutorial writes into ~/kiln-first-hour; the default engine
cache is under it) and nothing of the caller's kiln settings. What a block
exports and the folder it ends in carry over to the next block (sh blocks
run under bash -e -o pipefail; python blocks as `python3 FILE`, whichever
python3 PATH gives then: the venv's once the page has activated it).

The ```text block right after a block is its expected output: each of its
lines must appear in the block's stdout+stderr, in that order, as whole
lines (runs of blanks count as one); `…` in a line stands for anything, a
line of only `…` for any lines. A block after `<!-- gpu -->` runs only
where an NVIDIA GPU answers `nvidia-smi -L` and the kiln under test is
built with CUDA, one after `<!-- no-gpu -->` only where not
($KILN_TUTORIAL_GPU=1/0 decides instead); the others are skipped, and the
test says which. Fences other than sh, python and text fail the test, so
that no block of the page goes unrun. The venv blocks are skipped, saying
why, only where python3 cannot make a venv (no ensurepip).

usage: test_tutorial.py [docs/tutorial.md]   ($KILN_CLI, $KILN_LIBRARY: default build/)"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
DOC = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(REPO, "docs", "tutorial.md")
CLI = os.path.realpath(os.environ.get("KILN_CLI") or os.path.join(REPO, "build", "kiln"))
LIB = os.path.realpath(os.environ.get("KILN_LIBRARY") or os.path.join(REPO, "build", "libkiln.so"))
BLOCK_TIMEOUT = 300


class Block:
    def __init__(self, lang, line, text, marker):
        self.lang, self.line, self.text, self.marker = lang, line, text, marker
        self.expected = None  # the lines of the ```text block after it


def parse(path):
    """The page's fenced blocks: runnable ones with their marker and
    expected output. A fence of another language is an error."""
    lines = open(path, encoding="utf-8").read().splitlines()
    blocks, errors = [], []
    i, last = 0, None  # last: the runnable block a ```text block may belong to
    while i < len(lines):
        m = re.match(r"^```(\S*)\s*$", lines[i])
        if not m:
            if lines[i].strip():
                last = None if not lines[i].startswith("<!--") else last
            i += 1
            continue
        lang, start = m.group(1), i
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        if j == len(lines):
            errors.append(f"line {start + 1}: a fence that is never closed")
            break
        body = lines[i + 1:j]
        prev = lines[start - 1].strip() if start > 0 else ""
        marker = {"<!-- gpu -->": "gpu", "<!-- no-gpu -->": "no-gpu"}.get(prev)
        if lang in ("sh", "python"):
            b = Block(lang, start + 1, "\n".join(body) + "\n", marker)
            blocks.append(b)
            last = b
        elif lang == "text":
            if last is None or last.expected is not None:
                errors.append(f"line {start + 1}: a ```text block that follows no ```sh or ```python block")
            else:
                last.expected = body
                last = None
        else:
            errors.append(f"line {start + 1}: a ```{lang or '(no language)'} block: the tutorial runs only sh and "
                          "python blocks (and checks text blocks as their output)")
        i = j + 1
    return blocks, errors


def line_pattern(expected):
    parts = [re.escape(p) for p in " ".join(expected.split()).split("…")]
    return re.compile(".*".join(parts))


def missing_lines(expected, output):
    """The first expected line not found (in order) in output, or None."""
    got = [" ".join(l.split()) for l in output.splitlines()]
    k = 0
    for e in expected:
        if e.strip() in ("", "…"):
            continue
        pat = line_pattern(e)
        while k < len(got) and not pat.fullmatch(got[k]):
            k += 1
        if k == len(got):
            return e
        k += 1
    return None


def gpu_present():
    forced = os.environ.get("KILN_TUTORIAL_GPU")
    if forced in ("0", "1"):
        return forced == "1", f"$KILN_TUTORIAL_GPU={forced}"
    try:
        smi = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        smi = False
    if not smi:
        return False, "no NVIDIA GPU answers nvidia-smi -L"
    with open(CLI, "rb") as f:
        if b"libcudnn" not in f.read():
            return False, f"{CLI} is built without CUDA"
    return True, "an NVIDIA GPU and a kiln built with CUDA"


def can_make_venv():
    p = subprocess.run([sys.executable, "-c", "import ensurepip, venv"], capture_output=True)
    return p.returncode == 0


def can_build_wheels_offline():
    """As python/tests/test_install.py: pip can build the package without
    fetching setuptools (setuptools >= 70.1, or setuptools and wheel)."""
    code = ("try:\n import setuptools.command.bdist_wheel\nexcept ImportError:\n import setuptools, wheel")
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def make_checkout(root):
    """root/checkout: what the tutorial expects of a built checkout."""
    co = os.path.join(root, "checkout")
    os.makedirs(os.path.join(co, "build"))
    os.symlink(CLI, os.path.join(co, "build", "kiln"))
    os.symlink(LIB, os.path.join(co, "build", "libkiln.so"))
    shutil.copytree(os.path.join(REPO, "models"), os.path.join(co, "models"))
    os.makedirs(os.path.join(co, "python"))
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(os.path.join(REPO, "python", name), os.path.join(co, "python"))
    shutil.copytree(os.path.join(REPO, "python", "kiln"), os.path.join(co, "python", "kiln"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.so.*"))
    os.makedirs(os.path.join(co, "include"))
    shutil.copy2(os.path.join(REPO, "include", "kiln.h"), os.path.join(co, "include"))
    return co


def base_env(root):
    """The caller's environment without kiln's settings or anything that
    points at a checkout, a library or a remote store; $HOME in root."""
    drop = ("KILN_", "AWS_", "PYTHON", "VIRTUAL_ENV", "PIP_", "XDG_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    home = os.path.join(root, "home")
    os.makedirs(home)
    env.update(HOME=home, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PYTHONDONTWRITEBYTECODE="1",
               TERM="dumb")
    if can_build_wheels_offline():
        env["PIP_NO_BUILD_ISOLATION"] = "false"  # i.e. --no-build-isolation: no download
    return env


# Runs one block in a fresh bash, sourcing nothing: the environment and the
# folder come from the previous block (the EXIT trap writes them).
WRAPPER = r"""
trap 'rc=$?; env -0 > "$KILN_TUTORIAL_STATE.env"; pwd > "$KILN_TUTORIAL_STATE.pwd"; exit $rc' EXIT
set -e -o pipefail
"""


def run_block(b, n, env, cwd, scratch):
    state = os.path.join(scratch, f"state{n}")
    if b.lang == "sh":
        script = WRAPPER + b.text
    else:
        src = os.path.join(scratch, f"block{n}.py")
        with open(src, "w") as f:
            f.write(b.text)
        script = WRAPPER + f'python3 "{src}"\n'
    p = subprocess.run(["bash", "-c", script], cwd=cwd, env=dict(env, KILN_TUTORIAL_STATE=state),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                       timeout=BLOCK_TIMEOUT)
    try:
        with open(state + ".env", "rb") as f:
            items = [kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv]
        new_env = {k.decode(): v.decode() for k, v in items if k not in (b"KILN_TUTORIAL_STATE", b"_", b"SHLVL")}
        with open(state + ".pwd") as f:
            new_cwd = f.read().strip()
    except OSError:
        new_env, new_cwd = env, cwd
    return p.returncode, p.stdout, new_env, new_cwd


def main():
    blocks, errors = parse(DOC)
    for e in errors:
        print(f"FAIL {DOC}: {e}")
    if not blocks:
        print(f"FAIL {DOC}: no sh or python blocks")
        return 1
    for path in (CLI, LIB):
        if not os.path.exists(path):
            print(f"FAIL {path} does not exist: build kiln first (ninja -C build), or set $KILN_CLI/$KILN_LIBRARY")
            return 1
    gpu, why = gpu_present()
    venv_ok = can_make_venv()
    root = tempfile.mkdtemp(prefix="kiln-tutorial-")
    scratch = os.path.join(root, "scratch")
    os.makedirs(scratch)
    failed = skipped = passed = 0
    try:
        cwd = make_checkout(root)
        env = base_env(root)
        print(f"{DOC}: {len(blocks)} blocks; kiln {CLI}, library {LIB}; GPU blocks "
              f"{'run' if gpu else 'skipped'} ({why})")
        no_venv = False
        for n, b in enumerate(blocks, 1):
            label = f"block {n} (line {b.line}, {b.lang}{', ' + b.marker if b.marker else ''})"
            if b.marker == "gpu" and not gpu or b.marker == "no-gpu" and gpu:
                skipped += 1
                print(f"skip {label}: {'GPU only' if b.marker == 'gpu' else 'only without a GPU'} ({why})")
                continue
            if "-m venv" in b.text and not venv_ok:
                no_venv = True
            if no_venv:
                skipped += 1
                print(f"skip {label}: python3 cannot make a venv here (no ensurepip)")
                continue
            t0 = time.monotonic()
            try:
                rc, out, env, cwd = run_block(b, n, env, cwd, scratch)
            except subprocess.TimeoutExpired:
                rc, out = None, f"(killed after {BLOCK_TIMEOUT} s)"
            secs = time.monotonic() - t0
            miss = missing_lines(b.expected or [], out) if rc == 0 else None
            if rc == 0 and miss is None:
                passed += 1
                print(f"ok   {label} ({secs:.1f} s)")
                continue
            failed += 1
            why_failed = f"exit status {rc}" if rc != 0 else f"the output lacks the line shown: {miss!r}"
            print(f"FAIL {label}: {why_failed}\n---- the block\n{b.text.rstrip()}\n---- its output\n"
                  f"{out.rstrip()[-4000:]}\n----")
            break  # later blocks build on this one
    finally:
        shutil.rmtree(root, ignore_errors=True)
    failed += len(errors)
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


def test_tutorial():
    """The same under pytest."""
    assert main() == 0


if __name__ == "__main__":
    sys.exit(main())
