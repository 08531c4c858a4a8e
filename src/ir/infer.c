/* Shape/type inference over the whole graph, with folding of small constant
 * subgraphs: torch exports compute Reshape targets through
 * Shape -> Gather -> Unsqueeze -> Concat, which become constants once the
 * input shape is known. */
#include "ir/ir.h"

#include <string.h>

static bool inputs_known(const kiln_node *n, const kiln_value *v)
{
    for (int i = 0; i < n->n_inputs; i++) {
        int x = n->inputs[i];
        if (x < 0) continue;
        if ((n->op->flags & KILN_OP_SHAPE_ONLY) ? !kiln_shape_known(&v[x].shape) : !v[x].data) return false;
    }
    return true;
}

kiln_status kiln_fold_node(kiln_graph *g, const kiln_node *n, kiln_value *v)
{
    for (int k = 0; k < n->n_outputs; k++) {
        kiln_value *o = kiln_out(n, v, k);
        if (!o) continue;
        if (!kiln_shape_known(&o->shape) || !kiln_dtype_valid(o->dtype))
            return kiln_fail(KILN_ERR_INTERNAL, "%s: node '%s' (%s): output '%s' has no known shape to fold",
                             g->path, n->name, n->op_type, o->name);
        o->data = kiln_graph_alloc(g, kiln_value_bytes(o) + 1);
        if (!o->data) return KILN_ERR_OUT_OF_MEMORY;
    }
    kiln_status st = n->op->ref(n, v);
    if (st != KILN_OK) return kiln_fail_prefix(st, "%s: node '%s' (%s): ", g->path, n->name, n->op_type);
    for (int k = 0; k < n->n_outputs; k++) {
        kiln_value *o = kiln_out(n, v, k);
        if (o) o->flags |= KILN_V_FOLDED;
    }
    return KILN_OK;
}

static bool foldable(const kiln_node *n, const kiln_value *v)
{
    if (!n->op->ref || !inputs_known(n, v)) return false;
    if (!strcmp(n->op_type, "Constant")) return true;
    for (int k = 0; k < n->n_outputs; k++) {
        const kiln_value *o = kiln_out(n, (kiln_value *)v, k);
        if (!o) continue;
        int64_t cnt = kiln_shape_numel(&o->shape);
        if (cnt < 0 || cnt > KILN_FOLD_MAX_ELEMS) return false;
    }
    return true;
}

/* The model's declared output type is a promise: check it, and keep its
 * symbolic names where inference could not say more. */
static kiln_status check_declared(kiln_graph *g, int i)
{
    kiln_value *o = &g->values[g->outputs[i]];
    kiln_shape *d = &g->declared[i];
    char a[256], b[256];
    if (g->declared_dtype[i] && o->dtype && g->declared_dtype[i] != o->dtype)
        return kiln_fail(KILN_ERR_SHAPE, "%s: output '%s' is declared %s but computes as %s", g->path, o->name,
                         kiln_dtype_name(g->declared_dtype[i]), kiln_dtype_name(o->dtype));
    if (!o->dtype) o->dtype = g->declared_dtype[i];
    if (d->rank < 0) return KILN_OK;
    if (o->shape.rank < 0) {
        if (o->producer < 0 || !g->nodes[o->producer].unsupported) return KILN_OK;
        o->shape = *d;
        return KILN_OK;
    }
    if (o->shape.rank != d->rank) goto contradiction;
    for (int k = 0; k < d->rank; k++) {
        if (o->shape.d[k] >= 0 && d->d[k] >= 0 && o->shape.d[k] != d->d[k]) goto contradiction;
        if (o->shape.d[k] == KILN_DIM_UNKNOWN) o->shape.d[k] = d->d[k];
    }
    return KILN_OK;
contradiction:
    return kiln_fail(KILN_ERR_SHAPE, "%s: output '%s' is declared %s but computes as %s (shape contradiction)",
                     g->path, o->name, kiln_shape_str(g, d, a, sizeof a), kiln_shape_str(g, &o->shape, b, sizeof b));
}

/* Dims beyond 2^40 come from hostile or broken files, never from models;
 * refusing them keeps every shape rule's dim arithmetic far from overflow. */
#define KILN_DIM_LIMIT ((int64_t)1 << 40)

static kiln_status check_dims(const kiln_graph *g, const kiln_value *x, const char *what)
{
    for (int k = 0; k < x->shape.rank; k++)
        if (x->shape.d[k] > KILN_DIM_LIMIT) {
            char buf[256];
            return kiln_fail(KILN_ERR_SHAPE, "%s: %s '%s' has shape %s: dim %d is implausibly large", g->path, what,
                             x->name, kiln_shape_str(g, &x->shape, buf, sizeof buf), k);
        }
    return KILN_OK;
}

kiln_status kiln_graph_infer(kiln_graph *g)
{
    /* start over: everything computed is forgotten, inputs and weights stay */
    for (int i = 0; i < g->n_values; i++) {
        kiln_value *x = &g->values[i];
        if (x->flags & (KILN_V_INPUT | KILN_V_INIT)) continue;
        x->dtype = KILN_DTYPE_UNDEFINED;
        x->shape.rank = -1;
        x->data = NULL;
        x->sym = NULL;
        x->flags &= ~(unsigned)KILN_V_FOLDED;
    }
    for (int i = 0; i < g->n_inputs; i++) {
        kiln_status st = check_dims(g, &g->values[g->inputs[i]], "input");
        if (st != KILN_OK) return st;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        kiln_node *n = &g->nodes[i];
        kiln_op_resolve(n);
        if (n->unsupported) {
            n->unsupported = kiln_arena_strdup(&g->arena, n->unsupported);
            continue;
        }
        bool ready = true;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0 && !g->values[n->inputs[k]].dtype) ready = false;
        if (!ready) continue; /* downstream of an unsupported node */
        kiln_status st = n->op->shape(n, g->values);
        if (st == KILN_ERR_UNSUPPORTED) {
            n->unsupported = kiln_arena_strdup(&g->arena, kiln_last_error());
            for (int k = 0; k < n->n_outputs; k++) {
                kiln_value *o = kiln_out(n, g->values, k);
                if (o) {
                    o->dtype = KILN_DTYPE_UNDEFINED;
                    o->shape.rank = -1;
                }
            }
            continue;
        }
        if (st != KILN_OK) return kiln_fail_prefix(st, "%s: node '%s' (%s): ", g->path, n->name, n->op_type);
        for (int k = 0; k < n->n_outputs; k++) {
            kiln_value *o = kiln_out(n, g->values, k);
            if (o && (st = check_dims(g, o, "output")) != KILN_OK)
                return kiln_fail_prefix(st, "node '%s' (%s): ", n->name, n->op_type);
        }
        if (foldable(n, g->values)) {
            st = kiln_fold_node(g, n, g->values);
            if (st != KILN_OK) return st;
        } else if ((st = kiln_sym_infer(g, n)) != KILN_OK) {
            return kiln_fail_prefix(st, "%s: node '%s' (%s): ", g->path, n->name, n->op_type);
        }
    }
    for (int i = 0; i < g->n_outputs; i++) {
        kiln_status st = check_declared(g, i);
        if (st != KILN_OK) return st;
    }
    kiln_clear_error();
    return KILN_OK;
}
