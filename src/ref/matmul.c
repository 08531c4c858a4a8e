/* Reference kernels: Gemm and MatMul, on kiln_sgemm (f32, and f16/bf16
 * staged through f32) and kiln_dgemm (f64). Transposes and broadcasts are
 * expressed as strides, never as copies. */
#include "ref/ref.h"

#include "ref/gemm.h"


/* One matrix product with operand strides, in the dtype of the call. */
typedef struct mm_call {
    int64_t m, n, k;
    int64_t rsa, csa, rsb, csb;
    double alpha, beta;
} mm_call;

/* ---- Gemm: Y = alpha * op(A) * op(B) + beta * C, C broadcast
 * unidirectionally to M x N (ONNX Gemm-13). */

/* Strides that read C (rank 0..2) as an M x N matrix. */
static void c_strides(const kiln_value *c, int64_t *rs, int64_t *cs)
{
    int r = c->shape.rank;
    int64_t d0 = r == 2 ? c->shape.d[0] : 1, d1 = r >= 1 ? c->shape.d[r - 1] : 1;
    *cs = d1 == 1 ? 0 : 1;
    *rs = d0 == 1 ? 0 : d1;
}

kiln_status kiln_ref_Gemm(const kiln_node *n, kiln_value *v)
{
    kiln_value *a = kiln_in(n, v, 0), *b = kiln_in(n, v, 1), *c = kiln_in(n, v, 2), *y = kiln_out(n, v, 0);
    bool ta = n->params.gemm.trans_a, tb = n->params.gemm.trans_b;
    mm_call mm = {.m = y->shape.d[0], .n = y->shape.d[1], .k = a->shape.d[ta ? 0 : 1]};
    mm.alpha = n->params.gemm.alpha;
    mm.beta = c ? n->params.gemm.beta : 0.0;
    /* op(A)(i, p) = A[i][p] or A[p][i] */
    mm.rsa = ta ? 1 : mm.k;
    mm.csa = ta ? mm.m : 1;
    mm.rsb = tb ? 1 : mm.n;
    mm.csb = tb ? mm.k : 1;
    int64_t ny = mm.m * mm.n, rsc = 0, csc = 0;
    if (b->shape.d[tb ? 1 : 0] != mm.k || a->shape.d[ta ? 1 : 0] != mm.m || b->shape.d[tb ? 0 : 1] != mm.n)
        return kiln_fail(KILN_ERR_SHAPE, "'%s' and '%s' do not multiply into %lld x %lld", a->name, b->name,
                         (long long)mm.m, (long long)mm.n);
    if (c) {
        /* C broadcasts to M x N: each of its (right-aligned) dims is 1 or equal */
        int r = c->shape.rank;
        int64_t d0 = r == 2 ? c->shape.d[0] : 1, d1 = r >= 1 ? c->shape.d[r - 1] : 1;
        if (r > 2 || (d0 != 1 && d0 != mm.m) || (d1 != 1 && d1 != mm.n))
            return kiln_fail(KILN_ERR_SHAPE, "input '%s' (C) does not broadcast to %lld x %lld", c->name,
                             (long long)mm.m, (long long)mm.n);
        c_strides(c, &rsc, &csc);
    }
    if (ny == 0) return KILN_OK;
    if (y->dtype == KILN_F64) {
        double *yd = y->data;
        if (c)
            for (int64_t i = 0; i < mm.m; i++)
                for (int64_t j = 0; j < mm.n; j++) yd[i * mm.n + j] = ((const double *)c->data)[i * rsc + j * csc];
        kiln_dgemm(mm.m, mm.n, mm.k, mm.alpha, a->data, mm.rsa, mm.csa, b->data, mm.rsb, mm.csb, mm.beta, yd, mm.n);
        return KILN_OK;
    }
    if (!kiln_f32_computable(y->dtype))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "Gemm on %s is not supported", kiln_dtype_name(y->dtype));
    float *af = kiln_f32_acquire(a->dtype, a->data, kiln_shape_numel(&a->shape));
    float *bf = kiln_f32_acquire(b->dtype, b->data, kiln_shape_numel(&b->shape));
    float *cf = c ? kiln_f32_acquire(c->dtype, c->data, kiln_shape_numel(&c->shape)) : NULL;
    float *yf = kiln_f32_scratch(y->dtype, y->data, ny);
    kiln_status st = KILN_ERR_OUT_OF_MEMORY;
    if (af && bf && (!c || cf) && yf) {
        if (c)
            for (int64_t i = 0; i < mm.m; i++)
                for (int64_t j = 0; j < mm.n; j++) yf[i * mm.n + j] = cf[i * rsc + j * csc];
        st = kiln_sgemm(mm.m, mm.n, mm.k, (float)mm.alpha, af, mm.rsa, mm.csa, bf, mm.rsb, mm.csb, (float)mm.beta, yf,
                        mm.n);
    }
    kiln_f32_release(a->data, af);
    kiln_f32_release(b->data, bf);
    if (c) kiln_f32_release(c->data, cf);
    if (st == KILN_OK)
        kiln_f32_commit(y->dtype, y->data, yf, ny);
    else
        kiln_f32_release(y->data, yf);
    return st;
}

/* ---- MatMul: numpy.matmul semantics. A 1-D A is a 1 x K row, a 1-D B a
 * K x 1 column (the shape rule drops those dims from Y); the batch dims
 * (all but the last two) broadcast. */

typedef struct mm_batch {
    int rank;                   /* batch rank of Y */
    int64_t d[KILN_MAX_RANK];   /* Y's batch dims */
    int64_t sa[KILN_MAX_RANK];  /* element strides of A / B per batch dim, 0 where broadcast */
    int64_t sb[KILN_MAX_RANK];
    int64_t count;
} mm_batch;

/* Batch strides of an operand with `r` batch dims `d` and matrix size msz,
 * aligned to the right of the output's batch dims. */
static void batch_strides(const int64_t *d, int r, int64_t msz, const mm_batch *bt, int64_t *s)
{
    int64_t stride = msz;
    for (int i = bt->rank - 1; i >= 0; i--) {
        int j = i - (bt->rank - r);
        if (j < 0 || d[j] == 1) {
            s[i] = 0;
        } else {
            s[i] = stride;
            stride *= d[j];
        }
    }
}

kiln_status kiln_ref_MatMul(const kiln_node *n, kiln_value *v)
{
    kiln_value *a = kiln_in(n, v, 0), *b = kiln_in(n, v, 1), *y = kiln_out(n, v, 0);
    int ra = a->shape.rank, rb = b->shape.rank;
    int64_t m = ra >= 2 ? a->shape.d[ra - 2] : 1, k = a->shape.d[ra - 1], nn = rb >= 2 ? b->shape.d[rb - 1] : 1;
    int64_t kb = b->shape.d[rb >= 2 ? rb - 2 : 0];
    if (k != kb)
        return kiln_fail(KILN_ERR_SHAPE, "inner dimensions differ: '%s' has K=%lld, '%s' K=%lld", a->name, (long long)k,
                         b->name, (long long)kb);
    int bra = ra > 2 ? ra - 2 : 0, brb = rb > 2 ? rb - 2 : 0;
    mm_batch bt = {.rank = bra > brb ? bra : brb, .count = 1};
    for (int i = 0; i < bt.rank; i++) {
        int ia = i - (bt.rank - bra), ib = i - (bt.rank - brb);
        int64_t da = ia >= 0 ? a->shape.d[ia] : 1, db = ib >= 0 ? b->shape.d[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return kiln_fail(KILN_ERR_SHAPE, "batch dims of '%s' (%lld) and '%s' (%lld) do not broadcast", a->name,
                             (long long)da, b->name, (long long)db);
        bt.d[i] = da == 1 ? db : da;
        bt.count *= bt.d[i];
    }
    batch_strides(a->shape.d, bra, m * k, &bt, bt.sa);
    batch_strides(b->shape.d, brb, k * nn, &bt, bt.sb);
    int64_t ny = bt.count * m * nn;
    if (ny == 0) return KILN_OK;
    /* B shared by every batch and A's batches contiguous: one tall product */
    bool fold = true;
    for (int i = 0; i < bt.rank; i++) fold = fold && bt.sb[i] == 0;
    int64_t na = kiln_shape_numel(&a->shape);
    if (fold && na != bt.count * m * k) fold = false; /* A itself broadcast along a batch dim */
    int64_t calls = fold ? 1 : bt.count, mrows = fold ? bt.count * m : m;

    bool f64 = y->dtype == KILN_F64;
    if (!f64 && !kiln_f32_computable(y->dtype))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "MatMul on %s is not supported", kiln_dtype_name(y->dtype));
    float *af = NULL, *bf = NULL, *yf = NULL;
    if (!f64) {
        af = kiln_f32_acquire(a->dtype, a->data, na);
        bf = kiln_f32_acquire(b->dtype, b->data, kiln_shape_numel(&b->shape));
        yf = kiln_f32_scratch(y->dtype, y->data, ny);
    }
    kiln_status st = f64 || (af && bf && yf) ? KILN_OK : KILN_ERR_OUT_OF_MEMORY;
    for (int64_t c = 0; c < calls && st == KILN_OK; c++) {
        int64_t oa = 0, ob = 0, rem = c;
        for (int i = bt.rank - 1; i >= 0 && !fold; i--) {
            int64_t j = rem % bt.d[i];
            rem /= bt.d[i];
            oa += j * bt.sa[i];
            ob += j * bt.sb[i];
        }
        int64_t oy = c * m * nn;
        if (f64)
            kiln_dgemm(mrows, nn, k, 1.0, (const double *)a->data + oa, k, 1, (const double *)b->data + ob, nn, 1, 0.0,
                       (double *)y->data + oy, nn);
        else
            st = kiln_sgemm(mrows, nn, k, 1.0f, af + oa, k, 1, bf + ob, nn, 1, 0.0f, yf + oy, nn);
    }
    if (!f64) {
        kiln_f32_release(a->data, af);
        kiln_f32_release(b->data, bf);
        if (st == KILN_OK)
            kiln_f32_commit(y->dtype, y->data, yf, ny);
        else
            kiln_f32_release(y->data, yf);
    }
    return st;
}
