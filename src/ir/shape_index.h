/* Helpers shared by the index family's parsers (src/ir/params_index.c),
 * shape rules (src/ir/shape_index.c), reference kernels (src/ref/index.c,
 * einsum.c) and cuda kernels (src/cuda/index.cu, einsum.cu): all must read
 * an Einsum equation the same way. The other ops' attributes are parsed
 * once into n->params (src/ir/params.h). */
#ifndef KILN_IR_SHAPE_INDEX_H
#define KILN_IR_SHAPE_INDEX_H

#include "ir/ir.h"

/* Most operands and distinct index dims (labels plus the dims '...' stands
 * for) an Einsum kiln runs may have. */
#define KILN_EINSUM_MAX_IN 8
#define KILN_EINSUM_MAX_DIMS 24
/* most letters in one term */
#define KILN_EINSUM_TERM_MAX 64

/* One term of an equation: its letters, and where '...' stands. */
typedef struct kiln_einsum_term {
    int n;          /* letters */
    int ell;        /* index among the letters where '...' stands, -1: none */
    char lab[KILN_EINSUM_TERM_MAX];
} kiln_einsum_term;

/* Splits an Einsum equation as numpy.einsum reads it (letters a-z A-Z,
 * '...', spaces ignored) into the n_in (<= KILN_EINSUM_MAX_IN) input
 * terms and the output term: with "->" what follows; without, '...' then
 * the letters that occur once, in ASCII order. KILN_ERR_SHAPE for a
 * malformed equation or one of another number of terms, KILN_ERR_UNSUPPORTED
 * beyond kiln's limits. (src/ir/params_index.c) */
kiln_status kiln_einsum_terms(const char *equation, int n_in, kiln_einsum_term *in, kiln_einsum_term *out,
                              bool *explicit_out);

/* An Einsum equation resolved against its operands' ranks and dims.
 * Dims 0..out_rank-1 are the output's, in its order; dims out_rank..n_dims-1
 * are summed over. Input i's axis a runs along dim map[i][a]: a label
 * repeated within one operand maps two axes to one dim (a diagonal); the
 * axes '...' stands for map to the broadcast dims (numpy: right-aligned).
 * dim[] is each dim's extent: the operands' axes broadcast (an extent of 1
 * stretches), concrete where any operand's is, else a symbol all operands
 * agree on, else KILN_DIM_UNKNOWN. */
typedef struct kiln_einsum {
    int n_in, n_dims, out_rank;
    int64_t dim[KILN_EINSUM_MAX_DIMS];
    int rank[KILN_EINSUM_MAX_IN];
    signed char map[KILN_EINSUM_MAX_IN][KILN_MAX_RANK];
} kiln_einsum;

/* Resolves n's equation (n->params.einsum, checked by the parser) against
 * its inputs' shapes (ranks known). KILN_ERR_SHAPE for dims that disagree,
 * KILN_ERR_UNSUPPORTED beyond kiln's limits. */
kiln_status kiln_einsum_plan(const kiln_node *n, const kiln_value *v, kiln_einsum *e);

/* OneHot's depth input as an int64 (floats truncated, as ONNX casts them);
 * the input must have data with one element. */
kiln_status kiln_onehot_depth(const kiln_node *n, const kiln_value *v, int64_t *depth);

#endif
