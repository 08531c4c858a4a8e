/* Pointwise convolutions as one cuBLASLt matmul.
 *
 * A 1x1 conv with stride 1, no padding and one group on channels-last
 * tensors is a plain matrix product: x is the row-major [N*H*W, C] matrix,
 * w (K x C, dense in both KCRS and KRSC order at 1x1) the [K, C] one, and
 * y = x w^T the row-major [N*H*W, K]. cuBLASLt's precompiled kernels run
 * it at full tensor-core speed, and its epilogue fuses what cuDNN's
 * precompiled engines cannot: the residual enters as its C matrix (beta 1)
 * and bias and ReLU/GELU(tanh) are applied after it, D = act(AB + C +
 * bias). Other activations run after the matmul through kc_bias_act.
 *
 * Read column-major (cuBLASLt's order), y is the K x M matrix D with
 * leading dimension K, x the C x M matrix B, and w the C x K matrix A taken
 * transposed: D = A^T B, the bias one value per row of D. A channel slice
 * of a wider NHWC tensor (a concat input written in place) is the same
 * matrix with a larger leading dimension.
 *
 * Tactic: fused = KC_CONV_GEMM, algo = the place of the timed algorithm in
 * cuBLASLt's heuristic list for the tuned shape (other shapes take the same
 * place in their own list, or its head). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cublasLt.h>

#include "core/core.h"
#include "cuda/conv_common.h"
#include "cuda/conv_gemm.h"

#define GEMM_ALGOS 8
/* workspace a conv matmul may ask for: cuBLAS's own choice on Hopper */
#define GEMM_WS_CAP ((size_t)32 << 20)

typedef struct gemm_plan {
    int kind; /* KC_CONV_STATE_GEMM, first: conv.c dispatches on it */
    bool empty;
    bool has_bias, has_z;
    int act_after;  /* kc_act the matmul's epilogue cannot do (run by kc_bias_act), else KC_ACT_NONE */
    cublasLtMatmulDescOpaque_t desc;
    cublasLtMatrixLayoutOpaque_t la, lb, ld;
    cublasLtMatmulAlgo_t algo;
    size_t ws;       /* the algorithm's workspace */
    uint32_t align;  /* the least pointer alignment cuBLASLt was told */
    const void *bias_ptr; /* as set on desc */
} gemm_plan;

/* The view as a row-major [N*H*W, C] matrix: channels innermost with unit
 * stride, pixels one leading dimension *ld >= C apart (C when dense; more
 * for a channel slice of a wider NHWC tensor, a concat's input written in
 * place). Axes of extent 1 may have any stride. */
static bool pixel_rows(const kc_view *v, int64_t *ld)
{
    if (v->rank != 4 || (v->d[1] > 1 && v->s[1] != 1)) return false;
    const int64_t N = v->d[0], H = v->d[2], W = v->d[3];
    *ld = W > 1 ? v->s[3] : H > 1 ? v->s[2] : N > 1 ? v->s[0] : v->d[1];
    if (*ld < v->d[1]) return false;
    return (W == 1 || v->s[3] == *ld) && (H == 1 || v->s[2] == W * *ld) && (N == 1 || v->s[0] == H * W * *ld);
}

/* w [K, C, 1, 1] dense as the row-major [K, C] */
static bool dense_kc(const kc_view *w)
{
    if (w->rank != 4 || w->d[2] != 1 || w->d[3] != 1) return false;
    return (w->d[1] == 1 || w->s[1] == 1) && (w->d[0] == 1 || w->s[0] == w->d[1]);
}

bool kc_gemm_conv_fits(const kc_conv *c)
{
    if (strcmp(c->n->op_type, "Conv") != 0) return false;
    kc_conv_geom g;
    if (kc_conv_geom_init(c, false, &g) != KILN_OK) {
        kiln_clear_error();
        return false;
    }
    if (g.nsp != 2 || g.group != 1 || g.prepad) return false;
    for (int i = 0; i < 2; i++)
        if (g.pad[i] != 0 || g.stride[i] != 1 || g.dil[i] != 1) return false;
    int t;
    const kiln_dtype dt = c->y.dt;
    if (!kc_lt_dtype(dt, &t) || c->x.dt != dt || c->w.dt != dt) return false;
    int64_t ldx, ldy, ldz;
    if (!pixel_rows(&c->x, &ldx) || !pixel_rows(&c->y, &ldy) || !dense_kc(&c->w)) return false;
    if (c->x.d[2] != c->y.d[2] || c->x.d[3] != c->y.d[3] || c->w.d[0] != c->y.d[1] || c->w.d[1] != c->x.d[1])
        return false;
    if (c->z.p) {
        /* C (the residual) is described as D */
        if (c->z.dt != dt || !pixel_rows(&c->z, &ldz) || ldz != ldy) return false;
        for (int k = 0; k < 4; k++)
            if (c->z.d[k] != c->y.d[k]) return false;
    }
    if (c->bias.p && (!kc_lt_dtype(c->bias.dt, &t) || c->bias.rank != 1 || c->bias.d[0] != c->y.d[1] ||
                      (c->bias.d[0] > 1 && c->bias.s[0] != 1)))
        return false;
    /* cuBLASLt takes 64-bit dims, but one matrix must stay addressable by it */
    return kc_view_numel(&c->x) < ((int64_t)1 << 40) && kc_view_numel(&c->y) < ((int64_t)1 << 40);
}

/* The epilogue cuBLASLt applies after AB + C: bias and the activations it has. */
static cublasLtEpilogue_t epilogue_of(const kc_conv *c, int *act_after)
{
    bool bias = c->bias.p != NULL;
    *act_after = KC_ACT_NONE;
    switch (c->act) {
    case KC_ACT_NONE: return bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    case KC_ACT_RELU: return bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
    case KC_ACT_GELU_TANH: return bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
    default: *act_after = c->act; return bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    }
}

static uint32_t ptr_align(const void *p)
{
    uintptr_t v = (uintptr_t)p | 256;
    return (uint32_t)(v & (~v + 1));
}

static uint32_t operands_align(const kc_conv *c)
{
    uint32_t a = ptr_align(c->x.p), b = ptr_align(c->w.p), d = ptr_align(c->y.p);
    uint32_t z = c->z.p ? ptr_align(c->z.p) : 256;
    uint32_t m = a < b ? a : b;
    m = m < d ? m : d;
    return m < z ? m : z;
}

/* Descriptors of c's matmul into p; `list` gets up to `want` algorithms
 * from the heuristic, *n how many. */
static kiln_status plan_init(kc_handles *h, const kc_conv *c, gemm_plan *p, cublasLtMatmulHeuristicResult_t *list,
                             int want, int *n)
{
    *n = 0;
    const int64_t M = c->y.d[0] * c->y.d[2] * c->y.d[3], K = c->y.d[1], C = c->x.d[1];
    int dt_code = CUDA_R_32F, bt = CUDA_R_32F;
    kc_lt_dtype(c->y.dt, &dt_code);
    if (c->bias.p) kc_lt_dtype(c->bias.dt, &bt);
    const cudaDataType_t dt = (cudaDataType_t)dt_code;
    cublasComputeType_t ct = c->y.dt == KILN_F32 && h->precision != KILN_PRECISION_TF32 ? CUBLAS_COMPUTE_32F
                             : c->y.dt == KILN_F32                                    ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                                                      : CUBLAS_COMPUTE_32F;
    cublasLtMatmulDesc_t desc = (cublasLtMatmulDesc_t)&p->desc;
    cublasLtMatrixLayout_t la = (cublasLtMatrixLayout_t)&p->la, lb = (cublasLtMatrixLayout_t)&p->lb,
                           ld = (cublasLtMatrixLayout_t)&p->ld;
    int32_t opa = CUBLAS_OP_T, opb = CUBLAS_OP_N;
    uint32_t epi = (uint32_t)epilogue_of(c, &p->act_after);
    kiln_status st = kc_lt_check(cublasLtMatmulDescInit(desc, ct, CUDA_R_32F), "cublasLtMatmulDescInit");
    if (st == KILN_OK)
        st = kc_lt_check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa), "transA");
    if (st == KILN_OK)
        st = kc_lt_check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb), "transB");
    if (st == KILN_OK)
        st = kc_lt_check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi),
                      "setting the epilogue");
    if (st == KILN_OK && c->bias.p) {
        int32_t b32 = (int32_t)bt;
        p->bias_ptr = c->bias.p;
        st = kc_lt_check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &b32, sizeof b32),
                      "setting the bias dtype");
        if (st == KILN_OK)
            st = kc_lt_check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p->bias_ptr,
                                                         sizeof p->bias_ptr),
                          "setting the bias pointer");
    }
    if (st == KILN_OK) st = kc_lt_check(cublasLtMatrixLayoutInit(la, dt, (uint64_t)C, (uint64_t)K, C), "describing w");
    int64_t ldx = C, ldy = K;
    pixel_rows(&c->x, &ldx);
    pixel_rows(&c->y, &ldy);
    if (st == KILN_OK) st = kc_lt_check(cublasLtMatrixLayoutInit(lb, dt, (uint64_t)C, (uint64_t)M, ldx), "describing x");
    if (st == KILN_OK) st = kc_lt_check(cublasLtMatrixLayoutInit(ld, dt, (uint64_t)K, (uint64_t)M, ldy), "describing y");
    if (st != KILN_OK) return st;

    cublasLtMatmulPreference_t pref = NULL;
    st = kc_lt_check(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
    if (st != KILN_OK) return st;
    uint64_t cap = GEMM_WS_CAP;
    p->align = operands_align(c);
    const cublasLtMatmulPreferenceAttributes_t al[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    st = kc_lt_check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &cap, sizeof cap),
                  "setting the workspace limit");
    for (int i = 0; i < 4 && st == KILN_OK; i++)
        st = kc_lt_check(cublasLtMatmulPreferenceSetAttribute(pref, al[i], &p->align, sizeof p->align),
                      "setting an alignment");
    if (st == KILN_OK) {
        /* C is y's layout: the residual when there is one, else beta is 0 */
        cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic((cublasLtHandle_t)h->cublaslt, desc, la, lb, ld, ld, pref,
                                                           want, list, n);
        if (hs != CUBLAS_STATUS_SUCCESS) {
            *n = 0;
            st = kiln_fail(KILN_ERR_UNSUPPORTED, "cuBLASLt has no matmul for conv '%s' as [%lld x %lld] x [%lld x %lld]: %s",
                           c->n->name, (long long)M, (long long)C, (long long)C, (long long)K,
                           cublasLtGetStatusString(hs));
        }
    }
    cublasLtMatmulPreferenceDestroy(pref);
    return st;
}

static kiln_status plan_run(gemm_plan *p, kc_handles *h, const kc_conv *c, void *ws, size_t ws_bytes, cudaStream_t s)
{
    if (p->empty) return KILN_OK;
    kiln_status cst = kc_conv_run_check(c, ws, ws_bytes, p->ws, p->has_bias, p->has_z);
    if (cst != KILN_OK) return cst;
    /* cuBLASLt picked the algorithm for the alignment it was told */
    if (operands_align(c) < p->align)
        return kiln_fail(KILN_ERR_INTERNAL, "conv '%s': an operand is less aligned than at prepare (%u bytes)",
                         c->n->name, p->align);
    cublasLtMatmulDesc_t desc = (cublasLtMatmulDesc_t)&p->desc;
    if (p->has_bias && p->bias_ptr != c->bias.p) {
        p->bias_ptr = c->bias.p;
        kiln_status st = kc_lt_check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p->bias_ptr,
                                                                 sizeof p->bias_ptr),
                                  "setting the bias pointer");
        if (st != KILN_OK) return st;
    }
    const float one = 1.0f, beta = p->has_z ? 1.0f : 0.0f;
    const void *cm = p->has_z ? c->z.p : c->y.p;
    cublasLtMatrixLayout_t la = (cublasLtMatrixLayout_t)&p->la, lb = (cublasLtMatrixLayout_t)&p->lb,
                           ld = (cublasLtMatrixLayout_t)&p->ld;
    kiln_status st = kc_lt_check(cublasLtMatmul((cublasLtHandle_t)h->cublaslt, desc, &one, c->w.p, la, c->x.p, lb, &beta,
                                             cm, ld, c->y.p, ld, &p->algo, ws, p->ws, s),
                              "cublasLtMatmul (conv)");
    if (st != KILN_OK || p->act_after == KC_ACT_NONE) return st;
    kc_ew_prog prog;
    kc_conv_epilogue_prog(&prog, false, false, (kc_act)p->act_after, c->act_a, c->act_b);
    return kc_conv_epilogue_run(c, false, false, &prog, s);
}

static gemm_plan *plan_new(const kc_conv *c)
{
    gemm_plan *p = kiln_xcalloc(1, sizeof *p);
    if (!p) return NULL;
    p->kind = KC_CONV_STATE_GEMM;
    p->empty = kc_view_numel(&c->y) == 0;
    p->has_bias = c->bias.p != NULL;
    p->has_z = c->z.p != NULL;
    return p;
}

kiln_status kc_gemm_conv_prepare(kc_handles *h, const kc_conv *c, const kc_conv_tactic *t, void **state,
                                 size_t *ws_bytes)
{
    *state = NULL;
    *ws_bytes = 0;
    if (!kc_gemm_conv_fits(c))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "conv '%s' is not a pointwise matmul at these dims", c->n->name);
    gemm_plan *p = plan_new(c);
    if (!p) return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of host memory preparing a conv");
    if (p->empty) {
        *state = p;
        return KILN_OK;
    }
    cublasLtMatmulHeuristicResult_t list[GEMM_ALGOS];
    int n = 0;
    kiln_status st = plan_init(h, c, p, list, GEMM_ALGOS, &n);
    /* the tuned place in the list, else the first that fits the context's
     * workspace: the workspace was sized at the profile's min, opt and max
     * shapes, and another shape's list may put a split-K algorithm that
     * wants more at that place */
    size_t cap = kc_ws_within(h, GEMM_WS_CAP);
    int pick = -1;
    if (st == KILN_OK && t->algo >= 0 && t->algo < n && list[t->algo].state == CUBLAS_STATUS_SUCCESS &&
        list[t->algo].workspaceSize <= cap)
        pick = t->algo;
    for (int i = 0; st == KILN_OK && pick < 0 && i < n; i++)
        if (list[i].state == CUBLAS_STATUS_SUCCESS && list[i].workspaceSize <= cap) pick = i;
    if (st == KILN_OK && pick < 0)
        st = kiln_fail(KILN_ERR_UNSUPPORTED, "cuBLASLt has no algorithm for conv '%s' at these dims", c->n->name);
    if (st != KILN_OK) {
        free(p);
        return st;
    }
    p->algo = list[pick].algo;
    p->ws = list[pick].workspaceSize;
    *state = p;
    *ws_bytes = p->ws;
    return KILN_OK;
}

kiln_status kc_gemm_conv_run(void *state, kc_handles *h, const kc_conv *c, void *ws, size_t ws_bytes, cudaStream_t s)
{
    return plan_run(state, h, c, ws, ws_bytes, s);
}

void kc_gemm_conv_release(void *state) { free(state); }

kiln_status kc_gemm_conv_tune(kc_handles *h, const kc_conv *c, const kc_conv_timer *tm, kc_conv_tactic *best,
                              float *best_ms)
{
    if (!kc_gemm_conv_fits(c) || kc_view_numel(&c->y) == 0) return KILN_OK;
    int lvl = kc_conv_trace() ? KILN_LOG_WARN : KILN_LOG_DEBUG;
    gemm_plan *p = plan_new(c);
    if (!p) return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of host memory tuning a conv");
    cublasLtMatmulHeuristicResult_t list[GEMM_ALGOS];
    int n = 0;
    kiln_status st = plan_init(h, c, p, list, GEMM_ALGOS, &n);
    if (st != KILN_OK) {
        kiln_log(lvl, "conv '%s': cuBLASLt: %s", c->n->name, kiln_last_error());
        kiln_clear_error();
        free(p);
        return KILN_OK;
    }
    for (int i = 0; i < n && st == KILN_OK; i++) {
        if (list[i].state != CUBLAS_STATUS_SUCCESS || list[i].workspaceSize > tm->ws_limit) continue;
        p->algo = list[i].algo;
        p->ws = list[i].workspaceSize;
        float ms;
        st = kc_conv_time(tm, h, c, kc_gemm_conv_run, p, &ms, NULL, 0);
        if (st != KILN_OK) break;
        kiln_log(lvl, "conv '%s': cuBLASLt algorithm %d of %d: %.4f ms%s", c->n->name, i, n, ms,
                 ms < 0 ? " (refused)" : "");
        if (ms >= 0 && (*best_ms < 0 || ms < *best_ms)) {
            *best_ms = ms;
            memset(best, 0, sizeof *best);
            best->fused = KC_CONV_GEMM;
            best->algo = i;
        }
    }
    free(p);
    return st;
}
