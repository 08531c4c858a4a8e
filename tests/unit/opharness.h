/* Builds a one-node graph by hand and runs kiln's shape rule and reference
 * kernel on it (through kiln_graph_infer: inputs given with data are
 * constants, so the node is folded, i.e. run by its ref kernel). For op unit
 * tests that check a rule or kernel against values worked out by hand. */
#ifndef KILN_OPHARNESS_H
#define KILN_OPHARNESS_H

#include "ir/ir.h"

typedef struct kt_op {
    kiln_graph *g;
    kiln_node *node;
    int in[16], out[8];
} kt_op;

kt_op *kt_op_new(const char *op_type, int opset);
/* Adds an input (name "" = omitted optional input). data may be NULL (shape
 * only); otherwise it is copied. dims < 0 with a name in `sym` make a
 * symbolic dim: pass sym = NULL for none. */
void kt_op_input(kt_op *t, const char *name, kiln_dtype dt, int rank, const int64_t *dims, const void *data);
void kt_op_input_sym(kt_op *t, const char *name, kiln_dtype dt, int rank, const int64_t *dims,
                     const char *const *sym);
void kt_op_output(kt_op *t, const char *name);
void kt_op_attr_int(kt_op *t, const char *name, int64_t v);
void kt_op_attr_float(kt_op *t, const char *name, float v);
void kt_op_attr_string(kt_op *t, const char *name, const char *s);
void kt_op_attr_ints(kt_op *t, const char *name, int n, const int64_t *v);
void kt_op_attr_floats(kt_op *t, const char *name, int n, const float *v);
/* Runs inference (and the ref kernel when every input has data). */
kiln_status kt_op_run(kt_op *t);
kiln_value *kt_op_value(kt_op *t, const char *name);
void kt_op_free(kt_op *t);

#endif
