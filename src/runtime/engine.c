/* Public engine and context API: picks the backend by name, checks inputs
 * against the model, and hands the run to the backend. There is no
 * fallback: a model the chosen backend cannot run fails to build. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/backend.h"
#include "runtime/runtime.h"

struct kiln_engine {
    const kiln_backend_iface *be;
    kiln_graph_ref *ref;
    void *state;
    kiln_build_options opts; /* as built; strings cleared */
    kiln_identity id;        /* valid when has_id */
    bool has_id;
    kiln_ctx_pool *pool; /* contexts lent by kiln_engine_infer (pool.c) */
    /* kiln_engine_inject_fault: run number fault_seq (counted from the
     * injection, as runs start) fails with fault_status when it is in
     * [fault_after, fault_after + fault_count); fault_count 0: no end */
    atomic_int fault_status, fault_kind;
    atomic_uint_fast64_t fault_seq, fault_after, fault_count;
    /* kiln_engine_set_prepare_hook */
    kiln_prepare_hook prepare_hook;
    void *prepare_user;
    /* kiln_engine_set_test_profile: the symbolic dims' [min, max] of an
     * engine without a profile of its own (0: any) */
    int64_t test_min, test_max;
};

struct kiln_context {
    kiln_engine *e;
    void *ctx;
    kiln_tensor *in; /* inputs in graph order, reused across runs */
    atomic_flag busy;
};

void kiln_build_options_init(kiln_build_options *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->backend = kiln_backend_default();
}

kiln_status kiln_engine_build(const kiln_model *m, const kiln_build_options *o, kiln_engine **out)
{
    if (!out) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_build: out is NULL");
    *out = NULL;
    if (!m) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_build: model is NULL");
    return kiln_engine_create(m->ref, o, out);
}

kiln_status kiln_engine_create(kiln_graph_ref *ref, const kiln_build_options *o, kiln_engine **out)
{
    return kiln_engine_create_from_plan(ref, o, NULL, out);
}

kiln_status kiln_engine_create_from_plan(kiln_graph_ref *ref, const kiln_build_options *o,
                                         const struct kiln_plan_info *plan, kiln_engine **out)
{
    *out = NULL;
    kiln_build_options dflt;
    if (!o) {
        kiln_build_options_init(&dflt);
        o = &dflt;
    }
    const kiln_graph *g = ref->g;
    const kiln_backend_iface *be = kiln_backend_find(o->backend);
    kiln_status st = be ? kiln_backend_check_device(be, o->device) : kiln_backend_missing(o->backend);
    if (st != KILN_OK) return kiln_fail_prefix(st, "%s: ", g->path);
    for (int i = 0; i < g->n_nodes; i++) {
        const kiln_node *n = &g->nodes[i];
        const char *why = n->unsupported ? n->unsupported : be->unsupported(g, n);
        if (why)
            return kiln_fail(KILN_ERR_UNSUPPORTED, "%s: node '%s' (%s%s%s): %s; the %s backend cannot run this model",
                             g->path, n->name, n->domain[0] ? n->domain : "", n->domain[0] ? "." : "", n->op_type,
                             why, be->name);
    }
    kiln_engine *e = kiln_xcalloc(1, sizeof *e);
    if (!e) return KILN_ERR_OUT_OF_MEMORY;
    e->be = be;
    e->ref = ref;
    e->opts = *o;
    e->opts.model_name = e->opts.model_version = e->opts.cache_dir = e->opts.input_shapes = NULL;
    kiln_graph_ref_retain(e->ref);
    e->pool = kiln_ctx_pool_create(e);
    st = !e->pool              ? KILN_ERR_OUT_OF_MEMORY
         : plan && be->load ? be->load(g, o, plan, &e->state)
                            : be->build(g, o, &e->state);
    if (st != KILN_OK) {
        kiln_ctx_pool_destroy(e->pool);
        kiln_graph_ref_release(e->ref);
        free(e);
        return st;
    }
    *out = e;
    return KILN_OK;
}

void kiln_engine_destroy(kiln_engine *e)
{
    if (!e) return;
    kiln_ctx_pool_destroy(e->pool);
    e->be->destroy(e->state);
    kiln_graph_ref_release(e->ref);
    free(e);
}

const kiln_graph *kiln_engine_graph(const kiln_engine *e) { return e->ref->g; }
const kiln_backend_iface *kiln_engine_backend(const kiln_engine *e) { return e->be; }
void *kiln_engine_state(const kiln_engine *e) { return e->state; }
kiln_ctx_pool *kiln_engine_pool(const kiln_engine *e) { return e->pool; }
const kiln_build_options *kiln_engine_options(const kiln_engine *e) { return &e->opts; }
const kiln_identity *kiln_engine_stored_identity(const kiln_engine *e) { return e->has_id ? &e->id : NULL; }

void kiln_engine_set_identity(kiln_engine *e, const kiln_identity *id)
{
    e->id = *id;
    e->has_id = true;
}

int kiln_engine_num_inputs(const kiln_engine *e) { return e ? e->ref->g->n_inputs : 0; }
int kiln_engine_num_outputs(const kiln_engine *e) { return e ? e->ref->g->n_outputs : 0; }
const char *kiln_engine_backend_name(const kiln_engine *e) { return e ? e->be->name : ""; }

kiln_status kiln_engine_input(const kiln_engine *e, int i, kiln_tensor_desc *out)
{
    if (!e || !out) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_input: NULL argument");
    if (i < 0 || i >= e->ref->g->n_inputs) return kiln_fail(KILN_ERR_NOT_FOUND, "input index %d out of range", i);
    kiln_describe_value(e->ref->g, e->ref->g->inputs[i], out);
    return KILN_OK;
}

kiln_status kiln_engine_output(const kiln_engine *e, int i, kiln_tensor_desc *out)
{
    if (!e || !out) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_output: NULL argument");
    if (i < 0 || i >= e->ref->g->n_outputs) return kiln_fail(KILN_ERR_NOT_FOUND, "output index %d out of range", i);
    kiln_describe_value(e->ref->g, e->ref->g->outputs[i], out);
    return KILN_OK;
}

kiln_status kiln_context_create(kiln_engine *e, kiln_context **out)
{
    if (!out) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_context_create: out is NULL");
    *out = NULL;
    if (!e) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_context_create: engine is NULL");
    kiln_context *c = kiln_xcalloc(1, sizeof *c);
    if (!c) return KILN_ERR_OUT_OF_MEMORY;
    c->e = e;
    atomic_flag_clear(&c->busy);
    c->in = kiln_xcalloc((size_t)e->ref->g->n_inputs + 1, sizeof *c->in);
    kiln_status st = c->in ? e->be->context_create(e->state, &c->ctx) : KILN_ERR_OUT_OF_MEMORY;
    if (st != KILN_OK) {
        free(c->in);
        free(c);
        return st;
    }
    *out = c;
    return KILN_OK;
}

void kiln_context_destroy(kiln_context *c)
{
    if (!c) return;
    c->e->be->context_destroy(c->ctx);
    free(c->in);
    free(c);
}

/* Matches the caller's tensors to the model's inputs and checks dtype, rank
 * and dims; a symbolic dim must take the same value everywhere it appears. */
static kiln_status bind_inputs(kiln_context *c, int n, const kiln_tensor *in)
{
    const kiln_graph *g = c->e->ref->g;
    int64_t sym_val[64];
    int sym_from[64];
    for (int i = 0; i < 64; i++) sym_val[i] = -1;
    if (n != g->n_inputs) {
        for (int i = 0; i < g->n_inputs; i++) {
            bool found = false;
            for (int k = 0; k < n; k++)
                if (in[k].name && !strcmp(in[k].name, g->values[g->inputs[i]].name)) found = true;
            if (!found)
                return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "%s: input '%s' is missing (the model has %d input%s, %d given)",
                                 g->path, g->values[g->inputs[i]].name, g->n_inputs, g->n_inputs == 1 ? "" : "s", n);
        }
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "%s: %d inputs given, the model has %d", g->path, n, g->n_inputs);
    }
    for (int i = 0; i < g->n_inputs; i++) {
        const kiln_value *v = &g->values[g->inputs[i]];
        const kiln_tensor *t = NULL;
        for (int k = 0; k < n; k++)
            if (in[k].name && !strcmp(in[k].name, v->name)) t = &in[k];
        if (!t && n == 1 && g->n_inputs == 1 && !in[0].name) t = &in[0];
        if (!t) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "%s: input '%s' is missing", g->path, v->name);
        char want[256];
        kiln_shape_str(g, &v->shape, want, sizeof want);
        if (t->dtype != v->dtype)
            return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "%s: input '%s' must be %s %s, %s was given", g->path, v->name,
                             kiln_dtype_name(v->dtype), want, kiln_dtype_name(t->dtype));
        if (t->rank != v->shape.rank)
            return kiln_fail(KILN_ERR_SHAPE, "%s: input '%s' must have rank %d %s, rank %d was given", g->path, v->name,
                             v->shape.rank, want, t->rank);
        if (!t->data && kiln_dtype_size(t->dtype)) {
            int64_t cnt = 1;
            for (int k = 0; k < t->rank; k++) cnt *= t->dims[k];
            if (cnt) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "%s: input '%s' has no data", g->path, v->name);
        }
        for (int k = 0; k < t->rank; k++) {
            int64_t d = v->shape.d[k], got = t->dims[k];
            if (got < 0)
                return kiln_fail(KILN_ERR_SHAPE, "%s: input '%s': dim %d is %" PRId64 "", g->path, v->name, k, got);
            if (d >= 0 && d != got)
                return kiln_fail(KILN_ERR_SHAPE, "%s: input '%s' must be %s; dim %d is %" PRId64 ", %" PRId64 " was given",
                                 g->path, v->name, want, k, d, got);
            if (d < 0 && d != KILN_DIM_UNKNOWN) {
                int s = kiln_dim_sym_id(d);
                if (s < 64) {
                    if (sym_val[s] >= 0 && sym_val[s] != got)
                        return kiln_fail(KILN_ERR_SHAPE,
                                         "%s: dim '%s' is %" PRId64 " in input '%s' but %" PRId64 " in input '%s'",
                                         g->path, g->symbols[s], sym_val[s], g->values[g->inputs[sym_from[s]]].name,
                                         got, v->name);
                    sym_val[s] = got;
                    sym_from[s] = i;
                }
            }
        }
        c->in[i] = *t;
        c->in[i].name = v->name;
    }
    return KILN_OK;
}

/* Whether the injected fault takes this run (one that bound its inputs). */
static bool fault_hits(kiln_engine *e, kiln_status fault)
{
    if (fault == KILN_OK) return false;
    uint_fast64_t k = atomic_fetch_add(&e->fault_seq, 1), from = atomic_load(&e->fault_after),
                  n = atomic_load(&e->fault_count);
    return k >= from && (n == 0 || k - from < n);
}

static kiln_status context_run(kiln_context *c, int n_inputs, const kiln_tensor *inputs, const kiln_tensor *dst,
                               int *n_outputs, const kiln_tensor **outputs)
{
    if (!c || !n_outputs || !outputs || (n_inputs > 0 && !inputs))
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_context_run: NULL argument");
    /* one context, one caller at a time: a second thread gets an error,
     * not a corrupted result */
    if (atomic_flag_test_and_set(&c->busy))
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT,
                         "kiln_context_run: this context is already running on another thread; use one "
                         "context per thread");
    kiln_engine *e = c->e;
    kiln_status fault = (kiln_status)atomic_load_explicit(&e->fault_status, memory_order_acquire);
    kiln_status st = bind_inputs(c, n_inputs, inputs);
    if (st == KILN_OK && fault_hits(e, fault))
        st = kiln_fail(fault, "injected fault");
    else if (st == KILN_OK)
        st = e->be->run(c->ctx, c->in, dst, n_outputs, outputs);
    atomic_flag_clear(&c->busy);
    return st;
}

kiln_status kiln_context_run(kiln_context *c, int n_inputs, const kiln_tensor *inputs, int *n_outputs,
                             const kiln_tensor **outputs)
{
    return context_run(c, n_inputs, inputs, NULL, n_outputs, outputs);
}

kiln_status kiln_context_run_into(kiln_context *c, int n_inputs, const kiln_tensor *inputs, int n_dst,
                                  const kiln_tensor *dst, int *n_outputs, const kiln_tensor **outputs)
{
    /* a count that does not match is refused by kiln_outputs_deliver */
    bool usable = c && dst && n_dst == c->e->ref->g->n_outputs;
    return context_run(c, n_inputs, inputs, usable ? dst : NULL, n_outputs, outputs);
}

void kiln_engine_inject_fault(kiln_engine *e, kiln_status st, int after_runs, int n_runs, kiln_fault_kind kind)
{
    /* off first, so that a run never pairs the new status with old counts */
    atomic_store_explicit(&e->fault_status, KILN_OK, memory_order_release);
    atomic_store(&e->fault_seq, 0);
    atomic_store(&e->fault_after, (uint_fast64_t)(after_runs > 0 ? after_runs : 0));
    atomic_store(&e->fault_count, (uint_fast64_t)(n_runs > 0 ? n_runs : 0));
    atomic_store(&e->fault_kind, (int)kind);
    atomic_store_explicit(&e->fault_status, (int)st, memory_order_release);
}

kiln_status kiln_engine_device_check(kiln_engine *e)
{
    if (atomic_load_explicit(&e->fault_status, memory_order_acquire) != KILN_OK)
        return atomic_load(&e->fault_kind) == KILN_FAULT_RECOVERABLE
                   ? KILN_OK
                   : kiln_fail(KILN_ERR_DEVICE, "the injected fault is a fatal one");
    if (!e->be->device_check)
        return kiln_fail(KILN_ERR_DEVICE, "the %s backend cannot check its device, so a device error counts as fatal",
                         e->be->name);
    return e->be->device_check(e->state);
}

void kiln_engine_set_prepare_hook(kiln_engine *e, kiln_prepare_hook fn, void *user)
{
    e->prepare_hook = fn;
    e->prepare_user = user;
}

bool kiln_engine_can_prepare(const kiln_engine *e) { return e->prepare_hook || e->be->prepare; }

kiln_status kiln_engine_input_profile(const kiln_engine *e, int i, int64_t *min, int64_t *opt, int64_t *max)
{
    if (!e || !min || !opt || !max) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_input_profile: NULL argument");
    const kiln_graph *g = e->ref->g;
    if (i < 0 || i >= g->n_inputs) return kiln_fail(KILN_ERR_NOT_FOUND, "input index %d out of range", i);
    if (e->be->input_profile) return e->be->input_profile(e->state, i, min, opt, max);
    /* a backend without a profile (ref) runs any shape */
    const kiln_shape *s = &g->values[g->inputs[i]].shape;
    for (int k = 0; k < s->rank; k++) {
        bool fixed = s->d[k] >= 0;
        min[k] = fixed ? s->d[k] : e->test_max ? e->test_min : 1;
        opt[k] = fixed ? s->d[k] : min[k];
        max[k] = fixed ? s->d[k] : e->test_max ? e->test_max : INT32_MAX;
    }
    return KILN_OK;
}

void kiln_engine_set_test_profile(kiln_engine *e, int64_t min, int64_t max)
{
    e->test_min = min;
    e->test_max = max;
}

/* Binds inputs on a context (checks them) without running. */
static kiln_status context_begin(kiln_context *c, int n_inputs, const kiln_tensor *inputs, bool need_data)
{
    if (atomic_flag_test_and_set(&c->busy))
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT,
                         "this context is already running on another thread; use one context per thread");
    kiln_status st = KILN_OK;
    if (!need_data) {
        /* shapes only: data may be NULL */
        kiln_tensor tmp[64];
        if (n_inputs > 64) st = kiln_fail(KILN_ERR_INVALID_ARGUMENT, "too many inputs (%d)", n_inputs);
        for (int i = 0; i < n_inputs && st == KILN_OK; i++) {
            tmp[i] = inputs[i];
            if (!tmp[i].data) tmp[i].data = (void *)&tmp[i]; /* bind_inputs wants data; it is not read */
        }
        if (st == KILN_OK) st = bind_inputs(c, n_inputs, tmp);
        for (int i = 0; i < c->e->ref->g->n_inputs && st == KILN_OK; i++) c->in[i].data = NULL;
    } else
        st = bind_inputs(c, n_inputs, inputs);
    if (st != KILN_OK) atomic_flag_clear(&c->busy);
    return st;
}

kiln_status kiln_context_prepare(kiln_context *c, int n_inputs, const kiln_tensor *inputs)
{
    if (!c || (n_inputs > 0 && !inputs)) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_context_prepare: NULL argument");
    kiln_engine *e = c->e;
    if (!kiln_engine_can_prepare(e)) return KILN_OK;
    kiln_status st = context_begin(c, n_inputs, inputs, false);
    if (st != KILN_OK) return st;
    if (e->prepare_hook) st = e->prepare_hook(e->prepare_user, e->ref->g->n_inputs, c->in);
    if (st == KILN_OK && e->be->prepare) st = e->be->prepare(c->ctx, c->in);
    atomic_flag_clear(&c->busy);
    return st;
}

kiln_status kiln_context_output_shapes(kiln_context *c, int n_inputs, const kiln_tensor *inputs, int n_outputs,
                                       kiln_tensor *outputs)
{
    if (!c || !outputs || (n_inputs > 0 && !inputs))
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_context_output_shapes: NULL argument");
    const kiln_graph *g = c->e->ref->g;
    if (n_outputs != g->n_outputs)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_context_output_shapes: %d outputs given, the engine has %d",
                         n_outputs, g->n_outputs);
    if (!c->e->be->output_shapes)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "the %s backend cannot tell output shapes without running",
                         c->e->be->name);
    kiln_status st = context_begin(c, n_inputs, inputs, false);
    if (st != KILN_OK) return st;
    st = c->e->be->output_shapes(c->ctx, c->in, n_outputs, outputs);
    atomic_flag_clear(&c->busy);
    return st;
}

kiln_status kiln_context_enqueue(kiln_context *c, int n_inputs, const kiln_tensor *inputs, int n_outputs,
                                 kiln_tensor *outputs, void *stream)
{
    if (!c || !outputs || (n_inputs > 0 && !inputs))
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_context_enqueue: NULL argument");
    const kiln_graph *g = c->e->ref->g;
    if (!c->e->be->enqueue)
        return kiln_fail(KILN_ERR_UNSUPPORTED,
                         "the %s backend runs on host memory only: use kiln_context_run or kiln_engine_infer",
                         c->e->be->name);
    if (n_outputs != g->n_outputs)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_context_enqueue: %d outputs given, the engine has %d",
                         n_outputs, g->n_outputs);
    for (int i = 0; i < n_outputs; i++)
        if (!outputs[i].data)
            return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_context_enqueue: output %d ('%s') has no device buffer",
                             i, g->values[g->outputs[i]].name);
    kiln_status st = context_begin(c, n_inputs, inputs, true);
    if (st != KILN_OK) return st;
    /* the backend checks that the caller's buffers hold the results before
     * it enqueues anything: it knows the output shapes of these inputs */
    st = c->e->be->enqueue(c->ctx, c->in, n_outputs, outputs, stream);
    atomic_flag_clear(&c->busy);
    return st;
}

kiln_status kiln_engine_set_graphs(kiln_engine *e, int enabled)
{
    if (!e) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_set_graphs: engine is NULL");
    if (e->be->set_graphs) e->be->set_graphs(e->state, enabled);
    return KILN_OK;
}

kiln_status kiln_engine_report(const kiln_engine *e, int json, char **out)
{
    if (!e || !out) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_report: NULL argument");
    *out = NULL;
    kiln_sbuf b = {0};
    if (e->be->report) {
        kiln_status st = e->be->report(e->state, json != 0, &b);
        if (st != KILN_OK) {
            free(b.data);
            return st;
        }
    } else if (json)
        kiln_sbuf_printf(&b, "{\"backend\": \"%s\", \"steps\": []}\n", e->be->name);
    else
        kiln_sbuf_printf(&b, "%s backend: runs the graph node by node with the reference kernels\n", e->be->name);
    if (b.failed || !b.data) {
        free(b.data);
        return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of memory writing the report");
    }
    *out = b.data;
    return KILN_OK;
}
