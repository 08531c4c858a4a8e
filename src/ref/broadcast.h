/* Row iteration over numpy-broadcast operands, for elementwise kernels of
 * any family.
 *
 * The output (dense, C order) is walked row by row. Before walking, dims of
 * size 1 are dropped and neighbouring dims are merged wherever every input
 * is contiguous across them (or broadcast across both), so that the common
 * cases collapse into one long row: equal shapes or a scalar operand give a
 * single row of numel elements; [N,C,H,W] + [1,C,1,1] gives N*C rows of H*W.
 * Along a row each input advances by 0 (broadcast) or 1 element, so a kernel
 * only needs a loop for those two strides:
 *
 *     kiln_bcast it;
 *     const kiln_shape *in[2] = {&a->shape, &b->shape};
 *     if ((st = kiln_bcast_init(&it, &y->shape, 2, in)) != KILN_OK) return st;
 *     int64_t yo;
 *     while (kiln_bcast_next(&it, &yo))
 *         add_row(y + yo, a + it.off[0], it.inner_stride[0], b + it.off[1], it.inner_stride[1], it.inner);
 */
#ifndef KILN_REF_BROADCAST_H
#define KILN_REF_BROADCAST_H

#include "ir/ir.h"

#define KILN_BCAST_MAX_IN 4

typedef struct kiln_bcast {
    int n_in;
    int rank;                  /* outer dims after dropping 1s and merging (the row dim excluded) */
    int64_t dim[KILN_MAX_RANK];
    int64_t stride[KILN_BCAST_MAX_IN][KILN_MAX_RANK]; /* element strides of the outer dims */
    int64_t inner;             /* elements per row (0: nothing to do) */
    int64_t inner_stride[KILN_BCAST_MAX_IN]; /* 0 or 1 */
    int64_t rows;              /* rows in all */
    /* iteration state, read after kiln_bcast_next */
    int64_t off[KILN_BCAST_MAX_IN]; /* element offset of the current row in each input */
    int64_t row;               /* rows handed out so far */
    int64_t idx[KILN_MAX_RANK];
} kiln_bcast;

/* Prepares iteration of `out` from n_in (<= KILN_BCAST_MAX_IN) inputs of the
 * given shapes, each broadcastable to `out` (ONNX Broadcasting.md: aligned on
 * the right, a dim of 1 or a missing dim stretches). Shapes must be concrete.
 * Fails with KILN_ERR_SHAPE naming the input position when one does not fit. */
kiln_status kiln_bcast_init(kiln_bcast *b, const kiln_shape *out, int n_in, const kiln_shape *const *in);

/* Moves to the next row: sets b->off[] and *out_off (element offset of the
 * row in the output). Returns false after the last row. */
bool kiln_bcast_next(kiln_bcast *b, int64_t *out_off);

/* Per-dim element strides of a dense tensor of shape `in` read as the
 * broadcast shape `out` (0 where `in` stretches). For kernels that want
 * general index arithmetic (Expand, gathers) rather than rows. Fails like
 * kiln_bcast_init. */
kiln_status kiln_bcast_strides(const kiln_shape *in, const kiln_shape *out, int64_t strides[KILN_MAX_RANK]);

#endif
