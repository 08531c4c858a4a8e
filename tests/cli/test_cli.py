#!/usr/bin/env python3
"""The kiln CLI's argument handling and refusals (issue #18): --help on
every command, options without a value, strict integers, one error per
typo, plans given to inspect, run and bench with another --backend or
--precision, the ref backend's precision rule shared by run and build,
where build saves a plan, --output-dir checked before the run, and the
--backend ref hint without a GPU. Every case prints ok/FAIL; exit 1 if any
failed.
usage: test_cli.py KILN_BIN MODEL.onnx"""
import os
import shutil
import subprocess
import sys
import tempfile

KILN, MODEL = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
TMP = tempfile.mkdtemp(prefix="kiln-cli-")
passed = failed = skipped = 0


def kiln(*args, cwd=TMP):
    p = subprocess.run([KILN, *args], capture_output=True, text=True, cwd=cwd, timeout=300)
    return p.returncode, p.stdout, p.stderr


def check(label, ok, detail=""):
    global passed, failed
    passed += bool(ok)
    failed += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {label}" + ("" if ok else f"\n     {detail.strip()[:600]}"))


def skip(label, why):
    global skipped
    skipped += 1
    print(f"skip {label}: {why}")


def expect(label, args, rc, err=(), out=(), not_err=(), cwd=TMP):
    """kiln ARGS exits rc, with every string of err in stderr (and none of
    not_err), every one of out in stdout."""
    code, so, se = kiln(*args, cwd=cwd)
    missing = [w for w in err if w not in se] + [w for w in out if w not in so]
    unwanted = [w for w in not_err if w in se]
    check(label, code == rc and not missing and not unwanted,
          f"exit {code} (want {rc}); missing {missing}; unwanted {unwanted}\n     stdout: {so[:300]}\n     stderr: {se[:400]}")
    return code, so, se


# ---- --help / -h: every command answers with its usage, exit 0, on stdout
for cmd in ("inspect", "run", "build", "bench", "cache", "version"):
    for flag in ("--help", "-h"):
        code, so, se = kiln(cmd, flag)
        check(f"{cmd} {flag}", code == 0 and so.startswith(f"usage: kiln {cmd}") and not se,
              f"exit {code}\n     stdout: {so[:200]}\n     stderr: {se[:200]}")
code, so, se = kiln("run", MODEL, "--backend", "ref", "--help")
check("run MODEL ... --help", code == 0 and so.startswith("usage: kiln run"), f"exit {code} {se[:200]}")
code, so, se = kiln("help", "bench")
check("help bench", code == 0 and so.startswith("usage: kiln bench"), f"exit {code} {se[:200]}")
code, so, se = kiln("--help")
check("kiln --help lists the cuda backend, --precision, --devices",
      code == 0 and all(w in so for w in ("cuda", "--backend cuda|ref", "--precision", "--devices")), so)

# ---- an option without its value says so
for args in (("run", MODEL, "--backend"), ("run", MODEL, "--seed"), ("build", MODEL, "-o"),
             ("bench", MODEL, "--threads"), ("bench", MODEL, "--devices"), ("inspect", MODEL, "--shapes"),
             ("cache", "ls", "--cache-dir")):
    expect(f"{' '.join(a if a != MODEL else 'M' for a in args)}: needs a value", args, 2,
           err=[f"option {args[-1]} needs a value"], not_err=["unexpected argument"])

# ---- a typo: the error and the usage once
for args in (("run", MODEL, "--bakend", "ref"), ("build", MODEL, "--fp61"), ("bench", MODEL, "--iteration", "5")):
    code, so, se = kiln(*args)
    check(f"{args[0]} typo '{args[2]}': one error, one usage",
          code == 2 and se.count("unexpected argument") == 1 and se.count("usage:") == 1 and args[2] in se,
          f"exit {code}\n     stderr: {se[:500]}")

# ---- strict integers with a range
for args, word in ((("run", MODEL, "--backend", "ref", "--seed", "abc"), "not a number"),
                   (("run", MODEL, "--backend", "ref", "--seed", "99999999999999999999"), "out of range"),
                   (("run", MODEL, "--backend", "ref", "--seed", "-1"), "not a number"),
                   (("run", MODEL, "--backend", "ref", "--seed", "12x"), "not a number"),
                   (("bench", MODEL, "--backend", "ref", "--iterations", "abc"), "not a number"),
                   (("bench", MODEL, "--backend", "ref", "--threads", "1.5"), "not a number"),
                   (("bench", MODEL, "--backend", "ref", "--warmup", "-3"), ">= 0"),
                   (("bench", MODEL, "--backend", "ref", "--iterations", "0"), ">= 1"),
                   (("bench", MODEL, "--backend", "ref", "--threads", "99999999999"), "out of range"),
                   (("build", MODEL, "--backend", "ref", "--workspace", "1GB"), "not a number")):
    expect(f"{args[-2]} {args[-1]}: refused ({word})", args, 2, err=[args[-2], word],
           not_err=["must be >= 1"] if word == "not a number" else [])
expect("--seed 18446744073709551615 (the largest) runs", ("run", MODEL, "--backend", "ref", "--quiet", "--seed",
                                                          "18446744073709551615"), 0)

# ---- plans
plan = os.path.join(TMP, "ref.plan")
code, so, se = kiln("build", MODEL, "--backend", "ref", "-o", plan)
check("build -o ref.plan", code == 0 and os.path.exists(plan), se)
if not os.path.exists(plan):
    print(f"{passed} passed, {failed} failed: no plan to test the rest with")
    sys.exit(1)
# a cuda plan, as far as its header goes (backend 0, arch sm_90; the checksum no longer matches)
fake_cuda = os.path.join(TMP, "cuda.plan")
data = bytearray(open(plan, "rb").read())
data[56:60] = (0).to_bytes(4, "little")
data[176:192] = b"fp16".ljust(16, b"\0")
data[192:208] = b"sm_90".ljust(16, b"\0")
open(fake_cuda, "wb").write(bytes(data))

expect("inspect ref.plan: says it is a plan, prints what it records", ("inspect", plan), 0,
       out=["kiln plan", "backend   ref", "precision fp32", "images", "probs"], not_err=["not a valid ONNX"])
expect("inspect cuda.plan that cannot load here: header, then why", ("inspect", fake_cuda), 1,
       out=["kiln plan", "backend   cuda", "sm_90"], err=["ONNX model it was built from"],
       not_err=["not a valid ONNX"])
expect("inspect ref.plan --values: refused, names the plan", ("inspect", plan, "--values"), 2, err=["kiln plan"])

for cmd in ("run", "bench"):
    expect(f"{cmd} ref.plan --backend cuda: error naming both", (cmd, plan, "--backend", "cuda"), 2,
           err=["ref backend", "--backend cuda"])
expect("run cuda.plan --backend ref: error naming both", ("run", fake_cuda, "--backend", "ref"), 2,
       err=["cuda backend", "--backend ref"])
expect("run ref.plan --precision fp16: error naming both", ("run", plan, "--precision", "fp16"), 2,
       err=["fp32", "--precision fp16"])
expect("run ref.plan --backend ref: runs", ("run", plan, "--backend", "ref", "--quiet"), 0)
expect("run ref.plan: runs", ("run", plan, "--quiet"), 0)

# ---- the ref backend's precision: run refuses it as build does, with the same message
for flags in (("--precision", "fp16"), ("--fp16",), ("--precision", "bf16"), ("--tf32",)):
    b = kiln("build", MODEL, "--backend", "ref", *flags, "-o", os.path.join(TMP, "p.plan"))
    r = kiln("run", MODEL, "--backend", "ref", *flags)
    last = lambda text: text.strip().splitlines()[-1] if text.strip() else ""  # noqa: E731
    check(f"ref {' '.join(flags)}: run refuses as build does",
          b[0] != 0 and r[0] == b[0] and last(r[2]) == last(b[2]) and "fp32" in last(r[2]),
          f"build exit {b[0]}: {last(b[2])}\n     run exit {r[0]}: {last(r[2])}")
expect("run --backend ref --precision fp32 runs", ("run", MODEL, "--backend", "ref", "--precision", "fp32",
                                                   "--quiet"), 0)

# ---- build without -o or --cache saves MODEL.plan in the current folder
work = os.path.join(TMP, "cwd")
os.makedirs(work)
code, so, se = kiln("build", MODEL, "--backend", "ref", cwd=work)
saved = os.path.join(work, os.path.basename(MODEL)[:-5] + ".plan")
check("build without -o writes MODEL.plan here", code == 0 and os.path.exists(saved) and "wrote" in so,
      f"exit {code} {os.listdir(work)}\n     {so}{se}")
expect("and that plan runs", ("run", saved, "--quiet"), 0)
work2 = os.path.join(TMP, "cwd2")
os.makedirs(work2)
code, so, se = kiln("build", MODEL, "--backend", "ref", "--cache", "--cache-dir", os.path.join(TMP, "cache"), cwd=work2)
check("build --cache without -o stores it in the cache only",
      code == 0 and "plan " in so and "wrote" not in so and not os.listdir(work2), so + se)

# ---- --output-dir is checked before anything runs
a_file = os.path.join(TMP, "a-file")
open(a_file, "w").write("x")
for label, d in (("an existing file", a_file), ("under a file", os.path.join(a_file, "sub"))):
    code, so, se = kiln("run", MODEL, "--backend", "ref", "--output-dir", d)
    check(f"--output-dir {label}: refused before the run", code == 1 and d in se and "outputs:" not in so,
          f"exit {code}\n     stdout: {so[:200]}\n     stderr: {se[:300]}")
# a folder kiln may not write into (as root, which writes anywhere: kiln runs as nobody)
ro_parent = tempfile.mkdtemp(prefix="kiln-cli-ro-")
os.chmod(ro_parent, 0o755)
ro = os.path.join(ro_parent, "read-only")
os.makedirs(ro)
os.chmod(ro, 0o555)
as_nobody = (lambda: (os.setgid(65534), os.setuid(65534))) if os.getuid() == 0 else None
p = subprocess.run([KILN, "run", MODEL, "--backend", "ref", "--output-dir", ro], capture_output=True, text=True,
                   cwd=ro_parent, preexec_fn=as_nobody, timeout=300)
if as_nobody and "Permission denied" in p.stderr and ro not in p.stderr:
    skip("--output-dir read-only", f"nobody cannot run {KILN} or read {MODEL} here")
else:
    check("--output-dir read-only: refused before the run",
          p.returncode == 1 and ro in p.stderr and "no write permission" in p.stderr and "outputs:" not in p.stdout,
          f"exit {p.returncode}\n     stdout: {p.stdout[:200]}\n     stderr: {p.stderr[:300]}")
os.chmod(ro, 0o755)
shutil.rmtree(ro_parent, ignore_errors=True)
out = os.path.join(TMP, "new-outputs")
expect("--output-dir created when missing", ("run", MODEL, "--backend", "ref", "--quiet", "--output-dir", out), 0)
check("  and the output written there", os.path.exists(os.path.join(out, "probs.npy")), str(os.listdir(TMP)))

# ---- without a GPU, run and bench give the hint build gives
code, so, se = kiln("run", MODEL, "--quiet")
if code == 0:
    skip("the --backend ref hint", "the cuda backend runs here (a GPU)")
else:
    for args in (("run", MODEL), ("bench", MODEL, "--iterations", "1", "--warmup", "0"),
                 ("build", MODEL, "-o", os.path.join(TMP, "c.plan"))):
        expect(f"{args[0]} on cuda without a GPU: hints --backend ref", args, 1, err=["--backend ref"])

print(f"{passed} passed, {failed} failed, {skipped} skipped")
shutil.rmtree(TMP, ignore_errors=True)
sys.exit(1 if failed else 0)
