/* The cuda backend's per-shape instances (instance.h): for one set of
 * input dims, the concrete shapes, every tensor's device view, the
 * kernels' launch records and conv state, and once captured the CUDA graph
 * that replays the run; launching and capturing them. */
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_probe.h"
#include "cuda/instance.h"

static kiln_status view_of(const cu_engine *e, const cu_context *c, const cu_instance *I, int t, kc_view *out)
{
    const kb_program *p = e->p;
    const kb_tensor *x = &p->tensors[t];
    if (x->storage == KB_SLICE) {
        /* the concat output's view, narrowed to this input's part of the axis */
        kiln_status st = view_of(e, c, I, x->alias, out);
        if (st != KILN_OK) return st;
        const kiln_shape *s = &I->shapes.v[x->value].shape;
        int64_t start = kb_slice_start(e->g, x, I->shapes.v);
        if (s->rank != out->rank || start < 0 || start + s->d[x->slice_axis] > out->d[x->slice_axis])
            return kiln_fail(KILN_ERR_INTERNAL, "%s: concat input '%s' does not fit its slice of the output",
                             e->g->path, e->g->values[x->value].name);
        if (out->p) out->p = (uint8_t *)out->p + start * out->s[x->slice_axis] * (int64_t)kiln_dtype_size(x->dt);
        memcpy(out->d, s->d, (size_t)s->rank * sizeof *out->d);
        return KILN_OK;
    }
    const kiln_shape *s = x->value >= 0 ? &I->shapes.v[x->value].shape : &x->shape;
    int base = t;
    while (p->tensors[base].storage == KB_ALIAS) base = p->tensors[base].alias;
    const kb_tensor *b = &p->tensors[base];
    uint8_t *ptr = NULL;
    if (b->storage == KB_WEIGHT)
        ptr = (uint8_t *)e->dweights + b->offset;
    else if (c)
        ptr = c->arena + b->offset;
    size_t bytes = (size_t)(kiln_shape_numel(s) > 0 ? kiln_shape_numel(s) : 0) * kiln_dtype_size(x->dt);
    if (b->storage != KB_WEIGHT && bytes > b->max_bytes) {
        const char *name = x->value >= 0 ? e->g->values[x->value].name : "(weights)";
        return kiln_fail(KILN_ERR_SHAPE,
                         "%s: tensor '%s' needs %zu bytes at these input shapes, the engine planned %llu for its "
                         "profile's max: the input shapes are outside the optimization profile; rebuild with a larger "
                         "--maxShapes",
                         e->g->path, name, bytes, (unsigned long long)b->max_bytes);
    }
    if (x->layout == KB_NHWC)
        kc_view_nhwc(out, ptr, x->dt, s);
    else
        kc_view_dense(out, ptr, x->dt, s);
    return KILN_OK;
}

void cu_instance_free(cu_engine *e, cu_instance *I)
{
    if (!I) return;
    const kb_program *p = e->p;
    if (I->exec) cudaGraphExecDestroy(I->exec);
    if (I->conv_state)
        for (int s = 0; s < p->n_steps; s++)
            if (I->conv_state[s]) kc_conv_release(I->conv_state[s]);
    if (I->host_stage) cudaFreeHost(I->host_stage);
    kb_shapes_free(&I->shapes);
    free(I->key);
    free(I->views);
    free(I->io);
    free(I->io_at);
    free(I->launch);
    free(I->ops);
    free(I->conv);
    free(I->conv_state);
    free(I);
}

kiln_status cu_step_error(const cu_engine *e, const kb_step *s, kiln_status st)
{
    if (s->node >= 0)
        return kiln_fail_prefix(st, "%s: node '%s' (%s): ", e->g->path, e->g->nodes[s->node].name,
                                e->g->nodes[s->node].op_type);
    return kiln_fail_prefix(st, "%s: ", e->g->path);
}

static void conv_of(const cu_engine *e, const cu_instance *I, int si, kc_conv *cv)
{
    const kb_step *s = &e->p->steps[si];
    const kc_view *io = &I->io[I->io_at[si]];
    memset(cv, 0, sizeof *cv);
    cv->n = &e->g->nodes[s->node];
    cv->x = io[0];
    cv->w = io[1];
    cv->bias = io[2];
    cv->z = io[3];
    cv->y = io[4];
    cv->act = (kc_act)s->act;
    cv->act_a = s->act_a;
    cv->act_b = s->act_b;
}

/* Shapes, views and launch records for inputs of these dims. `prepare`:
 * also the per-shape library state (conv descriptors), which needs the
 * tactics. */
kiln_status cu_instance_new(cu_engine *e, cu_context *c, const int64_t *const *dims, bool prepare,
                                cu_instance **out)
{
    const kiln_graph *g = e->g;
    const kb_program *p = e->p;
    *out = NULL;
    cu_instance *I = kiln_xcalloc(1, sizeof *I);
    if (!I) return KILN_ERR_OUT_OF_MEMORY;
    I->key = kiln_xcalloc((size_t)g->n_inputs * KILN_MAX_RANK + 1, sizeof *I->key);
    if (!I->key) goto oom;
    for (int i = 0; i < g->n_inputs; i++)
        for (int k = 0; k < g->values[g->inputs[i]].shape.rank; k++) I->key[i * KILN_MAX_RANK + k] = dims[i][k];
    kiln_status st = kb_shapes_infer(g, p, dims, &I->shapes);
    if (st != KILN_OK) {
        cu_instance_free(e, I);
        return st;
    }
    I->views = kiln_xcalloc((size_t)p->n_tensors + 1, sizeof *I->views);
    I->io_at = kiln_xcalloc((size_t)p->n_steps + 1, sizeof *I->io_at);
    I->launch = kiln_xcalloc((size_t)p->n_steps + 1, sizeof *I->launch);
    I->ops = kiln_xcalloc((size_t)p->n_steps + 1, sizeof *I->ops);
    I->conv = kiln_xcalloc((size_t)p->n_steps + 1, sizeof *I->conv);
    I->conv_state = kiln_xcalloc((size_t)p->n_steps + 1, sizeof *I->conv_state);
    if (!I->views || !I->io_at || !I->launch || !I->ops || !I->conv || !I->conv_state) goto oom;
    for (int t = 0; t < p->n_tensors; t++) {
        st = view_of(e, c, I, t, &I->views[t]);
        if (st != KILN_OK) {
            cu_instance_free(e, I);
            return st;
        }
    }
    size_t n_io = 0;
    for (int s = 0; s < p->n_steps; s++) {
        I->io_at[s] = (int)n_io;
        n_io += (size_t)p->steps[s].n_in + (size_t)p->steps[s].n_out;
    }
    I->io = kiln_xcalloc(n_io + 1, sizeof *I->io);
    if (!I->io) goto oom;
    for (int s = 0; s < p->n_steps; s++) {
        const kb_step *sp = &p->steps[s];
        kc_view *io = &I->io[I->io_at[s]];
        for (int i = 0; i < sp->n_in; i++)
            if (sp->in[i] >= 0) io[i] = I->views[sp->in[i]];
        for (int i = 0; i < sp->n_out; i++)
            if (sp->out[i] >= 0) io[sp->n_in + i] = I->views[sp->out[i]];
        size_t ws = 0;
        if (sp->kind == KB_STEP_OP) {
            kc_launch *L = &I->launch[s];
            L->n = &g->nodes[sp->node];
            L->v = I->shapes.v;
            L->n_in = sp->n_in;
            L->n_out = sp->n_out;
            L->in = io;
            L->out = io + sp->n_in;
            L->ws = c ? c->arena + c->arena_bytes : NULL;
            L->ws_bytes = c ? c->ws_bytes : 0;
            L->h = c ? &c->h : NULL;
            L->stream = c ? c->stream : NULL;
            const kc_op *op = kc_kernel_find(L->n->op_type);
            if (!op) {
                cu_instance_free(e, I);
                return kiln_fail(KILN_ERR_VERSION, "%s: node '%s': this kiln has no kernel for %s; rebuild the plan",
                                 g->path, L->n->name, L->n->op_type);
            }
            I->ops[s] = op;
            if (op->ws) {
                kc_launch q = *L;
                q.ws = NULL;
                ws = op->ws(&q);
            }
        } else if (sp->kind == KB_STEP_CONV) {
            conv_of(e, I, s, &I->conv[s]);
            if (prepare) {
                st = kc_conv_prepare(&c->h, &I->conv[s], &sp->tactic, &I->conv_state[s], &ws);
                if (st != KILN_OK) {
                    cu_step_error(e, sp, st);
                    cu_instance_free(e, I);
                    return st;
                }
            }
        }
        if (ws > I->ws_need) I->ws_need = ws;
    }
    /* host tensors: their bytes staged in pinned memory for the run's copies */
    for (int t = 0; t < p->n_tensors; t++)
        if (p->tensors[t].storage == KB_HOST) I->host_bytes += (p->tensors[t].max_bytes + 255) & ~(size_t)255;
    if (I->host_bytes) {
        cudaError_t ce = cudaMallocHost(&I->host_stage, I->host_bytes);
        if (ce != cudaSuccess) {
            cu_instance_free(e, I);
            return kc_fail_cuda(ce, "cudaMallocHost (host values)");
        }
        size_t off = 0;
        for (int t = 0; t < p->n_tensors; t++) {
            const kb_tensor *x = &p->tensors[t];
            if (x->storage != KB_HOST) continue;
            const kiln_value *v = &I->shapes.v[x->value];
            size_t bytes = kiln_value_bytes(v);
            if (v->data && bytes) memcpy((uint8_t *)I->host_stage + off, v->data, bytes);
            off += (x->max_bytes + 255) & ~(size_t)255;
        }
    }
    *out = I;
    return KILN_OK;
oom:
    cu_instance_free(e, I);
    return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of host memory preparing a run");
}

kiln_status cu_launch_steps(cu_engine *e, cu_context *c, cu_instance *I)
{
    const kb_program *p = e->p;
    if (I->host_bytes) {
        size_t off = 0;
        for (int t = 0; t < p->n_tensors; t++) {
            const kb_tensor *x = &p->tensors[t];
            if (x->storage != KB_HOST) continue;
            size_t bytes = kiln_value_bytes(&I->shapes.v[x->value]);
            if (bytes)
                KC_CHECK(cudaMemcpyAsync(c->arena + x->offset, (uint8_t *)I->host_stage + off, bytes,
                                         cudaMemcpyHostToDevice, c->stream));
            off += (x->max_bytes + 255) & ~(size_t)255;
        }
    }
    void *ws = c->arena + c->arena_bytes;
    for (int s = 0; s < p->n_steps; s++) {
        const kb_step *sp = &p->steps[s];
        const kc_view *io = &I->io[I->io_at[s]];
        kiln_status st = KILN_OK;
        switch (sp->kind) {
        case KB_STEP_OP: st = I->ops[s]->run(&I->launch[s]); break;
        case KB_STEP_CONV: st = kc_conv_run(I->conv_state[s], &c->h, &I->conv[s], ws, c->ws_bytes, c->stream); break;
        case KB_STEP_EW: st = kc_ew_run(&sp->prog, io, io + sp->n_in, c->stream); break;
        case KB_STEP_COPY: st = kc_copy(&io[0], &io[1], c->stream); break;
        }
        if (st != KILN_OK) return cu_step_error(e, sp, st);
    }
    return KILN_OK;
}

/* Captures I's CUDA graph once, when graphs are on. A kernel that cannot
 * be captured makes the shape run step by step (still on the GPU), said
 * once; only a stream that refuses to capture at all is an error. */
kiln_status cu_capture(cu_engine *e, cu_context *c, cu_instance *I)
{
    if (e->graphs && !I->exec && !I->graph_failed) {
        cudaGraph_t graph = NULL;
        KC_CHECK(cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal));
        kiln_status st = cu_launch_steps(e, c, I);
        cudaError_t ce = cudaStreamEndCapture(c->stream, &graph);
        if (st == KILN_OK && ce != cudaSuccess) st = kc_fail_cuda(ce, "cudaStreamEndCapture");
        if (st == KILN_OK) {
            ce = cudaGraphInstantiate(&I->exec, graph, 0);
            if (ce != cudaSuccess) {
                I->exec = NULL;
                st = kc_fail_cuda(ce, "cudaGraphInstantiate");
            }
        }
        if (graph) cudaGraphDestroy(graph);
        if (st != KILN_OK) {
            /* a kernel that cannot be captured: say so once and run the
             * steps one by one for this shape (still on the GPU) */
            cudaGetLastError();
            kiln_log(KILN_LOG_WARN, "%s: CUDA graph capture failed (%s); this shape runs without a graph",
                     e->g->path, kiln_last_error());
            I->graph_failed = 1;
        }
    }
    return KILN_OK;
}

kiln_status cu_run_instance(cu_engine *e, cu_context *c, cu_instance *I)
{
    kiln_status st = cu_capture(e, c, I);
    if (st != KILN_OK) return st;
    if (I->exec) {
        KC_CHECK(cudaGraphLaunch(I->exec, c->stream));
        return KILN_OK;
    }
    return cu_launch_steps(e, c, I);
}

/* The instance for these input dims, made on first use. */
kiln_status cu_get_instance(cu_engine *e, cu_context *c, const kiln_tensor *in, cu_instance **out)
{
    const kiln_graph *g = e->g;
    const kb_program *p = e->p;
    for (cu_instance *I = c->inst; I; I = I->next) {
        bool same = true;
        for (int i = 0; i < g->n_inputs && same; i++)
            for (int k = 0; k < in[i].rank; k++)
                if (I->key[i * KILN_MAX_RANK + k] != in[i].dims[k]) same = false;
        if (same) {
            *out = I;
            return KILN_OK;
        }
    }
    const int64_t *dims[64];
    for (int i = 0; i < g->n_inputs; i++) {
        for (int k = 0; k < in[i].rank; k++) {
            int64_t d = in[i].dims[k], lo = p->prof_min[i * KILN_MAX_RANK + k], hi = p->prof_max[i * KILN_MAX_RANK + k];
            if (d < lo || d > hi)
                return kiln_fail(KILN_ERR_SHAPE,
                                 "%s: input '%s' dim %d is %lld, outside the engine's optimization profile [%lld, "
                                 "%lld]; rebuild with --minShapes/--maxShapes covering it",
                                 g->path, g->values[g->inputs[i]].name, k, (long long)d, (long long)lo, (long long)hi);
        }
        dims[i] = in[i].dims;
    }
    cu_instance *I;
    kiln_status st = cu_instance_new(e, c, dims, true, &I);
    if (st != KILN_OK) return st;
    if (I->ws_need > c->ws_bytes) {
        size_t need = I->ws_need;
        cu_instance_free(e, I);
        return kiln_fail(KILN_ERR_SHAPE,
                         "%s: these input shapes need %zu bytes of workspace, the engine planned %zu; rebuild with "
                         "--optShapes at this shape",
                         g->path, need, c->ws_bytes);
    }
    I->next = c->inst;
    c->inst = I;
    *out = I;
    return KILN_OK;
}
