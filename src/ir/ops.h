/* Shape rules, cost functions, version adapters and attribute parsers of
 * every op, by op name, declared from the op table (src/ir/ops.def). */
#ifndef KILN_IR_OPS_H
#define KILN_IR_OPS_H

#include "ir/ir.h"

/* Every op's shape rule, and the FLOP rule of those whose cost is not one
 * per output element (FL_OWN), declared from the op table (ops.def). */
#define FL_OWN(op) double kiln_flops_##op(const kiln_node *n, const kiln_value *v);
#define FL_EW(op)
#define KILN_OP(op, mi, ma, mo, mx, onnx, native, fl, flags, cuda, ad, pa) \
    kiln_status kiln_shape_##op(const kiln_node *n, kiln_value *v); fl(op)
#define KILN_OP_ADAPTED(op, onnx)
#include "ir/ops.def"
#undef KILN_OP
#undef KILN_OP_ADAPTED
#undef FL_OWN
#undef FL_EW

/* One operation per output element: elementwise ops, reductions, copies. */
double kiln_flops_elementwise(const kiln_node *n, const kiln_value *v);

/* Version adapters (src/ir/adapt_*.c): rewrite node n of an older version
 * in place into the form of a native version of its op, adding values and
 * constants to g as needed, and set n->opset to an opset at which it
 * resolves to that version. Fail naming what cannot be expressed. */
#define AD_Y(op) kiln_status kiln_adapt_##op(kiln_graph *g, kiln_node *n);
#define AD_N(op)
#define KILN_OP(op, mi, ma, mo, mx, onnx, native, fl, flags, cuda, ad, pa) ad(op)
#define KILN_OP_ADAPTED(op, onnx) AD_Y(op)
#include "ir/ops.def"
#undef KILN_OP
#undef KILN_OP_ADAPTED
#undef AD_Y
#undef AD_N

/* Attribute parsers (src/ir/params_*.c): read n's attributes once into
 * n->params, or fail (KILN_ERR_UNSUPPORTED / KILN_ERR_FORMAT) saying which
 * attribute and why. */
#define PA_Y(op) kiln_status kiln_params_##op(const kiln_node *n, kiln_params *p);
#define PA_N(op)
#define KILN_OP(op, mi, ma, mo, mx, onnx, native, fl, flags, cuda, ad, pa) pa(op)
#define KILN_OP_ADAPTED(op, onnx)
#include "ir/ops.def"
#undef KILN_OP
#undef KILN_OP_ADAPTED
#undef PA_Y
#undef PA_N

#endif
