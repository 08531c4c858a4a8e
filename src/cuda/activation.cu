// Activations of the cuda backend that the fused elementwise programs do
// not have: Mish, Softplus, Softsign, Elu, Selu, Celu, ThresholdedRelu,
// with the formulas of the reference kernels (src/ref/activation.c)
// computed in f32 on f32/f16/bf16 tensors of any strides (NCHW or NHWC in,
// the output's order out). One kernel walks the output with kc_iter in a
// grid-stride loop, 32-bit index math whenever the offsets fit.
#include <math.h>
#include <string.h>

#include "cuda/kc_device.cuh"

namespace {

constexpr int ACT_BLOCK = 256;
constexpr int ACT_MAX_GRID = 8192;

enum act_op { A_MISH, A_SOFTPLUS, A_SOFTSIGN, A_ELU, A_SELU, A_CELU, A_THRESHOLDED_RELU };

struct act_args {
    kc_iter it;
    void *out;
    const void *in;
    int in_dt;
    int op;
    float a, b; // alpha; Selu's gamma
};
static_assert(sizeof(act_args) <= 4000, "act_args must fit the kernel parameter space");

template <typename IndexT> __device__ __forceinline__ float load_float(const void *p, int dt, IndexT off)
{
    if (dt == KILN_F16) return __half2float(static_cast<const __half *>(p)[off]);
    if (dt == KILN_BF16) return __bfloat162float(static_cast<const __nv_bfloat16 *>(p)[off]);
    return static_cast<const float *>(p)[off];
}

// ln(1 + e^x) without overflow for large x or loss for very negative x
__device__ __forceinline__ float softplus(float x) { return x > 0.f ? x + log1pf(expf(-x)) : log1pf(expf(x)); }

// The op is uniform over the grid, so the switch never diverges.
__device__ __forceinline__ float act_apply(int op, float x, float a, float b)
{
    switch (op) {
    case A_MISH: return x * tanhf(softplus(x));
    case A_SOFTPLUS: return softplus(x);
    case A_SOFTSIGN: return x / (1.f + fabsf(x));
    case A_ELU: return x < 0.f ? a * expm1f(x) : x;
    case A_SELU: return x <= 0.f ? b * (a * expm1f(x)) : b * x;
    case A_CELU: return x > 0.f ? x : a * expm1f(x / a);
    default: return x > a ? x : 0.f; // ThresholdedRelu (NaN gives 0, as the ref's `x > a ? x : 0`)
    }
}

template <typename TO, typename IndexT, bool FLAT>
__global__ void __launch_bounds__(ACT_BLOCK) act_kernel(const __grid_constant__ act_args a)
{
    const IndexT n = (IndexT)a.it.n, step = (IndexT)gridDim.x * ACT_BLOCK;
    for (IndexT i = (IndexT)(blockIdx.x * ACT_BLOCK + threadIdx.x); i < n; i += step) {
        IndexT off[2];
        if (FLAT) {
            off[0] = i * (IndexT)a.it.s[0][0];
            off[1] = i * (IndexT)a.it.s[1][0];
        } else {
            kc_iter_offsets<IndexT, 2>(a.it, i, off);
        }
        const float x = load_float(a.in, a.in_dt, off[1]);
        static_cast<TO *>(a.out)[off[0]] = kc_from_f32<TO>(act_apply(a.op, x, a.a, a.b));
    }
}

// Whether every offset of the walk, and its last index plus the grid
// stride, fit in int32.
bool walk_fits_i32(const kc_iter &it)
{
    const double lim = (double)INT32_MAX - (double)ACT_MAX_GRID * ACT_BLOCK;
    if ((double)it.n > lim) return false;
    for (int j = 0; j < it.n_ops; j++) {
        double span = 0;
        for (int k = 0; k < it.rank; k++)
            if (it.d[k] > 0) span += (double)(it.d[k] - 1) * fabs((double)it.s[j][k]);
        if (span > lim) return false;
    }
    return true;
}

template <typename TO> void act_launch(const act_args &a, unsigned grid, bool i32, cudaStream_t s)
{
    if (!i32)
        act_kernel<TO, int64_t, false><<<grid, ACT_BLOCK, 0, s>>>(a);
    else if (a.it.rank == 1)
        act_kernel<TO, int32_t, true><<<grid, ACT_BLOCK, 0, s>>>(a);
    else
        act_kernel<TO, int32_t, false><<<grid, ACT_BLOCK, 0, s>>>(a);
}

kiln_status act_run(const kc_launch *L, int op, float pa, float pb)
{
    const kiln_node *n = L->n;
    if (L->n_out < 1 || kc_view_numel(&L->out[0]) == 0) return KILN_OK;
    const kc_view *x = &L->in[0], *y = &L->out[0];
    if (!kc::is_float_dt(x->dt) || !kc::is_float_dt(y->dt))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "%s '%s': dtype %s is not supported by the cuda backend", n->op_type,
                         n->name, kiln_dtype_name(kc::is_float_dt(x->dt) ? y->dt : x->dt));
    if (!x->p || !y->p)
        return kiln_fail(KILN_ERR_INTERNAL, "%s '%s': X or Y is not on the device", n->op_type, n->name);
    if (x->rank != y->rank)
        return kiln_fail(KILN_ERR_INTERNAL, "%s '%s': input rank %d, output rank %d", n->op_type, n->name, x->rank,
                         y->rank);
    for (int k = 0; k < x->rank; k++)
        if (x->d[k] != y->d[k])
            return kiln_fail(KILN_ERR_INTERNAL, "%s '%s': input and output dims differ", n->op_type, n->name);
    act_args a;
    memset(&a, 0, sizeof a);
    const kc_view *ops[2] = {y, x};
    kiln_status st = kc_iter_make(2, ops, &a.it);
    if (st != KILN_OK) return kiln_fail_prefix(st, "%s '%s': ", n->op_type, n->name);
    a.out = y->p;
    a.in = x->p;
    a.in_dt = x->dt;
    a.op = op;
    a.a = pa;
    a.b = pb;
    int64_t blocks = (a.it.n + ACT_BLOCK - 1) / ACT_BLOCK;
    unsigned grid = (unsigned)(blocks < ACT_MAX_GRID ? (blocks > 0 ? blocks : 1) : ACT_MAX_GRID);
    const bool i32 = walk_fits_i32(a.it);
    switch (y->dt) {
    case KILN_F16: act_launch<__half>(a, grid, i32, L->stream); break;
    case KILN_BF16: act_launch<__nv_bfloat16>(a, grid, i32, L->stream); break;
    default: act_launch<float>(a, grid, i32, L->stream); break;
    }
    st = kc_check_launch(n->op_type);
    return st == KILN_OK ? st : kiln_fail_prefix(st, "%s '%s': ", n->op_type, n->name);
}

// the node's parameters (src/ir/params_elementwise.c: defaults filled in)
const kiln_act_params &attr(const kc_launch *L) { return L->n->params.act; }

} // namespace

extern "C" kiln_status kiln_cuda_Mish(const kc_launch *L) { return act_run(L, A_MISH, 0.f, 0.f); }
extern "C" kiln_status kiln_cuda_Softplus(const kc_launch *L) { return act_run(L, A_SOFTPLUS, 0.f, 0.f); }
extern "C" kiln_status kiln_cuda_Softsign(const kc_launch *L) { return act_run(L, A_SOFTSIGN, 0.f, 0.f); }
extern "C" kiln_status kiln_cuda_Elu(const kc_launch *L) { return act_run(L, A_ELU, attr(L).alpha, 0.f); }

extern "C" kiln_status kiln_cuda_Selu(const kc_launch *L)
{
    return act_run(L, A_SELU, attr(L).alpha, attr(L).gamma);
}

extern "C" kiln_status kiln_cuda_Celu(const kc_launch *L)
{
    const float a = attr(L).alpha;
    if (a == 0.f) return kiln_fail(KILN_ERR_UNSUPPORTED, "Celu '%s': alpha=0 is not defined (x / alpha)", L->n->name);
    return act_run(L, A_CELU, a, 0.f);
}

extern "C" kiln_status kiln_cuda_ThresholdedRelu(const kc_launch *L)
{
    return act_run(L, A_THRESHOLDED_RELU, attr(L).alpha, 0.f);
}
