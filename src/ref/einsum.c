/* Reference kernel of Einsum (ONNX Einsum-12, read as numpy.einsum reads
 * the equation: src/ir/shape_index.c resolves it into index dims).
 *
 * Every output element is the sum, over the summed dims, of the product
 * of the operands' elements at those coordinates. An operand's element
 * offset is sum(coordinate x stride) over the index dims, where its stride
 * along a dim adds up the strides of all its axes on that dim (a repeated
 * letter walks the diagonal) and is 0 along dims it lacks or spans with
 * extent 1 (broadcast). Float dtypes compute in double, integers in
 * wrapping 64-bit arithmetic, and the result is stored once. */
#include "ref/ref.h"
#include "ref/strided.h"
#include "ir/shape_index.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void store_i64(kiln_dtype t, void *p, int64_t i, int64_t v)
{
    switch (t) {
    case KILN_I64: ((int64_t *)p)[i] = v; break;
    case KILN_I32: ((int32_t *)p)[i] = (int32_t)(uint32_t)(uint64_t)v; break;
    case KILN_I8: ((int8_t *)p)[i] = (int8_t)(uint8_t)(uint64_t)v; break;
    case KILN_U8: ((uint8_t *)p)[i] = (uint8_t)(uint64_t)v; break;
    default: kiln_store_f64(t, p, i, (double)v); break;
    }
}

kiln_status kiln_ref_Einsum(const kiln_node *n, kiln_value *v)
{
    kiln_value *o = kiln_out(n, v, 0);
    kiln_einsum e;
    kiln_status st = kiln_einsum_plan(n, v, &e);
    if (st != KILN_OK) return st;
    int ni = e.n_in, nd = e.n_dims, ro = e.out_rank;
    if (o->shape.rank != ro) return kiln_fail(KILN_ERR_INTERNAL, "Einsum: output rank %d, equation gives %d", o->shape.rank, ro);
    int64_t out_n = 1, sum_n = 1;
    for (int d = 0; d < nd; d++) {
        if (d < ro && o->shape.d[d] != e.dim[d])
            return kiln_fail(KILN_ERR_INTERNAL, "Einsum: output dim %d is %" PRId64 ", equation gives %" PRId64, d,
                             o->shape.d[d], e.dim[d]);
        *(d < ro ? &out_n : &sum_n) *= e.dim[d];
    }
    if (out_n == 0) return KILN_OK;
    bool isf = kiln_dtype_is_float(o->dtype);
    /* operands widened once; strides per index dim */
    void *buf[KILN_EINSUM_MAX_IN] = {NULL};
    int64_t stride[KILN_EINSUM_MAX_IN][KILN_EINSUM_MAX_DIMS];
    memset(stride, 0, sizeof stride);
    for (int i = 0; i < ni; i++) {
        const kiln_value *x = kiln_in(n, v, i);
        int64_t cnt = kiln_shape_numel(&x->shape), xs[KILN_MAX_RANK];
        kiln_dense_strides(x->shape.rank, x->shape.d, xs);
        for (int a = 0; a < x->shape.rank; a++)
            if (x->shape.d[a] != 1) stride[i][e.map[i][a]] += xs[a];
        buf[i] = malloc((size_t)(cnt > 0 ? cnt : 1) * 8);
        if (!buf[i]) {
            st = kiln_fail(KILN_ERR_OUT_OF_MEMORY, "Einsum: no memory to widen input '%s'", x->name);
            goto done;
        }
        if (isf) {
            kiln_widen_f64(x->dtype, x->data, buf[i], cnt);
        } else {
            int64_t *b = buf[i];
            for (int64_t j = 0; j < cnt; j++) b[j] = kiln_load_i64(x->dtype, x->data, j);
        }
    }
    int64_t base[KILN_EINSUM_MAX_IN] = {0}, off[KILN_EINSUM_MAX_IN], idx[KILN_EINSUM_MAX_DIMS] = {0};
    for (int64_t oi = 0; oi < out_n; oi++) {
        double accf = 0;
        uint64_t acci = 0;
        memcpy(off, base, sizeof off);
        for (int64_t s = 0; s < sum_n; s++) {
            if (isf) {
                double p = 1;
                for (int i = 0; i < ni; i++) p *= ((const double *)buf[i])[off[i]];
                accf += p;
            } else {
                uint64_t p = 1;
                for (int i = 0; i < ni; i++) p *= (uint64_t)((const int64_t *)buf[i])[off[i]];
                acci += p;
            }
            for (int d = nd - 1; d >= ro; d--) { /* odometer over the summed dims */
                for (int i = 0; i < ni; i++) off[i] += stride[i][d];
                if (++idx[d] < e.dim[d]) break;
                for (int i = 0; i < ni; i++) off[i] -= stride[i][d] * e.dim[d];
                idx[d] = 0;
            }
        }
        if (isf)
            kiln_store_f64(o->dtype, o->data, oi, accf);
        else
            store_i64(o->dtype, o->data, oi, (int64_t)acci);
        for (int d = ro - 1; d >= 0; d--) { /* odometer over the output's dims */
            for (int i = 0; i < ni; i++) base[i] += stride[i][d];
            if (++idx[d] < e.dim[d]) break;
            for (int i = 0; i < ni; i++) base[i] -= stride[i][d] * e.dim[d];
            idx[d] = 0;
        }
    }
done:
    for (int i = 0; i < ni; i++) free(buf[i]);
    return st;
}
