/* Reference kernel: Pad (opsets 13, 18 with the axes input, 19 with wrap,
 * 21+ for more element types).
 *
 * Pad copies elements and never looks at their values, so one kernel serves
 * every dtype: each output axis gets a table of source indices (-1 for the
 * constant), built per mode:
 *   constant  outside: constant_value (0 when omitted)
 *   edge      outside: the nearest edge element
 *   reflect   mirrored without repeating the edge (numpy 'reflect'), and
 *             periodically again for pads longer than the axis
 *   wrap      periodic (numpy 'wrap')
 * Negative pads crop (ONNX: "can be negative to remove"): an axis is cropped
 * first and its positive pads then extend what is left, as onnxruntime does. */
#include "ref/ref.h"

#include <stdlib.h>
#include <string.h>

/* the mode, parsed once (n->params.pad, src/ir/params_resize.c) */
typedef kiln_pad_mode pad_mode;
#define PAD_CONSTANT KILN_PAD_CONSTANT
#define PAD_REFLECT KILN_PAD_REFLECT
#define PAD_EDGE KILN_PAD_EDGE
#define PAD_WRAP KILN_PAD_WRAP

static int64_t mod_pos(int64_t a, int64_t m)
{
    int64_t r = a % m;
    return r < 0 ? r + m : r;
}

/* Source index along an axis for output index o; -1 for the constant. */
static void axis_table(pad_mode mode, int64_t d, int64_t b, int64_t e, int64_t out, int64_t *tab)
{
    int64_t lo = b < 0 ? -b : 0, kept = d - lo - (e < 0 ? -e : 0), pb = b > 0 ? b : 0;
    for (int64_t o = 0; o < out; o++) {
        int64_t j = o - pb;
        if (j >= 0 && j < kept) {
            tab[o] = lo + j;
            continue;
        }
        switch (mode) {
        case PAD_CONSTANT: tab[o] = -1; continue;
        case PAD_EDGE: j = j < 0 ? 0 : kept - 1; break;
        case PAD_WRAP: j = mod_pos(j, kept); break;
        case PAD_REFLECT:
            if (kept == 1) {
                j = 0;
            } else {
                int64_t period = 2 * (kept - 1);
                j = mod_pos(j, period);
                if (j >= kept) j = period - j;
            }
            break;
        }
        tab[o] = lo + j;
    }
}

kiln_status kiln_ref_Pad(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0), *pads = kiln_in(n, v, 1), *cv = kiln_in(n, v, 2), *axv = kiln_in(n, v, 3);
    kiln_value *y = kiln_out(n, v, 0);
    pad_mode mode = n->params.pad.mode;

    int r = x->shape.rank, axes[KILN_MAX_RANK], k = r;
    if (axv) {
        int64_t ax[KILN_MAX_RANK];
        kiln_status st = kiln_value_ints(axv, ax, KILN_MAX_RANK, &k);
        if (st != KILN_OK) return st;
        for (int i = 0; i < k; i++)
            if (kiln_axis(ax[i], r, &axes[i]) != KILN_OK)
                return kiln_fail(KILN_ERR_SHAPE, "input '%s' axis %lld is out of range for rank %d", axv->name,
                                 (long long)ax[i], r);
    } else {
        for (int i = 0; i < r; i++) axes[i] = i;
    }
    int64_t pv[2 * KILN_MAX_RANK], b[KILN_MAX_RANK] = {0}, e[KILN_MAX_RANK] = {0};
    int cnt;
    kiln_status st = kiln_value_ints(pads, pv, 2 * KILN_MAX_RANK, &cnt);
    if (st != KILN_OK) return st;
    if (cnt != 2 * k) return kiln_fail(KILN_ERR_SHAPE, "input '%s' has %d elements, expected %d", pads->name, cnt, 2 * k);
    for (int i = 0; i < k; i++) b[axes[i]] = pv[i], e[axes[i]] = pv[k + i];

    size_t es = kiln_dtype_size(x->dtype);
    unsigned char fill[8] = {0}; /* all-zero bytes are 0 in every dtype */
    if (cv && kiln_shape_numel(&cv->shape) >= 1) memcpy(fill, cv->data, es);
    int64_t total = kiln_shape_numel(&y->shape);
    if (total == 0) return KILN_OK;
    if (r == 0) {
        memcpy(y->data, x->data, es);
        return KILN_OK;
    }

    int64_t *tab[KILN_MAX_RANK] = {0};
    for (int a = 0; a < r && st == KILN_OK; a++) {
        int64_t d = x->shape.d[a], out = y->shape.d[a];
        int64_t kept = d - (b[a] < 0 ? -b[a] : 0) - (e[a] < 0 ? -e[a] : 0);
        if (kept < 0 || out != d + b[a] + e[a] || (kept == 0 && mode != PAD_CONSTANT))
            st = kiln_fail(KILN_ERR_SHAPE, "input '%s' pads [%lld, %lld] do not fit axis %d of '%s' (%lld)", pads->name,
                           (long long)b[a], (long long)e[a], a, x->name, (long long)d);
        else if (!(tab[a] = kiln_xmalloc((size_t)(out + 1) * sizeof(int64_t))))
            st = KILN_ERR_OUT_OF_MEMORY;
        else
            axis_table(mode, d, b[a], e[a], out, tab[a]);
    }
    if (st == KILN_OK) {
        /* rows along the last axis: its in-range stretch is one memcpy */
        int last = r - 1;
        int64_t stride[KILN_MAX_RANK], idx[KILN_MAX_RANK] = {0}, s = 1;
        for (int a = last; a >= 0; a--) stride[a] = s, s *= x->shape.d[a];
        int64_t w = y->shape.d[last], pb = b[last] > 0 ? b[last] : 0;
        int64_t run = w - pb - (e[last] > 0 ? e[last] : 0); /* elements copied straight */
        const unsigned char *src = x->data;
        unsigned char *dst = y->data;
        for (int64_t row = 0; row < total / w; row++) {
            unsigned char *dr = dst + (size_t)(row * w) * es;
            int64_t off = 0;
            bool constant = false;
            for (int a = 0; a < last; a++) {
                int64_t j = tab[a][idx[a]];
                if (j < 0) constant = true;
                else off += j * stride[a];
            }
            if (constant) {
                for (int64_t o = 0; o < w; o++) memcpy(dr + (size_t)o * es, fill, es);
            } else {
                const unsigned char *sr = src + (size_t)off * es;
                for (int64_t o = 0; o < w; o++) {
                    if (o == pb && run > 0) {
                        memcpy(dr + (size_t)o * es, sr + (size_t)tab[last][o] * es, (size_t)run * es);
                        o += run - 1;
                        continue;
                    }
                    int64_t j = tab[last][o];
                    memcpy(dr + (size_t)o * es, j < 0 ? fill : sr + (size_t)j * es, es);
                }
            }
            for (int a = last - 1; a >= 0; a--) {
                if (++idx[a] < y->shape.d[a]) break;
                idx[a] = 0;
            }
        }
    }
    for (int a = 0; a < r; a++) free(tab[a]);
    return st;
}
