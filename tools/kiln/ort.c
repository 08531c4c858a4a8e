/* onnxruntime as a reference for kiln compare: the model run by
 * onnxruntime's CPU provider in a Python subprocess, inputs and outputs
 * passed as .npy files through a private temporary folder. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "core/core.h"
#include "npy.h"

extern char **environ;

/* argv: MODEL WORKDIR. WORKDIR/inputs holds NAME\0FILE\0 pairs, WORKDIR/outputs
 * the names to fetch (NUL separated); writes WORKDIR/out<i>.npy and prints
 * the versions. Names not among the model's outputs are added to them (an
 * intermediate tensor), which needs the onnx package; graph optimizations
 * are then off so that every named tensor exists as the model defines it. */
static const char SCRIPT[] =
    "import os, sys\n"
    "def need(pkg, err):\n"
    "    sys.stderr.write('kiln compare: %s is not installed for %s (%s): pip install %s\\n'"
    " % (pkg, sys.executable, err, pkg))\n"
    "    sys.exit(3)\n"
    "try:\n"
    "    import numpy as np\n"
    "except ImportError as e:\n"
    "    need('numpy', e)\n"
    "try:\n"
    "    import onnxruntime as ort\n"
    "except ImportError as e:\n"
    "    need('onnxruntime', e)\n"
    "model, work = sys.argv[1], sys.argv[2]\n"
    "def fields(f):\n"
    "    with open(os.path.join(work, f), 'rb') as fh:\n"
    "        return [x.decode() for x in fh.read().split(b'\\0')[:-1]]\n"
    "pairs = fields('inputs')\n"
    "feeds = {pairs[i]: np.load(pairs[i + 1]) for i in range(0, len(pairs), 2)}\n"
    "names = fields('outputs')\n"
    "opts = ort.SessionOptions()\n"
    "opts.log_severity_level = 3\n"
    "src = model\n"
    "try:\n"
    "    import onnx\n"
    "except ImportError as e:\n"
    "    onnx = None\n"
    "if onnx is not None:\n"
    "    m = onnx.load(model)\n"
    "    have = {o.name for o in m.graph.output}\n"
    "    extra = [n for n in names if n not in have]\n"
    "    if extra:\n"
    "        m.graph.output.extend(onnx.ValueInfoProto(name=n) for n in extra)\n"
    "        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL\n"
    "        src = m.SerializeToString()\n"
    "sess = ort.InferenceSession(src, opts, providers=['CPUExecutionProvider'])\n"
    "known = {o.name for o in sess.get_outputs()}\n"
    "if any(n not in known for n in names):\n"
    "    need('onnx', 'needed to fetch intermediate tensors')\n"
    "for i, r in enumerate(sess.run(names, feeds)):\n"
    "    np.save(os.path.join(work, 'out%d.npy' % i), np.ascontiguousarray(r))\n"
    "print('onnxruntime %s (CPUExecutionProvider)' % ort.__version__)\n";

static kiln_status write_all(const char *path, const kiln_sbuf *b)
{
    FILE *f = fopen(path, "wb");
    if (!f) return kiln_fail(KILN_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    size_t n = b->len ? fwrite(b->data, 1, b->len, f) : 0;
    int bad = n != b->len;
    bad |= fclose(f) != 0;
    return bad ? kiln_fail(KILN_ERR_IO, "%s: cannot write (disk full?)", path) : KILN_OK;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char p[4096 + 256 + 2];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

kiln_status kiln_cli_ort_run(const char *python, const char *model, int n_in, const kiln_tensor *in, int n_out,
                             const char *const *names, kiln_tensor *out, char *version, size_t version_cap)
{
    const char *tmp = getenv("TMPDIR");
    char dir[4096], path[4400];
    snprintf(dir, sizeof dir, "%s/kiln-compare-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) return kiln_fail(KILN_ERR_IO, "%s: cannot create a temporary folder: %s", dir, strerror(errno));
    memset(out, 0, (size_t)n_out * sizeof *out);
    kiln_sbuf ins = {0}, outs = {0};
    kiln_status st = KILN_OK;
    for (int i = 0; i < n_in && st == KILN_OK; i++) {
        snprintf(path, sizeof path, "%s/in%d.npy", dir, i);
        st = kiln_npy_write(path, &in[i]);
        /* NUL-terminated fields: names may hold any other byte */
        kiln_sbuf_printf(&ins, "%s%c%s%c", in[i].name, 0, path, 0);
    }
    for (int o = 0; o < n_out; o++) kiln_sbuf_printf(&outs, "%s%c", names[o], 0);
    if (st == KILN_OK && (ins.failed || outs.failed)) st = kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of host memory");
    if (st == KILN_OK) {
        snprintf(path, sizeof path, "%s/inputs", dir);
        st = write_all(path, &ins);
    }
    if (st == KILN_OK) {
        snprintf(path, sizeof path, "%s/outputs", dir);
        st = write_all(path, &outs);
    }
    free(ins.data);
    free(outs.data);
    /* the version line comes back on the child's stdout, through a file */
    snprintf(path, sizeof path, "%s/version", dir);
    if (st == KILN_OK) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        char *argv[] = {(char *)python, "-c", (char *)SCRIPT, (char *)model, dir, NULL};
        pid_t pid;
        int err = posix_spawnp(&pid, python, &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        int ws = 0;
        if (err)
            st = kiln_fail(KILN_ERR_NOT_FOUND,
                           "cannot start '%s' for onnxruntime: %s (give an interpreter with --python or $KILN_PYTHON)",
                           python, strerror(err));
        else if (waitpid(pid, &ws, 0) < 0 || !WIFEXITED(ws))
            st = kiln_fail(KILN_ERR_INTERNAL, "%s: the onnxruntime run did not finish", python);
        else if (WEXITSTATUS(ws) == 3)
            st = kiln_fail(KILN_ERR_NOT_FOUND, "onnxruntime cannot run here (see above)");
        else if (WEXITSTATUS(ws) != 0)
            st = kiln_fail(KILN_ERR_FORMAT, "%s: onnxruntime failed on the model (exit %d, its message above)", model,
                           WEXITSTATUS(ws));
    }
    if (st == KILN_OK) {
        FILE *f = fopen(path, "r");
        version[0] = '\0';
        if (f) {
            if (!fgets(version, (int)version_cap, f)) version[0] = '\0';
            fclose(f);
        }
        version[strcspn(version, "\n")] = '\0';
    }
    for (int o = 0; o < n_out && st == KILN_OK; o++) {
        snprintf(path, sizeof path, "%s/out%d.npy", dir, o);
        st = kiln_npy_read(path, &out[o]);
        out[o].name = names[o];
    }
    remove_dir(dir);
    return st;
}
