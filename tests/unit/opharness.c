#include "opharness.h"

#include <stdlib.h>
#include <string.h>

kt_op *kt_op_new(const char *op_type, int opset)
{
    kt_op *t = calloc(1, sizeof *t);
    t->g = kiln_graph_new("test.onnx");
    t->g->opset = opset;
    t->node = kiln_graph_add_node(t->g);
    t->node->name = kiln_arena_strdup(&t->g->arena, "node");
    t->node->op_type = kiln_arena_strdup(&t->g->arena, op_type);
    t->node->domain = "";
    t->node->opset = opset;
    t->node->inputs = kiln_arena_alloc(&t->g->arena, 16 * sizeof(int));
    t->node->outputs = kiln_arena_alloc(&t->g->arena, 8 * sizeof(int));
    t->node->attrs = kiln_arena_alloc(&t->g->arena, 16 * sizeof(kiln_attr));
    return t;
}

void kt_op_input_sym(kt_op *t, const char *name, kiln_dtype dt, int rank, const int64_t *dims,
                     const char *const *sym)
{
    kiln_node *n = t->node;
    if (!name[0]) {
        n->inputs[n->n_inputs++] = -1;
        return;
    }
    int i = kiln_graph_value(t->g, name);
    kiln_value *v = &t->g->values[i];
    v->dtype = dt;
    v->shape.rank = rank;
    for (int k = 0; k < rank; k++)
        v->shape.d[k] = dims[k] >= 0 ? dims[k]
                        : (sym && sym[k]) ? kiln_dim_sym(kiln_graph_symbol(t->g, sym[k]))
                                          : KILN_DIM_UNKNOWN;
    v->flags = KILN_V_INPUT;
    n->inputs[n->n_inputs++] = i;
}

void kt_op_input(kt_op *t, const char *name, kiln_dtype dt, int rank, const int64_t *dims, const void *data)
{
    kt_op_input_sym(t, name, dt, rank, dims, NULL);
    if (!name[0] || !data) return;
    kiln_value *v = &t->g->values[kiln_graph_find(t->g, name)];
    size_t bytes = kiln_value_bytes(v);
    v->data = kiln_graph_alloc(t->g, bytes + 1);
    memcpy(v->data, data, bytes);
    v->flags = KILN_V_INIT;
}

void kt_op_output(kt_op *t, const char *name)
{
    kiln_node *n = t->node;
    if (!name[0]) {
        n->outputs[n->n_outputs++] = -1;
        return;
    }
    int i = kiln_graph_value(t->g, name);
    n->outputs[n->n_outputs++] = i;
}

static kiln_attr *new_attr(kt_op *t, const char *name, kiln_attr_type ty)
{
    kiln_attr *a = &t->node->attrs[t->node->n_attrs++];
    a->name = kiln_arena_strdup(&t->g->arena, name);
    a->type = ty;
    return a;
}

void kt_op_attr_int(kt_op *t, const char *name, int64_t v) { new_attr(t, name, KILN_ATTR_INT)->i = v; }
void kt_op_attr_float(kt_op *t, const char *name, float v) { new_attr(t, name, KILN_ATTR_FLOAT)->f = v; }
void kt_op_attr_string(kt_op *t, const char *name, const char *s)
{
    new_attr(t, name, KILN_ATTR_STRING)->s = kiln_arena_strdup(&t->g->arena, s);
}
void kt_op_attr_ints(kt_op *t, const char *name, int n, const int64_t *v)
{
    kiln_attr *a = new_attr(t, name, KILN_ATTR_INTS);
    int64_t *c = kiln_arena_alloc(&t->g->arena, (size_t)n * 8 + 8);
    memcpy(c, v, (size_t)n * 8);
    a->ints = c;
    a->n = n;
}
void kt_op_attr_floats(kt_op *t, const char *name, int n, const float *v)
{
    kiln_attr *a = new_attr(t, name, KILN_ATTR_FLOATS);
    float *c = kiln_arena_alloc(&t->g->arena, (size_t)n * 4 + 4);
    memcpy(c, v, (size_t)n * 4);
    a->floats = c;
    a->n = n;
}

kiln_status kt_op_run(kt_op *t)
{
    kiln_status st = kiln_graph_sort(t->g);
    if (st != KILN_OK) return st;
    st = kiln_graph_infer(t->g);
    if (st != KILN_OK) return st;
    if (t->g->nodes[0].unsupported)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "%s", t->g->nodes[0].unsupported);
    return KILN_OK;
}

kiln_value *kt_op_value(kt_op *t, const char *name)
{
    int i = kiln_graph_find(t->g, name);
    return i < 0 ? NULL : &t->g->values[i];
}

void kt_op_free(kt_op *t)
{
    if (!t) return;
    kiln_graph_free(t->g);
    free(t);
}
