/* Helpers shared by the tensor family's shape rules (src/ir/shape_tensor.c)
 * and reference kernels (src/ref/slice.c ...): both must agree on exactly
 * which elements an op selects. */
#ifndef KILN_IR_SHAPE_TENSOR_H
#define KILN_IR_SHAPE_TENSOR_H

#include "ir/ir.h"

/* Resolves Slice-13's starts/ends/axes/steps (inputs 1..4, which must have
 * data) against the input's shape into, per axis of the input: the first
 * element `start`, the `step`, and the element `count` (unsliced axes get
 * 0, 1, dim). For an axis whose dim is not concrete, `count` is the dim
 * itself when the slice provably covers the whole axis in order, else
 * KILN_DIM_UNKNOWN, and `start` is meaningless. */
kiln_status kiln_slice_resolve(const kiln_node *n, kiln_value *v, int64_t start[KILN_MAX_RANK],
                               int64_t step[KILN_MAX_RANK], int64_t count[KILN_MAX_RANK]);

/* The dims [*start, *end) of a rank-`rank` input that Shape (15: attributes
 * start/end, negative counting from the back, clamped to [0, rank]) returns. */
void kiln_shape_op_range(const kiln_node *n, int rank, int *start, int *end);

#endif
