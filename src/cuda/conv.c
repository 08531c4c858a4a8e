/* Conv and ConvTranspose on the cuda backend: the tuner and the dispatcher,
 * above the three paths that run a conv: cuDNN's legacy convolution API
 * (conv_legacy.c), its graph API (conv_graph.c) and pointwise convs as one
 * cuBLASLt matmul (conv_gemm.c). What the paths share is conv_common.c,
 * below them all; no path calls back into this file.
 *
 * The builder tunes a tactic once (kc_conv_tune) and keeps it in the plan
 * file; the op kernels kiln_cuda_Conv / kiln_cuda_ConvTranspose instead ask
 * cuDNN's heuristics on every launch.
 *
 * The tuner times the legacy API's candidates, then the engines of cuDNN's
 * graph API and the cuBLASLt matmuls, and keeps whichever is fastest; a
 * graph tactic (fused == KC_CONV_GRAPH) is prepared and run there, and where
 * no graph engine runs the conv at a shape, the legacy API's heuristic
 * choice runs it. KILN_CONV_TRACE=1 logs every candidate and its time;
 * KILN_CONV_GRAPH=0 leaves the graph API out; KILN_CONV_CHECK=1 runs the
 * graph API's choice once against the legacy API's and refuses it when
 * their outputs differ. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cudnn.h>

#include "cuda/conv_common.h"
#include "cuda/conv_gemm.h"
#include "cuda/conv_graph.h"
#include "cuda/conv_legacy.h"
#include "cuda/kc.h"

/* ---- the builder's interface (kc.h) */

kiln_status kc_conv_prepare(kc_handles *h, const kc_conv *c, const kc_conv_tactic *t, void **state, size_t *ws_bytes)
{
    *state = NULL;
    *ws_bytes = 0;
    kiln_status st;
    if (t->fused == KC_CONV_GEMM) {
        if ((st = kc_gemm_conv_prepare(h, c, t, state, ws_bytes)) == KILN_OK) return KILN_OK;
        /* the matmul does not run at this shape (an alignment, a dim): the
         * legacy API's heuristic choice keeps the conv running */
        kiln_log(kc_conv_trace() ? KILN_LOG_WARN : KILN_LOG_INFO,
                 "conv '%s': no cuBLASLt matmul at this shape (%s); using the legacy API's heuristic choice",
                 c->n->name, kiln_last_error());
        kiln_clear_error();
        return kc_legacy_prepare_heuristic(h, c, state, ws_bytes);
    }
    if (t->fused == KC_CONV_GRAPH) {
        if ((st = kc_graph_prepare(h, c, t, state, ws_bytes)) == KILN_OK) return KILN_OK;
        /* no graph engine runs the conv at this shape: the legacy API's
         * heuristic choice keeps it running */
        kiln_log(kc_conv_trace() ? KILN_LOG_WARN : KILN_LOG_INFO,
                 "conv '%s': cuDNN graph engine %d does not run at this shape (%s); using the legacy API's heuristic "
                 "choice",
                 c->n->name, (int)t->reserved, kiln_last_error());
        kiln_clear_error();
        *state = NULL;
        *ws_bytes = 0;
        return kc_legacy_prepare_heuristic(h, c, state, ws_bytes);
    }
    return kc_legacy_prepare(h, c, t, state, ws_bytes);
}

kiln_status kc_conv_run(void *state, kc_handles *h, const kc_conv *c, void *ws, size_t ws_bytes, cudaStream_t s)
{
    if (!state) return kiln_fail(KILN_ERR_INTERNAL, "conv run without prepare");
    if (*(const int *)state == KC_CONV_STATE_GRAPH) return kc_graph_run(state, h, c, ws, ws_bytes, s);
    if (*(const int *)state == KC_CONV_STATE_GEMM) return kc_gemm_conv_run(state, h, c, ws, ws_bytes, s);
    return kc_legacy_run(state, h, c, ws, ws_bytes, s);
}

void kc_conv_release(void *state)
{
    if (state && *(const int *)state == KC_CONV_STATE_GRAPH)
        kc_graph_release(state);
    else if (state && *(const int *)state == KC_CONV_STATE_GEMM)
        kc_gemm_conv_release(state);
    else
        kc_legacy_release(state);
}

/* ---- tuning */

#define TIMED_RUNS KC_CONV_TIMED_RUNS

typedef struct tuner {
    kc_handles *h;
    const kc_conv *c;
    kc_legacy_plan *p;
    void *ws;
    size_t ws_limit;
    cudaStream_t s;
    cudaEvent_t ev[TIMED_RUNS + 1];
} tuner;

/* $KILN_CONV_GRAPH=0: the tuner leaves the graph API out (a way around a
 * misbehaving engine). */
static bool graph_enabled(void)
{
    const char *v = getenv("KILN_CONV_GRAPH");
    return !(v && strcmp(v, "0") == 0);
}

/* $KILN_CONV_GEMM: "0", pointwise convs never run as cuBLASLt matmuls (0);
 * "force", they do wherever one runs, whatever the timings (2: the tests
 * use it to cover that path); else they compete on time (1) */
static int gemm_mode(void)
{
    const char *v = getenv("KILN_CONV_GEMM");
    if (v && strcmp(v, "0") == 0) return 0;
    return v && strcmp(v, "force") == 0 ? 2 : 1;
}

static int dims_text(const kc_view *v, char *buf, size_t cap)
{
    size_t l = 0;
    buf[0] = 0;
    for (int k = 0; k < v->rank && l < cap; k++)
        l += (size_t)snprintf(buf + l, cap - l, "%s%lld", k ? "x" : "", (long long)v->d[k]);
    return (int)l;
}

static float host_value(const void *p, kiln_dtype dt, size_t i)
{
    if (dt == KILN_F16) return kiln_f16_to_f32(((const uint16_t *)p)[i]);
    if (dt == KILN_BF16) return kiln_bf16_to_f32(((const uint16_t *)p)[i]);
    return ((const float *)p)[i];
}

/* y of tactic t into host memory. */
static kiln_status run_into(tuner *tu, const kc_conv_tactic *t, void *host, size_t bytes)
{
    kiln_status st;
    if (t->fused == KC_CONV_GRAPH || t->fused == KC_CONV_GEMM) {
        void *state = NULL;
        size_t need = 0;
        st = t->fused == KC_CONV_GRAPH ? kc_graph_prepare(tu->h, tu->c, t, &state, &need)
                                       : kc_gemm_conv_prepare(tu->h, tu->c, t, &state, &need);
        if (st == KILN_OK && need > tu->ws_limit)
            st = kiln_fail(KILN_ERR_INTERNAL, "the plan wants %zu bytes of workspace, over %zu", need, tu->ws_limit);
        if (st == KILN_OK) st = kc_conv_run(state, tu->h, tu->c, tu->ws, tu->ws_limit, tu->s);
        if (state) kc_conv_release(state);
    } else {
        st = kc_legacy_use(tu->h, tu->c, tu->p, t);
        if (st == KILN_OK) st = kc_legacy_run(tu->p, tu->h, tu->c, tu->ws, tu->ws_limit, tu->s);
    }
    if (st != KILN_OK) return st;
    KC_CHECK(cudaStreamSynchronize(tu->s));
    const kc_view *y = &tu->c->y;
    if (kc_view_is_dense(y, true) || kc_view_is_dense(y, false)) {
        KC_CHECK(cudaMemcpy(host, y->p, bytes, cudaMemcpyDeviceToHost));
        return KILN_OK;
    }
    /* a slice of a wider tensor (a concat's input): gathered densely first */
    void *d = NULL;
    KC_CHECK(cudaMalloc(&d, bytes ? bytes : 1));
    kc_view dense = *y;
    kiln_shape sh = {.rank = y->rank};
    memcpy(sh.d, y->d, (size_t)y->rank * sizeof *sh.d);
    kc_view_dense(&dense, d, y->dt, &sh);
    st = kc_copy(y, &dense, tu->s);
    cudaError_t ce = st == KILN_OK ? cudaStreamSynchronize(tu->s) : cudaSuccess;
    if (st == KILN_OK && ce == cudaSuccess) ce = cudaMemcpy(host, d, bytes, cudaMemcpyDeviceToHost);
    cudaFree(d);
    if (st == KILN_OK && ce != cudaSuccess) st = kc_fail_cuda(ce, "copying a conv's output for the check");
    return st;
}

/* $KILN_CONV_CHECK=1: the graph API's choice runs once against the legacy
 * API's and is refused (*ok false) when their outputs differ by more than
 * rounding: a guard against an engine that computes something else. */
static kiln_status check_graph(tuner *tu, const kc_conv_tactic *legacy, const kc_conv_tactic *graph, bool *ok)
{
    const kc_conv *c = tu->c;
    *ok = true;
    const kc_view *y = &c->y;
    if (c->z.p && c->z.p == y->p) {
        kiln_log(KILN_LOG_WARN, "conv '%s': check: skipped (output written over the residual)", c->n->name);
        return KILN_OK;
    }
    size_t n = (size_t)kc_view_numel(y), bytes = n * kiln_dtype_size(y->dt);
    void *a = malloc(bytes ? bytes : 1), *b = malloc(bytes ? bytes : 1);
    kiln_status st = a && b ? KILN_OK : kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of host memory checking a conv");
    if (st == KILN_OK) st = run_into(tu, legacy, a, bytes);
    if (st == KILN_OK) st = run_into(tu, graph, b, bytes);
    if (st == KILN_OK) {
        double diff = 0, ref = 0;
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) {
            double u = host_value(a, y->dt, i), v = host_value(b, y->dt, i);
            if (isnan(v) != isnan(u) || isinf(v) != isinf(u)) {
                bad++;
                continue;
            }
            if (isnan(u) || isinf(u)) continue;
            if (fabs(u) > ref) ref = fabs(u);
            if (fabs(u - v) > diff) diff = fabs(u - v);
        }
        double tol = y->dt == KILN_F32 && kc_legacy_strict(tu->p) ? 1e-3 : 2e-2;
        *ok = bad == 0 && diff <= tol * (ref > 1 ? ref : 1);
        if (!*ok || kc_conv_trace())
        kiln_log(KILN_LOG_WARN,
                 "conv '%s': check: %s %d vs legacy algo %d: max |diff| %.3g, max |y| %.3g, %zu NaN/Inf "
                 "mismatches: %s",
                 c->n->name, graph->fused == KC_CONV_GEMM ? "cuBLASLt algorithm" : "graph engine",
                 graph->fused == KC_CONV_GEMM ? (int)graph->algo : (int)graph->reserved, (int)legacy->algo, diff, ref,
                 bad, *ok ? "agree" : "DIFFER, it is refused");
    }
    free(a);
    free(b);
    return st;
}

/* The conv being tuned, for KILN_CONV_TRACE. */
static void trace_conv(const kc_conv *c)
{
    char x[96], w[96], y[96];
    dims_text(&c->x, x, sizeof x);
    dims_text(&c->w, w, sizeof w);
    dims_text(&c->y, y, sizeof y);
    kiln_log(KILN_LOG_WARN, "conv '%s': x %s %s%s, w %s, y %s, group %lld%s%s, act %d: tuning", c->n->name, x,
             kiln_dtype_name(c->x.dt), kc_conv_channels_last(c) ? " channels-last" : "", w, y,
             (long long)c->n->params.conv.group, c->bias.p ? ", bias" : "", c->z.p ? ", residual" : "",
             (int)c->act);
}

kiln_status kc_conv_tune(kc_handles *h, const kc_conv *c, void *ws, size_t ws_limit, kc_conv_tactic *best, float *ms)
{
    memset(best, 0, sizeof *best);
    if (ms) *ms = 0.0f;
    tuner tu = {.h = h, .c = c, .ws = ws, .ws_limit = ws ? ws_limit : 0};
    kiln_status st = kc_legacy_create(h, c, false, true, &tu.p);
    if (st != KILN_OK) return st;
    best->math = kc_legacy_tactic(tu.p)->math;
    if (kc_legacy_empty(tu.p)) {
        kc_legacy_release(tu.p);
        return KILN_OK;
    }
    if (kc_legacy_fixed(tu.p) > tu.ws_limit) {
        st = kiln_fail(KILN_ERR_OUT_OF_MEMORY,
                       "the conv needs %zu bytes of workspace for a padded copy of its input (asymmetric pads) or a "
                       "dense copy of its output; the limit is %zu",
                       kc_legacy_fixed(tu.p), tu.ws_limit);
        kc_legacy_release(tu.p);
        return st;
    }
    /* a private stream, so that nothing else on the context's stream is timed */
    cudnnHandle_t dnn = (cudnnHandle_t)h->cudnn;
    cudaStream_t saved = NULL;
    bool stream_set = false;
    int n_ev = 0;
    cudaError_t e = cudaStreamCreateWithFlags(&tu.s, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        tu.s = NULL;
        st = kc_fail_cuda(e, "cudaStreamCreateWithFlags");
    }
    for (; st == KILN_OK && n_ev < TIMED_RUNS + 1; n_ev++)
        if ((e = cudaEventCreate(&tu.ev[n_ev])) != cudaSuccess) st = kc_fail_cuda(e, "cudaEventCreate");
    if (st == KILN_OK) st = kc_dnn_check(cudnnGetStream(dnn, &saved), "cudnnGetStream");
    if (st == KILN_OK) {
        st = kc_dnn_check(cudnnSetStream(dnn, tu.s), "cudnnSetStream");
        stream_set = st == KILN_OK;
    }
    bool trace = kc_conv_trace();
    if (trace) trace_conv(c);
    float best_ms = -1.0f;
    char legacy_why[512] = "";
    kc_conv_timer tm = {.s = tu.s, .ev = tu.ev, .ws = tu.ws, .ws_limit = tu.ws_limit};
    if (st == KILN_OK) {
        st = kc_legacy_tune(tu.p, h, c, &tm, best, &best_ms);
        if (st == KILN_ERR_UNSUPPORTED) {
            /* no legacy tactic runs it: the graph API may */
            snprintf(legacy_why, sizeof legacy_why, "%s", kiln_last_error());
            kiln_clear_error();
            best_ms = -1.0f;
            st = KILN_OK;
        }
    }
    kc_conv_tactic legacy = *best;
    float legacy_ms = best_ms;
    if (st == KILN_OK && graph_enabled()) st = kc_graph_tune(h, c, &tm, best, &best_ms);
    int gemm = gemm_mode();
    if (st == KILN_OK && gemm) {
        kc_conv_tactic g = *best;
        float g_ms = gemm == 2 ? -1.0f : best_ms;
        st = kc_gemm_conv_tune(h, c, &tm, &g, &g_ms);
        if (st == KILN_OK && g.fused == KC_CONV_GEMM && g_ms >= 0) {
            *best = g;
            best_ms = g_ms;
        }
    }
    if (st == KILN_OK && best_ms < 0)
        st = kiln_fail(KILN_ERR_UNSUPPORTED, "%s; nor does any engine of cuDNN's graph API",
                       legacy_why[0] ? legacy_why : "no cuDNN legacy tactic runs this conv");
    /* a graph engine's result is checked against the legacy winner's before
     * it is kept (off with KILN_CONV_CHECK=0): an engine that computes
     * something else at this shape loses to the legacy tactic */
    const char *check = getenv("KILN_CONV_CHECK");
    if (st == KILN_OK && !(check && strcmp(check, "0") == 0) &&
        (best->fused == KC_CONV_GRAPH || best->fused == KC_CONV_GEMM) && legacy_ms >= 0) {
        bool ok = true;
        st = check_graph(&tu, &legacy, best, &ok);
        if (st != KILN_OK) {
            /* the graph plan does not run again: keep the legacy tactic,
             * unless the device broke */
            kiln_log(KILN_LOG_WARN, "conv '%s': check: %s", c->n->name, kiln_last_error());
            kiln_clear_error();
            ok = false;
            e = cudaStreamSynchronize(tu.s);
            st = e == cudaSuccess ? KILN_OK : kc_fail_cuda(e, "cudaStreamSynchronize after checking a conv");
        }
        if (!ok) {
            *best = legacy;
            best_ms = legacy_ms;
        }
    }
    if (st == KILN_OK && trace) {
        if (best->fused == KC_CONV_GEMM)
            kiln_log(KILN_LOG_WARN, "conv '%s': chose cuBLASLt algorithm %d: %.4f ms", c->n->name, (int)best->algo,
                     best_ms);
        else if (best->fused == KC_CONV_GRAPH)
            kiln_log(KILN_LOG_WARN, "conv '%s': chose graph engine %d (cfg %d%s%s): %.4f ms", c->n->name,
                     (int)best->reserved, (int)best->algo,
                     best->math & KC_CONV_GRAPH_POINTWISE ? ", pointwise ops" : "",
                     (best->math & 0xff) == KC_CONV_GRAPH_MODE_FALLBACK ? ", fallback list" : "", best_ms);
        else
            kiln_log(KILN_LOG_WARN, "conv '%s': chose legacy algo %d%s, math type %d: %.4f ms", c->n->name,
                     (int)best->algo, best->fused ? " fused" : "", (int)best->math, best_ms);
    }
    if (tu.s) {
        e = cudaStreamSynchronize(tu.s);
        if (st == KILN_OK && e != cudaSuccess) st = kc_fail_cuda(e, "cudaStreamSynchronize");
    }
    if (stream_set) cudnnSetStream(dnn, saved);
    for (int i = 0; i < n_ev; i++)
        if (tu.ev[i]) cudaEventDestroy(tu.ev[i]);
    if (tu.s) cudaStreamDestroy(tu.s);
    kc_legacy_release(tu.p);
    if (st == KILN_OK && ms) *ms = best_ms;
    return st;
}

/* ---- op kernels: Conv and ConvTranspose with cuDNN's heuristics per launch */

static kiln_status conv_from_launch(const kc_launch *L, kc_conv *c)
{
    memset(c, 0, sizeof *c);
    c->n = L->n;
    if (L->n_in < 2 || L->n_out < 1)
        return kiln_fail(KILN_ERR_INTERNAL, "launched with %d inputs and %d outputs", L->n_in, L->n_out);
    c->x = L->in[0];
    c->w = L->in[1];
    if (L->n_in > 2) c->bias = L->in[2];
    c->y = L->out[0];
    c->act = KC_ACT_NONE;
    return KILN_OK;
}

static kiln_status op_run(const kc_launch *L, bool transpose)
{
    kc_conv c;
    kiln_status st = conv_from_launch(L, &c);
    if (st != KILN_OK) return st;
    return kc_legacy_op_run(L->h, &c, transpose, L->ws, L->ws_bytes, L->stream);
}

/* The workspace op_run asks for (kc_legacy_op_ws). A size cannot carry an
 * error: on one this asks for nothing, and the run reports it. */
static size_t op_ws(const kc_launch *L, bool transpose)
{
    kc_conv c;
    if (conv_from_launch(L, &c) != KILN_OK) {
        kiln_clear_error();
        return 0;
    }
    return kc_legacy_op_ws(L->h, &c, transpose);
}

kiln_status kiln_cuda_Conv(const kc_launch *L) { return op_run(L, false); }

size_t kiln_cuda_Conv_ws(const kc_launch *L) { return op_ws(L, false); }

kiln_status kiln_cuda_ConvTranspose(const kc_launch *L) { return op_run(L, true); }

size_t kiln_cuda_ConvTranspose_ws(const kc_launch *L) { return op_ws(L, true); }
