/* Reference kernels of the `ref` backend, by op name declared from the op table (src/ir/ops.def). */
#ifndef KILN_REF_H
#define KILN_REF_H

#include "ir/ir.h"

#define KILN_OP(op, mi, ma, mo, mx, onnx, native, fl, flags, cuda, ad, pa) \
    kiln_status kiln_ref_##op(const kiln_node *n, kiln_value *v);
#define KILN_OP_ADAPTED(op, onnx) /* rewritten at import: no kernel */
#include "ir/ops.def"
#undef KILN_OP
#undef KILN_OP_ADAPTED

#endif
