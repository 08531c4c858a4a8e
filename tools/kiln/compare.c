/* kiln compare MODEL.onnx [--a SPEC] [--b SPEC] [--bisect] [--save DIR] ...
 *
 * Runs the model on two engines (a backend at a precision, or onnxruntime)
 * with the same inputs and prints each output's error, max|a - b| / max|b|,
 * against the limit of the less precise side (kiln_cli_limit). With
 * --bisect every tensor a node computes is made an output in both
 * (kiln_model_mark_output; onnxruntime through the onnx package), and the
 * first one over the limit in execution order names the layer where the
 * two part: its node, op, error and precision, with its inputs' errors to
 * show they were still within it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/core.h"
#include "npy.h"

static const char COMPARE_USAGE[] =
    "usage: kiln compare MODEL.onnx [--a SPEC] [--b SPEC] [--bisect] [--save DIR] [--limit X]\n"
    "                    [--input NAME=FILE.npy ...] [--seed N] [--shapes NAME:DIMxDIM..] [--python PY]\n"
    "                    [--fault TENSOR[:SCALE]] [--all]\n"
    "  --a SPEC        the engine under test (default cuda:fp16); SPEC is cuda[:fp32|tf32|fp16|bf16], ref or\n"
    "                  onnxruntime (CPU, through Python: pip install onnxruntime)\n"
    "  --b SPEC        the reference (default ref); errors are max|a - b| / max|b| per tensor\n"
    "  --bisect        every tensor a node computes becomes an output of both: prints the first layer (in\n"
    "                  execution order) whose error exceeds the limit, its op, error and precision\n"
    "  --limit X       the largest error accepted (default by the less precise side: fp32 1e-4, tf32 1e-2,\n"
    "                  fp16 5.5e-2, bf16 2.2e-1)\n"
    "  --save DIR      keep the tensors: DIR/a/NAME.npy, DIR/b/NAME.npy and DIR/errors.tsv\n"
    "  --input, --seed, --shapes: the inputs, as for kiln run (random ones are the same for both sides)\n"
    "  --python PY     the interpreter for onnxruntime (default $KILN_PYTHON, else python3)\n"
    "  --fault T[:S]   plant a known error in b (ref only): tensor T is multiplied by S (default 1.01) each\n"
    "                  time it is computed; to test that --bisect finds it\n"
    "  --all           with --bisect, print every tensor's error, not only those around the first failure\n"
    "exit status: 0 every output within the limit, 1 some output (or with --bisect, tensor) exceeds it or a\n"
    "side fails, 2 usage error\n";

typedef struct side {
    const char *spec;
    int ort;                 /* onnxruntime in a subprocess */
    kiln_build_options opt;  /* a kiln engine */
    char precision[16];      /* what it computed at, for the limit */
    char label[160];         /* "cuda fp16", "onnxruntime 1.20.1 (CPUExecutionProvider)" */
    kiln_tensor *out;        /* n_out tensors, data owned */
} side;

static int parse_side(const char *flag, const char *spec, side *s)
{
    s->spec = spec;
    kiln_build_options_init(&s->opt);
    if (!strcmp(spec, "onnxruntime") || !strcmp(spec, "ort")) {
        s->ort = 1;
        snprintf(s->precision, sizeof s->precision, "fp32");
        snprintf(s->label, sizeof s->label, "onnxruntime");
        return 0;
    }
    char backend[32];
    const char *colon = strchr(spec, ':');
    snprintf(backend, sizeof backend, "%.*s", colon ? (int)(colon - spec) : (int)strlen(spec), spec);
    if (kiln_cli_parse_backend("compare", backend, &s->opt.backend)) {
        fprintf(stderr, "kiln compare: %s '%s': expected cuda[:PRECISION], ref or onnxruntime\n", flag, spec);
        return 2;
    }
    if (colon && kiln_cli_parse_precision("compare", colon + 1, &s->opt.precision)) return 2;
    snprintf(s->label, sizeof s->label, "%s", spec);
    return 0;
}

/* Builds and runs one kiln side; its outputs copied into s->out. */
static kiln_status run_kiln(const char *path, kiln_model *m, side *s, const char *fault, int n_in,
                            const kiln_tensor *in, int n_out)
{
    kiln_engine *e = NULL;
    kiln_context *c = NULL;
    /* the fault is planted in this engine only: the ref backend reads it
     * while building */
    if (fault) setenv("KILN_REF_FAULT", fault, 1);
    kiln_status st = kiln_engine_build(m, &s->opt, &e);
    if (fault) unsetenv("KILN_REF_FAULT");
    if (st != KILN_OK) return kiln_fail_prefix(st, "%s (%s): ", s->spec, path);
    kiln_identity id;
    if (kiln_engine_identity(e, &id) == KILN_OK) snprintf(s->precision, sizeof s->precision, "%s", id.precision);
    snprintf(s->label, sizeof s->label, "%s %s%s", kiln_engine_backend_name(e), s->precision, fault ? " +fault" : "");
    int n = 0;
    const kiln_tensor *out = NULL;
    st = kiln_context_create(e, &c);
    if (st == KILN_OK) st = kiln_context_run(c, n_in, in, &n, &out);
    if (st == KILN_OK && n != n_out)
        st = kiln_fail(KILN_ERR_INTERNAL, "%s: the engine gave %d outputs, the model has %d", s->spec, n, n_out);
    for (int o = 0; o < n_out && st == KILN_OK; o++) {
        size_t bytes = kiln_dtype_size(out[o].dtype);
        for (int k = 0; k < out[o].rank; k++) bytes *= (size_t)out[o].dims[k];
        s->out[o] = out[o];
        s->out[o].data = malloc(bytes + 1);
        if (!s->out[o].data) st = kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of host memory for output '%s'", out[o].name);
        else if (bytes) memcpy(s->out[o].data, out[o].data, bytes);
    }
    kiln_context_destroy(c);
    kiln_engine_destroy(e);
    return st;
}

typedef struct result {
    const char *name;
    double err;
    int64_t nonfinite;
    int shape_differs;
} result;

static void compare_one(const kiln_tensor *a, const kiln_tensor *b, result *r)
{
    memset(r, 0, sizeof *r);
    r->name = b->name;
    int64_t na = 1, nb = 1;
    for (int k = 0; k < a->rank; k++) na *= a->dims[k];
    for (int k = 0; k < b->rank; k++) nb *= b->dims[k];
    /* a rank-0 vs [1] is the same tensor to everyone but a pedant */
    if (na != nb || (a->rank != b->rank && na != 1) ||
        (a->rank == b->rank && memcmp(a->dims, b->dims, sizeof a->dims[0] * (size_t)a->rank))) {
        r->shape_differs = 1;
        r->err = 1e300;
        return;
    }
    r->err = kiln_cli_rel_err(a, b, &r->nonfinite);
}

static bool over(const result *r, double limit) { return r->shape_differs || r->nonfinite || r->err > limit; }

static void shape_str(const kiln_tensor *t, char *buf, size_t cap)
{
    int p = snprintf(buf, cap, "[");
    for (int k = 0; k < t->rank && p < (int)cap; k++)
        p += snprintf(buf + p, cap - (size_t)p, "%s%lld", k ? "," : "", (long long)t->dims[k]);
    if (p < (int)cap) snprintf(buf + p, cap - (size_t)p, "]");
}

static void print_row(const kiln_tensor *a, const kiln_tensor *b, const result *r, double limit, const char *node,
                      const char *op)
{
    char sa[128], sb[128];
    shape_str(b, sb, sizeof sb);
    if (r->shape_differs) {
        shape_str(a, sa, sizeof sa);
        printf("  %-32s %-18s a has shape %s  SHAPE\n", r->name, sb, sa);
        return;
    }
    printf("  %-32s %-18s %-9.2e", r->name, sb, r->err);
    if (node) printf(" %-24s %-18s", node, op);
    if (r->nonfinite) printf(" %lld non-finite", (long long)r->nonfinite);
    printf(" %s\n", over(r, limit) ? "OVER" : "ok");
}

static kiln_status save_side(const char *dir, const char *sub, const side *s, int n)
{
    char folder[4096], name[512], file[4700];
    snprintf(folder, sizeof folder, "%s/%s", dir, sub);
    if (kiln_cli_prepare_output_dir("compare", folder)) return kiln_fail(KILN_ERR_IO, "%s: cannot be written", folder);
    for (int o = 0; o < n; o++) {
        kiln_cli_file_name(s->out[o].name, name, sizeof name);
        snprintf(file, sizeof file, "%s/%s.npy", folder, name);
        kiln_status st = kiln_npy_write(file, &s->out[o]);
        if (st != KILN_OK) return st;
    }
    return KILN_OK;
}

/* --bisect: order[0..n) are the outputs in execution order (every tensor
 * a node computes; declared outputs among them where their node runs),
 * node_of[o] the node that computes output o. Prints around the first
 * tensor over the limit; returns 1 when there is one. */
static int bisect_report(kiln_model *m, int n_out, const int *order, int n, const int *node_of, const side *a,
                         const side *b, double limit, int all)
{
    result *r = calloc((size_t)n_out + 1, sizeof *r);
    if (!r) return 1;
    for (int o = 0; o < n_out; o++) compare_one(&a->out[o], &b->out[o], &r[o]);
    int first = -1;
    for (int j = 0; j < n && first < 0; j++)
        if (over(&r[order[j]], limit)) first = j;
    printf("\nbisect: %d tensors in execution order, limit %.1e\n", n, limit);
    printf("  %-32s %-18s %-9s %-24s %-18s\n", "tensor", "shape", "error", "node", "op");
    int from = 0, to = n;
    if (!all) {
        int at = first >= 0 ? first : n - 1;
        from = at - 5 > 0 ? at - 5 : 0;
        to = at + 3 < n ? at + 3 : n;
    }
    if (from > 0) printf("  ... %d earlier tensors within the limit\n", from);
    for (int j = from; j < to; j++) {
        const char *node = "", *op = "";
        int o = order[j];
        kiln_model_node(m, node_of[o], &node, &op, NULL, NULL);
        print_row(&a->out[o], &b->out[o], &r[o], limit, node, op);
    }
    if (to < n) printf("  ... %d later tensors\n", n - to);
    if (first < 0) {
        printf("bisect: every tensor is within the limit\n");
        free(r);
        return 0;
    }
    int o = order[first];
    const char *node = "", *op = "";
    int n_inputs = 0;
    kiln_model_node(m, node_of[o], &node, &op, &n_inputs, NULL);
    printf("\nfirst layer over the limit: node '%s' (%s), output '%s': error %.3e (limit %.1e); %s vs %s\n", node, op,
           r[o].name, r[o].err, limit, a->label, b->label);
    /* its inputs' errors: within the limit, the error starts in this layer */
    for (int k = 0; k < n_inputs; k++) {
        kiln_tensor_desc d;
        if (kiln_model_node_input(m, node_of[o], k, &d) != KILN_OK) continue;
        int x = 0;
        while (x < n_out && strcmp(r[x].name, d.name)) x++;
        if (x < n_out)
            printf("  input '%s': error %.3e\n", d.name, r[x].err);
        else
            printf("  input '%s': a model input or weight, the same on both sides\n", d.name);
    }
    free(r);
    return 1;
}

/* Calls fn(node, output name, ctx) for every output of every node, in
 * execution order; stops at fn's first failure. */
static kiln_status each_node_output(kiln_model *m, kiln_status (*fn)(int node, const char *name, void *ctx), void *ctx)
{
    for (int i = 0; i < kiln_model_num_nodes(m); i++) {
        int k_out = 0;
        kiln_model_node(m, i, NULL, NULL, NULL, &k_out);
        for (int k = 0; k < k_out; k++) {
            kiln_tensor_desc d;
            if (kiln_model_node_output(m, i, k, &d) != KILN_OK) continue; /* an omitted optional output */
            kiln_status st = fn(i, d.name, ctx);
            if (st != KILN_OK) return st;
        }
    }
    return KILN_OK;
}

static kiln_status mark_one(int node, const char *name, void *ctx)
{
    kiln_model *m = ctx;
    (void)node;
    kiln_status st = kiln_model_mark_output(m, name);
    return st == KILN_ERR_NOT_FOUND ? KILN_OK : st; /* folded at import: no layer of its own */
}

typedef struct order_ctx {
    const char **names;
    int *node_of, *order, n_out, n;
} order_ctx;

static kiln_status order_one(int node, const char *name, void *ctx)
{
    order_ctx *c = ctx;
    for (int o = 0; o < c->n_out; o++)
        if (!strcmp(name, c->names[o]) && c->node_of[o] < 0) {
            c->node_of[o] = node;
            c->order[c->n++] = o;
            break;
        }
    return KILN_OK;
}

int kiln_cmd_compare(int argc, char **argv)
{
    if (kiln_cli_help(argc, argv, COMPARE_USAGE)) return 0;
    const char *path = NULL, *spec_a = "cuda:fp16", *spec_b = "ref", *save = NULL, *limit_s = NULL, *python = NULL;
    const char *fault = NULL;
    int bisect = 0, all = 0, n_files = 0, n_shapes = 0, rc = 0;
    uint64_t seed = 0;
    char **files = calloc((size_t)argc + 1, sizeof *files), **shapes = calloc((size_t)argc + 1, sizeof *shapes);
    kiln_cli_args p = KILN_CLI_ARGS("compare", COMPARE_USAGE, argc, argv);
    for (; p.i < argc && !p.rc; p.i++) {
        const char *v = NULL;
        if (kiln_cli_value(&p, "--a", &spec_a) || kiln_cli_value(&p, "--b", &spec_b) ||
            kiln_cli_value(&p, "--save", &save) || kiln_cli_value(&p, "--limit", &limit_s) ||
            kiln_cli_value(&p, "--python", &python) || kiln_cli_value(&p, "--fault", &fault) ||
            kiln_cli_u64(&p, "--seed", &seed))
            continue;
        if (kiln_cli_value(&p, "--input", &v)) {
            if (v) files[n_files++] = (char *)v;
        } else if (kiln_cli_value(&p, "--shapes", &v)) {
            if (v) shapes[n_shapes++] = (char *)v;
        } else if (kiln_cli_flag(&p, "--bisect"))
            bisect = 1;
        else if (kiln_cli_flag(&p, "--all"))
            all = 1;
        else
            kiln_cli_positional(&p, &path);
    }
    if (!p.rc && !path) kiln_cli_usage_error(&p, "no model given");
    rc = p.rc;
    side a = {0}, b = {0};
    if (!rc) rc = parse_side("--a", spec_a, &a);
    if (!rc) rc = parse_side("--b", spec_b, &b);
    double limit = 0;
    if (!rc && limit_s) {
        char *end;
        limit = strtod(limit_s, &end);
        if (end == limit_s || *end || !(limit >= 0) || limit > 1e30) {
            fprintf(stderr, "kiln compare: --limit '%s': expected a number >= 0, as in 1e-3\n", limit_s);
            rc = 2;
        }
    }
    if (!rc && fault && (b.ort || b.opt.backend != KILN_BACKEND_REF)) {
        fprintf(stderr, "kiln compare: --fault plants an error in b on the ref backend: use --b ref\n");
        rc = 2;
    }
    if (!rc && kiln_is_plan_file(path)) {
        fprintf(stderr, "kiln compare: %s is a plan; compare runs an ONNX model on both sides (build the plans "
                        "from it)\n", path);
        rc = 2;
    }
    if (!rc && save) rc = kiln_cli_prepare_output_dir("compare", save);
    if (!python) python = getenv("KILN_PYTHON") && *getenv("KILN_PYTHON") ? getenv("KILN_PYTHON") : "python3";
    kiln_model *m = NULL;
    kiln_tensor *in = NULL;
    int *node_of = NULL, *order = NULL, n_order = 0;
    const char **names = NULL;
    int n_in = 0, n_out = 0, n_decl = 0;
    kiln_status st = KILN_OK;
    if (rc) goto done;
    /* refused as kiln build refuses them, with the --backend ref hint */
    if ((!a.ort && (rc = kiln_cli_check_backend(path, &a.opt))) || (!b.ort && (rc = kiln_cli_check_backend(path, &b.opt))))
        goto done;
    if ((st = kiln_model_load(path, &m)) != KILN_OK) goto fail;
    n_in = kiln_model_num_inputs(m);
    bool gpu = (!a.ort && a.opt.backend == KILN_BACKEND_CUDA) || (!b.ort && b.opt.backend == KILN_BACKEND_CUDA);
    if ((rc = kiln_cli_load_inputs("compare", path, m, NULL, n_files, files, n_shapes, shapes, seed, gpu, &in)))
        goto done;
    n_decl = kiln_model_num_outputs(m);
    /* every computed tensor, in the order the nodes run */
    if (bisect && (st = each_node_output(m, mark_one, m)) != KILN_OK) goto fail;
    n_out = kiln_model_num_outputs(m);
    node_of = calloc((size_t)n_out + 1, sizeof *node_of);
    order = calloc((size_t)n_out + 1, sizeof *order);
    names = calloc((size_t)n_out + 1, sizeof *names);
    a.out = calloc((size_t)n_out + 1, sizeof *a.out);
    b.out = calloc((size_t)n_out + 1, sizeof *b.out);
    if (!node_of || !order || !names || !a.out || !b.out) {
        st = kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of host memory");
        goto fail;
    }
    for (int o = 0; o < n_out; o++) {
        kiln_tensor_desc d;
        kiln_model_output(m, o, &d);
        names[o] = d.name;
        node_of[o] = -1;
    }
    /* the execution order: each node's outputs, found among the model's */
    order_ctx oc = {names, node_of, order, n_out, 0};
    if (bisect) each_node_output(m, order_one, &oc);
    n_order = oc.n;
    char version[128] = "";
    side *sides[2] = {&a, &b};
    for (int s = 0; s < 2; s++) {
        side *x = sides[s];
        st = x->ort ? kiln_cli_ort_run(python, path, n_in, in, n_out, names, x->out, version, sizeof version)
                    : run_kiln(path, m, x, s == 1 ? fault : NULL, n_in, in, n_out);
        if (st != KILN_OK) {
            st = kiln_fail_prefix(st, "kiln compare: --%c %s: ", s ? 'b' : 'a', x->spec);
            goto fail;
        }
        if (x->ort && version[0]) snprintf(x->label, sizeof x->label, "%s", version);
    }
    if (!limit_s) {
        double la = kiln_cli_limit(a.precision), lb = kiln_cli_limit(b.precision);
        limit = la > lb ? la : lb;
    }
    printf("model   %s\na       %s\nb       %s (the reference)\nlimit   %.1e (max|a - b| / max|b| per tensor)\n",
           path, a.label, b.label, limit);
    printf("outputs:\n  %-32s %-18s %-9s\n", "name", "shape", "error");
    int bad = 0;
    FILE *tsv = NULL;
    if (save) {
        char f[4200];
        snprintf(f, sizeof f, "%s/errors.tsv", save);
        tsv = fopen(f, "w");
        if (tsv) fprintf(tsv, "tensor\tnode\top\terror\tnonfinite\tshape_differs\n");
    }
    for (int o = 0; o < n_out; o++) {
        result r;
        compare_one(&a.out[o], &b.out[o], &r);
        if (o < n_decl) {
            print_row(&a.out[o], &b.out[o], &r, limit, NULL, NULL);
            bad |= over(&r, limit);
        }
        if (tsv) {
            const char *node = "", *op = "";
            if (node_of[o] >= 0) kiln_model_node(m, node_of[o], &node, &op, NULL, NULL);
            fprintf(tsv, "%s\t%s\t%s\t%.6e\t%lld\t%d\n", r.name, node, op, r.shape_differs ? -1.0 : r.err,
                    (long long)r.nonfinite, r.shape_differs);
        }
    }
    if (tsv) fclose(tsv);
    if (bisect) bad |= bisect_report(m, n_out, order, n_order, node_of, &a, &b, limit, all);
    if (save) {
        if ((st = save_side(save, "a", &a, n_out)) != KILN_OK || (st = save_side(save, "b", &b, n_out)) != KILN_OK)
            goto fail;
        printf("saved   %s/a, %s/b (%d tensors each), %s/errors.tsv\n", save, save, n_out, save);
    }
    if (!bisect) printf("%s\n", bad ? "result: some output exceeds the limit" : "result: every output within the limit");
    rc = bad ? 1 : 0;
    goto done;
fail:
    rc = kiln_cli_fail(st);
done:
    for (int o = 0; o < n_out; o++) {
        if (a.out) free(a.out[o].data);
        if (b.out) free(b.out[o].data);
    }
    free(a.out);
    free(b.out);
    free(node_of);
    free(order);
    free(names);
    kiln_cli_free_inputs(in, n_in);
    kiln_model_destroy(m);
    free(files);
    free(shapes);
    return rc;
}
