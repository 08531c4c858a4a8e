#!/usr/bin/env python3
"""Engine cache tests: local folder, locks, corruption, faults, and a real
S3-compatible server (moto, started here on 127.0.0.1 with request
authentication on). Plain python3; prints 'N passed, N failed'.

usage: test_cache.py --kiln PATH/kiln [--model models/tinynet.onnx]
"""
import argparse
import glob
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

ap = argparse.ArgumentParser()
ap.add_argument("--kiln", required=True)
ap.add_argument("--model", default=os.path.join(ROOT, "models", "tinynet.onnx"))
ap.add_argument("-k", default="", help="run only tests whose name contains this")
ARGS = ap.parse_args()
KILN = os.path.abspath(ARGS.kiln)
MODEL = os.path.abspath(ARGS.model)
WORK = tempfile.mkdtemp(prefix="kiln-cache-test-")
os.chmod(WORK, 0o755)  # the permission test runs kiln as another user

REMOTE_VARS = ("KILN_REMOTE_URL", "KILN_S3_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
               "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "KILN_CACHE_DIR", "XDG_CACHE_HOME")


def env(cache, **extra):
    e = {k: v for k, v in os.environ.items() if k not in REMOTE_VARS}
    e["KILN_CACHE_DIR"] = cache
    e["KILN_LOG_LEVEL"] = "info"
    e["KILN_S3_RETRIES"] = "1"
    e.update({k: v for k, v in extra.items() if v is not None})
    return e


def kiln(*args, cache, extra=None, preexec=None, timeout=120):
    p = subprocess.run([KILN, *args], env=env(cache, **(extra or {})), capture_output=True, text=True,
                       preexec_fn=preexec, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def source_of(out):
    for line in out.splitlines():
        if line.startswith("source"):
            return line.split()[1]
    return None


def build(cache, *more, extra=None, preexec=None):
    return kiln("build", MODEL, "--backend", "ref", "--cache", *more, cache=cache, extra=extra, preexec=preexec)


def fresh(name):
    d = os.path.join(WORK, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    os.chmod(d, 0o777)
    return d


def entries(d):
    return sorted(f for f in os.listdir(d) if f.endswith(".plan") and not f.startswith("."))


def leftovers(d):
    """Temporary or partial files: must never remain."""
    return sorted(f for f in os.listdir(d) if ".tmp." in f)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


# ------------------------------------------------------------------ local

def test_build_then_local_cache():
    c = fresh("local")
    rc, out, err = build(c)
    check(rc == 0 and source_of(out) == "built", f"first build: rc {rc} {out} {err}")
    rc, out, err = build(c)
    check(rc == 0 and source_of(out) == "local_cache", f"second: {out} {err}")
    check(len(entries(c)) == 1, entries(c))
    rc, out, err = build(c, "--force-rebuild")
    check(rc == 0 and source_of(out) == "built", f"force: {out} {err}")


def test_plan_file_runs_like_the_model():
    c = fresh("planfile")
    plan = os.path.join(c, "tinynet.plan")
    rc, out, err = kiln("build", MODEL, "--backend", "ref", "-o", plan, cache=c)
    check(rc == 0 and os.path.exists(plan), f"build -o: {out} {err}")
    check(entries(c) == ["tinynet.plan"], f"build without --cache must not fill the cache: {entries(c)}")
    rc1, out1, err1 = kiln("run", plan, "--seed", "7", "--output-dir", os.path.join(c, "a"), cache=c)
    rc2, out2, err2 = kiln("run", MODEL, "--backend", "ref", "--seed", "7", "--output-dir", os.path.join(c, "b"), cache=c)
    check(rc1 == 0 and rc2 == 0, f"run: {err1} {err2}")
    for f in os.listdir(os.path.join(c, "a")):
        a = open(os.path.join(c, "a", f), "rb").read()
        b = open(os.path.join(c, "b", f), "rb").read()
        check(a == b, f"output {f} differs between the plan and the model")


def corrupt_entry(kind):
    c = fresh("corrupt_" + kind)
    rc, out, err = build(c)
    check(rc == 0, err)
    [name] = entries(c)
    p = os.path.join(c, name)
    data = bytearray(open(p, "rb").read())
    if kind == "byte":
        data[len(data) // 2] ^= 0x40
    else:
        data = data[: len(data) // 3]
    open(p, "wb").write(data)
    rc, out, err = kiln("cache", "verify", cache=c)
    check(rc == 1 and "BAD" in out, f"verify should flag it: {out} {err}")
    rc, out, err = build(c)
    check(rc == 0 and source_of(out) == "built", f"corrupt entry must be rebuilt, not loaded: {out} {err}")
    check("checksum" in err or "truncated" in err, f"the warning should say why: {err}")
    check(glob.glob(p + ".corrupt-*"), "the bad entry should be moved aside")
    rc, out, err = kiln("cache", "verify", cache=c)
    check(rc == 0, f"after rebuild: {out} {err}")


def test_corrupt_byte_rebuilt():
    corrupt_entry("byte")


def test_truncated_entry_rebuilt():
    corrupt_entry("cut")


def test_name_header_mismatch_refused():
    c = fresh("mismatch")
    rc, out, err = build(c)
    [name] = entries(c)
    wrong = os.path.join(c, "other_12345678_fp32_cpu_0.1.0.plan")
    shutil.copy(os.path.join(c, name), wrong)
    rc, out, err = kiln("run", wrong, cache=c)
    check(rc == 1 and "disagree" in err, f"run should refuse: {err}")
    rc, out, err = kiln("cache", "verify", cache=c)
    check(rc == 1 and "BAD other_" in out, out)


def test_cache_ls_rm_clear():
    c = fresh("manage")
    build(c)
    build(c, "--model-version", "v2")
    rc, out, err = kiln("cache", "ls", cache=c)
    check(rc == 0 and len(out.splitlines()) == 2, out)
    rc, out, err = kiln("cache", "rm", "*_v2_*", cache=c)
    check(rc == 0 and "removed 1" in out and len(entries(c)) == 1, out + str(entries(c)))
    rc, out, err = kiln("cache", "clear", cache=c)
    check(rc == 0 and entries(c) == [], out)


def test_eight_processes_build_once():
    c = fresh("race")
    procs = [subprocess.Popen([KILN, "build", MODEL, "--backend", "ref", "--cache"], env=env(c),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(8)]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    srcs = [source_of(o) for o, e, rc in results]
    check(all(rc == 0 for _, _, rc in results), [e for _, e, _ in results])
    check(srcs.count("built") == 1, f"exactly one build expected, sources: {srcs}")
    check(srcs.count("local_cache") == 7, srcs)
    check(len(entries(c)) == 1 and not leftovers(c), os.listdir(c))
    rc, out, err = kiln("cache", "verify", cache=c)
    check(rc == 0, out)


def test_stale_lock_taken_over():
    c = fresh("stale")
    rc, out, err = kiln("build", MODEL, "--backend", "ref", cache=c)
    name = out.split("identity")[1].split()[0]
    # a lock left by a process that died (pid far beyond pid_max is never alive)
    open(os.path.join(c, "." + name + ".lock"), "w").write("999999999\n")
    rc, out, err = build(c, extra={"KILN_CACHE_LOCK_TIMEOUT": "5"})
    check(rc == 0 and source_of(out) == "built", f"{out} {err}")
    check("gave up" not in err, f"stale lock must not be waited on: {err}")


def test_stale_temporaries_reported_and_cleaned():
    """A build killed while writing its entry leaves .NAME.plan.tmp.PID.N:
    ls and verify name it and remove it, a later build removes it; a live
    writer's temporary, or a fresh one, is left alone."""
    c = fresh("stale_tmp")
    rc, out, err = build(c)
    check(rc == 0, err)
    name = entries(c)[0]
    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid is gone
    old = time.time() - 3600

    def plant(pid, n, age=old):
        p = os.path.join(c, f".{name}.tmp.{pid}.{n}")
        open(p, "wb").write(b"half a plan")
        os.utime(p, (age, age))
        return os.path.basename(p)

    live = plant(os.getpid(), 7)           # a writer still running
    fresh_tmp = plant(dead.pid, 8, time.time())  # just written: maybe another machine's writer
    for cmd in (("cache", "ls"), ("cache", "verify")):
        stale = plant(dead.pid, 1)
        rc, out, err = kiln(*cmd, cache=c)
        check(rc == 0 and f"STALE {stale}" in out and "removed" in out, f"{cmd}: {out} {err}")
        check(stale not in os.listdir(c), f"{cmd} left {stale}")
    stale = plant(dead.pid, 2)
    rc, out, err = build(c, "--force-rebuild")
    check(rc == 0 and stale not in os.listdir(c), f"a build must sweep {stale}: {os.listdir(c)} {err}")
    check(live in os.listdir(c) and fresh_tmp in os.listdir(c), f"live or fresh temporaries removed: {os.listdir(c)}")


def test_no_write_permission():
    if os.getuid() != 0:
        c = fresh("ro")
        os.chmod(c, 0o555)
        pre = None
    else:  # root ignores permissions: run kiln as nobody
        c = fresh("ro")
        os.chmod(c, 0o755)
        pre = lambda: (os.setgid(65534), os.setuid(65534))
    rc, out, err = build(c, preexec=pre)
    check(rc == 0 and source_of(out) == "built", f"the build must still succeed: {out} {err}")
    check("no write permission" in err, f"clear message expected: {err}")
    check(entries(c) == [] and not leftovers(c), os.listdir(c))
    rc, out, err = kiln("build", MODEL, "--backend", "ref", "-o", os.path.join(c, "x.plan"), cache=c, preexec=pre)
    check(rc == 1 and "no write permission" in err and not os.listdir(c), f"{err} {os.listdir(c)}")


def test_disk_full():
    c = fresh("full")

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))

    rc, out, err = kiln("build", MODEL, "--backend", "ref", "-o", os.path.join(c, "x.plan"), cache=c, preexec=limit)
    check(rc == 1 and "file size limit" in err, f"{rc} {err}")
    check(os.listdir(c) == [], f"no partial file may remain: {os.listdir(c)}")
    rc, out, err = build(c, preexec=limit)
    check(rc == 0 and source_of(out) == "built" and "not cached" in err, f"{out} {err}")
    check(os.listdir(c) == [], f"no partial file may remain: {os.listdir(c)}")


# ------------------------------------------------------------------ remote

class Moto:
    """moto's S3 server on 127.0.0.1 with IAM request authentication on."""

    def __init__(self):
        import boto3  # noqa: F401 (moto depends on it)
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1)
                break
            except Exception:
                time.sleep(0.05)
        import boto3
        kw = dict(endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id="setup",
                  aws_secret_access_key="setup")
        iam = boto3.client("iam", **kw)
        iam.create_user(UserName="kiln")
        k = iam.create_access_key(UserName="kiln")["AccessKey"]
        iam.put_user_policy(UserName="kiln", PolicyName="s3", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        self.s3 = boto3.client("s3", **kw)
        self.s3.create_bucket(Bucket="engines")
        self.key, self.secret = k["AccessKeyId"], k["SecretAccessKey"]
        # from now on every request must be signed by a known key
        urllib.request.urlopen(urllib.request.Request(self.endpoint + "/moto-api/reset-auth", data=b"0", method="POST",
                                                      headers={"Content-Type": "text/plain"}))
        self.s3 = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                               aws_access_key_id=self.key, aws_secret_access_key=self.secret)

    def env(self, **over):
        e = dict(KILN_REMOTE_URL="s3://engines/kiln", KILN_S3_ENDPOINT=self.endpoint,
                 AWS_ACCESS_KEY_ID=self.key, AWS_SECRET_ACCESS_KEY=self.secret, AWS_REGION="us-east-1")
        e.update(over)
        return e

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


MOTO = None


def moto():
    global MOTO
    if MOTO is None:
        MOTO = Moto()
    return MOTO


def test_remote_upload_then_download():
    m = moto()
    c = fresh("remote")
    rc, out, err = build(c, extra=m.env())
    check(rc == 0 and source_of(out) == "built", f"{out} {err}")
    check("uploaded" in err, f"should upload after the build: {err}")
    rc, out, err = kiln("cache", "ls", "--remote", cache=c, extra=m.env())
    check(rc == 0 and ".plan" in out, f"ls --remote: {out} {err}")
    for f in entries(c):
        os.remove(os.path.join(c, f))
    rc, out, err = build(c, extra=m.env())
    check(rc == 0 and source_of(out) == "remote", f"after deleting the local entry: {out} {err}")
    check(len(entries(c)) == 1, "the download should enter the local cache")
    rc, out, err = build(c, extra=m.env())
    check(source_of(out) == "local_cache", out)


def test_remote_push_pull():
    m = moto()
    c = fresh("pushpull")
    build(c, "--model-version", "pp", "--no-upload", extra=m.env())
    rc, out, err = kiln("cache", "push", cache=c, extra=m.env())
    check(rc == 0 and "uploaded 1" in out, f"{out} {err}")
    kiln("cache", "clear", cache=c)
    rc, out, err = kiln("cache", "pull", "*_pp_*", cache=c, extra=m.env())
    check(rc == 0 and "downloaded 1" in out and len(entries(c)) == 1, f"{out} {err}")
    rc, out, err = kiln("cache", "verify", cache=c)
    check(rc == 0, out)


def test_remote_wrong_secret():
    m = moto()
    c = fresh("badsecret")
    rc, out, err = build(c, "--model-version", "bad", extra=m.env(AWS_SECRET_ACCESS_KEY="not-the-secret"))
    check(rc == 0 and source_of(out) == "built", f"the build must succeed locally: {out} {err}")
    check("SignatureDoesNotMatch" in err and "AWS_SECRET_ACCESS_KEY" in err, f"clear message expected: {err}")
    check(err.count("warning") == 1, f"one warning, not one per request: {err}")
    rc, out, err = kiln("cache", "ls", "--remote", cache=c, extra=m.env(AWS_SECRET_ACCESS_KEY="x"))
    check(rc == 1 and "403" in err, err)


def test_remote_missing_bucket():
    m = moto()
    c = fresh("nobucket")
    rc, out, err = build(c, extra=m.env(KILN_REMOTE_URL="s3://no-such-bucket/x"))
    check(rc == 0 and source_of(out) == "built", f"{out} {err}")
    check("bucket 'no-such-bucket' does not exist" in err, err)


def test_remote_unreachable():
    c = fresh("unreachable")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    extra = dict(KILN_REMOTE_URL="s3://engines/kiln", KILN_S3_ENDPOINT=f"http://127.0.0.1:{port}",
                 AWS_ACCESS_KEY_ID="a", AWS_SECRET_ACCESS_KEY="b")
    t = time.time()
    rc, out, err = build(c, extra=extra)
    check(rc == 0 and source_of(out) == "built", f"{out} {err}")
    check("cannot reach the endpoint" in err, err)
    check(time.time() - t < 30, "bounded retries")


def test_remote_corrupt_object_refused():
    m = moto()
    c = fresh("badobject")
    rc, out, err = kiln("build", MODEL, "--backend", "ref", "--model-version", "corrupt", cache=c)
    name = out.split("identity")[1].split()[0]
    plan = os.path.join(c, "p.plan")
    kiln("build", MODEL, "--backend", "ref", "--model-version", "corrupt", "-o", plan, cache=c)
    data = bytearray(open(plan, "rb").read())
    data[-10] ^= 1
    os.remove(plan)
    m.s3.put_object(Bucket="engines", Key="kiln/" + name, Body=bytes(data))
    rc, out, err = build(c, "--model-version", "corrupt", "--no-upload", extra=m.env())
    check(rc == 0 and source_of(out) == "built", f"{out} {err}")
    check("checksum" in err, err)


def cut_server(payload_len, sent):
    """An S3 stand-in that promises payload_len bytes, sends `sent`, then
    dies: the server is killed in the middle of the transfer."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    port = s.getsockname()[1]

    def serve():
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % payload_len + sent)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return s, port


def test_remote_cut_mid_transfer():
    c = fresh("cut")
    plan = os.path.join(WORK, "cut.plan")
    kiln("build", MODEL, "--backend", "ref", "-o", plan, cache=c)
    data = open(plan, "rb").read()
    s, port = cut_server(len(data), data[: len(data) // 2])
    extra = dict(KILN_REMOTE_URL="s3://engines/kiln", KILN_S3_ENDPOINT=f"http://127.0.0.1:{port}")
    rc, out, err = build(c, extra=extra)
    s.close()
    check(rc == 0 and source_of(out) == "built", f"{out} {err}")
    check("cut short" in err, err)
    rc, out, err = kiln("cache", "verify", cache=c)
    check(rc == 0 and not leftovers(c), f"no torn file: {out} {os.listdir(c)}")
    # and a real moto server killed while it sends the object
    m = Moto()
    try:
        c2 = fresh("cut_moto")
        rc, out, err = kiln("build", MODEL, "--backend", "ref", "--model-version", "big", cache=c2)
        name = out.split("identity")[1].split()[0]
        m.s3.put_object(Bucket="engines", Key="kiln/" + name, Body=os.urandom(8 << 20))
        p = subprocess.Popen([KILN, "build", MODEL, "--backend", "ref", "--cache", "--model-version", "big"],
                             env=env(c2, **m.env(KILN_S3_MAX_SPEED=str(2 << 20))), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        m.stop()
        out, err = p.communicate(timeout=120)
        check(p.returncode == 0 and source_of(out) == "built", f"{out} {err}")
        check("cut short" in err, err)
        rc, out, err = kiln("cache", "verify", cache=c2)
        check(rc == 0 and not leftovers(c2) and len(entries(c2)) == 1, f"no torn file: {out} {os.listdir(c2)}")
    finally:
        m.stop()


def main():
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_") and ARGS.k in n]
    passed = failed = 0
    try:
        for name, fn in tests:
            t = time.time()
            try:
                fn()
                passed += 1
                print(f"ok    {name} ({time.time() - t:.1f} s)")
            except Exception as e:  # noqa: BLE001
                failed += 1
                print(f"FAIL  {name}: {e}")
                if not isinstance(e, AssertionError):
                    traceback.print_exc()
            sys.stdout.flush()
    finally:
        if MOTO:
            MOTO.stop()
        shutil.rmtree(WORK, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
