/* kiln bench MODEL(.onnx|.plan) [--backend ref|cuda] [--devices 0,1] [--threads N] [--streams N]
 *            [--max-batch N --batch-delay-us N] [--iterations N] [--warmup N]
 *            [--verify] [--shapes NAME:DIMS] [--pinned] [--json FILE]
 *
 * N client threads send requests to one engine, each waiting for its answer
 * before sending the next (closed loop). Without --streams and batching they
 * call kiln_engine_infer (the engine's context pool); with them, requests go
 * through a kiln_scheduler (workers, dynamic batcher) as futures. With
 * --devices, one engine per listed GPU (the plan loaded onto each, or the
 * model built on each) behind one scheduler, --streams workers per device.
 * Prints the median/p90/p99 latency and the throughput; --verify compares
 * every result with a single-threaded run of the same input (on the first
 * device). --pinned puts the clients' inputs and outputs in page-locked
 * memory (kiln_host_alloc). */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "core/core.h"
#include "runtime/backend.h" /* device buffers and timing: kiln_engine_backend */

static const char BENCH_USAGE[] =
    "usage: kiln bench MODEL.onnx|MODEL.plan [--backend cuda|ref] [--devices N,N..] [--threads N]\n"
    "                  [--streams N] [--max-batch N --batch-delay-us N] [--iterations N] [--warmup N]\n"
    "                  [--verify [--limit X]] [--shapes NAME:DIMxDIM..] [--no-graph] [--pinned]\n"
    "                  [--json FILE]\n"
    "  --backend B     cuda (the default: kiln's GPU engine) or ref (the plain-C reference, on the CPU);\n"
    "                  a plan runs on its own backend, and naming another one is an error\n"
    "  --devices 0,1   one engine per listed GPU behind one scheduler (--streams workers per device)\n"
    "  --threads N     client threads (1..4096, default 1); --iterations N requests each (>= 1, default 100)\n"
    "  --warmup N      untimed requests per thread first (>= 0, default 10)\n"
    "  --streams N     serve through a scheduler with N workers; --max-batch N --batch-delay-us N: batching\n"
    "  --verify        check every result against a single-threaded run of the same input: max|d| / max|ref|\n"
    "                  per output within the precision's limit (fp32 1e-4, tf32 1e-2, fp16 5.5e-2,\n"
    "                  bf16 2.2e-1, as kiln compare); the requests over it are listed\n"
    "  --limit X       the limit --verify applies instead\n"
    "  --pinned        inputs and outputs in page-locked host memory (kiln_host_alloc)\n"
    "  --json FILE     write the results as JSON\n";

#define VARIANTS 16 /* distinct random inputs, used in turn */
#define MAX_DEVICES 64

/* "0,1,3" into devs; the count, or -1 when malformed */
static int parse_devices(const char *list, int *devs)
{
    int n = 0;
    const char *p = list;
    while (*p) {
        char *end;
        long d = strtol(p, &end, 10);
        if (end == p || d < 0 || d > 4095 || n == MAX_DEVICES || (*end && *end != ',')) return -1;
        devs[n++] = (int)d;
        p = *end ? end + 1 : end;
        if (*end && !*p) return -1;
    }
    return n ? n : -1;
}

typedef struct bench {
    kiln_engine *e;
    kiln_scheduler *s; /* NULL: kiln_engine_infer */
    int n_in, n_out, iterations, warmup, verify;
    int pinned; /* inputs and outputs from kiln_host_alloc */
    double tol; /* the largest error (max|d| / max|ref| per output) a correct result has: kiln_cli_limit */
    kiln_tensor in[VARIANTS][16];
    kiln_tensor *ref[VARIANTS]; /* single-threaded outputs (malloc'd data) */
    size_t out_bytes[16];
    pthread_barrier_t start;
} bench;

#define WORST 5 /* mismatching requests reported per client */

/* One request whose result was over the limit. */
typedef struct mismatch {
    int client, request, variant, output;
    double err; /* < 0: another shape */
} mismatch;

typedef struct client {
    bench *b;
    int id;
    double *lat_us;
    long mismatches, errors;
    double t0, t1;
    double max_rel; /* largest error seen on a result that was not bit-identical */
    mismatch worst[WORST]; /* the largest errors over the limit, largest first */
    int n_worst;
} client;

/* Keeps the WORST largest mismatches of a client. */
static void note_mismatch(client *c, mismatch m)
{
    int k = c->n_worst < WORST ? c->n_worst++ : WORST - 1;
    if (k == WORST - 1 && c->n_worst == WORST && c->worst[k].err >= m.err && m.err >= 0) return;
    c->worst[k] = m;
    for (; k > 0 && (c->worst[k].err > c->worst[k - 1].err || c->worst[k].err < 0); k--) {
        mismatch t = c->worst[k];
        c->worst[k] = c->worst[k - 1];
        c->worst[k - 1] = t;
    }
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int one(bench *b, int v, kiln_tensor *out)
{
    for (int o = 0; o < b->n_out; o++) {
        out[o].dtype = b->ref[v][o].dtype;
        out[o].rank = 1;
        out[o].dims[0] = (int64_t)(b->out_bytes[o] / (kiln_dtype_size(out[o].dtype) ? kiln_dtype_size(out[o].dtype) : 1));
    }
    kiln_status st;
    if (b->s) {
        kiln_future *f = NULL;
        st = kiln_infer_async(b->s, b->n_in, b->in[v], b->n_out, out, NULL, NULL, &f);
        if (st == KILN_OK) st = kiln_future_wait(f);
        kiln_future_destroy(f);
    } else
        st = kiln_engine_infer(b->e, b->n_in, b->in[v], b->n_out, out);
    return st == KILN_OK ? 0 : -1;
}

/* A client buffer back to where it came from. */
static void free_buf(const bench *b, void *p)
{
    if (b->pinned)
        kiln_host_free(p);
    else
        free(p);
}

static void *client_main(void *arg)
{
    client *c = arg;
    bench *b = c->b;
    kiln_tensor out[16];
    memset(out, 0, sizeof out);
    for (int o = 0; o < b->n_out; o++) {
        if (!b->pinned)
            out[o].data = malloc(b->out_bytes[o] + 1);
        else if (kiln_host_alloc(b->out_bytes[o] + 1, &out[o].data) != KILN_OK)
            out[o].data = NULL;
        if (!out[o].data) {
            fprintf(stderr, "kiln bench: no memory for a client's outputs: %s\n", kiln_last_error());
            c->errors = b->iterations;
            break;
        }
    }
    if (c->errors) {
        for (int o = 0; o < b->n_out; o++) free_buf(b, out[o].data);
        pthread_barrier_wait(&b->start);
        c->t0 = c->t1 = now_us();
        return NULL;
    }
    for (int i = 0; i < b->warmup; i++) one(b, (c->id + i) % VARIANTS, out);
    pthread_barrier_wait(&b->start);
    c->t0 = now_us();
    for (int i = 0; i < b->iterations; i++) {
        int v = (c->id * 7 + i) % VARIANTS;
        double t = now_us();
        int rc = one(b, v, out);
        c->lat_us[i] = now_us() - t;
        if (rc) {
            if (!c->errors++) fprintf(stderr, "kiln bench: request failed: %s\n", kiln_last_error());
            continue;
        }
        if (!b->verify) continue;
        for (int o = 0; o < b->n_out; o++) {
            const kiln_tensor *r = &b->ref[v][o];
            size_t n = b->out_bytes[o];
            if (out[o].rank != r->rank || memcmp(out[o].dims, r->dims, sizeof r->dims[0] * (size_t)r->rank)) {
                c->mismatches++;
                note_mismatch(c, (mismatch){c->id, i, v, o, -1});
                break;
            }
            if (!memcmp(out[o].data, r->data, n)) continue;
            /* not the same bytes: a GPU engine run at another batch (the
             * dynamic batcher) takes other kernels, which round
             * differently; within the precision's limit, the one the
             * accuracy checks use, it is the same answer, beyond it a
             * wrong one (or someone else's slice) */
            int64_t nonfinite = 0;
            double d = kiln_cli_rel_err(&out[o], r, &nonfinite);
            if (nonfinite) d = INFINITY;
            if (d > c->max_rel) c->max_rel = d;
            if (d > b->tol) {
                c->mismatches++;
                note_mismatch(c, (mismatch){c->id, i, v, o, d});
                break;
            }
        }
    }
    c->t1 = now_us();
    for (int o = 0; o < b->n_out; o++) free_buf(b, out[o].data);
    return NULL;
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *s, size_t n, double p)
{
    if (!n) return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return s[i < n ? i : n - 1];
}

/* --shapes NAME:DIMS for a plan: the dims of that input in this run */
static int override_one(const char *name, int rank, const int64_t *dims, const char *tok, void *ctx)
{
    kiln_tensor_desc *d = ctx;
    if (strcmp(name, d->name)) return 0;
    if (rank != d->rank) {
        fprintf(stderr, "kiln bench: --shapes '%s': input '%s' has rank %d\n", tok, d->name, d->rank);
        return 2;
    }
    for (int k = 0; k < rank; k++) d->dims[k] = dims[k];
    return 0;
}

static int shape_override(kiln_tensor_desc *d, int n, char **shapes)
{
    return kiln_cli_each_shape(n, shapes, override_one, d);
}

typedef struct gpu_times {
    int ran;
    double median, p90, p99, mean, throughput;
} gpu_times;

/* One run of bench_gpu: kiln_context_enqueue on the backend's stream. */
typedef struct gpu_run {
    kiln_context *c;
    int n_in;
    const kiln_tensor *in;
    int n_out;
    kiln_tensor *out;
} gpu_run;

static kiln_status gpu_enqueue(void *arg, void *stream)
{
    gpu_run *r = arg;
    return kiln_context_enqueue(r->c, r->n_in, r->in, r->n_out, r->out, stream);
}

/* The trtexec "GPU compute time": device-resident inputs and outputs,
 * kiln_context_enqueue on one stream, device timestamps (CUDA events)
 * around each run. */
static kiln_status bench_gpu(kiln_engine *e, int device, const kiln_tensor *in, int n_in, int n_out, int iterations,
                             int warmup, gpu_times *gt)
{
    memset(gt, 0, sizeof *gt);
    /* the buffers and the timing are the backend's: a backend without
     * (ref, on the host) has no device time */
    const kiln_backend_iface *be = kiln_engine_backend(e);
    if (!be->time_runs) return KILN_OK;
    kiln_context *c = NULL;
    kiln_tensor din[16], dout[16];
    memset(din, 0, sizeof din);
    memset(dout, 0, sizeof dout);
    double *ms = calloc((size_t)iterations, sizeof *ms);
    kiln_status st = ms ? kiln_context_create(e, &c) : KILN_ERR_OUT_OF_MEMORY;
    for (int i = 0; i < n_in && st == KILN_OK; i++) {
        din[i] = in[i];
        size_t bytes = kiln_dtype_size(in[i].dtype);
        for (int k = 0; k < in[i].rank; k++) bytes *= (size_t)in[i].dims[k];
        din[i].data = NULL;
        st = be->device_alloc(device, bytes + 1, &din[i].data);
        if (st == KILN_OK) st = be->copy_to_device(din[i].data, in[i].data, bytes);
        if (st != KILN_OK) st = kiln_fail_prefix(st, "kiln bench: input '%s' on device %d: ", in[i].name, device);
    }
    if (st == KILN_OK) st = kiln_context_output_shapes(c, n_in, in, n_out, dout);
    for (int o = 0; o < n_out && st == KILN_OK; o++) {
        size_t bytes = kiln_dtype_size(dout[o].dtype);
        for (int k = 0; k < dout[o].rank; k++) bytes *= (size_t)dout[o].dims[k];
        dout[o].data = NULL;
        st = be->device_alloc(device, bytes + 1, &dout[o].data);
        if (st != KILN_OK) st = kiln_fail_prefix(st, "kiln bench: output '%s' on device %d: ", dout[o].name, device);
    }
    gpu_run r = {c, n_in, din, n_out, dout};
    if (st == KILN_OK && (st = be->time_runs(device, warmup, gpu_enqueue, &r, NULL, NULL)) != KILN_OK)
        st = kiln_fail_prefix(st, "kiln bench: warm-up: ");
    double wall = 0;
    if (st == KILN_OK) st = be->time_runs(device, iterations, gpu_enqueue, &r, ms, &wall);
    if (st == KILN_OK) {
        double sum = 0;
        for (int i = 0; i < iterations; i++) sum += ms[i];
        qsort(ms, (size_t)iterations, sizeof *ms, cmp_double);
        int64_t batch = n_in > 0 && in[0].rank > 0 ? in[0].dims[0] : 1;
        gt->ran = 1;
        gt->median = pct(ms, (size_t)iterations, 0.5);
        gt->p90 = pct(ms, (size_t)iterations, 0.9);
        gt->p99 = pct(ms, (size_t)iterations, 0.99);
        gt->mean = sum / iterations;
        gt->throughput = wall > 0 ? (double)iterations * (double)batch / wall : 0;
    }
    for (int i = 0; i < n_in; i++) be->device_free(din[i].data);
    for (int o = 0; o < n_out; o++) be->device_free(dout[o].data);
    kiln_context_destroy(c);
    free(ms);
    return st;
}

int kiln_cmd_bench(int argc, char **argv)
{
    if (kiln_cli_help(argc, argv, BENCH_USAGE)) return 0;
    const char *path = NULL, *backend = NULL, *json = NULL, *devices = NULL, *limit_s = NULL;
    int threads = 1, streams = 0, max_batch = 0, delay_us = 0, iterations = 100, warmup = 10, verify = 0, rc = 0;
    int n_shapes = 0, no_graph = 0, n_devs = 0, pinned = 0;
    int devs[MAX_DEVICES] = {0};
    char **shapes = calloc((size_t)argc + 1, sizeof *shapes);
    kiln_cli_args p = KILN_CLI_ARGS("bench", BENCH_USAGE, argc, argv);
    for (; p.i < argc && !p.rc; p.i++) {
        const char *v = NULL;
        if (kiln_cli_value(&p, "--backend", &backend) || kiln_cli_int(&p, "--threads", 1, 4096, &threads) ||
            kiln_cli_int(&p, "--streams", 0, INT_MAX, &streams) ||
            kiln_cli_int(&p, "--max-batch", 0, INT_MAX, &max_batch) ||
            kiln_cli_int(&p, "--batch-delay-us", 0, INT_MAX, &delay_us) ||
            kiln_cli_int(&p, "--iterations", 1, INT_MAX, &iterations) ||
            kiln_cli_int(&p, "--warmup", 0, INT_MAX, &warmup) || kiln_cli_value(&p, "--json", &json) ||
            kiln_cli_value(&p, "--limit", &limit_s))
            continue;
        if (kiln_cli_value(&p, "--devices", &devices)) {
            if (devices && (n_devs = parse_devices(devices, devs)) < 0) {
                fprintf(stderr, "kiln bench: --devices '%s': expected GPU ordinals, as in 0,1\n", devices);
                p.rc = 2;
            }
        } else if (kiln_cli_value(&p, "--shapes", &v)) {
            if (v) shapes[n_shapes++] = (char *)v;
        } else if (kiln_cli_flag(&p, "--verify"))
            verify = 1;
        else if (kiln_cli_flag(&p, "--no-graph"))
            no_graph = 1;
        else if (kiln_cli_flag(&p, "--pinned"))
            pinned = 1;
        else
            kiln_cli_positional(&p, &path);
    }
    if (!p.rc && !path) kiln_cli_usage_error(&p, "no model given");
    rc = p.rc;
    kiln_build_options opt;
    kiln_build_options_init(&opt);
    if (!rc && backend) rc = kiln_cli_parse_backend("bench", backend, &opt.backend);
    double limit = -1;
    if (!rc && limit_s) {
        char *end;
        limit = strtod(limit_s, &end);
        if (end == limit_s || *end || !(limit >= 0) || limit > 1e30) {
            fprintf(stderr, "kiln bench: --limit '%s': expected a number >= 0, as in 1e-3\n", limit_s);
            rc = 2;
        }
    }
    /* a plan runs on the backend it was built for: asking for another is an error */
    if (!rc && kiln_is_plan_file(path)) rc = kiln_cli_check_plan("bench", path, backend, NULL);
    if (rc) {
        free(shapes);
        return rc;
    }

    bench *b = calloc(1, sizeof *b);
    kiln_engine *eng[MAX_DEVICES] = {NULL}; /* with --devices: one per device; eng[0] is b->e */
    kiln_model *m = NULL;
    kiln_context *ctx = NULL;
    client *cl = NULL;
    double *all = NULL;
    kiln_status st;
    bool plan = kiln_is_plan_file(path);
    st = plan ? kiln_engine_load_device(path, n_devs ? devs[0] : 0, &b->e) : kiln_model_load(path, &m);
    if (st != KILN_OK) goto fail;
    /* a plan keeps its profile: --shapes picks the run's shapes in it */
    if (!plan && (rc = kiln_cli_apply_shapes(m, n_shapes, shapes)) != 0) goto done;
    opt.device = n_devs ? devs[0] : 0;
    /* refused as kiln build refuses it (with the --backend ref hint without a GPU) */
    if (!plan && (rc = kiln_cli_check_backend(path, &opt)) != 0) goto done;
    if (!plan && (st = kiln_engine_build(m, &opt, &b->e)) != KILN_OK) goto fail;
    /* the other devices: the plan loaded onto each, or the model built on each */
    eng[0] = b->e;
    for (int k = 1; k < n_devs; k++) {
        opt.device = devs[k];
        st = plan ? kiln_engine_load_device(path, devs[k], &eng[k]) : kiln_engine_build(m, &opt, &eng[k]);
        if (st != KILN_OK) goto fail; /* the message names the device */
    }
    for (int k = 0; k < (n_devs ? n_devs : 1); k++)
        if (no_graph) kiln_engine_set_graphs(eng[k], 0);
    b->n_in = kiln_engine_num_inputs(b->e);
    b->n_out = kiln_engine_num_outputs(b->e);
    if (b->n_in > 16 || b->n_out > 16) {
        st = kiln_fail(KILN_ERR_UNSUPPORTED, "kiln bench: at most 16 inputs and 16 outputs");
        goto fail;
    }
    b->iterations = iterations;
    b->warmup = warmup;
    b->verify = verify;
    b->pinned = pinned;
    {
        /* the accuracy checks' limit for the engine's precision: another
         * batch may take other kernels, never a less accurate answer */
        kiln_identity id;
        b->tol = limit >= 0 ? limit
                            : kiln_cli_limit(kiln_engine_identity(b->e, &id) == KILN_OK ? id.precision : NULL);
    }
    /* inputs, and the single-threaded reference for each */
    if ((st = kiln_context_create(b->e, &ctx)) != KILN_OK) goto fail;
    for (int v = 0; v < VARIANTS; v++) {
        for (int i = 0; i < b->n_in; i++) {
            kiln_tensor_desc d;
            kiln_engine_input(b->e, i, &d);
            if (plan && (rc = shape_override(&d, n_shapes, shapes)) != 0) goto done;
            uint64_t seed = (uint64_t)v * 0x9e3779b97f4a7c15ull + (uint64_t)i + 1;
            if ((st = kiln_cli_random_input(&d, &seed, &b->in[v][i])) != KILN_OK) goto fail;
            if (pinned) {
                /* the same bytes, moved into page-locked memory */
                size_t bytes = kiln_dtype_size(d.dtype);
                for (int k = 0; k < b->in[v][i].rank; k++) bytes *= (size_t)b->in[v][i].dims[k];
                void *p = NULL;
                st = kiln_host_alloc(bytes + 1, &p);
                if (p) memcpy(p, b->in[v][i].data, bytes);
                free(b->in[v][i].data);
                b->in[v][i].data = p;
                if (st != KILN_OK) goto fail;
            }
        }
        int n;
        const kiln_tensor *out;
        if ((st = kiln_context_run(ctx, b->n_in, b->in[v], &n, &out)) != KILN_OK) goto fail;
        b->ref[v] = calloc((size_t)n + 1, sizeof **b->ref);
        for (int o = 0; o < n; o++) {
            size_t bytes = kiln_dtype_size(out[o].dtype);
            for (int k = 0; k < out[o].rank; k++) bytes *= (size_t)out[o].dims[k];
            b->ref[v][o] = out[o];
            b->ref[v][o].data = malloc(bytes + 1);
            memcpy(b->ref[v][o].data, out[o].data, bytes);
            if (bytes > b->out_bytes[o]) b->out_bytes[o] = bytes;
        }
    }
    kiln_context_destroy(ctx);
    ctx = NULL;
    if (streams > 0 || max_batch > 1 || n_devs > 0) {
        kiln_scheduler_options so;
        kiln_scheduler_options_init(&so);
        so.n_workers = streams > 0 ? streams : 1;
        so.max_batch = max_batch;
        so.max_delay_us = delay_us;
        if ((st = kiln_scheduler_create_multi(eng, n_devs ? n_devs : 1, &so, &b->s)) != KILN_OK) goto fail;
    } else if ((st = kiln_engine_set_pool_limits(b->e, threads, threads)) != KILN_OK)
        goto fail;

    pthread_barrier_init(&b->start, NULL, (unsigned)threads);
    cl = calloc((size_t)threads, sizeof *cl);
    pthread_t *th = calloc((size_t)threads, sizeof *th);
    for (int t = 0; t < threads; t++) {
        cl[t] = (client){.b = b, .id = t, .lat_us = calloc((size_t)iterations, sizeof(double))};
        pthread_create(&th[t], NULL, client_main, &cl[t]);
    }
    double t0 = 0, t1 = 0;
    long mism = 0, errs = 0;
    double max_rel = 0;
    size_t n_all = (size_t)threads * (size_t)iterations;
    all = malloc(n_all * sizeof *all);
    for (int t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        if (!t || cl[t].t0 < t0) t0 = cl[t].t0;
        if (!t || cl[t].t1 > t1) t1 = cl[t].t1;
        mism += cl[t].mismatches;
        if (cl[t].max_rel > max_rel) max_rel = cl[t].max_rel;
        errs += cl[t].errors;
        memcpy(all + (size_t)t * (size_t)iterations, cl[t].lat_us, (size_t)iterations * sizeof *all);
        free(cl[t].lat_us);
    }
    free(th);
    pthread_barrier_destroy(&b->start);
    qsort(all, n_all, sizeof *all, cmp_double);
    double wall_s = (t1 - t0) / 1e6, rps = wall_s > 0 ? (double)n_all / wall_s : 0;
    double p50 = pct(all, n_all, 0.5) / 1e3, p90 = pct(all, n_all, 0.9) / 1e3, p99 = pct(all, n_all, 0.99) / 1e3;
    kiln_scheduler_stats ss = {0};
    if (b->s) kiln_scheduler_stats_get(b->s, &ss);
    printf("model      %s\nbackend    %s\n", path, kiln_engine_backend_name(b->e));
    printf("mode       %s: %d client thread%s", b->s ? "scheduler" : "engine pool", threads, threads == 1 ? "" : "s");
    if (b->s) printf(", %d worker%s", streams > 0 ? streams : 1, streams > 1 ? "s" : "");
    if (n_devs) printf(" per device on %d device%s", n_devs, n_devs == 1 ? "" : "s");
    if (max_batch > 1) printf(", dynamic batching max %d, delay %d us", max_batch, delay_us);
    if (pinned) printf(", buffers from kiln_host_alloc");
    printf("\nrequests   %zu (+%d warmup per thread), %ld failed\n", n_all, warmup, errs);
    printf("latency    median %.3f ms  p90 %.3f ms  p99 %.3f ms\n", p50, p90, p99);
    printf("throughput %.1f requests/s (%.3f s)\n", rps, wall_s);
    if (b->s && ss.runs)
        printf("batches    %llu runs, %.2f rows per run\n", (unsigned long long)ss.runs, (double)ss.rows / (double)ss.runs);
    uint64_t dev_runs[MAX_DEVICES] = {0};
    int dev_alive[MAX_DEVICES] = {0};
    for (int k = 0; b->s && k < (n_devs ? n_devs : 1); k++)
        kiln_scheduler_device_stats(b->s, k, &dev_runs[k], &dev_alive[k]);
    if (n_devs) {
        printf("devices   ");
        for (int k = 0; k < n_devs; k++)
            printf(" %d: %llu runs%s%s", devs[k], (unsigned long long)dev_runs[k], dev_alive[k] ? "" : " (out of service)",
                   k + 1 < n_devs ? "," : "\n");
    }
    if (verify) {
        printf("verify     %ld of %zu results over the limit %.1e (max|d| / max|ref| per output, against a "
               "single-threaded run of the same input); largest error %.2e\n",
               mism, n_all, b->tol, max_rel);
        /* the worst of them, whoever saw them */
        mismatch all_worst[WORST];
        int n_w = 0;
        for (int t = 0; t < threads; t++)
            for (int k = 0; k < cl[t].n_worst; k++) {
                client tmp = {.worst = {{0}}};
                memcpy(tmp.worst, all_worst, sizeof all_worst);
                tmp.n_worst = n_w;
                note_mismatch(&tmp, cl[t].worst[k]);
                memcpy(all_worst, tmp.worst, sizeof all_worst);
                n_w = tmp.n_worst;
            }
        for (int k = 0; k < n_w; k++) {
            const mismatch *w = &all_worst[k];
            kiln_tensor_desc d;
            kiln_engine_output(b->e, w->output, &d);
            if (w->err < 0)
                printf("  thread %d request %d (input #%d): output '%s' has another shape\n", w->client, w->request,
                       w->variant, d.name);
            else
                printf("  thread %d request %d (input #%d): output '%s' error %.3e\n", w->client, w->request,
                       w->variant, d.name, w->err);
        }
        if (mism > n_w) printf("  ... and %ld more\n", mism - n_w);
    }
    gpu_times gt = {0};
    if (!errs && (st = bench_gpu(b->e, n_devs ? devs[0] : 0, b->in[0], b->n_in, b->n_out, iterations, warmup, &gt)) !=
                     KILN_OK)
        goto fail;
    if (gt.ran)
        printf("gpu        median %.3f ms  p90 %.3f ms  p99 %.3f ms  mean %.3f ms  %.1f inferences/s "
               "(device-resident I/O, CUDA events, graphs %s)\n",
               gt.median, gt.p90, gt.p99, gt.mean, gt.throughput, no_graph ? "off" : "on");
    if (json) {
        FILE *f = fopen(json, "w");
        if (!f) {
            st = kiln_fail(KILN_ERR_IO, "%s: cannot write", json);
            goto fail;
        }
        fputs("{\"model\": ", f);
        json_str(f, path);
        fprintf(f,
                ", \"backend\": \"%s\", \"threads\": %d, \"streams\": %d, \"max_batch\": %d, "
                "\"batch_delay_us\": %d, \"requests\": %zu, \"failed\": %ld, \"latency_ms\": {\"median\": %.6f, "
                "\"p90\": %.6f, \"p99\": %.6f}, \"throughput_rps\": %.3f, \"runs\": %llu, \"verify\": %s, "
                "\"mismatches\": %ld, \"graph\": %s, \"pinned\": %s",
                kiln_engine_backend_name(b->e), threads, streams, max_batch, delay_us, n_all, errs, p50, p90,
                p99, rps, (unsigned long long)ss.runs, verify ? "true" : "false", mism, no_graph ? "false" : "true",
                pinned ? "true" : "false");
        if (verify) fprintf(f, ", \"verify_limit\": %.6e, \"verify_max_error\": %.6e", b->tol, isfinite(max_rel) ? max_rel : 1e308);
        fputs(", \"devices\": [", f);
        for (int k = 0; k < (n_devs ? n_devs : 1); k++) fprintf(f, "%s%d", k ? ", " : "", n_devs ? devs[k] : 0);
        if (b->s) {
            fputs("], \"device_runs\": [", f);
            for (int k = 0; k < (n_devs ? n_devs : 1); k++)
                fprintf(f, "%s%llu", k ? ", " : "", (unsigned long long)dev_runs[k]);
            fputs("]", f);
        } else
            fputs("], \"device_runs\": null", f);
        if (gt.ran)
            fprintf(f,
                    ", \"gpu_ms\": {\"median\": %.6f, \"p90\": %.6f, \"p99\": %.6f, \"mean\": %.6f}, "
                    "\"gpu_throughput\": %.3f",
                    gt.median, gt.p90, gt.p99, gt.mean, gt.throughput);
        fputs("}\n", f);
        fclose(f);
    }
    rc = errs || mism ? 1 : 0;
    goto done;
fail:
    rc = kiln_cli_fail(st);
done:
    kiln_context_destroy(ctx);
    kiln_scheduler_destroy(b->s);
    for (int v = 0; v < VARIANTS; v++) {
        for (int i = 0; i < b->n_in; i++) free_buf(b, b->in[v][i].data);
        for (int o = 0; b->ref[v] && o < b->n_out; o++) free(b->ref[v][o].data);
        free(b->ref[v]);
    }
    kiln_engine_destroy(b->e);
    for (int k = 1; k < n_devs; k++) kiln_engine_destroy(eng[k]);
    kiln_model_destroy(m);
    free(cl);
    free(all);
    free(b);
    free(shapes);
    return rc;
}
