/* Concrete shapes per input shape: the GPU engine runs one program for
 * every shape of its profile, so each new input shape gets its value
 * table here, the way the ref executor gets one per run: shape rules for
 * every device node, reference kernels for the host nodes (the Shape ->
 * Gather -> Concat chains that compute Reshape targets from the batch). */
#include <stdlib.h>
#include <string.h>

#include "builder/program.h"

void kb_shapes_free(kb_shapes *s)
{
    if (!s) return;
    if (s->host)
        for (int i = 0; i < s->n_values; i++) free(s->host[i]);
    free(s->host);
    free(s->v);
    memset(s, 0, sizeof *s);
}

kiln_status kb_shapes_infer(const kiln_graph *g, const kb_program *p, const int64_t *const *dims, kb_shapes *out)
{
    memset(out, 0, sizeof *out);
    out->n_values = g->n_values;
    out->v = kiln_xmalloc(((size_t)g->n_values + 1) * sizeof *out->v);
    out->host = kiln_xcalloc((size_t)g->n_values + 1, sizeof *out->host);
    if (!out->v || !out->host) {
        kb_shapes_free(out);
        return KILN_ERR_OUT_OF_MEMORY;
    }
    kiln_value *v = out->v;
    memcpy(v, g->values, (size_t)g->n_values * sizeof *v);
    for (int i = 0; i < g->n_values; i++) {
        v[i].sym = NULL; /* build-time only: every dim is concrete here */
        if (!(v[i].flags & (KILN_V_INIT | KILN_V_FOLDED))) v[i].data = NULL;
    }
    for (int i = 0; i < g->n_inputs; i++) {
        kiln_value *x = &v[g->inputs[i]];
        for (int k = 0; k < x->shape.rank; k++) x->shape.d[k] = dims[i][k];
        x->data = NULL;
    }
    for (int ni = 0; ni < g->n_nodes; ni++) {
        if (p->node_class[ni] == KB_NODE_SKIP) continue;
        const kiln_node *n = &g->nodes[ni];
        kiln_status st = n->op->shape(n, v);
        if (st != KILN_OK) goto fail_node;
        for (int k = 0; k < n->n_outputs; k++) {
            kiln_value *o = kiln_out(n, v, k);
            if (!o) continue;
            if (!kiln_shape_known(&o->shape) || !kiln_dtype_valid(o->dtype)) {
                st = kiln_fail(KILN_ERR_UNSUPPORTED,
                               "the shape of output '%s' depends on data computed on the GPU, which the cuda "
                               "backend does not support",
                               o->name);
                goto fail_node;
            }
            if (p->node_class[ni] == KB_NODE_HOST) {
                void *d = kiln_xmalloc(kiln_value_bytes(o) + 1);
                if (!d) {
                    kb_shapes_free(out);
                    return KILN_ERR_OUT_OF_MEMORY;
                }
                out->host[n->outputs[k]] = d;
                o->data = d;
            } else
                o->data = NULL;
        }
        if (p->node_class[ni] == KB_NODE_HOST) {
            st = n->op->ref(n, v);
            if (st != KILN_OK) goto fail_node;
        }
        continue;
    fail_node:
        kiln_fail_prefix(st, "%s: node '%s' (%s): ", g->path, n->name, n->op_type);
        kb_shapes_free(out);
        return st;
    }
    return KILN_OK;
}
