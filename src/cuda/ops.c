/* The cuda backend's op table, made from the op table's cuda column
 * (src/ir/ops.def): every kernel kiln_cuda_<Op> by op name, with its
 * scratch-size function and whether it takes any strides (so that NHWC
 * tensors reach it without a layout change), the ops the builder lowers
 * into other steps, those computed on the host, and those cuda does not run
 * (with the reason). Conv, BatchNormalization and the float elementwise ops
 * are normally lowered by the builder into fused steps (src/builder/lower.c);
 * their kernels serve the cases it does not fuse (non-constant weights,
 * integer tensors). A CU_K row whose kernel is missing does not link. */
#include <string.h>

#include "cuda/kc.h"

#define CU_NHWC KC_OP_NHWC
#define CU_ALIAS KC_OP_ALIAS

/* A cuda column expands to (kind, flags, why); ROW picks by kind. The
 * indirection through ROW_ lets the column expand before it is split. */
#define CU_K(f) K, f, NULL
#define CU_KW(f) KW, f, NULL
#define CU_LOWERED LOWERED, 0, NULL
#define CU_HOST HOST, KC_OP_HOST_ONLY, NULL
#define CU_NONE(why) NONE, 0, why
#define ROW_(...) ROW_I(__VA_ARGS__)
#define ROW_I(kind, f, why, op) ROW_##kind(op, f, why)

/* the kernels and scratch functions the table names */
#define ROW_K(op, f, why) kiln_status kiln_cuda_##op(const kc_launch *L);
#define ROW_KW(op, f, why) ROW_K(op, f, why) size_t kiln_cuda_##op##_ws(const kc_launch *L);
#define ROW_LOWERED(op, f, why)
#define ROW_HOST(op, f, why)
#define ROW_NONE(op, f, why)
#define KILN_OP(op, mi, ma, mo, mx, onnx, native, fl, flags, cuda, ad, pa) ROW_(cuda, op)
#define KILN_OP_ADAPTED(op, onnx) /* rewritten at import: never reaches a backend */
#include "ir/ops.def"
#undef KILN_OP
#undef KILN_OP_ADAPTED
#undef ROW_K
#undef ROW_KW
#undef ROW_LOWERED
#undef ROW_HOST
#undef ROW_NONE

#define ROW_K(op, f, why) {#op, KC_KERNEL, kiln_cuda_##op, NULL, f, NULL},
#define ROW_KW(op, f, why) {#op, KC_KERNEL, kiln_cuda_##op, kiln_cuda_##op##_ws, f, NULL},
#define ROW_LOWERED(op, f, why) {#op, KC_LOWERED, NULL, NULL, f, NULL},
#define ROW_HOST(op, f, why) {#op, KC_HOST, NULL, NULL, f, NULL},
#define ROW_NONE(op, f, why) {#op, KC_NONE, NULL, NULL, f, why},
static const kc_op OPS[] = {
#define KILN_OP(op, mi, ma, mo, mx, onnx, native, fl, flags, cuda, ad, pa) ROW_(cuda, op)
#define KILN_OP_ADAPTED(op, onnx) /* rewritten at import: never reaches a backend */
#include "ir/ops.def"
#undef KILN_OP
#undef KILN_OP_ADAPTED
};

const kc_op *kc_op_find(const char *op_type)
{
    for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++)
        if (!strcmp(OPS[i].name, op_type)) return &OPS[i];
    return NULL;
}

const kc_op *kc_kernel_find(const char *op_type)
{
    const kc_op *op = kc_op_find(op_type);
    return op && op->kind == KC_KERNEL ? op : NULL;
}
