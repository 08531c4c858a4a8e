/* Reference kernel: TopK (opset 11 and 24: K as an input tensor).
 *
 * Each slice along `axis` is sorted by a stable merge sort on its indices,
 * so equal values keep ascending index order: the ONNX spec asks that of
 * ties ("the element with the lower index will appear first"). Keys are
 * doubles for float dtypes and int64 for integers (exact). sorted=0 leaves
 * the order unspecified in ONNX; kiln returns the sorted order then too. */
#include "ref/ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct topk_keys {
    const double *f; /* float dtypes */
    const int64_t *i; /* integer dtypes */
    bool largest;
} topk_keys;

/* Does element a come strictly before b? NaN ranks above every number (as
 * in numpy's sort), so it comes first for largest=1 and last otherwise. */
static bool before(const topk_keys *k, int64_t a, int64_t b)
{
    if (k->f) {
        double x = k->f[a], y = k->f[b];
        if (isnan(x) || isnan(y)) return k->largest ? isnan(x) && !isnan(y) : isnan(y) && !isnan(x);
        return k->largest ? x > y : x < y;
    }
    return k->largest ? k->i[a] > k->i[b] : k->i[a] < k->i[b];
}

/* stable: on a tie the element of the left run (lower index) goes first */
static void merge_sort(const topk_keys *k, int64_t *a, int64_t *tmp, int64_t n)
{
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi) tmp[o++] = before(k, a[j], a[i]) ? a[j++] : a[i++];
            while (i < mid) tmp[o++] = a[i++];
            while (j < hi) tmp[o++] = a[j++];
        }
        memcpy(a, tmp, (size_t)n * sizeof *a);
    }
}

static bool is_float(kiln_dtype t) { return t == KILN_F32 || t == KILN_F64 || t == KILN_F16 || t == KILN_BF16; }

/* Copies one slice's keys (stride `inner` in x) into key[0..len). */
static void gather_keys(kiln_dtype t, const void *x, int64_t base, int64_t len, int64_t inner, double *kf,
                        int64_t *ki)
{
    switch (t) {
    case KILN_F32:
        for (int64_t j = 0; j < len; j++) kf[j] = ((const float *)x)[base + j * inner];
        break;
    case KILN_F64:
        for (int64_t j = 0; j < len; j++) kf[j] = ((const double *)x)[base + j * inner];
        break;
    case KILN_F16:
        for (int64_t j = 0; j < len; j++) kf[j] = kiln_f16_to_f32(((const uint16_t *)x)[base + j * inner]);
        break;
    case KILN_BF16:
        for (int64_t j = 0; j < len; j++) kf[j] = kiln_bf16_to_f32(((const uint16_t *)x)[base + j * inner]);
        break;
    case KILN_I64:
        for (int64_t j = 0; j < len; j++) ki[j] = ((const int64_t *)x)[base + j * inner];
        break;
    case KILN_I32:
        for (int64_t j = 0; j < len; j++) ki[j] = ((const int32_t *)x)[base + j * inner];
        break;
    case KILN_I8:
        for (int64_t j = 0; j < len; j++) ki[j] = ((const int8_t *)x)[base + j * inner];
        break;
    case KILN_U8:
        for (int64_t j = 0; j < len; j++) ki[j] = ((const uint8_t *)x)[base + j * inner];
        break;
    default: break;
    }
}

kiln_status kiln_ref_TopK(const kiln_node *n, kiln_value *v)
{
    kiln_value *x = kiln_in(n, v, 0), *kv = kiln_in(n, v, 1);
    kiln_value *yv = kiln_out(n, v, 0), *yi = kiln_out(n, v, 1);
    int axis, cnt;
    int64_t k;
    kiln_status st = kiln_axis(n->params.topk.axis, x->shape.rank, &axis);
    if (st != KILN_OK) return st;
    if ((st = kiln_value_ints(kv, &k, 1, &cnt)) != KILN_OK) return st;
    int64_t outer = 1, len = x->shape.d[axis], inner = 1;
    if (cnt != 1 || k < 0 || k > len)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "input '%s' (K) must be one value in [0, %lld]", kv->name,
                         (long long)len);
    for (int i = 0; i < axis; i++) outer *= x->shape.d[i];
    for (int i = axis + 1; i < x->shape.rank; i++) inner *= x->shape.d[i];
    if (k == 0 || outer * inner == 0) return KILN_OK;
    bool fl = is_float(x->dtype);
    size_t esz = kiln_dtype_size(x->dtype);
    double *kf = fl ? malloc((size_t)len * sizeof(double)) : NULL;
    int64_t *ki = fl ? NULL : malloc((size_t)len * sizeof(int64_t));
    int64_t *order = malloc((size_t)len * sizeof(int64_t)), *tmp = malloc((size_t)len * sizeof(int64_t));
    if ((!kf && !ki) || !order || !tmp) {
        free(kf), free(ki), free(order), free(tmp);
        return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of memory in TopK of '%s'", x->name);
    }
    topk_keys keys = {.f = kf, .i = ki, .largest = n->params.topk.largest};
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * len * inner + i, obase = o * k * inner + i;
            gather_keys(x->dtype, x->data, base, len, inner, kf, ki);
            for (int64_t j = 0; j < len; j++) order[j] = j;
            merge_sort(&keys, order, tmp, len);
            for (int64_t j = 0; j < k; j++) {
                int64_t src = base + order[j] * inner, dst = obase + j * inner;
                /* values are copied bit for bit, not through the keys */
                if (yv) memcpy((char *)yv->data + (size_t)dst * esz, (const char *)x->data + (size_t)src * esz, esz);
                if (yi) ((int64_t *)yi->data)[dst] = order[j];
            }
        }
    free(kf), free(ki), free(order), free(tmp);
    return KILN_OK;
}
