/* The cuda backend: builds a program (src/builder) for the GPU, times the
 * convolutions' tactics on it, and runs it.
 *
 * An engine holds the program and the weights on the device, immutable
 * once built. A context holds one caller's stream, library handles and
 * activation arena (sized for the profile's max, with the workspace after
 * it), and one instance per input shape it has seen: the concrete shapes,
 * every tensor's device view, the kernels' launch records and, once
 * captured, the CUDA graph that replays the whole run in one launch.
 * Nothing is allocated on the device inside a run.
 *
 * This file: the op table, contexts, runs and engines (build, tuning, plan
 * save and load); the per-shape instances are in instance.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cublasLt.h>
#include <cudnn.h>

#include "cuda/cuda_probe.h"
#include "cuda/instance.h"
#include "cuda/kc.h"
#include "plan/plan.h"
#include "runtime/backend.h"

/* like TensorRT's, generous: the GPUs kiln targets have tens of GB */
#define DEFAULT_WS_LIMIT ((size_t)1 << 30)

/* ---------------------------------------------------------------- op table */

static unsigned cu_op_flags(const char *op_type, bool *exists)
{
    const kc_op *op = kc_kernel_find(op_type);
    *exists = op != NULL;
    if (!op) return 0;
    unsigned f = 0;
    if (op->flags & KC_OP_ALIAS) f |= KB_OP_ALIAS;
    if (op->flags & KC_OP_NHWC) f |= KB_OP_STRIDED;
    return f;
}

static const char *cu_unsupported(const kiln_graph *g, const kiln_node *n)
{
    (void)g;
    if (!n->op) return "op kiln does not implement";
    /* the op table's cuda column: a kernel, lowered by the builder (BN
     * folded into convs or elementwise programs, Constant), computed on the
     * host from shapes, or not on cuda with the reason */
    const kc_op *op = kc_op_find(n->op_type);
    if (!op) return "the op table has no cuda entry for this op";
    if (op->kind == KC_NONE) return op->why;
    return NULL;
}

/* ---------------------------------------------------------------- contexts */

static void ctx_free(cu_context *c)
{
    if (!c) return;
    cu_engine *e = c->e;
    if (c->stream) cudaStreamSynchronize(c->stream);
    while (c->inst) {
        cu_instance *n = c->inst->next;
        cu_instance_free(e, c->inst);
        c->inst = n;
    }
    if (c->host_out)
        for (int i = 0; i < e->g->n_outputs; i++)
            if (c->host_out[i]) cudaFreeHost(c->host_out[i]);
    free(c->host_out);
    free(c->outs);
    if (c->arena) cudaFree(c->arena);
    if (c->have_h) kc_handles_release(&c->h);
    if (c->ev_in) cudaEventDestroy(c->ev_in);
    if (c->ev_out) cudaEventDestroy(c->ev_out);
    if (c->stream) cudaStreamDestroy(c->stream);
    free(c);
}

static kiln_status ctx_new(cu_engine *e, size_t ws_bytes, cu_context **out)
{
    *out = NULL;
    cu_context *c = kiln_xcalloc(1, sizeof *c);
    if (!c) return KILN_ERR_OUT_OF_MEMORY;
    c->e = e;
    kiln_status st = KILN_OK;
    cudaError_t ce = cudaSetDevice(e->device);
    if (ce == cudaSuccess) ce = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    if (ce == cudaSuccess) ce = cudaEventCreateWithFlags(&c->ev_in, cudaEventDisableTiming);
    if (ce == cudaSuccess) ce = cudaEventCreateWithFlags(&c->ev_out, cudaEventDisableTiming);
    if (ce != cudaSuccess) st = kc_fail_cuda(ce, "creating a context's stream");
    if (st == KILN_OK) {
        st = kc_handles_init(&c->h, e->p->precision);
        c->have_h = st == KILN_OK;
        c->h.allow_rtc = (e->p->flags & KB_PROG_RUNTIME_COMPILE) != 0;
    }
    c->arena_bytes = (size_t)e->p->arena_bytes;
    c->ws_bytes = ws_bytes;
    c->h.ws_cap = ws_bytes;
    if (st == KILN_OK) {
        ce = cudaMalloc((void **)&c->arena, c->arena_bytes + c->ws_bytes + 256);
        if (ce != cudaSuccess) {
            c->arena = NULL;
            st = kc_fail_cuda(ce, "cudaMalloc (activation arena)");
        }
    }
    int no = e->g->n_outputs;
    c->host_out = kiln_xcalloc((size_t)no + 1, sizeof *c->host_out);
    c->outs = kiln_xcalloc((size_t)no + 1, sizeof *c->outs);
    if (st == KILN_OK && (!c->host_out || !c->outs)) st = KILN_ERR_OUT_OF_MEMORY;
    for (int i = 0; i < no && st == KILN_OK; i++) {
        size_t bytes = (size_t)e->p->tensors[e->p->output_tensor[i]].max_bytes + 1;
        ce = cudaMallocHost(&c->host_out[i], bytes);
        if (ce != cudaSuccess) {
            c->host_out[i] = NULL;
            st = kc_fail_cuda(ce, "cudaMallocHost (outputs)");
        }
    }
    if (st != KILN_OK) {
        ctx_free(c);
        return st;
    }
    *out = c;
    return KILN_OK;
}

static kiln_status cu_context_create(void *state, void **out)
{
    cu_engine *e = state;
    cu_context *c;
    int prev = -1;
    if (cudaGetDevice(&prev) != cudaSuccess) prev = -1;
    kiln_status st = ctx_new(e, (size_t)e->p->ws_bytes, &c); /* on the engine's GPU */
    if (prev >= 0 && prev != e->device) cudaSetDevice(prev);  /* the caller's again */
    if (st != KILN_OK) return st;
    *out = c;
    return KILN_OK;
}

static void cu_context_destroy(void *ctx) { ctx_free(ctx); }

static void fill_outputs(cu_engine *e, cu_instance *I, kiln_tensor *outs, bool keep_data)
{
    const kiln_graph *g = e->g;
    for (int i = 0; i < g->n_outputs; i++) {
        const kiln_value *v = &I->shapes.v[g->outputs[i]];
        kiln_tensor *t = &outs[i];
        t->name = g->values[g->outputs[i]].name;
        t->dtype = v->dtype;
        t->rank = v->shape.rank;
        for (int k = 0; k < v->shape.rank; k++) t->dims[k] = v->shape.d[k];
        if (!keep_data) t->data = NULL;
    }
}

/* Whether the caller's output tensor dst (as kiln_outputs_deliver takes
 * it) holds the result v: its dims' product, in v's dtype. */
static bool dst_holds(const kiln_tensor *dst, const kiln_value *v)
{
    if (!dst->data || dst->rank < 0 || dst->rank > KILN_MAX_RANK) return false;
    int64_t need = kiln_shape_numel(&v->shape), have = 1;
    for (int k = 0; k < dst->rank; k++) have *= dst->dims[k] > 0 ? dst->dims[k] : 0;
    return have >= need;
}

/* The inputs into their staging slots on the context's stream, from the
 * host or from device memory (kind). */
static kiln_status copy_inputs(const cu_engine *e, cu_context *c, const cu_instance *I, const kiln_tensor *in,
                               enum cudaMemcpyKind kind)
{
    const kiln_graph *g = e->g;
    const kb_program *p = e->p;
    for (int i = 0; i < g->n_inputs; i++) {
        size_t bytes = kiln_value_bytes(&I->shapes.v[g->inputs[i]]);
        cudaError_t ce = bytes ? cudaMemcpyAsync(c->arena + p->tensors[p->input_tensor[i]].offset, in[i].data, bytes,
                                                 kind, c->stream)
                               : cudaSuccess;
        if (ce != cudaSuccess) return kc_fail_cuda(ce, "cudaMemcpyAsync (an input to the GPU)");
    }
    return KILN_OK;
}

static kiln_status cu_run(void *ctx, const kiln_tensor *in, const kiln_tensor *dst, int *n_out,
                          const kiln_tensor **out)
{
    cu_context *c = ctx;
    cu_engine *e = c->e;
    const kiln_graph *g = e->g;
    const kb_program *p = e->p;
    KC_CHECK(cudaSetDevice(e->device));
    cu_instance *I;
    kiln_status st = cu_get_instance(e, c, in, &I);
    if (st != KILN_OK) return st;
    /* from page-locked memory the copy is DMA and returns at once; from
     * pageable memory the runtime stages it and returns once the source is
     * read. Either way the stream is synchronized before returning. */
    st = copy_inputs(e, c, I, in, cudaMemcpyHostToDevice);
    if (st == KILN_OK) st = cu_run_instance(e, c, I);
    /* an output goes straight into the caller's buffer when that is
     * page-locked and holds it (no second copy on the host); otherwise into
     * the context's page-locked buffer, and kiln_outputs_deliver copies it
     * on to the caller's (pageable memory cannot take DMA) */
    fill_outputs(e, I, c->outs, false);
    for (int i = 0; i < g->n_outputs && st == KILN_OK; i++) {
        const kiln_value *v = &I->shapes.v[g->outputs[i]];
        size_t bytes = kiln_value_bytes(v);
        /* straight into the caller's buffer when all of the bytes written
         * are page-locked: its first and its last */
        bool direct = dst && dst_holds(&dst[i], v) && kc_host_pinned(dst[i].data) &&
                      (bytes <= 1 || kc_host_pinned((const char *)dst[i].data + bytes - 1));
        void *to = direct ? dst[i].data : c->host_out[i];
        c->outs[i].data = to;
        cudaError_t ce = bytes ? cudaMemcpyAsync(to, I->views[p->output_tensor[i]].p, bytes, cudaMemcpyDeviceToHost,
                                                 c->stream)
                               : cudaSuccess;
        if (ce != cudaSuccess) st = kc_fail_cuda(ce, "cudaMemcpyAsync (an output from the GPU)");
    }
    /* after a failure too: no copy of this run may still touch the
     * caller's buffers once it returns */
    cudaError_t ce = cudaStreamSynchronize(c->stream);
    if (st != KILN_OK) {
        cudaGetLastError(); /* the synchronize's error is this run's, reported already */
        return st;
    }
    if (ce != cudaSuccess) return kc_fail_cuda(ce, "running the engine");
    *n_out = g->n_outputs;
    *out = c->outs;
    return KILN_OK;
}

/* What the first run of these input dims does before it launches: the
 * instance (views, library plans, pinned staging) and its graph. */
static kiln_status cu_prepare(void *ctx, const kiln_tensor *in)
{
    cu_context *c = ctx;
    cu_engine *e = c->e;
    KC_CHECK(cudaSetDevice(e->device));
    cu_instance *I;
    kiln_status st = cu_get_instance(e, c, in, &I);
    if (st == KILN_OK) st = cu_capture(e, c, I);
    return st;
}

/* A probe of GPU `device` (the current device from then on): an event
 * recorded and waited for on a private stream. A sticky error comes back
 * from any call on a lost context, so this finds it without synchronizing
 * the whole device, which would wait for (and can break) other threads'
 * runs and CUDA graph captures. */
static cudaError_t device_probe(int device)
{
    cudaStream_t s = NULL;
    cudaEvent_t ev = NULL;
    cudaError_t ce = cudaSetDevice(device);
    if (ce == cudaSuccess) ce = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    if (ce == cudaSuccess) ce = cudaEventCreateWithFlags(&ev, cudaEventDisableTiming);
    if (ce == cudaSuccess) ce = cudaEventRecord(ev, s);
    if (ce == cudaSuccess) ce = cudaEventSynchronize(ev);
    if (ev) cudaEventDestroy(ev);
    if (s) cudaStreamDestroy(s);
    cudaError_t last = cudaGetLastError(); /* clears a non-sticky error; a sticky one stays */
    return ce != cudaSuccess ? ce : last;
}

/* Errors of another thread's graph capture, seen by a probe that ran while
 * it was under way: the device works. */
static bool capture_error(cudaError_t e)
{
    return e == cudaErrorStreamCaptureUnsupported || e == cudaErrorStreamCaptureInvalidated ||
           e == cudaErrorStreamCaptureMerge || e == cudaErrorStreamCaptureUnmatched ||
           e == cudaErrorStreamCaptureUnjoined || e == cudaErrorStreamCaptureIsolation ||
           e == cudaErrorStreamCaptureImplicit || e == cudaErrorStreamCaptureWrongThread;
}

/* After a failed run: whether e's GPU still runs work. The failed run
 * synchronized its own stream, so a fault of its kernels has surfaced. A
 * sticky error fails the probe; an error not on the sticky list that comes
 * back on a second probe is as good as sticky. */
static kiln_status cu_device_check(void *state)
{
    cu_engine *e = state;
    cudaGetLastError(); /* the failed run's own error, when still set */
    cudaError_t ce = device_probe(e->device);
    if (ce != cudaSuccess && !kc_error_sticky(ce)) ce = device_probe(e->device);
    if (ce == cudaSuccess || capture_error(ce)) {
        cudaGetLastError();
        return KILN_OK;
    }
    return kiln_fail(KILN_ERR_DEVICE,
                     "GPU %d no longer runs work: a probe on it fails with %s (%s), %s; restart the process to use "
                     "it again",
                     e->device, cudaGetErrorName(ce), cudaGetErrorString(ce),
                     kc_error_sticky(ce) ? "a sticky error" : "twice in a row");
}

static kiln_status cu_output_shapes(void *ctx, const kiln_tensor *in, int n_out, kiln_tensor *out)
{
    cu_context *c = ctx;
    cu_instance *I;
    kiln_status st = cu_get_instance(c->e, c, in, &I);
    if (st != KILN_OK) return st;
    (void)n_out;
    fill_outputs(c->e, I, out, true);
    return KILN_OK;
}

static kiln_status cu_enqueue(void *ctx, const kiln_tensor *in, int n_out, kiln_tensor *out, void *stream)
{
    cu_context *c = ctx;
    cu_engine *e = c->e;
    const kiln_graph *g = e->g;
    const kb_program *p = e->p;
    KC_CHECK(cudaSetDevice(e->device));
    cu_instance *I;
    kiln_status st = cu_get_instance(e, c, in, &I);
    if (st != KILN_OK) return st;
    for (int i = 0; i < n_out && i < g->n_outputs; i++) {
        const kiln_value *v = &I->shapes.v[g->outputs[i]];
        int64_t need = kiln_shape_numel(&v->shape), have = 1;
        for (int k = 0; k < out[i].rank; k++) have *= out[i].dims[k];
        if (out[i].dtype != v->dtype || have < need)
            return kiln_fail(KILN_ERR_SHAPE,
                             "kiln_context_enqueue: output '%s' needs %lld elements of %s; the buffer given holds %lld "
                             "of %s (describe it with the output's shape from kiln_context_output_shapes)",
                             v->name, (long long)need, kiln_dtype_name(v->dtype), (long long)have,
                             kiln_dtype_name(out[i].dtype));
    }
    cudaStream_t user = (cudaStream_t)stream;
    /* everything runs on the context's stream, ordered after the caller's
     * work and before what the caller enqueues next */
    if (user) {
        KC_CHECK(cudaEventRecord(c->ev_in, user));
        KC_CHECK(cudaStreamWaitEvent(c->stream, c->ev_in, 0));
    }
    st = copy_inputs(e, c, I, in, cudaMemcpyDeviceToDevice);
    if (st == KILN_OK) st = cu_run_instance(e, c, I);
    if (st != KILN_OK) return st;
    for (int i = 0; i < n_out && i < g->n_outputs; i++) {
        size_t bytes = kiln_value_bytes(&I->shapes.v[g->outputs[i]]);
        if (bytes)
            KC_CHECK(cudaMemcpyAsync(out[i].data, I->views[p->output_tensor[i]].p, bytes, cudaMemcpyDeviceToDevice,
                                     c->stream));
    }
    fill_outputs(e, I, out, true);
    if (user) {
        KC_CHECK(cudaEventRecord(c->ev_out, c->stream));
        KC_CHECK(cudaStreamWaitEvent(user, c->ev_out, 0));
    }
    return KILN_OK;
}

/* ---------------------------------------------------------------- engines */

static void engine_free(cu_engine *e)
{
    if (!e) return;
    if (e->dweights) cudaFree(e->dweights);
    kb_program_free(e->p);
    free(e);
}

static kiln_status upload_weights(cu_engine *e)
{
    const kb_program *p = e->p;
    KC_CHECK(cudaSetDevice(e->device));
    cudaError_t ce = cudaMalloc(&e->dweights, p->weight_bytes + 256);
    if (ce != cudaSuccess) {
        e->dweights = NULL;
        return kc_fail_cuda(ce, "cudaMalloc (weights)");
    }
    if (p->weight_bytes) KC_CHECK(cudaMemcpy(e->dweights, p->weights, p->weight_bytes, cudaMemcpyHostToDevice));
    return KILN_OK;
}

static void dims_of(const kb_program *p, const int64_t *prof, const kiln_graph *g, const int64_t **dims)
{
    for (int i = 0; i < g->n_inputs; i++) dims[i] = &prof[i * KILN_MAX_RANK];
    (void)p;
}

/* Times every conv's tactics at the profile's opt shape, then sizes the
 * workspace for the chosen tactics at min, opt and max. */
static kiln_status tune(cu_engine *e, size_t ws_limit)
{
    kb_program *p = e->p;
    const kiln_graph *g = e->g;
    const int64_t *dims[64];
    cu_context *c;
    int n_convs = 0, i_conv = 0;
    for (int s = 0; s < p->n_steps; s++) n_convs += p->steps[s].kind == KB_STEP_CONV;
    kiln_log(KILN_LOG_INFO, "build: preparing to time the tactics of %d convolutions", n_convs);
    kiln_status st = ctx_new(e, ws_limit, &c);
    if (st != KILN_OK) return st;
    /* random finite values everywhere (f16 in [-1, 1], which read as f32
     * are small finite numbers too): tactics are timed and checked against
     * each other on data that shows a wrong index */
    {
        size_t chunk = c->arena_bytes < ((size_t)16 << 20) ? c->arena_bytes : ((size_t)16 << 20);
        uint16_t *h = chunk ? kiln_xmalloc(chunk) : NULL;
        if (chunk && !h) st = KILN_ERR_OUT_OF_MEMORY;
        uint64_t r = 0x9e3779b97f4a7c15ull;
        for (size_t i = 0; h && i < chunk / 2; i++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            uint16_t m = (uint16_t)((r >> 33) & 0x3ff), ex = (uint16_t)(0x2c00 + ((r >> 45) % 0x1000)); /* 2^-4..1 */
            h[i] = (uint16_t)(((r >> 60) & 1) << 15 | (ex & 0x7c00) | m);
        }
        for (size_t off = 0; h && st == KILN_OK && off < c->arena_bytes; off += chunk) {
            size_t n = c->arena_bytes - off < chunk ? c->arena_bytes - off : chunk;
            cudaError_t ce = cudaMemcpy(c->arena + off, h, n, cudaMemcpyHostToDevice);
            if (ce != cudaSuccess) st = kc_fail_cuda(ce, "cudaMemcpy (filling the arena for tuning)");
        }
        free(h);
    }
    dims_of(p, p->prof_opt, g, dims);
    cu_instance *I = NULL;
    if (st == KILN_OK) st = cu_instance_new(e, c, dims, false, &I);
    int n_tuned = 0;
    for (int s = 0; st == KILN_OK && s < p->n_steps; s++) {
        kb_step *sp = &p->steps[s];
        if (sp->kind != KB_STEP_CONV) continue;
        const kiln_node *n = &g->nodes[sp->node];
        kiln_log(KILN_LOG_INFO, "build: timing tactics layer %d/%d: %s %s", ++i_conv, n_convs, n->op_type, n->name);
        float ms = 0;
        st = kc_conv_tune(&c->h, &I->conv[s], c->arena + c->arena_bytes, ws_limit, &sp->tactic, &ms);
        if (st != KILN_OK) {
            cu_step_error(e, sp, st);
            break;
        }
        sp->ms = ms;
        n_tuned++;
    }
    if (I) cu_instance_free(e, I);
    /* the workspace the chosen tactics and kernels need */
    if (st == KILN_OK) kiln_log(KILN_LOG_INFO, "build: sizing the workspace at the profile's min, opt and max shapes");
    size_t need = 0;
    const int64_t *profs[3] = {p->prof_min, p->prof_opt, p->prof_max};
    for (int k = 0; k < 3 && st == KILN_OK; k++) {
        dims_of(p, profs[k], g, dims);
        st = cu_instance_new(e, c, dims, true, &I);
        if (st == KILN_OK) {
            if (I->ws_need > need) need = I->ws_need;
            cu_instance_free(e, I);
        }
    }
    ctx_free(c);
    if (st != KILN_OK) return st;
    if (need > ws_limit)
        return kiln_fail(KILN_ERR_DEVICE, "%s: the chosen kernels need %zu bytes of workspace, over the limit %zu",
                         g->path, need, ws_limit);
    p->ws_bytes = (need + 255) & ~(size_t)255;
    kiln_log(KILN_LOG_INFO, "%s: tuned %d convolutions; workspace %zu bytes", g->path, n_tuned, need);
    return KILN_OK;
}

/* One run at the profile's max and min shapes with the engine as built:
 * a kernel that cannot run these shapes fails the build, not the first
 * request. */
static kiln_status trial(cu_engine *e)
{
    const kb_program *p = e->p;
    const int64_t *dims[64];
    cu_context *c;
    kiln_log(KILN_LOG_INFO, "build: a trial run at the profile's max and min shapes");
    kiln_status st = ctx_new(e, (size_t)p->ws_bytes, &c);
    if (st != KILN_OK) return st;
    KC_CHECK(cudaMemsetAsync(c->arena, 0, c->arena_bytes, c->stream));
    const int64_t *profs[2] = {p->prof_max, p->prof_min};
    for (int k = 0; k < 2 && st == KILN_OK; k++) {
        dims_of(p, profs[k], e->g, dims);
        cu_instance *I;
        st = cu_instance_new(e, c, dims, true, &I);
        if (st != KILN_OK) break;
        st = cu_launch_steps(e, c, I);
        cudaError_t ce = cudaStreamSynchronize(c->stream);
        if (st == KILN_OK && ce != cudaSuccess) st = kc_fail_cuda(ce, "the trial run of the engine");
        cu_instance_free(e, I);
    }
    ctx_free(c);
    return st;
}

static int env_graphs(void)
{
    const char *v = getenv("KILN_NO_GRAPH");
    return !(v && v[0] && strcmp(v, "0"));
}

/* Makes GPU `device` current for building or loading an engine on it;
 * *prev is the caller's device, for leave_device. */
static kiln_status enter_device(const kiln_graph *g, int device, int *prev)
{
    *prev = -1;
    /* checked by the engine already (kiln_backend_check_device); again
     * here, where it is used */
    kiln_status st = kiln_cuda_check_device(device);
    if (st != KILN_OK) return kiln_fail_prefix(st, "%s: ", g->path);
    if (cudaGetDevice(prev) != cudaSuccess) *prev = -1;
    cudaError_t ce = cudaSetDevice(device);
    if (ce != cudaSuccess) return kc_fail_cuda(ce, "cudaSetDevice");
    return KILN_OK;
}

static void leave_device(int device, int prev)
{
    if (prev >= 0 && prev != device) cudaSetDevice(prev);
}

/* The start of a build or a load on GPU o->device: that GPU current, an
 * engine with nothing in it yet. *prev is the caller's device for
 * engine_end. */
static kiln_status engine_begin(const kiln_graph *g, const kiln_build_options *o, cu_engine **out, int *prev)
{
    *out = NULL;
    kiln_status st = enter_device(g, o->device, prev);
    if (st != KILN_OK) return st;
    cu_engine *e = kiln_xcalloc(1, sizeof *e);
    if (!e) {
        leave_device(o->device, *prev);
        return KILN_ERR_OUT_OF_MEMORY;
    }
    e->g = g;
    e->o = *o;
    e->graphs = env_graphs();
    e->device = o->device;
    *out = e;
    return KILN_OK;
}

/* The end of a build or a load: the engine becomes *state on success, is
 * freed otherwise; the caller's device is current again. */
static kiln_status engine_end(cu_engine *e, kiln_status st, int prev, void **state)
{
    int device = e->device;
    if (st != KILN_OK) engine_free(e);
    leave_device(device, prev);
    if (st == KILN_OK) *state = e;
    return st;
}

static kiln_status cu_build(const kiln_graph *g, const kiln_build_options *o, void **state)
{
    int prev;
    cu_engine *e;
    kiln_status st = engine_begin(g, o, &e, &prev);
    if (st != KILN_OK) return st;
    st = kb_lower(g, o, cu_op_flags, &e->p);
    if (st == KILN_OK) {
        e->p->cudnn_version = (uint32_t)cudnnGetVersion();
        e->p->cublas_version = (uint32_t)cublasLtGetVersion();
    }
    if (st == KILN_OK)
        kiln_log(KILN_LOG_INFO, "build: uploading %.1f MB of weights to GPU %d", (double)e->p->weight_bytes / 1e6,
                 e->device);
    if (st == KILN_OK) st = upload_weights(e);
    if (st == KILN_OK) st = tune(e, o->workspace_bytes ? (size_t)o->workspace_bytes : DEFAULT_WS_LIMIT);
    if (st == KILN_OK) st = trial(e);
    return engine_end(e, st, prev, state);
}

static kiln_status cu_load(const kiln_graph *g, const kiln_build_options *o, const kiln_plan_info *info, void **state)
{
    const kiln_plan_section *ps = kiln_plan_find(info, "PROGRAM"), *ws = kiln_plan_find(info, "DWEIGHTS");
    if (!ps || !ws)
        return kiln_fail(KILN_ERR_FORMAT, "%s: plan of the cuda backend without its PROGRAM and DWEIGHTS sections",
                         g->path);
    int prev;
    cu_engine *e;
    kiln_status st = engine_begin(g, o, &e, &prev);
    if (st != KILN_OK) return st;
    st = kb_program_deserialize(g, ps->data, ps->size, ws->data, ws->size, g->path, &e->p);
    /* tactics name cuDNN engines and algorithms of one library version */
    if (st == KILN_OK && (e->p->cudnn_version / 100 != (uint32_t)cudnnGetVersion() / 100 ||
                          e->p->cublas_version / 100 != (uint32_t)cublasLtGetVersion() / 100))
        st = kiln_fail(KILN_ERR_VERSION,
                       "%s: plan built with cuDNN %u and cuBLASLt %u; this machine has cuDNN %zu and cuBLASLt %zu: "
                       "rebuild the plan here",
                       g->path, e->p->cudnn_version, e->p->cublas_version, cudnnGetVersion(), cublasLtGetVersion());
    if (st == KILN_OK) st = upload_weights(e);
    return engine_end(e, st, prev, state);
}

static kiln_status cu_save(void *state, kiln_bytes *prog, kiln_bytes *weights)
{
    cu_engine *e = state;
    kb_program_serialize(e->p, prog);
    kiln_bytes_put(weights, e->p->weights, (size_t)e->p->weight_bytes);
    return KILN_OK;
}

static void cu_plan_drops(void *state, uint8_t *drop)
{
    cu_engine *e = state;
    kb_program_drops(e->g, e->p, drop);
}

static void cu_destroy(void *state) { engine_free(state); }

static kiln_status cu_input_profile(void *state, int i, int64_t *mn, int64_t *op, int64_t *mx)
{
    cu_engine *e = state;
    int r = e->g->values[e->g->inputs[i]].shape.rank;
    for (int k = 0; k < r; k++) {
        mn[k] = e->p->prof_min[i * KILN_MAX_RANK + k];
        op[k] = e->p->prof_opt[i * KILN_MAX_RANK + k];
        mx[k] = e->p->prof_max[i * KILN_MAX_RANK + k];
    }
    return KILN_OK;
}

static kiln_status cu_report(void *state, bool json, kiln_sbuf *b)
{
    cu_engine *e = state;
    kb_program_report(e->g, e->p, json, b);
    return KILN_OK;
}

static void cu_set_graphs(void *state, int enabled) { ((cu_engine *)state)->graphs = enabled != 0; }

const kiln_backend_iface kiln_cuda_backend = {
    .name = "cuda",
    .unsupported = cu_unsupported,
    .build = cu_build,
    .destroy = cu_destroy,
    .context_create = cu_context_create,
    .context_destroy = cu_context_destroy,
    .run = cu_run,
    .enqueue = cu_enqueue,
    .output_shapes = cu_output_shapes,
    .input_profile = cu_input_profile,
    .report = cu_report,
    .save = cu_save,
    .plan_drops = cu_plan_drops,
    .load = cu_load,
    .set_graphs = cu_set_graphs,
    .prepare = cu_prepare,
    .device_check = cu_device_check,
    .host_alloc = kc_host_alloc,
    .host_free = kc_host_free,
    .host_register = kc_host_register,
    .host_unregister = kc_host_unregister,
    /* devices and identity (runtime.c, probe.cu) */
    .device_count = kiln_cuda_device_count,
    .check_device = kiln_cuda_check_device,
    .arch = kiln_cuda_arch_of,
    .lib_versions = kiln_cuda_lib_versions,
    .default_precision = KILN_PRECISION_FP16,
    /* what kb_lower builds */
    .precisions = KILN_PRECISION_BIT(KILN_PRECISION_FP32) | KILN_PRECISION_BIT(KILN_PRECISION_TF32) |
                  KILN_PRECISION_BIT(KILN_PRECISION_FP16) | KILN_PRECISION_BIT(KILN_PRECISION_BF16),
    /* device buffers and timing (runtime.c) */
    .device_alloc = kiln_cuda_device_alloc,
    .device_free = kiln_cuda_device_free,
    .copy_to_device = kiln_cuda_copy_to_device,
    .time_runs = kiln_cuda_time_runs,
};
