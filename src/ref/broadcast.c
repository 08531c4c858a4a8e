/* Row iteration over broadcast operands (see broadcast.h). */
#include "ref/broadcast.h"

#include <inttypes.h>
#include <string.h>

kiln_status kiln_bcast_strides(const kiln_shape *in, const kiln_shape *out, int64_t strides[KILN_MAX_RANK])
{
    if (in->rank < 0 || out->rank < 0 || in->rank > out->rank)
        return kiln_fail(KILN_ERR_SHAPE, "cannot broadcast a rank %d tensor to rank %d", in->rank, out->rank);
    int lead = out->rank - in->rank;
    int64_t s = 1;
    for (int d = out->rank - 1; d >= 0; d--) {
        int64_t od = out->d[d];
        int64_t id = d >= lead ? in->d[d - lead] : 1;
        if (od < 0 || id < 0) return kiln_fail(KILN_ERR_SHAPE, "broadcast of a shape that is not concrete");
        if (id == od) {
            strides[d] = id == 1 ? 0 : s;
        } else if (id == 1) {
            strides[d] = 0;
        } else {
            return kiln_fail(KILN_ERR_SHAPE, "dim %d of size %" PRId64 " cannot broadcast to %" PRId64, d, id, od);
        }
        s *= id;
    }
    return KILN_OK;
}

kiln_status kiln_bcast_init(kiln_bcast *b, const kiln_shape *out, int n_in, const kiln_shape *const *in)
{
    memset(b, 0, sizeof *b);
    if (n_in < 1 || n_in > KILN_BCAST_MAX_IN) return kiln_fail(KILN_ERR_INTERNAL, "kiln_bcast_init: %d inputs", n_in);
    if (!kiln_shape_known(out)) return kiln_fail(KILN_ERR_SHAPE, "broadcast output shape is not concrete");
    b->n_in = n_in;
    int64_t full[KILN_BCAST_MAX_IN][KILN_MAX_RANK];
    for (int k = 0; k < n_in; k++) {
        kiln_status st = kiln_bcast_strides(in[k], out, full[k]);
        if (st != KILN_OK) return kiln_fail_prefix(st, "input %d: ", k);
    }
    if (kiln_shape_numel(out) == 0) return KILN_OK; /* inner = rows = 0 */

    /* Merge from the innermost dim outwards into m[] (m[0] innermost). Dims of
     * size 1 carry no iteration; two dims merge when every input steps over
     * the outer one exactly as over a run of the inner one. */
    int nm = 0;
    int64_t mdim[KILN_MAX_RANK], mstr[KILN_BCAST_MAX_IN][KILN_MAX_RANK];
    for (int d = out->rank - 1; d >= 0; d--) {
        if (out->d[d] == 1) continue;
        bool merge = nm > 0;
        for (int k = 0; merge && k < n_in; k++)
            if (full[k][d] != mstr[k][nm - 1] * mdim[nm - 1]) merge = false;
        if (merge) {
            mdim[nm - 1] *= out->d[d];
            continue;
        }
        mdim[nm] = out->d[d];
        for (int k = 0; k < n_in; k++) mstr[k][nm] = full[k][d];
        nm++;
    }
    if (nm == 0) { /* a single element */
        b->inner = 1;
        b->rows = 1;
        return KILN_OK;
    }
    b->inner = mdim[0];
    for (int k = 0; k < n_in; k++) b->inner_stride[k] = mstr[k][0];
    b->rank = nm - 1;
    b->rows = 1;
    for (int j = 0; j < b->rank; j++) {
        int src = nm - 1 - j; /* outermost first */
        b->dim[j] = mdim[src];
        for (int k = 0; k < n_in; k++) b->stride[k][j] = mstr[k][src];
        b->rows *= mdim[src];
    }
    return KILN_OK;
}

bool kiln_bcast_next(kiln_bcast *b, int64_t *out_off)
{
    if (b->row >= b->rows) return false;
    if (b->row > 0) {
        for (int d = b->rank - 1; d >= 0; d--) {
            for (int k = 0; k < b->n_in; k++) b->off[k] += b->stride[k][d];
            if (++b->idx[d] < b->dim[d]) break;
            for (int k = 0; k < b->n_in; k++) b->off[k] -= b->stride[k][d] * b->dim[d];
            b->idx[d] = 0;
        }
    }
    *out_off = b->row * b->inner;
    b->row++;
    return true;
}
