/* The op registry: the IR's view of the op table (src/ir/ops.def), with
 * each op's ONNX versions, shape rule, reference kernel, cost, version
 * adapter and attribute parser, found under its own name. */
#include "ir/ops.h"
#include "ref/ref.h"

#include <stdio.h>
#include <string.h>

#define V(...) {__VA_ARGS__}
#define FL_OWN(op) kiln_flops_##op
#define FL_EW(op) kiln_flops_elementwise
#define AD_Y(op) kiln_adapt_##op
#define AD_N(op) NULL
#define PA_Y(op) kiln_params_##op
#define PA_N(op) NULL
static const kiln_op_def OPS[] = {
#define KILN_OP(op, mi, ma, mo, mx, onnx, native, fl, fla, cuda, ad, pa) \
    {#op, onnx, native, kiln_shape_##op, kiln_ref_##op, fl(op), ad(op), pa(op), fla, mi, ma, mo, mx},
/* no native version, shape rule or kernel: only the adapter */
#define KILN_OP_ADAPTED(op, onnx) {#op, onnx, {0}, NULL, NULL, NULL, kiln_adapt_##op, NULL, 0, 0, 0, 0, 0},
#include "ir/ops.def"
#undef KILN_OP
#undef KILN_OP_ADAPTED
};
#undef V
#undef FL_OWN
#undef FL_EW
#undef AD_Y
#undef AD_N
#undef PA_Y
#undef PA_N

#define N_OPS ((int)(sizeof OPS / sizeof OPS[0]))

int kiln_op_count(void) { return N_OPS; }
const kiln_op_def *kiln_op_at(int i) { return i >= 0 && i < N_OPS ? &OPS[i] : NULL; }

const kiln_op_def *kiln_op_find(const char *domain, const char *op_type)
{
    if (domain && domain[0] && strcmp(domain, "ai.onnx")) return NULL;
    for (int i = 0; i < N_OPS; i++)
        if (!strcmp(OPS[i].name, op_type)) return &OPS[i];
    return NULL;
}

void kiln_op_resolve(kiln_node *n)
{
    static _Thread_local char why[160];
    const kiln_op_def *op = kiln_op_find(n->domain, n->op_type);
    n->op = op;
    n->version = 0;
    n->unsupported = NULL;
    if (!op) {
        if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx"))
            n->unsupported = "op of a domain kiln does not implement";
        else
            n->unsupported = "op kiln does not implement";
        return;
    }
    for (int i = 0; i < KILN_OP_MAX_VERSIONS && op->all_versions[i]; i++)
        if (op->all_versions[i] <= n->opset) n->version = op->all_versions[i];
    if (!n->version) {
        n->unsupported = "op version older than any kiln implements";
        return;
    }
    bool have = false;
    for (int i = 0; i < KILN_OP_MAX_VERSIONS && op->versions[i]; i++)
        if (op->versions[i] == n->version) have = true;
    if (!have) {
        snprintf(why, sizeof why, "version %d of %s (the model's opset %d) is not implemented%s", n->version,
                 op->name, n->opset, op->adapt ? "" : " and has no adapter to a newer form");
        n->unsupported = why; /* copied by the caller into the graph's arena */
        return;
    }
    if (n->n_inputs < op->min_in || n->n_inputs > op->max_in || n->n_outputs < op->min_out ||
        n->n_outputs > op->max_out) {
        snprintf(why, sizeof why, "has %d inputs and %d outputs; ONNX's %s takes %d to %d and %d to %d", n->n_inputs,
                 n->n_outputs, op->name, op->min_in, op->max_in, op->min_out, op->max_out);
        n->unsupported = why;
        return;
    }
    for (int i = 0; i < op->min_in; i++)
        if (n->inputs[i] < 0) {
            snprintf(why, sizeof why, "required input #%d is empty", i);
            n->unsupported = why;
            return;
        }
    for (int i = 0; i < op->min_out; i++)
        if (n->outputs[i] < 0) {
            snprintf(why, sizeof why, "required output #%d is empty", i);
            n->unsupported = why;
            return;
        }
    memset(&n->params, 0, sizeof n->params);
    if (op->params && op->params(n, &n->params) != KILN_OK) {
        snprintf(why, sizeof why, "%s", kiln_last_error());
        n->unsupported = why;
    }
}
