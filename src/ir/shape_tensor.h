/* Helpers shared by the tensor and index families' shape rules
 * (src/ir/shape_tensor.c, shape_index.c) and reference kernels (src/ref/slice.c ...): both must agree on exactly
 * which elements an op selects. */
#ifndef KILN_IR_SHAPE_TENSOR_H
#define KILN_IR_SHAPE_TENSOR_H

#include <string.h>

#include "ir/ir.h"

/* Sets output i's dtype and shape (an omitted output is left alone). */
static inline kiln_status set_out(const kiln_node *n, kiln_value *v, int i, kiln_dtype dt, const kiln_shape *s)
{
    kiln_value *o = kiln_out(n, v, i);
    if (!o) return KILN_OK;
    o->dtype = dt;
    o->shape = *s;
    return KILN_OK;
}

/* (no designated initializers: the cuda backend's C++ includes this too) */
static inline kiln_shape unknown_rank(void)
{
    kiln_shape s;
    memset(&s, 0, sizeof s);
    s.rank = -1;
    return s;
}

/* A shape of known rank whose dims are all unknown. */
static inline kiln_shape unknown_dims(int rank)
{
    kiln_shape s;
    memset(&s, 0, sizeof s);
    s.rank = rank;
    for (int i = 0; i < rank; i++) s.d[i] = KILN_DIM_UNKNOWN;
    return s;
}

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
