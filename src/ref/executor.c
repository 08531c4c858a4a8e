/* The `ref` backend: runs the graph node by node with the reference
 * kernels, inferring each node's shapes from the actual inputs first (so
 * data-dependent shapes work). Plain C, exact ONNX semantics: the oracle
 * the GPU engine is checked against. */
#include <stdlib.h>
#include <string.h>

#include "ref/ref.h"
#include "runtime/backend.h"

typedef struct ref_engine {
    const kiln_graph *g;
    int *steps; /* nodes to run: everything not folded at import */
    int n_steps;
    int fault;          /* value whose result is scaled (KILN_REF_FAULT), -1: none */
    double fault_scale;
} ref_engine;

typedef struct ref_buffer {
    void *data;
    size_t cap;
} ref_buffer;

typedef struct ref_context {
    const ref_engine *e;
    kiln_value *v;      /* this context's value table */
    ref_buffer *bufs;   /* one per value, kept across runs */
    kiln_tensor *outs;
} ref_context;

static const char *ref_unsupported(const kiln_graph *g, const kiln_node *n)
{
    if (!n->op || !n->op->ref) return "no reference kernel for this op";
    return NULL;
}

static bool folded(const kiln_graph *g, const kiln_node *n)
{
    for (int k = 0; k < n->n_outputs; k++)
        if (n->outputs[k] >= 0 && !(g->values[n->outputs[k]].flags & KILN_V_FOLDED)) return false;
    return true;
}

/* $KILN_REF_FAULT=TENSOR[:SCALE] plants a known error in engines built
 * while it is set: TENSOR's values are multiplied by SCALE (default 1.01)
 * each time they are computed. It exists to test error hunting (kiln compare
 * --bisect must name that tensor's node); it is read once per build and
 * announced with a warning, so no engine carries it unnoticed. */
static kiln_status parse_fault(const kiln_graph *g, ref_engine *e)
{
    e->fault = -1;
    const char *spec = getenv("KILN_REF_FAULT");
    if (!spec || !*spec) return KILN_OK;
    char name[512];
    const char *colon = strrchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    if (len >= sizeof name) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "KILN_REF_FAULT: tensor name too long");
    memcpy(name, spec, len);
    name[len] = 0;
    e->fault_scale = 1.01;
    if (colon) {
        char *end;
        e->fault_scale = strtod(colon + 1, &end);
        if (end == colon + 1 || *end)
            return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "KILN_REF_FAULT='%s': expected TENSOR or TENSOR:SCALE", spec);
    }
    int x = kiln_graph_find(g, name);
    if (x < 0 || g->values[x].producer < 0)
        return kiln_fail(KILN_ERR_NOT_FOUND, "KILN_REF_FAULT: %s has no computed tensor named '%s'", g->path, name);
    e->fault = x;
    kiln_log(KILN_LOG_WARN, "ref engine for %s: fault planted ($KILN_REF_FAULT): '%s' is scaled by %g", g->path,
             name, e->fault_scale);
    return KILN_OK;
}

/* Multiplies the planted fault's tensor, when node n computed it. */
static void apply_fault(const ref_engine *e, const kiln_node *n, kiln_value *v)
{
    for (int k = 0; k < n->n_outputs; k++) {
        if (n->outputs[k] != e->fault) continue;
        kiln_value *x = &v[e->fault];
        if (!kiln_dtype_is_float(x->dtype)) return;
        int64_t cnt = kiln_shape_numel(&x->shape);
        for (int64_t i = 0; i < cnt; i++)
            kiln_store_f64(x->dtype, x->data, i, kiln_load_f64(x->dtype, x->data, i) * e->fault_scale);
    }
}

static void ref_destroy(void *state);

static kiln_status ref_build(const kiln_graph *g, const kiln_build_options *o, void **state)
{
    ref_engine *e = kiln_xcalloc(1, sizeof *e);
    if (!e) return KILN_ERR_OUT_OF_MEMORY;
    e->g = g;
    e->steps = kiln_xmalloc(((size_t)g->n_nodes + 1) * sizeof *e->steps);
    if (!e->steps) {
        free(e);
        return KILN_ERR_OUT_OF_MEMORY;
    }
    for (int i = 0; i < g->n_nodes; i++)
        if (!folded(g, &g->nodes[i])) e->steps[e->n_steps++] = i;
    kiln_status st = parse_fault(g, e);
    if (st != KILN_OK) {
        ref_destroy(e);
        return st;
    }
    *state = e;
    return KILN_OK;
}

static void ref_destroy(void *state)
{
    ref_engine *e = state;
    if (!e) return;
    free(e->steps);
    free(e);
}

static kiln_status ref_context_create(void *state, void **out)
{
    const ref_engine *e = state;
    ref_context *c = kiln_xcalloc(1, sizeof *c);
    if (!c) return KILN_ERR_OUT_OF_MEMORY;
    c->e = e;
    c->v = kiln_xmalloc(((size_t)e->g->n_values + 1) * sizeof *c->v);
    c->bufs = kiln_xcalloc((size_t)e->g->n_values + 1, sizeof *c->bufs);
    c->outs = kiln_xcalloc((size_t)e->g->n_outputs + 1, sizeof *c->outs);
    if (!c->v || !c->bufs || !c->outs) {
        free(c->v);
        free(c->bufs);
        free(c->outs);
        free(c);
        return KILN_ERR_OUT_OF_MEMORY;
    }
    *out = c;
    return KILN_OK;
}

static void ref_context_destroy(void *ctx)
{
    ref_context *c = ctx;
    if (!c) return;
    for (int i = 0; i < c->e->g->n_values; i++) free(c->bufs[i].data);
    free(c->bufs);
    free(c->v);
    free(c->outs);
    free(c);
}

static kiln_status ensure(ref_buffer *b, size_t bytes)
{
    if (bytes <= b->cap && b->data) return KILN_OK;
    void *p = realloc(b->data, bytes ? bytes : 1);
    if (!p) return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of host memory (%zu bytes for an activation)", bytes);
    b->data = p;
    b->cap = bytes;
    return KILN_OK;
}

static kiln_status run_node(ref_context *c, const kiln_node *n)
{
    const kiln_graph *g = c->e->g;
    kiln_value *v = c->v;
    for (int k = 0; k < n->n_inputs; k++) {
        kiln_value *x = kiln_in(n, v, k);
        if (x && !x->data && kiln_shape_numel(&x->shape) != 0)
            return kiln_fail(KILN_ERR_INTERNAL, "input '%s' has not been computed", x->name);
    }
    kiln_status st = n->op->shape(n, v);
    if (st != KILN_OK) return st;
    for (int k = 0; k < n->n_outputs; k++) {
        kiln_value *o = kiln_out(n, v, k);
        if (!o) continue;
        if (!kiln_shape_known(&o->shape) || !kiln_dtype_valid(o->dtype))
            return kiln_fail(KILN_ERR_INTERNAL, "output '%s' has no concrete shape after inference", o->name);
        ref_buffer *b = &c->bufs[n->outputs[k]];
        st = ensure(b, kiln_value_bytes(o) + 1);
        if (st != KILN_OK) return st;
        o->data = b->data;
    }
    (void)g;
    return n->op->ref(n, v);
}

/* dst is not used: the kernels write into the context's buffers, which
 * later nodes may read, and kiln_outputs_deliver copies the results. */
static kiln_status ref_run(void *ctx, const kiln_tensor *in, const kiln_tensor *dst, int *n_out,
                           const kiln_tensor **out)
{
    (void)dst;
    ref_context *c = ctx;
    const ref_engine *e = c->e;
    const kiln_graph *g = e->g;
    memcpy(c->v, g->values, (size_t)g->n_values * sizeof *c->v);
    for (int i = 0; i < g->n_values; i++) c->v[i].sym = NULL; /* build-time only: everything is concrete here */
    for (int i = 0; i < g->n_inputs; i++) {
        kiln_value *x = &c->v[g->inputs[i]];
        x->shape.rank = in[i].rank;
        for (int k = 0; k < in[i].rank; k++) x->shape.d[k] = in[i].dims[k];
        x->data = in[i].data;
        if (!x->data) x->data = c->bufs[g->inputs[i]].data; /* empty tensor */
    }
    for (int s = 0; s < e->n_steps; s++) {
        const kiln_node *n = &g->nodes[e->steps[s]];
        kiln_status st = run_node(c, n);
        if (st != KILN_OK) return kiln_fail_prefix(st, "%s: node '%s' (%s): ", g->path, n->name, n->op_type);
        if (e->fault >= 0) apply_fault(e, n, c->v);
    }
    for (int i = 0; i < g->n_outputs; i++) {
        const kiln_value *x = &c->v[g->outputs[i]];
        kiln_tensor *t = &c->outs[i];
        t->name = x->name;
        t->dtype = x->dtype;
        t->rank = x->shape.rank;
        for (int k = 0; k < x->shape.rank; k++) t->dims[k] = x->shape.d[k];
        t->data = x->data;
    }
    *n_out = g->n_outputs;
    *out = c->outs;
    return KILN_OK;
}

const kiln_backend_iface kiln_ref_backend = {
    .name = "ref",
    .unsupported = ref_unsupported,
    .build = ref_build,
    .destroy = ref_destroy,
    .context_create = ref_context_create,
    .context_destroy = ref_context_destroy,
    .run = ref_run,
};
