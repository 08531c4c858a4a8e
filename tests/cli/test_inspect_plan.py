#!/usr/bin/env python3
"""`kiln inspect PLAN` (issue #18): what a plan holds, read from the file
alone, without loading it on a device. On a ref plan of MODEL: the header's
identity, the inputs and outputs, one layer per node of the model (its op
and ref kernel), the sizes, as text and as JSON (docs/inspect-json.md,
kiln.inspect-plan/1). Then refusals, each exit 1 with a message naming the
file: truncated, checksum mismatch, a resealed corrupt graph, a cuda header
over a plan without the cuda sections; and resealed random byte changes
never crash it. Plans that describe but would not load here (another kiln
version, a file name that is not the header's identity) say why.
The cuda program's layers are checked by tests/unit/test_plan_describe.c,
which makes a cuda plan without a GPU. Prints ok/FAIL per case; exit 1 if
any failed.
usage: test_inspect_plan.py KILN_BIN MODEL.onnx"""
import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

KILN, MODEL = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
TMP = tempfile.mkdtemp(prefix="kiln-inspect-plan-")
passed = failed = 0


def kiln(*args):
    # a corrupted plan's names need not be UTF-8: decode what kiln prints leniently
    p = subprocess.run([KILN, *args], capture_output=True, cwd=TMP, timeout=120)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def check(label, ok, detail=""):
    global passed, failed
    passed += bool(ok)
    failed += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {label}" + ("" if ok else f"\n     {str(detail).strip()[:800]}"))
    return ok


def reseal(data):
    """The header checksum (offset 24, 32 bytes) recomputed after an edit."""
    data[24:56] = bytes(32)
    data[24:56] = hashlib.sha256(bytes(data)).digest()
    return data


def sections(data):
    """{tag: (offset, size)} from the header's section table (offset 272)."""
    out = {}
    for i in range(struct.unpack_from("<I", data, 72)[0]):
        tag, off, size = struct.unpack_from("<8sQQ", data, 272 + 24 * i)
        out[tag.rstrip(b"\0").decode()] = (off, size)
    return out


def write(name, data):
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(bytes(data))
    return path


def model_nodes():
    """(name, op) of every node of MODEL, from onnx when it is installed;
    None without it (then only the counts of kiln's own report are checked)."""
    try:
        import onnx
    except ImportError:
        return None
    return [(n.name, n.op_type) for n in onnx.load(MODEL).graph.node]


# ---- a ref plan of the model
plan = os.path.join(TMP, "ref.plan")
code, _, se = kiln("build", MODEL, "--backend", "ref", "-o", plan)
if not check("build -o ref.plan", code == 0 and os.path.exists(plan), se):
    sys.exit(1)
raw = bytearray(open(plan, "rb").read())
code, so, se = kiln("inspect", MODEL, "--json")
model = json.loads(so)
n_nodes = model["model"]["nodes"]
nodes = model_nodes()
if nodes is not None:
    check("onnx and kiln agree on the model's node count", len(nodes) == n_nodes, f"{len(nodes)} vs {n_nodes}")

# ---- text
code, text, se = kiln("inspect", plan)
check("inspect ref.plan: exit 0, no error", code == 0 and not se.strip(), se)
for want in ("kiln plan", "backend   ref", "precision fp32", "arch      cpu", "runs here yes",
             f"layers ({n_nodes} nodes: {n_nodes} run by the ref backend", "images", "probs", "[batch,3,64,64]",
             "[batch,10]", f"file         {len(raw)} bytes", "section      GRAPH", "section      WEIGHTS"):
    check(f"text has {want!r}", want in text, text[:1500])
rows = [l for l in text.splitlines() if l[:2] == "  " and l.split()[0].isdigit()]
check(f"text: one layer row per model node ({n_nodes})", len(rows) == n_nodes, "\n".join(rows[:5]))
if nodes is not None:
    missing = [n for n, op in nodes if not any(r.split()[-1] == n and f"kiln_ref_{op}" in r for r in rows)]
    check("text: every node's row names it and its ref kernel", not missing, f"missing {missing[:5]}")
check("text: no engine built, no GPU asked (no build report)", "build report" not in text)

# ---- JSON
code, so, se = kiln("inspect", plan, "--json")
try:
    j = json.loads(so)
except ValueError as e:
    j = None
    check("inspect ref.plan --json is one JSON object", False, f"{e}: {so[:400]}")
if j is not None:
    check("json: exit 0, schema kiln.inspect-plan/1", code == 0 and j["schema"] == "kiln.inspect-plan/1", so[:300])
    ident = j["identity"]
    head = lambda off, n: raw[off:off + n].rstrip(b"\0").decode()  # noqa: E731
    check("json: identity is the header's", ident["model"] == head(80, 64) and ident["version"] == head(144, 32)
          and ident["precision"] == "fp32" and ident["arch"] == "cpu" and ident["backend"] == "ref"
          and ident["kiln_version"] == head(208, 16), ident)
    check("json: runs here", j["runs_here"] == {"ok": True, "reason": None}, j.get("runs_here"))
    check("json: inputs", [(i["name"], i["dtype"], i["shape"]) for i in j["inputs"]] == [
        ("images", "f32", ["batch", 3, 64, 64])], j["inputs"])
    check("json: outputs", [(o["name"], o["dtype"], o["shape"]) for o in j["outputs"]] == [
        ("probs", "f32", ["batch", 10])], j["outputs"])
    layers = j["layers"]
    check(f"json: {n_nodes} layers, indexed in order", len(layers) == n_nodes and
          [l["index"] for l in layers] == list(range(n_nodes)), len(layers))
    check("json: every layer runs its op's ref kernel", all(
        l["kind"] == "node" and l["kernel"] == "kiln_ref_" + l["ops"][0] and l["library"] == "ref"
        and len(l["nodes"]) == 1 for l in layers), layers[:2])
    if nodes is not None:
        check("json: the layers are the model's nodes", sorted((l["nodes"][0], l["ops"][0]) for l in layers)
              == sorted(nodes), [l["nodes"][0] for l in layers][:5])
    secs = sections(raw)
    sizes = j["sizes"]
    check("json: sizes match the file", sizes["file_bytes"] == len(raw) and
          sizes["weights_bytes"] == secs["WEIGHTS"][1] and
          {s["tag"]: (s["offset"], s["bytes"]) for s in j["sections"]} == secs, (sizes, j["sections"]))
    check("json: activations counted, no workspace", sizes["activation_bytes"] > 0 and sizes["workspace_bytes"] == 0,
          sizes)
    check("json: nodes summary", j["nodes"] == {"total": n_nodes, "run": n_nodes, "host": 0, "folded": 0}, j["nodes"])

# ---- describes, but would not load here: says why
other = write("other_12345678_fp32_cpu_0.1.0.plan", raw)
code, so, se = kiln("inspect", other)
check("identity-shaped name that is not the header's: exit 0, says it would be refused",
      code == 0 and "runs here no: the file name and the plan header disagree" in so, so[:600] + se)
old = bytearray(raw)
old[208:224] = b"0.0.9".ljust(16, b"\0")
oldp = write("old.plan", reseal(old))
code, so, se = kiln("inspect", oldp, "--json")
ok = code == 0
if ok:
    r = json.loads(so)["runs_here"]
    ok = r["ok"] is False and "kiln 0.0.9" in r["reason"]
check("plan of another kiln version: described, runs_here says why not", ok, so[:400] + se)

# ---- refusals: exit 1, the file named, the fault said


def refused(label, path, words, args=(), out_empty=False):
    code, so, se = kiln("inspect", path, *args)
    ok = code == 1 and os.path.basename(path) in se and all(w in se for w in words)
    if out_empty:
        ok = ok and not so.strip()
    check(label, ok, f"exit {code}; stderr: {se[:500]}; stdout: {so[:200]}")


refused("truncated plan", write("cut.plan", raw[:len(raw) // 2]), ["truncated plan", "ONNX model it was built from"])
refused("truncated plan --json: nothing on stdout", os.path.join(TMP, "cut.plan"), ["truncated plan"], ("--json",),
        out_empty=True)
refused("shorter than a header", write("short.plan", raw[:200]), ["header cannot be read"])
flip = bytearray(raw)
flip[len(flip) - 100] ^= 1
refused("one byte changed: checksum mismatch", write("flip.plan", flip), ["checksum mismatch"])
g_off, _ = sections(raw)["GRAPH"]
bad_graph = bytearray(raw)
bad_graph[g_off] ^= 0xff
refused("corrupt graph section, resealed", write("graph.plan", reseal(bad_graph)), ["malformed plan graph section"])
# a cuda plan's header over a ref plan's sections (resealed): the program is missing
cuda = bytearray(raw)
cuda[56:60] = (0).to_bytes(4, "little")  # backend cuda
cuda[60:64] = (2).to_bytes(4, "little")  # precision fp16
cuda[176:192] = b"fp16".ljust(16, b"\0")
cuda[192:208] = b"sm_90".ljust(16, b"\0")
refused("cuda plan without its program: refused without a GPU, naming what is missing",
        write("cuda.plan", reseal(cuda)), ["without its PROGRAM and DWEIGHTS sections"])
code, so, se = kiln("inspect", plan, "--values")
check("--values on a plan: usage error", code == 2 and "kiln plan" in se, se)

# ---- resealed random byte changes: described (valid JSON) or refused, never a crash
rng = random.Random(18)
crashes, bad_json, unnamed = [], [], []
for k in range(150):
    d = bytearray(raw)
    off = rng.randrange(512, len(d)) if k % 3 else rng.randrange(g_off, g_off + sections(raw)["GRAPH"][1])
    d[off] ^= rng.randrange(1, 256)
    path = write("m.plan", reseal(d))
    r = subprocess.run([KILN, "inspect", path, "--json"], capture_output=True, cwd=TMP, timeout=120)
    code, se = r.returncode, r.stderr.decode(errors="replace")
    if code not in (0, 1):
        crashes.append((off, code, se[-300:]))
    elif code == 0:
        try:
            json.loads(r.stdout)  # bytes: must be UTF-8 as well
        except ValueError:
            bad_json.append(off)
    elif "m.plan" not in se:
        unnamed.append((off, se[:200]))
check("150 resealed byte changes: no crash", not crashes, crashes[:3])
check("... every description valid JSON", not bad_json, bad_json[:5])
check("... every refusal names the file", not unnamed, unnamed[:3])

shutil.rmtree(TMP, ignore_errors=True)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
