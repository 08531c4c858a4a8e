/* Helpers the version adapters (src/ir/adapt_*.c) share to rewrite a node
 * in place at import: new values and constants, inputs, attributes, helper
 * nodes, and what can be told about a value before shape inference runs
 * (adapters run before kiln_graph_sort and kiln_graph_infer).
 *
 * Nodes live in g->nodes, which moves when a node is added: adapters keep
 * the node's index (kiln_adapt_index) and fetch the pointer again after
 * kiln_adapt_node. Values are addressed by index for the same reason. */
#ifndef KILN_IR_ADAPT_UTIL_H
#define KILN_IR_ADAPT_UTIL_H

#include "ir/ops.h"

static inline int kiln_adapt_index(const kiln_graph *g, const kiln_node *n) { return (int)(n - g->nodes); }

/* A new value named "<node name>/<what>" (made unique), without dtype or
 * shape; -1 on OOM. */
int kiln_adapt_value(kiln_graph *g, int node, const char *what);
/* New constant values (KILN_V_INIT, data in g's arena); -1 on OOM. */
int kiln_adapt_const_i64(kiln_graph *g, int node, const char *what, const int64_t *x, int cnt); /* 1-D i64 */
int kiln_adapt_const_f32(kiln_graph *g, int node, const char *what, const float *x, int cnt);   /* 1-D f32 */
int kiln_adapt_const_scalar(kiln_graph *g, int node, const char *what, kiln_dtype dt, double x); /* 0-D */

/* Replaces n's inputs (or outputs) by x[0..cnt) (-1: an omitted optional one). */
kiln_status kiln_adapt_set_inputs(kiln_graph *g, kiln_node *n, const int *x, int cnt);
kiln_status kiln_adapt_set_outputs(kiln_graph *g, kiln_node *n, const int *x, int cnt);
/* Moves n's INTS attribute `name` into input `pos` as a 1-D i64 constant
 * (inputs before it that n lacks become omitted ones) and drops the
 * attribute; nothing when the attribute is absent, unless `required`
 * (then it fails saying so). */
kiln_status kiln_adapt_ints_to_input(kiln_graph *g, kiln_node *n, const char *name, int pos, bool required);
/* Attributes: removed (nothing when absent), or set (replaced or added). */
void kiln_adapt_drop_attr(kiln_node *n, const char *name);
kiln_status kiln_adapt_attr_int(kiln_graph *g, kiln_node *n, const char *name, int64_t x);
kiln_status kiln_adapt_attr_string(kiln_graph *g, kiln_node *n, const char *name, const char *s);

/* Appends a node op_type (default domain, resolved at `opset`) named
 * "<node name>/<what>" with the given inputs and outputs; its index, or -1
 * on OOM. g->nodes may move. */
int kiln_adapt_node(kiln_graph *g, int node, const char *op_type, int opset, const char *what, const int *ins,
                    int nin, const int *outs, int nout);

/* The contents of value x known at import: an initializer, or the tensor
 * of a Constant node (attribute 'value') producing it; NULL otherwise. */
const kiln_value *kiln_adapt_known(const kiln_graph *g, int x);
/* Reads a known 1-D/0-D value of at most max elements as doubles; false if
 * it is not known or is longer. */
bool kiln_adapt_known_f64(const kiln_graph *g, int x, double *out, int max, int *cnt);
/* Element type of value x as far as the graph tells before inference (an
 * input's or constant's, else followed through its producers); undefined
 * when it cannot be told. */
kiln_dtype kiln_adapt_dtype(const kiln_graph *g, int x);
/* Rank of value x when it can be told before inference; -1 otherwise. */
int kiln_adapt_rank(const kiln_graph *g, int x);
/* Whether output k of node is consumed by another node or is a graph output. */
bool kiln_adapt_output_used(const kiln_graph *g, const kiln_node *n, int k);

#endif
