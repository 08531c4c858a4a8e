/* Device tensor views and the strided walk every elementwise-shaped kernel
 * uses (kc_iter): dims ordered by the output's memory order, so an NHWC
 * output is written channel-fastest, and contiguous runs merged, so that a
 * dense tensor is one flat loop. */
#include <string.h>

#include "cuda/kc.h"

int64_t kc_view_numel(const kc_view *v)
{
    int64_t n = 1;
    for (int k = 0; k < v->rank; k++) n *= v->d[k];
    return n;
}

bool kc_view_contiguous(const kc_view *v)
{
    int64_t want = 1;
    for (int k = v->rank - 1; k >= 0; k--) {
        if (v->d[k] != 1 && v->s[k] != want) return false;
        want *= v->d[k];
    }
    return true;
}

void kc_view_dense(kc_view *v, void *p, kiln_dtype dt, const kiln_shape *s)
{
    memset(v, 0, sizeof *v);
    v->p = p;
    v->dt = dt;
    v->rank = s->rank < 0 ? 0 : s->rank;
    int64_t st = 1;
    for (int k = v->rank - 1; k >= 0; k--) {
        v->d[k] = s->d[k];
        v->s[k] = st;
        st *= s->d[k] > 0 ? s->d[k] : 1;
    }
}

void kc_view_nhwc(kc_view *v, void *p, kiln_dtype dt, const kiln_shape *s)
{
    kc_view_dense(v, p, dt, s);
    if (v->rank != 4) return;
    int64_t c = v->d[1] > 0 ? v->d[1] : 1, h = v->d[2] > 0 ? v->d[2] : 1, w = v->d[3] > 0 ? v->d[3] : 1;
    v->s[1] = 1;
    v->s[3] = c;
    v->s[2] = c * w;
    v->s[0] = c * w * h;
}

void kc_view_broadcast(const kc_view *in, int out_rank, const int64_t *out_d, kc_view *res)
{
    memset(res, 0, sizeof *res);
    res->p = in->p;
    res->dt = in->dt;
    res->rank = out_rank;
    int off = out_rank - in->rank;
    for (int k = 0; k < out_rank; k++) {
        res->d[k] = out_d[k];
        int j = k - off;
        if (j < 0 || in->d[j] == 1)
            res->s[k] = 0;
        else
            res->s[k] = in->s[j];
    }
}

kiln_status kc_iter_make(int n_ops, const kc_view *const *ops, kc_iter *it)
{
    memset(it, 0, sizeof *it);
    if (n_ops < 1 || n_ops > KC_MAX_OPS)
        return kiln_fail(KILN_ERR_INTERNAL, "strided kernel with %d operands (at most %d)", n_ops, KC_MAX_OPS);
    const kc_view *o = ops[0];
    for (int j = 1; j < n_ops; j++)
        if (ops[j]->rank != o->rank)
            return kiln_fail(KILN_ERR_INTERNAL, "strided kernel: operand %d has rank %d, the output %d", j,
                             ops[j]->rank, o->rank);
    it->n_ops = n_ops;
    it->n = kc_view_numel(o);
    /* dims of extent 1 are dropped; the rest are ordered by the output's
     * stride, largest first (a stable insertion sort keeps C order on ties) */
    int order[KILN_MAX_RANK], r = 0;
    for (int k = 0; k < o->rank; k++) {
        if (o->d[k] == 1) continue;
        int pos = r++;
        while (pos > 0 && o->s[order[pos - 1]] < o->s[k]) {
            order[pos] = order[pos - 1];
            pos--;
        }
        order[pos] = k;
    }
    /* merge dim k into the one before it when every operand steps through
     * both as one run */
    int m = 0;
    for (int q = 0; q < r; q++) {
        int k = order[q];
        if (m > 0) {
            bool merge = true;
            for (int j = 0; j < n_ops && merge; j++)
                merge = it->s[j][m - 1] == ops[j]->s[k] * o->d[k];
            if (merge) {
                it->d[m - 1] *= o->d[k];
                for (int j = 0; j < n_ops; j++) it->s[j][m - 1] = ops[j]->s[k];
                continue;
            }
        }
        it->d[m] = o->d[k];
        for (int j = 0; j < n_ops; j++) it->s[j][m] = ops[j]->s[k];
        m++;
    }
    if (m == 0) { /* a scalar, or all dims 1 */
        it->d[0] = 1;
        m = 1;
    }
    it->rank = m;
    return KILN_OK;
}
