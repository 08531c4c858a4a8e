/* kiln convert MODEL.pt|SAVED_MODEL_DIR [-o MODEL.onnx] [--opset N] [--dynamic-batch]
 *              [--input-shape [NAME:]DIMS ...] [--loader MODULE:FUNCTION] [--python PY]
 *
 * The frameworks' own exporters do the work, in a Python subprocess:
 * torch.onnx.export for TorchScript files and pickled torch.nn.Modules (or
 * a module a --loader function builds), Ultralytics' YOLO.export for its
 * checkpoints, tf2onnx for a TensorFlow SavedModel folder. The result goes to
 * a temporary file beside the output, is imported by kiln to check it, and
 * only then renamed over the output: a failed or interrupted conversion
 * leaves no file behind. */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "ir/ir.h"
#include "onnx/onnx.h"

extern char **environ;

static const char CONVERT_USAGE[] =
    "usage: kiln convert MODEL.pt|SAVED_MODEL_DIR [-o MODEL.onnx] [--opset N] [--dynamic-batch]\n"
    "                    [--input-shape [NAME:]DIMxDIM.. ...] [--loader MODULE:FUNCTION] [--python PY]\n"
    "  MODEL.pt            a TorchScript file, a pickled torch.nn.Module (or a checkpoint dict with a\n"
    "                      'model' key), or an Ultralytics checkpoint (exported by Ultralytics itself)\n"
    "  SAVED_MODEL_DIR     a TensorFlow SavedModel folder (exported by tf2onnx)\n"
    "  -o, --output F      the ONNX file to write; without -o: MODEL.onnx beside MODEL\n"
    "  --opset N           the ONNX opset to export to (7..25; default 17)\n"
    "  --dynamic-batch     make dim 0 of every input and output symbolic ('batch')\n"
    "  --input-shape D     a PyTorch model's input shape (1x3x224x224, or images:1x3x640x640 to name it);\n"
    "                      once per input; without it a first Conv2d or Linear layer decides\n"
    "  --loader M:F        build the torch.nn.Module with F(MODEL) from module M (or file M.py)\n"
    "  --python PY         the Python interpreter that has the framework (default $KILN_PYTHON, else python3)\n"
    "  needs: pip install torch (PyTorch), pip install ultralytics (Ultralytics),\n"
    "         pip install tf2onnx tensorflow (SavedModel)\n";

#define DEFAULT_OPSET 17

/* The exporter, run as PY -c SCRIPT MODEL OUT OPSET DYNAMIC SHAPES LOADER:
 * every parameter travels as an argument, none is written into the code.
 * It exits 3 when a framework is missing and 4 when the model cannot be
 * exported, having said why on stderr. */
enum { SCRIPT_MISSING = 3, SCRIPT_FAILED = 4 };
static const char SCRIPT[] =
    "# kiln convert's exporter, run as: PY -c THIS MODEL OUT OPSET DYNAMIC SHAPES LOADER\n"
    "# OUT is kiln's temporary file; exit 0 ok, 3 a framework is missing, 4 the\n"
    "# model cannot be exported (the message is printed here).\n"
    "import os, sys, warnings\n"
    "\n"
    "MISSING, FAILED = 3, 4\n"
    "\n"
    "\n"
    "class Refusal(Exception):\n"
    "    pass\n"
    "\n"
    "\n"
    "def say(key, text):\n"
    "    print(\"%-9s %s\" % (key, text), flush=True)\n"
    "\n"
    "\n"
    "def need(module, pip, what):\n"
    "    import importlib\n"
    "    try:\n"
    "        return importlib.import_module(module)\n"
    "    except ImportError as e:\n"
    "        if isinstance(e, ModuleNotFoundError) and e.name == module:\n"
    "            why = \"which %s cannot import\" % sys.executable\n"
    "        else:\n"
    "            why = \"which fails to import in %s (%s)\" % (sys.executable, e)\n"
    "        sys.stderr.write(\"kiln convert: error: %s needs %s, %s: install it with `pip install %s` \"\n"
    "                         \"(or name another interpreter with --python PY or $KILN_PYTHON)\\n\"\n"
    "                         % (what, module, why, pip))\n"
    "        sys.exit(MISSING)\n"
    "\n"
    "\n"
    "def sniff(path):\n"
    "    \"\"\"torchscript, ultralytics or pickle, from the file's contents alone\"\"\"\n"
    "    import zipfile\n"
    "    if zipfile.is_zipfile(path):\n"
    "        with zipfile.ZipFile(path) as z:\n"
    "            names = z.namelist()\n"
    "            if any(n.endswith(\"/constants.pkl\") or \"/code/\" in n for n in names):\n"
    "                return \"torchscript\"\n"
    "            pkl = [n for n in names if n == \"data.pkl\" or n.endswith(\"/data.pkl\")]\n"
    "            return \"ultralytics\" if pkl and b\"ultralytics\" in z.read(pkl[0]) else \"pickle\"\n"
    "    with open(path, \"rb\") as f:  # the legacy format: the class names come before the tensors\n"
    "        return \"ultralytics\" if b\"ultralytics\" in f.read(1 << 20) else \"pickle\"\n"
    "\n"
    "\n"
    "def shapes_of(text):\n"
    "    \"\"\"'x:1x3x8x8;1x10' -> [('x', [1, 3, 8, 8]), (None, [1, 10])] (checked by kiln)\"\"\"\n"
    "    out = []\n"
    "    for item in filter(None, text.split(\";\")):\n"
    "        name, _, dims = item.rpartition(\":\")\n"
    "        out.append((name or None, [int(d) for d in dims.split(\"x\")]))\n"
    "    return out\n"
    "\n"
    "\n"
    "def call_loader(spec, model, torch):\n"
    "    import importlib, importlib.util\n"
    "    mod_name, _, fn_name = spec.rpartition(\":\")\n"
    "    if mod_name.endswith(\".py\"):\n"
    "        s = importlib.util.spec_from_file_location(os.path.basename(mod_name)[:-3], mod_name)\n"
    "        if s is None:\n"
    "            raise Refusal(\"--loader %s: cannot load %s\" % (spec, mod_name))\n"
    "        mod = importlib.util.module_from_spec(s)\n"
    "        s.loader.exec_module(mod)\n"
    "    else:\n"
    "        mod = importlib.import_module(mod_name)\n"
    "    fn = getattr(mod, fn_name, None)\n"
    "    if not callable(fn):\n"
    "        raise Refusal(\"--loader %s: %s has no function %s\" % (spec, mod_name, fn_name))\n"
    "    m = fn(model)\n"
    "    if not isinstance(m, torch.nn.Module):\n"
    "        raise Refusal(\"--loader %s returned a %s, not a torch.nn.Module\" % (spec, type(m).__name__))\n"
    "    return m\n"
    "\n"
    "\n"
    "def load_pickle(model, torch):\n"
    "    try:\n"
    "        obj = torch.load(model, map_location=\"cpu\", weights_only=False)\n"
    "    except ModuleNotFoundError as e:\n"
    "        raise Refusal(\"%s: unpickling it needs the module '%s', which this Python cannot import: \"\n"
    "                      \"convert where it imports (PYTHONPATH), or build the model with \"\n"
    "                      \"--loader MODULE:FUNCTION\" % (model, e.name))\n"
    "    what = \"pickled torch.nn.Module\"\n"
    "    if isinstance(obj, dict) and \"model\" in obj:\n"
    "        obj, what = obj[\"model\"], \"checkpoint's 'model'\"\n"
    "    if isinstance(obj, dict):\n"
    "        raise Refusal(\"%s holds weights only (a state_dict), not a model: give --loader MODULE:FUNCTION, a \"\n"
    "                      \"function that builds the model from this file\" % model)\n"
    "    if not isinstance(obj, torch.nn.Module):\n"
    "        raise Refusal(\"%s holds a %s, not a torch.nn.Module\" % (model, type(obj).__name__))\n"
    "    return obj.float(), what\n"
    "\n"
    "\n"
    "def arg_names(m, torch):\n"
    "    try:\n"
    "        if isinstance(m, torch.jit.ScriptModule):\n"
    "            return [a.name for a in m.forward.schema.arguments][1:]\n"
    "        import inspect\n"
    "        ps = inspect.signature(m.forward).parameters.values()\n"
    "        return [p.name for p in ps if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]\n"
    "    except Exception:\n"
    "        return []\n"
    "\n"
    "\n"
    "def guess_shape(m):\n"
    "    \"\"\"[1, C, 224, 224] for a first Conv2d, [1, N] for a first Linear\"\"\"\n"
    "    for _, mod in m.named_modules():\n"
    "        weight = getattr(mod, \"weight\", None)\n"
    "        if weight is None or not hasattr(weight, \"shape\"):\n"
    "            continue\n"
    "        kind = getattr(mod, \"original_name\", type(mod).__name__)\n"
    "        if kind == \"Conv2d\" and len(weight.shape) == 4:\n"
    "            groups = getattr(mod, \"groups\", 1)\n"
    "            return [1, int(weight.shape[1]) * (groups if isinstance(groups, int) else 1), 224, 224], kind\n"
    "        if kind == \"Linear\" and len(weight.shape) == 2:\n"
    "            return [1, int(weight.shape[1])], kind\n"
    "        raise Refusal(\"the model's input shape cannot be guessed (its first layer is a %s): give it with \"\n"
    "                      \"--input-shape, e.g. --input-shape 1x3x224x224\" % kind)\n"
    "    raise Refusal(\"the model's input shape cannot be guessed: give it with --input-shape, e.g. 1x3x224x224\")\n"
    "\n"
    "\n"
    "def tensors(y):\n"
    "    if isinstance(y, (list, tuple)):\n"
    "        return [t for v in y for t in tensors(v)]\n"
    "    if isinstance(y, dict):\n"
    "        return [t for v in y.values() for t in tensors(v)]\n"
    "    return [y] if hasattr(y, \"shape\") else []\n"
    "\n"
    "\n"
    "def torch_export(model, out, opset, dynamic, shapes, loader, kind):\n"
    "    torch = need(\"torch\", \"torch\", \"%s (a PyTorch model)\" % model)\n"
    "    say(\"framework\", \"torch %s\" % torch.__version__)\n"
    "    say(\"exporter\", \"torch.onnx.export %s (TorchScript-based)\" % torch.__version__)\n"
    "    # what kiln chose on purpose is not news: the TorchScript-based exporter\n"
    "    # (it reads TorchScript and writes every opset kiln reads), jit.load\n"
    "    for text in (\".*legacy TorchScript-based ONNX export\", \".*torch.jit.* is deprecated\",\n"
    "                 \"no signature found for\"):\n"
    "        warnings.filterwarnings(\"ignore\", message=text)\n"
    "    if loader:\n"
    "        m, what = call_loader(loader, model, torch), \"--loader \" + loader\n"
    "    elif kind == \"torchscript\":\n"
    "        m, what = torch.jit.load(model, map_location=\"cpu\"), \"TorchScript\"\n"
    "    else:\n"
    "        m, what = load_pickle(model, torch)\n"
    "    m.eval()\n"
    "    say(\"model\", \"%s (%s)\" % (model, what))\n"
    "    guessed = \"\"\n"
    "    if not shapes:\n"
    "        dims, layer = guess_shape(m)\n"
    "        shapes = [(None, dims)]\n"
    "        guessed = \" (guessed from the first layer, a %s: --input-shape sets it)\" % layer\n"
    "    names = arg_names(m, torch)\n"
    "    in_names = [n or (names[i] if i < len(names) else \"input%d\" % i if len(shapes) > 1 else \"input\")\n"
    "                for i, (n, _) in enumerate(shapes)]\n"
    "    inputs = tuple(torch.randn(*d) for _, d in shapes)\n"
    "    for n, (_, d) in zip(in_names, shapes):\n"
    "        say(\"input\", \"%s %s float32%s%s\" % (n, \"x\".join(map(str, d)),\n"
    "                                             \", batch dynamic\" if dynamic else \"\", guessed))\n"
    "    try:\n"
    "        with torch.no_grad():\n"
    "            outs = tensors(m(*inputs))\n"
    "    except Exception as e:\n"
    "        raise Refusal(\"%s does not run on inputs of shape %s%s: %s\" % (\n"
    "            model, \", \".join(\"x\".join(map(str, d)) for _, d in shapes),\n"
    "            \" (guessed: give the shape with --input-shape)\" if guessed else \"\", e))\n"
    "    out_names = [\"output\"] if len(outs) == 1 else [\"output%d\" % i for i in range(len(outs))]\n"
    "    kw = dict(opset_version=opset, input_names=in_names, output_names=out_names, do_constant_folding=True)\n"
    "    if dynamic:\n"
    "        kw[\"dynamic_axes\"] = dict([(n, {0: \"batch\"}) for n in in_names] +\n"
    "                                  [(n, {0: \"batch\"}) for n, t in zip(out_names, outs) if len(t.shape)])\n"
    "    import inspect\n"
    "    if \"dynamo\" in inspect.signature(torch.onnx.export).parameters:\n"
    "        kw[\"dynamo\"] = False  # torch >= 2.9 defaults to the torch.export-based one (opset 18 and up)\n"
    "    torch.onnx.export(m, inputs, out, **kw)\n"
    "\n"
    "\n"
    "def ultralytics_export(model, out, opset, dynamic, shapes):\n"
    "    ul = need(\"ultralytics\", \"ultralytics\", \"%s (an Ultralytics checkpoint)\" % model)\n"
    "    torch = need(\"torch\", \"torch\", \"%s (an Ultralytics checkpoint)\" % model)\n"
    "    import shutil, tempfile\n"
    "    say(\"framework\", \"torch %s, ultralytics %s\" % (torch.__version__, ul.__version__))\n"
    "    say(\"exporter\", \"ultralytics %s YOLO.export(format='onnx')\" % ul.__version__)\n"
    "    say(\"model\", \"%s (Ultralytics checkpoint)\" % model)\n"
    "    kw = dict(format=\"onnx\", opset=opset, dynamic=dynamic)\n"
    "    if shapes:\n"
    "        if len(shapes) != 1 or len(shapes[0][1]) != 4:\n"
    "            raise Refusal(\"an Ultralytics model takes one input of rank 4: --input-shape NxCxHxW\")\n"
    "        dims = shapes[0][1]\n"
    "        kw.update(imgsz=[dims[2], dims[3]], batch=dims[0])\n"
    "    # Ultralytics writes NAME.onnx beside the weights: export from a copy in\n"
    "    # a folder of our own, so that nothing beside MODEL is touched\n"
    "    tmp = tempfile.mkdtemp(prefix=\".kiln-convert-\", dir=os.path.dirname(os.path.abspath(out)))\n"
    "    try:\n"
    "        copy = os.path.join(tmp, os.path.splitext(os.path.basename(model))[0] + \".pt\")\n"
    "        shutil.copyfile(model, copy)\n"
    "        from ultralytics import YOLO\n"
    "        result = YOLO(copy).export(**kw)\n"
    "        if not result or not os.path.isfile(str(result)):\n"
    "            raise Refusal(\"%s: Ultralytics' exporter wrote no ONNX file\" % model)\n"
    "        os.replace(str(result), out)\n"
    "    finally:\n"
    "        shutil.rmtree(tmp, ignore_errors=True)\n"
    "\n"
    "\n"
    "def savedmodel_export(model, out, opset, dynamic):\n"
    "    import subprocess\n"
    "    tf = need(\"tensorflow\", \"tf2onnx tensorflow\", \"%s (a TensorFlow SavedModel)\" % model)\n"
    "    t2o = need(\"tf2onnx\", \"tf2onnx tensorflow\", \"%s (a TensorFlow SavedModel)\" % model)\n"
    "    say(\"framework\", \"tensorflow %s\" % tf.__version__)\n"
    "    say(\"exporter\", \"tf2onnx %s\" % t2o.__version__)\n"
    "    say(\"model\", \"%s (SavedModel)\" % model)\n"
    "    r = subprocess.run([sys.executable, \"-m\", \"tf2onnx.convert\", \"--saved-model\", model,\n"
    "                        \"--output\", out, \"--opset\", str(opset)])\n"
    "    if r.returncode:\n"
    "        raise Refusal(\"%s: tf2onnx failed (exit status %d; its messages are above)\" % (model, r.returncode))\n"
    "\n"
    "\n"
    "def main(model, out, opset, dynamic, shapes, loader):\n"
    "    opset, dynamic, shapes = int(opset), dynamic == \"1\", shapes_of(shapes)\n"
    "    if os.path.isdir(model):\n"
    "        savedmodel_export(model, out, opset, dynamic)\n"
    "        return\n"
    "    kind = \"pickle\" if loader else sniff(model)\n"
    "    if kind == \"ultralytics\":\n"
    "        ultralytics_export(model, out, opset, dynamic, shapes)\n"
    "    else:\n"
    "        torch_export(model, out, opset, dynamic, shapes, loader, kind)\n"
    "\n"
    "\n"
    "try:\n"
    "    main(*sys.argv[1:7])\n"
    "except Refusal as e:\n"
    "    sys.stderr.write(\"kiln convert: error: %s\\n\" % e)\n"
    "    sys.exit(FAILED)\n"
    "except Exception as e:\n"
    "    import traceback\n"
    "    traceback.print_exc()\n"
    "    sys.stderr.write(\"kiln convert: error: %s: the export failed: %s: %s\\n\"\n"
    "                     % (sys.argv[1], type(e).__name__, e))\n"
    "    sys.exit(FAILED)\n";

/* MODEL.onnx beside MODEL: its extension replaced (a folder's name gets one) */
static void default_output(const char *model, char *out, size_t cap)
{
    size_t l = strlen(model);
    while (l > 1 && model[l - 1] == '/') l--; /* saved_model/ */
    const char *slash = memrchr(model, '/', l);
    const char *dot = memrchr(model, '.', l);
    struct stat sb;
    bool folder = stat(model, &sb) == 0 && S_ISDIR(sb.st_mode);
    if (dot && (!slash || dot > slash + 1) && !folder) l = (size_t)(dot - model);
    snprintf(out, cap, "%.*s.onnx", (int)l, model);
}

/* the same file (or folder) under two names */
static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* The child while it runs: SIGTERM and SIGHUP sent to kiln go on to it, so
 * that kiln outlives it and removes the temporary file. */
static volatile sig_atomic_t g_child;

static void forward_signal(int sig)
{
    if (g_child > 0) kill((pid_t)g_child, sig);
}

/* Runs argv (argv[0] looked up in PATH); the child's exit status, 128 + N
 * for a signal N, or -1 with errno set when it could not be started. */
static int run_child(char *const argv[])
{
    /* as system() does: ^C reaches the child through the terminal and kiln
     * waits for it; the child gets the default handlers back */
    struct sigaction ign = {.sa_handler = SIG_IGN}, fwd = {.sa_handler = forward_signal}, old[4];
    sigemptyset(&ign.sa_mask);
    sigemptyset(&fwd.sa_mask);
    sigaction(SIGINT, &ign, &old[0]);
    sigaction(SIGQUIT, &ign, &old[1]);
    sigaction(SIGTERM, &fwd, &old[2]);
    sigaction(SIGHUP, &fwd, &old[3]);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t def;
    sigemptyset(&def);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGQUIT);
    sigaddset(&def, SIGTERM);
    sigaddset(&def, SIGHUP);
    posix_spawnattr_setsigdefault(&attr, &def);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
    fflush(stdout);
    fflush(stderr);
    pid_t pid;
    int err = posix_spawnp(&pid, argv[0], NULL, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    int rc = -1, status = 0;
    if (err == 0) {
        g_child = pid;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        g_child = 0;
        rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    sigaction(SIGINT, &old[0], NULL);
    sigaction(SIGQUIT, &old[1], NULL);
    sigaction(SIGTERM, &old[2], NULL);
    sigaction(SIGHUP, &old[3], NULL);
    errno = err;
    return rc;
}

static void print_desc(const kiln_tensor_desc *d)
{
    char shape[512];
    int p = snprintf(shape, sizeof shape, "[");
    for (int k = 0; k < d->rank && p < (int)sizeof shape; k++) {
        if (d->dims[k] >= 0)
            p += snprintf(shape + p, sizeof shape - (size_t)p, "%s%lld", k ? "," : "", (long long)d->dims[k]);
        else
            p += snprintf(shape + p, sizeof shape - (size_t)p, "%s%s", k ? "," : "",
                          d->dim_names[k] && d->dim_names[k][0] ? d->dim_names[k] : "?");
    }
    if (p < (int)sizeof shape) snprintf(shape + p, sizeof shape - (size_t)p, "]");
    printf("  %-28s %-5s %s\n", d->name, kiln_dtype_name(d->dtype), shape);
}

/* the default-domain opset the model records, from kiln's own report; 0 when not found */
static long model_opset(const kiln_model *m)
{
    char *json = NULL;
    long opset = 0;
    if (kiln_model_report(m, KILN_REPORT_JSON, &json) == KILN_OK) {
        const char *at = strstr(json, "\"opset\":");
        if (at) opset = strtol(at + 8, NULL, 10);
    }
    kiln_free(json);
    return opset;
}

/* What kiln makes of the exported file: it must import. NULL, with the
 * error printed, when it does not. */
static kiln_model *check_import(const char *tmp, const char *out)
{
    kiln_model *m = NULL;
    if (kiln_model_load(tmp, &m) != KILN_OK) {
        fprintf(stderr, "kiln convert: error: the exported model does not import into kiln (%s was not written): %s\n",
                out, kiln_last_error());
        return NULL;
    }
    return m;
}

/* the opset it records, then its inputs and outputs, as kiln sees them */
static void print_model(const kiln_model *m, int asked_opset)
{
    long opset = model_opset(m);
    if (opset == asked_opset)
        printf("opset     %ld\n", opset);
    else
        printf("opset     %ld (--opset %d was asked for; the exporter chose this one)\n", opset, asked_opset);
    printf("inputs:\n");
    for (int i = 0; i < kiln_model_num_inputs(m); i++) {
        kiln_tensor_desc d;
        if (kiln_model_input(m, i, &d) == KILN_OK) print_desc(&d);
    }
    printf("outputs:\n");
    for (int i = 0; i < kiln_model_num_outputs(m); i++) {
        kiln_tensor_desc d;
        if (kiln_model_output(m, i, &d) == KILN_OK) print_desc(&d);
    }
    int unsupported = kiln_model_num_unsupported(m);
    if (unsupported) {
        const char *node = "", *op = "", *why = "";
        kiln_model_unsupported(m, 0, &node, &op, &why);
        printf("note      %d node%s kiln cannot run yet, first: node '%s' (%s): %s (kiln inspect lists them)\n",
               unsupported, unsupported == 1 ? "" : "s", node, op, why);
    }
}

/* --input-shape values checked and joined for the script: "x:1x3x8x8;1x10" */
static int add_shape(kiln_cli_args *p, const char *v, char *shapes, size_t cap)
{
    const char *colon = strrchr(v, ':');
    int rank;
    int64_t dims[KILN_MAX_RANK];
    bool ok = kiln_parse_dims(colon ? colon + 1 : v, &rank, dims) && rank > 0 && (!colon || colon > v) &&
              !(colon && memchr(v, ';', (size_t)(colon - v)));
    for (int k = 0; ok && k < rank; k++) ok = dims[k] > 0;
    size_t l = strlen(shapes);
    if (!ok) {
        kiln_cli_usage_error(p, "--input-shape '%s': expected DIMxDIMx.. of positive sizes, or NAME:DIMxDIMx.. "
                                "(e.g. 1x3x224x224)", v);
        return 2;
    }
    if (l + strlen(v) + 2 > cap) {
        kiln_cli_usage_error(p, "too many --input-shape values");
        return 2;
    }
    snprintf(shapes + l, cap - l, "%s%s", l ? ";" : "", v);
    return 0;
}

int kiln_cmd_convert(int argc, char **argv)
{
    if (kiln_cli_help(argc, argv, CONVERT_USAGE)) return 0;
    const char *model = NULL, *out = NULL, *python = NULL, *loader = NULL, *v = NULL;
    int opset = DEFAULT_OPSET, dynamic = 0, n_shapes = 0;
    char shapes[4096] = "";
    kiln_cli_args p = KILN_CLI_ARGS("convert", CONVERT_USAGE, argc, argv);
    for (; p.i < argc && !p.rc; p.i++) {
        if (kiln_cli_value(&p, "-o", &out) || kiln_cli_value(&p, "--output", &out) ||
            kiln_cli_value(&p, "--python", &python) ||
            kiln_cli_int(&p, "--opset", KILN_MIN_OPSET, KILN_MAX_OPSET, &opset))
            continue;
        if (kiln_cli_flag(&p, "--dynamic-batch"))
            dynamic = 1;
        else if (kiln_cli_value(&p, "--loader", &loader)) {
            const char *colon = loader ? strrchr(loader, ':') : NULL;
            if (loader && (!colon || colon == loader || !colon[1]))
                kiln_cli_usage_error(&p, "--loader '%s': expected MODULE:FUNCTION (e.g. mynets:load)", loader);
        } else if (kiln_cli_value(&p, "--input-shape", &v)) {
            if (v && add_shape(&p, v, shapes, sizeof shapes) == 0) n_shapes++;
        } else
            kiln_cli_positional(&p, &model);
    }
    if (!p.rc && !model) kiln_cli_usage_error(&p, "no model given");
    if (!p.rc && python && !python[0]) kiln_cli_usage_error(&p, "--python needs an interpreter's name or path");
    if (!p.rc && out && !out[0]) kiln_cli_usage_error(&p, "-o needs a file name");
    if (p.rc) return p.rc;

    struct stat sb;
    if (stat(model, &sb) != 0) {
        fprintf(stderr, "kiln convert: error: %s: %s\n", model, strerror(errno));
        return 1;
    }
    bool saved_model = S_ISDIR(sb.st_mode);
    if (saved_model) {
        char pb[4096], pbtxt[4096];
        snprintf(pb, sizeof pb, "%s/saved_model.pb", model);
        snprintf(pbtxt, sizeof pbtxt, "%s/saved_model.pbtxt", model);
        if (access(pb, R_OK) != 0 && access(pbtxt, R_OK) != 0) {
            fprintf(stderr,
                    "kiln convert: error: %s is a folder but not a TensorFlow SavedModel (no saved_model.pb in it)\n",
                    model);
            return 1;
        }
        /* tf2onnx takes the signature's shapes; a symbolic batch stays one */
        if (n_shapes || loader) {
            fprintf(stderr,
                    "kiln convert: %s is a TensorFlow SavedModel: %s applies to PyTorch models (a SavedModel keeps "
                    "its signature's shapes)\n%s",
                    model, n_shapes ? "--input-shape" : "--loader", CONVERT_USAGE);
            return 2;
        }
    } else if (!S_ISREG(sb.st_mode)) {
        fprintf(stderr, "kiln convert: error: %s is not a file or a SavedModel folder\n", model);
        return 1;
    }

    char default_out[4096];
    if (!out) {
        default_output(model, default_out, sizeof default_out);
        out = default_out;
    }
    if (same_file(model, out)) {
        fprintf(stderr, "kiln convert: the output %s is the model itself: give another with -o\n%s", out,
                CONVERT_USAGE);
        return 2;
    }
    if (kiln_cli_check_writable_file("convert", "ONNX model", out)) return 1;

    /* the temporary file beside the output, renamed over it once checked */
    const char *slash = strrchr(out, '/');
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%.*s.%s.tmp.XXXXXX", slash ? (int)(slash - out + 1) : 0, out, slash ? slash + 1 : out);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "kiln convert: error: %s: cannot create a temporary file beside it: %s\n", out,
                strerror(errno));
        return 1;
    }
    close(fd);

    if (!python || !python[0]) python = getenv("KILN_PYTHON");
    if (!python || !python[0]) python = "python3";
    char opset_text[16];
    snprintf(opset_text, sizeof opset_text, "%d", opset);
    char *child[] = {(char *)python, "-c", (char *)SCRIPT, (char *)model, tmp, opset_text, dynamic ? "1" : "0",
                     shapes, loader ? (char *)loader : "", NULL};
    int rc = run_child(child);
    if (rc != 0) {
        int err = errno;
        unlink(tmp);
        if (rc < 0)
            fprintf(stderr,
                    "kiln convert: error: cannot run the Python interpreter '%s': %s (install Python 3, or name "
                    "one with --python PY or $KILN_PYTHON)\n",
                    python, strerror(err));
        else if (rc > 128)
            fprintf(stderr, "kiln convert: error: the export was interrupted (signal %d); %s was not written\n",
                    rc - 128, out);
        else if (rc == 127 || rc == 126)
            fprintf(stderr, "kiln convert: error: cannot run the Python interpreter '%s' (exit status %d)\n", python,
                    rc);
        else if (rc != SCRIPT_MISSING && rc != SCRIPT_FAILED)
            fprintf(stderr, "kiln convert: error: the export in %s failed (exit status %d); %s was not written\n",
                    python, rc, out);
        return 1;
    }
    if (stat(tmp, &sb) != 0 || sb.st_size == 0) {
        unlink(tmp);
        fprintf(stderr, "kiln convert: error: the exporter wrote nothing; %s was not written\n", out);
        return 1;
    }
    kiln_model *m = check_import(tmp, out);
    if (!m) {
        unlink(tmp);
        return 1;
    }
    /* mkstemp made it private; the output gets a new file's usual mode */
    mode_t mask = umask(0);
    umask(mask);
    chmod(tmp, 0666 & ~mask);
    if (rename(tmp, out) != 0) {
        fprintf(stderr, "kiln convert: error: %s: cannot write it: %s\n", out, strerror(errno));
        unlink(tmp);
        kiln_model_destroy(m);
        return 1;
    }
    printf("wrote     %s\n", out);
    print_model(m, opset);
    kiln_model_destroy(m);
    return 0;
}
