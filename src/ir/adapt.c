/* Import-time version adapters: a node of an op version kiln does not
 * implement natively is rewritten into the op's native form by the adapter
 * the op table names for it (kiln_adapt_<Op>, src/ir/adapt_*.c). */
#include "ir/ops.h"

#include <string.h>

/* The since_version of op that a node of `opset` resolves to; 0 if none. */
static int version_at(const kiln_op_def *op, int opset)
{
    int v = 0;
    for (int i = 0; i < KILN_OP_MAX_VERSIONS && op->all_versions[i]; i++)
        if (op->all_versions[i] <= opset) v = op->all_versions[i];
    return v;
}

static bool native(const kiln_op_def *op, int v)
{
    for (int i = 0; i < KILN_OP_MAX_VERSIONS && op->versions[i]; i++)
        if (op->versions[i] == v) return true;
    return false;
}

kiln_status kiln_graph_adapt(kiln_graph *g)
{
    /* adapters may append nodes (g->nodes can move): index, never hold */
    for (int i = 0; i < g->n_nodes; i++) {
        /* an adapter may turn a node into another op (Upsample -> Resize)
         * that needs adapting in turn; a few rounds at most */
        for (int round = 0; round < 4; round++) {
            kiln_node *n = &g->nodes[i];
            const kiln_op_def *op = kiln_op_find(n->domain, n->op_type);
            if (!op || !op->adapt) break;
            int v = version_at(op, n->opset);
            if (!v || native(op, v)) break;
            const char *before = n->op_type;
            int before_opset = n->opset;
            kiln_status st = op->adapt(g, n);
            if (st != KILN_OK)
                return kiln_fail_prefix(st, "%s: node '%s' (%s, version %d at opset %d): ", g->path,
                                        g->nodes[i].name, before, v, before_opset);
            n = &g->nodes[i];
            if (n->op_type == before && n->opset == before_opset)
                return kiln_fail(KILN_ERR_INTERNAL, "%s: node '%s' (%s): the version %d adapter changed nothing",
                                 g->path, n->name, before, v);
        }
    }
    return KILN_OK;
}
