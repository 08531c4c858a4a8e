/* Byte-moving helpers of the tensor family's reference kernels. They work by
 * element size (1, 2, 4, 8 or any other), so every op built on them runs for
 * every kiln dtype. */
#ifndef KILN_REF_STRIDED_H
#define KILN_REF_STRIDED_H

#include <stddef.h>
#include <stdint.h>

/* Most dims a strided view may have: Tile views rank r as 2r dims. */
#define KILN_STRIDED_MAX_RANK 16

/* Writes the view of `src` with `rank` dims `dims` and byte strides
 * `strides` (negative: walking backwards, 0: broadcast) into contiguous
 * `dst`, row-major. `src` points at the view's first element. */
void kiln_strided_copy(void *dst, const void *src, int rank, const int64_t *dims, const int64_t *strides,
                       size_t elem_size);

/* dst[i] = src[off[i]] for i < n, offsets in elements. */
void kiln_gather_elems(void *dst, const void *src, const int64_t *off, int64_t n, size_t elem_size);

/* Row-major element strides of dims (in elements). */
void kiln_dense_strides(int rank, const int64_t *dims, int64_t *strides);

#endif
