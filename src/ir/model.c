/* Public model API over the IR graph. */
#include "ir/model.h"

#include <stdlib.h>
#include <string.h>

#include "onnx/onnx.h"

kiln_graph_ref *kiln_graph_ref_new(kiln_graph *g)
{
    kiln_graph_ref *r = kiln_xmalloc(sizeof *r);
    if (!r) {
        kiln_graph_free(g);
        return NULL;
    }
    r->g = g;
    atomic_init(&r->refs, 1);
    return r;
}

void kiln_graph_ref_retain(kiln_graph_ref *r) { atomic_fetch_add(&r->refs, 1); }

void kiln_graph_ref_release(kiln_graph_ref *r)
{
    if (r && atomic_fetch_sub(&r->refs, 1) == 1) {
        kiln_graph_free(r->g);
        free(r);
    }
}

static kiln_status wrap(kiln_graph *g, kiln_model **out)
{
    kiln_model *m = kiln_xmalloc(sizeof *m);
    if (!m) {
        kiln_graph_free(g);
        return KILN_ERR_OUT_OF_MEMORY;
    }
    m->ref = kiln_graph_ref_new(g);
    if (!m->ref) {
        free(m);
        return KILN_ERR_OUT_OF_MEMORY;
    }
    *out = m;
    return KILN_OK;
}

kiln_status kiln_model_load(const char *path, kiln_model **out)
{
    if (!out) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_model_load: out is NULL");
    *out = NULL;
    if (!path) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_model_load: path is NULL");
    kiln_graph *g;
    kiln_status st = kiln_onnx_import_file(path, &g);
    return st == KILN_OK ? wrap(g, out) : st;
}

kiln_status kiln_model_load_memory(const void *bytes, size_t size, const char *name, const char *base_dir,
                                   kiln_model **out)
{
    if (!out) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_model_load_memory: out is NULL");
    *out = NULL;
    if (!bytes && size) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_model_load_memory: bytes is NULL");
    kiln_graph *g;
    kiln_status st = kiln_onnx_import(bytes, size, name ? name : "<memory>", base_dir, &g);
    return st == KILN_OK ? wrap(g, out) : st;
}

void kiln_model_destroy(kiln_model *m)
{
    if (!m) return;
    kiln_graph_ref_release(m->ref);
    free(m);
}

int kiln_model_num_inputs(const kiln_model *m) { return m ? m->ref->g->n_inputs : 0; }
int kiln_model_num_outputs(const kiln_model *m) { return m ? m->ref->g->n_outputs : 0; }

void kiln_describe_value(const kiln_graph *g, int x, kiln_tensor_desc *out)
{
    const kiln_value *v = &g->values[x];
    memset(out, 0, sizeof *out);
    out->name = v->name;
    out->dtype = v->dtype;
    out->rank = v->shape.rank;
    for (int k = 0; k < v->shape.rank && k < KILN_MAX_RANK; k++) {
        int64_t d = v->shape.d[k];
        out->dims[k] = d >= 0 ? d : -1;
        if (d < 0 && d != KILN_DIM_UNKNOWN && kiln_dim_sym_id(d) < g->n_symbols)
            out->dim_names[k] = g->symbols[kiln_dim_sym_id(d)];
    }
}

kiln_status kiln_model_input(const kiln_model *m, int i, kiln_tensor_desc *out)
{
    if (!m || !out) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_model_input: NULL argument");
    if (i < 0 || i >= m->ref->g->n_inputs)
        return kiln_fail(KILN_ERR_NOT_FOUND, "input index %d out of range (model has %d)", i, m->ref->g->n_inputs);
    kiln_describe_value(m->ref->g, m->ref->g->inputs[i], out);
    return KILN_OK;
}

kiln_status kiln_model_output(const kiln_model *m, int i, kiln_tensor_desc *out)
{
    if (!m || !out) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_model_output: NULL argument");
    if (i < 0 || i >= m->ref->g->n_outputs)
        return kiln_fail(KILN_ERR_NOT_FOUND, "output index %d out of range (model has %d)", i, m->ref->g->n_outputs);
    kiln_describe_value(m->ref->g, m->ref->g->outputs[i], out);
    return KILN_OK;
}

kiln_status kiln_model_set_input_shape(kiln_model *m, const char *input, int rank, const int64_t *dims)
{
    if (!m || !input || (rank > 0 && !dims))
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_model_set_input_shape: NULL argument");
    kiln_graph *g = m->ref->g;
    if (atomic_load(&m->ref->refs) > 1)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT,
                         "%s: the model is in use by an engine; set shapes before building, or load it again",
                         g->path);
    int x = kiln_graph_find(g, input);
    if (x < 0 || !(g->values[x].flags & KILN_V_INPUT))
        return kiln_fail(KILN_ERR_NOT_FOUND, "%s: the model has no input named '%s'", g->path, input);
    kiln_value *v = &g->values[x];
    char a[256];
    if (rank != v->shape.rank)
        return kiln_fail(KILN_ERR_SHAPE, "%s: input '%s' has rank %d %s; a shape of rank %d was given", g->path,
                         input, v->shape.rank, kiln_shape_str(g, &v->shape, a, sizeof a), rank);
    for (int k = 0; k < rank; k++) {
        if (dims[k] < 0)
            return kiln_fail(KILN_ERR_SHAPE, "%s: input '%s': dim %d is %lld; dims must be >= 0", g->path, input, k,
                             (long long)dims[k]);
        if (v->shape.d[k] >= 0 && v->shape.d[k] != dims[k])
            return kiln_fail(KILN_ERR_SHAPE, "%s: input '%s' is %s; dim %d is fixed at %lld, %lld was given",
                             g->path, input, kiln_shape_str(g, &v->shape, a, sizeof a), k,
                             (long long)v->shape.d[k], (long long)dims[k]);
    }
    kiln_shape old = v->shape;
    for (int k = 0; k < rank; k++) v->shape.d[k] = dims[k];
    kiln_status st = kiln_graph_infer(g);
    if (st != KILN_OK) {
        v->shape = old;
        kiln_status st2 = kiln_graph_infer(g); /* back to the consistent state */
        (void)st2;
        return st;
    }
    return KILN_OK;
}

int kiln_model_num_unsupported(const kiln_model *m)
{
    if (!m) return 0;
    int n = 0;
    for (int i = 0; i < m->ref->g->n_nodes; i++) n += m->ref->g->nodes[i].unsupported != NULL;
    return n;
}

kiln_status kiln_model_unsupported(const kiln_model *m, int i, const char **node, const char **op,
                                   const char **reason)
{
    if (!m) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_model_unsupported: model is NULL");
    const kiln_graph *g = m->ref->g;
    for (int k = 0; k < g->n_nodes; k++) {
        const kiln_node *n = &g->nodes[k];
        if (!n->unsupported || i--) continue;
        if (node) *node = n->name;
        if (op) *op = n->op_type;
        if (reason) *reason = n->unsupported;
        return KILN_OK;
    }
    return kiln_fail(KILN_ERR_NOT_FOUND, "no unsupported node #%d", i);
}

kiln_status kiln_model_report(const kiln_model *m, kiln_report_format fmt, char **out)
{
    if (!m || !out) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_model_report: NULL argument");
    *out = NULL;
    kiln_sbuf b = {0};
    if (fmt == KILN_REPORT_JSON)
        kiln_report_json(m->ref->g, false, &b);
    else if (fmt == KILN_REPORT_JSON_VALUES)
        kiln_report_json(m->ref->g, true, &b);
    else
        kiln_report_text(m->ref->g, &b);
    if (b.failed || !b.data) {
        free(b.data);
        return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of host memory writing the report");
    }
    *out = b.data;
    return KILN_OK;
}

int kiln_model_num_nodes(const kiln_model *m) { return m ? m->ref->g->n_nodes : 0; }

kiln_status kiln_model_node(const kiln_model *m, int i, const char **name, const char **op, int *n_inputs,
                            int *n_outputs)
{
    if (!m) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_model_node: model is NULL");
    const kiln_graph *g = m->ref->g;
    if (i < 0 || i >= g->n_nodes)
        return kiln_fail(KILN_ERR_NOT_FOUND, "node index %d out of range (model has %d)", i, g->n_nodes);
    const kiln_node *n = &g->nodes[i];
    if (name) *name = n->name;
    if (op) *op = n->op_type;
    if (n_inputs) *n_inputs = n->n_inputs;
    if (n_outputs) *n_outputs = n->n_outputs;
    return KILN_OK;
}

/* Value k of node i's inputs (is_out 0) or outputs (1), described. */
static kiln_status node_value(const kiln_model *m, int i, int k, int is_out, kiln_tensor_desc *out)
{
    if (!m || !out) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_model_node_%s: NULL argument", is_out ? "output" : "input");
    const kiln_graph *g = m->ref->g;
    if (i < 0 || i >= g->n_nodes)
        return kiln_fail(KILN_ERR_NOT_FOUND, "node index %d out of range (model has %d)", i, g->n_nodes);
    const kiln_node *n = &g->nodes[i];
    int cnt = is_out ? n->n_outputs : n->n_inputs;
    const int *x = is_out ? n->outputs : n->inputs;
    if (k < 0 || k >= cnt || x[k] < 0)
        return kiln_fail(KILN_ERR_NOT_FOUND, "node '%s' has no %s #%d", n->name, is_out ? "output" : "input", k);
    kiln_describe_value(g, x[k], out);
    return KILN_OK;
}

kiln_status kiln_model_node_input(const kiln_model *m, int i, int k, kiln_tensor_desc *out)
{
    return node_value(m, i, k, 0, out);
}

kiln_status kiln_model_node_output(const kiln_model *m, int i, int k, kiln_tensor_desc *out)
{
    return node_value(m, i, k, 1, out);
}

kiln_status kiln_model_mark_output(kiln_model *m, const char *name)
{
    if (!m || !name) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_model_mark_output: NULL argument");
    kiln_graph *g = m->ref->g;
    if (atomic_load(&m->ref->refs) > 1)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT,
                         "%s: the model is in use by an engine; mark outputs before building, or load it again",
                         g->path);
    int x = kiln_graph_find(g, name);
    if (x < 0) return kiln_fail(KILN_ERR_NOT_FOUND, "%s: the model has no tensor named '%s'", g->path, name);
    kiln_value *v = &g->values[x];
    if (v->flags & KILN_V_OUTPUT) return KILN_OK;
    if (v->producer < 0 || (v->flags & (KILN_V_INPUT | KILN_V_INIT | KILN_V_FOLDED)))
        return kiln_fail(KILN_ERR_NOT_FOUND,
                         "%s: tensor '%s' is %s, not computed by a node: only computed tensors can be outputs",
                         g->path, name,
                         v->flags & KILN_V_INPUT ? "an input" : v->producer < 0 ? "a weight" : "a constant folded at import");
    /* the arrays live in the arena: grow by copying (the old ones stay
     * there until the graph is freed; marking is rare) */
    int n = g->n_outputs;
    int *outs = kiln_graph_alloc(g, ((size_t)n + 2) * sizeof *outs);
    kiln_shape *decl = kiln_graph_alloc(g, ((size_t)n + 2) * sizeof *decl);
    kiln_dtype *dt = kiln_graph_alloc(g, ((size_t)n + 2) * sizeof *dt);
    if (!outs || !decl || !dt) return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of host memory");
    if (n) {
        memcpy(outs, g->outputs, (size_t)n * sizeof *outs);
        memcpy(decl, g->declared, (size_t)n * sizeof *decl);
        memcpy(dt, g->declared_dtype, (size_t)n * sizeof *dt);
    }
    outs[n] = x;
    decl[n] = (kiln_shape){.rank = -1}; /* nothing declared: nothing to check */
    dt[n] = KILN_DTYPE_UNDEFINED;
    g->outputs = outs;
    g->declared = decl;
    g->declared_dtype = dt;
    g->n_outputs = n + 1;
    v->flags |= KILN_V_OUTPUT;
    return KILN_OK;
}
