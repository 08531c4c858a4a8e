/* Strided copy and element gather by element size: the inner loops are
 * chosen once per row from the element size, with fixed-size memcpy that the
 * compiler turns into one load and store (and that stays correct for
 * unaligned buffers). */
#include "ref/strided.h"

#include <string.h>

void kiln_dense_strides(int rank, const int64_t *dims, int64_t *strides)
{
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        strides[i] = s;
        s *= dims[i];
    }
}

/* One row of n elements, `stride` bytes apart in src, contiguous in dst. */
#define ROW_LOOP(SIZE)                                                         \
    for (int64_t i = 0; i < n; i++) memcpy(d + i * (SIZE), s + i * stride, (SIZE))

static void copy_row(char *d, const char *s, int64_t n, int64_t stride, size_t es)
{
    if (stride == (int64_t)es) {
        memcpy(d, s, (size_t)n * es);
        return;
    }
    switch (es) {
    case 1: ROW_LOOP(1); break;
    case 2: ROW_LOOP(2); break;
    case 4: ROW_LOOP(4); break;
    case 8: ROW_LOOP(8); break;
    default:
        for (int64_t i = 0; i < n; i++) memcpy(d + i * (int64_t)es, s + i * stride, es);
    }
}

void kiln_strided_copy(void *dst, const void *src, int rank, const int64_t *dims, const int64_t *strides,
                       size_t es)
{
    /* Drop dims of 1 and merge dims that are contiguous with the next, so
     * that most views become a few long rows. */
    int64_t d[KILN_STRIDED_MAX_RANK], st[KILN_STRIDED_MAX_RANK];
    int r = 0;
    for (int k = 0; k < rank; k++) {
        if (dims[k] == 0) return;
        if (dims[k] == 1) continue;
        if (r > 0 && st[r - 1] == strides[k] * dims[k]) {
            d[r - 1] *= dims[k];
            st[r - 1] = strides[k];
        } else {
            d[r] = dims[k];
            st[r] = strides[k];
            r++;
        }
    }
    char *out = dst;
    const char *in = src;
    if (r == 0) {
        memcpy(out, in, es);
        return;
    }
    int64_t n = d[r - 1], row_stride = st[r - 1], row_bytes = n * (int64_t)es;
    int64_t idx[KILN_STRIDED_MAX_RANK] = {0};
    int64_t off = 0;
    for (;;) {
        copy_row(out, in + off, n, row_stride, es);
        out += row_bytes;
        /* odometer over the outer dims */
        int k = r - 2;
        for (; k >= 0; k--) {
            off += st[k];
            if (++idx[k] < d[k]) break;
            off -= st[k] * d[k];
            idx[k] = 0;
        }
        if (k < 0) return;
    }
}

#define GATHER_LOOP(SIZE)                                                                  \
    for (int64_t i = 0; i < n; i++) memcpy(d + i * (SIZE), s + off[i] * (SIZE), (SIZE))

void kiln_gather_elems(void *dst, const void *src, const int64_t *off, int64_t n, size_t es)
{
    char *d = dst;
    const char *s = src;
    switch (es) {
    case 1: GATHER_LOOP(1); break;
    case 2: GATHER_LOOP(2); break;
    case 4: GATHER_LOOP(4); break;
    case 8: GATHER_LOOP(8); break;
    default:
        for (int64_t i = 0; i < n; i++) memcpy(d + i * (int64_t)es, s + off[i] * (int64_t)es, es);
    }
}
