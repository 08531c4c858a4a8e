/* Gemm and MatMul through cuBLASLt.
 *
 * cuBLASLt is column-major, kiln row-major. A row-major [r, c] matrix is,
 * byte for byte, the column-major [c, r] matrix with leading dimension c: its
 * transpose. So Y = op(A) op(B) runs as Y^T = op(B)^T op(A)^T: cuBLASLt's A
 * is our B and its B our A, the transposes carried over, its m our N and its
 * n our M. A bias over Y's columns (Gemm's C of shape [N]) is then a bias
 * over the rows of cuBLASLt's D, which is what its BIAS epilogue adds.
 *
 * f32 computes in f32 (CUBLAS_COMPUTE_32F: no TF32) unless the engine is a
 * TF32 one; f16 and bf16 store in their dtype and accumulate in f32. The
 * operands are dense (the builder guarantees it; anything else is
 * refused). */
#include <stdint.h>
#include <string.h>

#include <cublasLt.h>

#include "cuda/kc.h"

/* cuBLAS's own choice of workspace on Hopper */
#define GEMM_WS_BYTES ((size_t)32 << 20)
#define HEURISTIC_ALGOS 8

kiln_status kc_lt_check(int status, const char *what)
{
    cublasStatus_t s = (cublasStatus_t)status;
    if (s == CUBLAS_STATUS_SUCCESS) return KILN_OK;
    return kiln_fail(KILN_ERR_DEVICE, "%s failed: %s (%s)", what, cublasLtGetStatusName(s),
                     cublasLtGetStatusString(s));
}

bool kc_lt_dtype(kiln_dtype t, int *out)
{
    switch (t) {
    case KILN_F32: *out = CUDA_R_32F; return true;
    case KILN_F16: *out = CUDA_R_16F; return true;
    case KILN_BF16: *out = CUDA_R_16BF; return true;
    default: return false;
    }
}


/* Y[m, n] = alpha op(A)[m, k] op(B)[k, n] (+ beta C) (+ bias), row-major and
 * dense, `batch` times at the given element strides (0: the same matrix for
 * every batch). */
typedef struct mm_op {
    int64_t m, n, k;
    bool ta, tb;
    int64_t batch;
    int64_t sa, sb, sy;
    const void *a, *b;
    const void *c;    /* of Y's shape, scaled by beta; NULL: none */
    const void *bias; /* [n], added to every row; NULL: none */
    void *y;
    kiln_dtype dt;
    float alpha, beta;
} mm_op;

/* The alignment cuBLASLt may assume of a matrix: that of its pointer and,
 * batched, of every later batch's. Without it the heuristic assumes 256
 * bytes and may pick a kernel that faults on a less aligned operand. */
static uint32_t alignment(const void *p, int64_t batch, int64_t stride, size_t esize)
{
    uintptr_t v = (uintptr_t)p | 256;
    if (batch > 1) v |= (uintptr_t)stride * esize;
    return (uint32_t)(v & (~v + 1));
}

static kiln_status set_batch(cublasLtMatrixLayout_t l, int64_t batch, int64_t stride)
{
    if (batch <= 1) return KILN_OK;
    int32_t count = (int32_t)batch;
    kiln_status st = kc_lt_check(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count,
                                                               sizeof count),
                              "setting the batch count");
    if (st != KILN_OK) return st;
    return kc_lt_check(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                                     sizeof stride),
                    "setting the batch stride");
}

static kiln_status set_align(cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t a, uint32_t bytes)
{
    return kc_lt_check(cublasLtMatmulPreferenceSetAttribute(pref, a, &bytes, sizeof bytes), "setting an alignment");
}

/* Descriptors, heuristic and the matmul on L->stream. *refused: cuBLASLt
 * has no algorithm for the configuration (nothing was launched). */
static kiln_status lt_matmul_with(const kc_launch *L, const mm_op *op, cublasLtMatmulPreference_t pref, bool *refused)
{
    cublasLtHandle_t lt = (cublasLtHandle_t)L->h->cublaslt;
    int dt_code = CUDA_R_32F;
    kc_lt_dtype(op->dt, &dt_code);
    const cudaDataType_t dt = (cudaDataType_t)dt_code;
    size_t esize = kiln_dtype_size(op->dt);
    cublasComputeType_t ct = op->dt == KILN_F32 && L->h->precision == KILN_PRECISION_TF32
                                 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                 : CUBLAS_COMPUTE_32F;
    /* the Init forms fill caller-owned space: nothing to destroy */
    cublasLtMatmulDescOpaque_t desc_mem;
    cublasLtMatrixLayoutOpaque_t la_mem, lb_mem, ly_mem;
    cublasLtMatmulDesc_t desc = &desc_mem;
    cublasLtMatrixLayout_t la = &la_mem, lb = &lb_mem, ly = &ly_mem;

    /* cuBLASLt's A is our B, its B our A */
    int32_t opa = op->tb ? CUBLAS_OP_T : CUBLAS_OP_N, opb = op->ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    kiln_status st = kc_lt_check(cublasLtMatmulDescInit(desc, ct, CUDA_R_32F), "cublasLtMatmulDescInit");
    if (st == KILN_OK)
        st = kc_lt_check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa),
                      "setting transA");
    if (st == KILN_OK)
        st = kc_lt_check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb),
                      "setting transB");
    if (st == KILN_OK && op->bias) {
        uint32_t epi = CUBLASLT_EPILOGUE_BIAS;
        int32_t bias_dt = (int32_t)dt;
        st = kc_lt_check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi),
                      "setting the bias epilogue");
        if (st == KILN_OK)
            st = kc_lt_check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &op->bias,
                                                         sizeof op->bias),
                          "setting the bias pointer");
        if (st == KILN_OK)
            st = kc_lt_check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_dt,
                                                         sizeof bias_dt),
                          "setting the bias dtype");
    }
    if (st != KILN_OK) return st;

    /* our B is stored [k, n] ([n, k] when transposed), our A [m, k] ([k, m]);
     * read column-major, rows and columns swap */
    uint64_t a_rows = (uint64_t)(op->tb ? op->k : op->n), a_cols = (uint64_t)(op->tb ? op->n : op->k);
    uint64_t b_rows = (uint64_t)(op->ta ? op->m : op->k), b_cols = (uint64_t)(op->ta ? op->k : op->m);
    st = kc_lt_check(cublasLtMatrixLayoutInit(la, dt, a_rows, a_cols, (int64_t)a_rows), "describing B");
    if (st == KILN_OK) st = kc_lt_check(cublasLtMatrixLayoutInit(lb, dt, b_rows, b_cols, (int64_t)b_rows), "describing A");
    if (st == KILN_OK)
        st = kc_lt_check(cublasLtMatrixLayoutInit(ly, dt, (uint64_t)op->n, (uint64_t)op->m, op->n), "describing Y");
    if (st == KILN_OK) st = set_batch(la, op->batch, op->sb);
    if (st == KILN_OK) st = set_batch(lb, op->batch, op->sa);
    if (st == KILN_OK) st = set_batch(ly, op->batch, op->sy);
    if (st != KILN_OK) return st;

    const void *c = op->c ? op->c : op->y; /* not read when beta is 0 */
    uint64_t ws_bytes = L->ws ? L->ws_bytes : 0;
    st = kc_lt_check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes,
                                                       sizeof ws_bytes),
                  "setting the workspace limit");
    if (st == KILN_OK)
        st = set_align(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, alignment(op->b, op->batch, op->sb, esize));
    if (st == KILN_OK)
        st = set_align(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, alignment(op->a, op->batch, op->sa, esize));
    if (st == KILN_OK)
        st = set_align(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, alignment(c, op->batch, op->sy, esize));
    if (st == KILN_OK)
        st = set_align(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, alignment(op->y, op->batch, op->sy, esize));
    if (st != KILN_OK) return st;

    cublasLtMatmulHeuristicResult_t res[HEURISTIC_ALGOS];
    int got = 0, pick = -1;
    cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, ly, ly, pref, HEURISTIC_ALGOS, res, &got);
    for (int i = 0; hs == CUBLAS_STATUS_SUCCESS && i < got && pick < 0; i++)
        if (res[i].state == CUBLAS_STATUS_SUCCESS && res[i].workspaceSize <= ws_bytes) pick = i;
    if (pick < 0) {
        *refused = true;
        if (hs != CUBLAS_STATUS_SUCCESS) return kc_lt_check(hs, "cublasLtMatmulAlgoGetHeuristic");
        return kiln_fail(KILN_ERR_UNSUPPORTED,
                         "cuBLASLt has no algorithm for %lld x %lld x %lld (%s, batch %lld) within %llu bytes of "
                         "workspace",
                         (long long)op->m, (long long)op->n, (long long)op->k, kiln_dtype_name(op->dt),
                         (long long)op->batch, (unsigned long long)ws_bytes);
    }
    float alpha = op->alpha, beta = op->c ? op->beta : 0.0f;
    return kc_lt_check(cublasLtMatmul(lt, desc, &alpha, op->b, la, op->a, lb, &beta, c, ly, op->y, ly, &res[pick].algo,
                                   L->ws, (size_t)ws_bytes, L->stream),
                    "cublasLtMatmul");
}

static kiln_status lt_matmul(const kc_launch *L, const mm_op *op, bool *refused)
{
    *refused = false;
    if (!L->h || !L->h->cublaslt) return kiln_fail(KILN_ERR_INTERNAL, "no cuBLASLt handle");
    cublasLtMatmulPreference_t pref = NULL;
    kiln_status st = kc_lt_check(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
    if (st != KILN_OK) return st;
    st = lt_matmul_with(L, op, pref, refused);
    cublasLtMatmulPreferenceDestroy(pref);
    return st;
}

/* One float dtype throughout, dense, on the device: what cuBLASLt takes. */
static kiln_status check_operands(const kc_view *a, const kc_view *b, const kc_view *y)
{
    int dt;
    if (!kc_lt_dtype(y->dt, &dt) || a->dt != y->dt || b->dt != y->dt)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "A %s, B %s, Y %s: cuBLASLt multiplies f32, f16 or bf16, one dtype throughout",
                         kiln_dtype_name(a->dt), kiln_dtype_name(b->dt), kiln_dtype_name(y->dt));
    if (!kc_view_contiguous(a) || !kc_view_contiguous(b) || !kc_view_contiguous(y))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "an operand is not dense (strided operands are not supported)");
    if (!a->p || !b->p || !y->p) return kiln_fail(KILN_ERR_INTERNAL, "an operand is not on the device");
    return KILN_OK;
}

static kiln_status zero_fill(const kc_view *y, cudaStream_t s)
{
    KC_CHECK(cudaMemsetAsync(y->p, 0, (size_t)kc_view_numel(y) * kiln_dtype_size(y->dt), s));
    return KILN_OK;
}

/* ---- Gemm: Y = alpha op(A) op(B) + beta C, C broadcast to [M, N] (ONNX Gemm-13) */

static bool is_row(const kc_view *c, int64_t n)
{
    return (c->rank == 1 && c->d[0] == n) || (c->rank == 2 && c->d[0] == 1 && c->d[1] == n);
}

/* y += beta * c, c broadcast to y (numpy rules), in place: each element is
 * read, then written, by one thread. */
static kiln_status add_scaled(const kc_view *y, const kc_view *c, float beta, cudaStream_t s)
{
    kc_ew_prog p;
    memset(&p, 0, sizeof p);
    int k = 0;
    p.ins[k++] = (kc_ew_ins){.op = KC_EW_LOAD, .dst = 0, .a = 0};
    p.ins[k++] = (kc_ew_ins){.op = KC_EW_LOAD, .dst = 1, .a = 1};
    if (beta != 1.0f) {
        p.ins[k++] = (kc_ew_ins){.op = KC_EW_IMM, .dst = 2, .p0 = beta};
        p.ins[k++] = (kc_ew_ins){.op = KC_EW_MUL, .dst = 1, .a = 1, .b = 2};
    }
    p.ins[k++] = (kc_ew_ins){.op = KC_EW_ADD, .dst = 0, .a = 0, .b = 1};
    p.n_in = 2;
    p.n_ins = k;
    p.result = 0;
    kc_view in[2] = {*y, *c};
    return kc_ew_run(&p, in, y, s);
}

kiln_status kiln_cuda_Gemm(const kc_launch *L)
{
    const kiln_node *n = L->n;
    if (L->n_in < 2 || L->n_out < 1)
        return kiln_fail(KILN_ERR_INTERNAL, "launched with %d inputs and %d outputs", L->n_in, L->n_out);
    const kc_view *a = &L->in[0], *b = &L->in[1], *y = &L->out[0];
    const kc_view *c = L->n_in > 2 && L->in[2].p ? &L->in[2] : NULL;
    bool ta = n->params.gemm.trans_a, tb = n->params.gemm.trans_b;
    float alpha = n->params.gemm.alpha, beta = n->params.gemm.beta;
    if (a->rank != 2 || b->rank != 2 || y->rank != 2)
        return kiln_fail(KILN_ERR_SHAPE, "A, B and Y have ranks %d, %d and %d, not 2", a->rank, b->rank, y->rank);
    int64_t m = y->d[0], nn = y->d[1], k = a->d[ta ? 0 : 1];
    if (a->d[ta ? 1 : 0] != m || b->d[tb ? 1 : 0] != k || b->d[tb ? 0 : 1] != nn)
        return kiln_fail(KILN_ERR_SHAPE, "A [%lld, %lld] and B [%lld, %lld] do not multiply into [%lld, %lld]",
                         (long long)a->d[0], (long long)a->d[1], (long long)b->d[0], (long long)b->d[1], (long long)m,
                         (long long)nn);
    if (c && c->rank > 2) return kiln_fail(KILN_ERR_SHAPE, "C has rank %d, at most 2", c->rank);
    if (m * nn == 0) return KILN_OK;
    kiln_status st = check_operands(a, b, y);
    if (st != KILN_OK) return st;
    /* beta 0 ignores C (even its NaNs), as the reference does */
    if (c && beta == 0.0f) c = NULL;
    if (k == 0) {
        if ((st = zero_fill(y, L->stream)) != KILN_OK) return st;
        return c ? add_scaled(y, c, beta, L->stream) : KILN_OK;
    }

    mm_op op = {.m = m, .n = nn, .k = k, .ta = ta, .tb = tb, .batch = 1, .a = a->p, .b = b->p, .y = y->p,
                .dt = y->dt, .alpha = alpha, .beta = beta};
    bool after = false; /* C goes in by an elementwise program after the product */
    if (c) {
        bool direct = c->dt == y->dt && kc_view_contiguous(c);
        if (direct && beta == 1.0f && is_row(c, nn))
            op.bias = c->p;
        else if (direct && c->rank == 2 && c->d[0] == m && c->d[1] == nn)
            op.c = c->p;
        else
            after = true;
    }
    bool refused;
    st = lt_matmul(L, &op, &refused);
    if (st == KILN_OK && after) st = add_scaled(y, c, beta, L->stream);
    return st;
}

size_t kiln_cuda_Gemm_ws(const kc_launch *L)
{
    (void)L;
    return GEMM_WS_BYTES;
}

/* ---- MatMul: numpy.matmul. A 1-D A is a [1, K] row, a 1-D B a [K, 1]
 * column (Y has those axes dropped); the batch axes (all but the last two)
 * broadcast. cuBLASLt's strided batches take one stride per operand, so
 * each operand's batch axes must be all broadcast (stride 0) or all Y's. */

/* The batch stride of an operand with batch axes d[0..r), right-aligned to
 * Y's bd[0..br), and matrices of msz elements; -1 when it is neither wholly
 * broadcast nor wholly Y's. */
static int64_t batch_stride(const int64_t *d, int r, const int64_t *bd, int br, int64_t msz)
{
    bool all_one = true, all_y = true;
    for (int i = 0; i < br; i++) {
        int j = i - (br - r);
        int64_t v = j >= 0 ? d[j] : 1;
        all_one = all_one && v == 1;
        all_y = all_y && v == bd[i];
    }
    if (all_one) return 0;
    return all_y ? msz : -1;
}

kiln_status kiln_cuda_MatMul(const kc_launch *L)
{
    if (L->n_in < 2 || L->n_out < 1)
        return kiln_fail(KILN_ERR_INTERNAL, "launched with %d inputs and %d outputs", L->n_in, L->n_out);
    const kc_view *a = &L->in[0], *b = &L->in[1], *y = &L->out[0];
    int ra = a->rank, rb = b->rank;
    if (ra < 1 || rb < 1) return kiln_fail(KILN_ERR_SHAPE, "an operand is a scalar");
    int64_t m = ra >= 2 ? a->d[ra - 2] : 1, k = a->d[ra - 1];
    int64_t nn = rb >= 2 ? b->d[rb - 1] : 1, kb = b->d[rb >= 2 ? rb - 2 : 0];
    if (k != kb)
        return kiln_fail(KILN_ERR_SHAPE, "inner dimensions differ: A has K=%lld, B K=%lld", (long long)k,
                         (long long)kb);
    int bra = ra > 2 ? ra - 2 : 0, brb = rb > 2 ? rb - 2 : 0, br = bra > brb ? bra : brb;
    int64_t bd[KILN_MAX_RANK], count = 1;
    for (int i = 0; i < br; i++) {
        int ia = i - (br - bra), ib = i - (br - brb);
        int64_t da = ia >= 0 ? a->d[ia] : 1, db = ib >= 0 ? b->d[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return kiln_fail(KILN_ERR_SHAPE, "batch axes %lld and %lld do not broadcast", (long long)da, (long long)db);
        bd[i] = da == 1 ? db : da;
        count *= bd[i];
    }
    if (kc_view_numel(y) != count * m * nn)
        return kiln_fail(KILN_ERR_SHAPE, "Y has %lld elements, the product %lld", (long long)kc_view_numel(y),
                         (long long)(count * m * nn));
    if (count * m * nn == 0) return KILN_OK;
    kiln_status st = check_operands(a, b, y);
    if (st != KILN_OK) return st;
    if (k == 0) return zero_fill(y, L->stream);

    int64_t sa = batch_stride(a->d, bra, bd, br, m * k), sb = batch_stride(b->d, brb, bd, br, k * nn);
    if (count > 1 && (sa < 0 || sb < 0))
        return kiln_fail(KILN_ERR_UNSUPPORTED,
                         "not supported on cuda: each operand's batch axes must be all broadcast or all the output's (cuBLASLt takes one "
                         "batch stride per operand)");
    if (count == 1) sa = sb = 0;
    /* B shared by every batch and A's batches back to back: one product of
     * count*M rows runs faster than count small ones */
    if (count > 1 && sb == 0 && sa != 0) {
        m *= count;
        count = 1;
        sa = 0;
    }
    if (count > INT32_MAX)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "%lld batches; cuBLASLt takes at most 2^31-1", (long long)count);
    mm_op op = {.m = m, .n = nn, .k = k, .batch = count, .sa = sa, .sb = sb, .sy = m * nn, .a = a->p, .b = b->p,
                .y = y->p, .dt = y->dt, .alpha = 1.0f, .beta = 0.0f};
    bool refused;
    st = lt_matmul(L, &op, &refused);
    if (st == KILN_OK || !refused || count == 1) return st;

    /* a batch stride of 0 that cuBLASLt refuses: one product per batch */
    kiln_clear_error();
    size_t esize = kiln_dtype_size(y->dt);
    for (int64_t i = 0; i < count && st == KILN_OK; i++) {
        mm_op one = op;
        one.batch = 1;
        one.a = (const char *)a->p + (size_t)(i * sa) * esize;
        one.b = (const char *)b->p + (size_t)(i * sb) * esize;
        one.y = (char *)y->p + (size_t)(i * op.sy) * esize;
        st = lt_matmul(L, &one, &refused);
    }
    return st;
}

size_t kiln_cuda_MatMul_ws(const kc_launch *L)
{
    (void)L;
    return GEMM_WS_BYTES;
}
