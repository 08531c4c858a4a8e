/* kiln run MODEL.onnx [--backend ref|cuda] [--input NAME=FILE.npy ...] [--seed N]
 *                      [--shapes NAME:DIMS] [--output-dir DIR] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/core.h"
#include "npy.h"

static const char RUN_USAGE[] =
    "usage: kiln run MODEL.onnx|MODEL.plan [--backend cuda|ref] [--precision fp32|tf32|fp16|bf16]\n"
    "                [--input NAME=FILE.npy ...] [--seed N]\n"
    "                [--shapes NAME:DIMxDIM..] [--output-dir DIR] [--quiet]\n"
    "  --backend B       cuda (the default: kiln's GPU engine) or ref (the plain-C reference, on the CPU);\n"
    "                    a plan runs on its own backend, and naming another one is an error\n"
    "  --precision P     cuda: fp32, tf32, fp16 or bf16 (also --fp32 ...); ref computes in fp32 only\n"
    "  --input N=F.npy   an input from a .npy file (fixes its symbolic dims); the others are random\n"
    "  --seed N          seed of the random inputs (0 .. 2^64-1; default 0)\n"
    "  --shapes N:DxD..  fix symbolic input dims (the others are taken as 1)\n"
    "  --output-dir DIR  write NAME.npy per output there (created if missing; checked before the run)\n"
    "  --quiet           print nothing but errors\n";

static void print_output(const kiln_tensor *t)
{
    int64_t n = 1;
    char shape[256];
    int p = snprintf(shape, sizeof shape, "[");
    for (int k = 0; k < t->rank; k++) {
        n *= t->dims[k];
        p += snprintf(shape + p, sizeof shape - (size_t)p, "%s%lld", k ? "," : "", (long long)t->dims[k]);
    }
    snprintf(shape + p, sizeof shape - (size_t)p, "]");
    double mn = INFINITY, mx = -INFINITY, sum = 0, sq = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = kiln_load_f64(t->dtype, t->data, i);
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
        sum += v;
        sq += v * v;
    }
    double mean = n ? sum / (double)n : 0, sd = n ? sqrt(fmax(sq / (double)n - mean * mean, 0)) : 0;
    printf("  %-28s %-5s %-18s min %-11.5g max %-11.5g mean %-11.5g std %.5g\n", t->name, kiln_dtype_name(t->dtype),
           shape, n ? mn : 0, n ? mx : 0, mean, sd);
}

int kiln_cmd_run(int argc, char **argv)
{
    if (kiln_cli_help(argc, argv, RUN_USAGE)) return 0;
    const char *path = NULL, *outdir = NULL, *backend = NULL, *precision = NULL;
    uint64_t seed = 0;
    int n_shapes = 0, n_files = 0, quiet = 0, rc = 0;
    char **shapes = calloc((size_t)argc + 1, sizeof *shapes);
    char **files = calloc((size_t)argc + 1, sizeof *files);
    kiln_cli_args p = KILN_CLI_ARGS("run", RUN_USAGE, argc, argv);
    for (; p.i < argc && !p.rc; p.i++) {
        const char *a = argv[p.i], *v = NULL;
        if (kiln_cli_value(&p, "--backend", &backend) || kiln_cli_u64(&p, "--seed", &seed) ||
            kiln_cli_value(&p, "--output-dir", &outdir) || kiln_cli_value(&p, "--precision", &precision))
            continue;
        if (kiln_cli_value(&p, "--input", &v)) {
            if (v) files[n_files++] = (char *)v;
        } else if (kiln_cli_value(&p, "--shapes", &v)) {
            if (v) shapes[n_shapes++] = (char *)v;
        } else if (kiln_cli_flag(&p, "--quiet"))
            quiet = 1;
        else if (!strcmp(a, "--fp32") || !strcmp(a, "--tf32") || !strcmp(a, "--fp16") || !strcmp(a, "--bf16"))
            precision = a + 2;
        else
            kiln_cli_positional(&p, &path);
    }
    if (!p.rc && !path) kiln_cli_usage_error(&p, "no model given");
    rc = p.rc;
    kiln_build_options opt;
    kiln_build_options_init(&opt);
    if (!rc && backend) rc = kiln_cli_parse_backend("run", backend, &opt.backend);
    if (!rc && precision) rc = kiln_cli_parse_precision("run", precision, &opt.precision);
    /* a plan (detected by its magic) brings its backend, precision and
     * fixed shapes: asking for others is an error */
    bool plan = !rc && kiln_is_plan_file(path);
    if (plan) rc = kiln_cli_check_plan("run", path, backend, precision);
    if (!rc && plan && n_shapes) {
        fprintf(stderr, "kiln run: --shapes cannot change a plan: its shapes were fixed when it was built\n");
        rc = 2;
    }
    /* outputs go where they can be written, or nothing runs */
    if (!rc && outdir) rc = kiln_cli_prepare_output_dir("run", outdir);
    if (rc) {
        free(shapes);
        free(files);
        return rc;
    }

    kiln_model *m = NULL;
    kiln_engine *e = NULL;
    kiln_context *c = NULL;
    kiln_tensor *in = NULL;
    int n_in = 0;
    kiln_status st = plan ? kiln_engine_load(path, &e) : kiln_model_load(path, &m);
    if (st != KILN_OK) goto fail;
    /* what kiln build refuses, run refuses with the same words: a precision
     * the backend does not build, the cuda backend without a GPU */
    if (!plan && (rc = kiln_cli_check_backend(path, &opt)) != 0) goto done;
    n_in = plan ? kiln_engine_num_inputs(e) : kiln_model_num_inputs(m);
    /* a GPU engine is built for shapes: the files' are the ones to run */
    rc = kiln_cli_load_inputs("run", path, m, e, n_files, files, n_shapes, shapes, seed,
                              !plan && opt.backend == KILN_BACKEND_CUDA, &in);
    if (rc) goto done;
    if (!plan) st = kiln_engine_build(m, &opt, &e);
    if (st != KILN_OK) goto fail;
    st = kiln_context_create(e, &c);
    if (st != KILN_OK) goto fail;
    int n_out = 0;
    const kiln_tensor *out = NULL;
    st = kiln_context_run(c, n_in, in, &n_out, &out);
    if (st != KILN_OK) goto fail;
    if (!quiet) {
        printf("model  %s\nbackend %s\ninputs:\n", path, kiln_engine_backend_name(e));
        for (int i = 0; i < n_in; i++) print_output(&in[i]);
        printf("outputs:\n");
        for (int i = 0; i < n_out; i++) print_output(&out[i]);
    }
    if (outdir) {
        for (int i = 0; i < n_out; i++) {
            char name[512], file[4096];
            kiln_cli_file_name(out[i].name, name, sizeof name);
            snprintf(file, sizeof file, "%s/%s.npy", outdir, name);
            st = kiln_npy_write(file, &out[i]);
            if (st != KILN_OK) goto fail;
            if (!quiet) printf("wrote %s\n", file);
        }
    }
    goto done;
fail:
    rc = kiln_cli_fail(st);
done:
    kiln_cli_free_inputs(in, n_in);
    kiln_context_destroy(c);
    kiln_engine_destroy(e);
    kiln_model_destroy(m);
    free(shapes);
    free(files);
    return rc;
}
