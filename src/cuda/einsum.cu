// Einsum on the GPU (ONNX Einsum-12), with the equation read as the
// reference reads it (kiln_einsum_plan, src/ir/shape_index.c): any number
// of operands (up to KILN_EINSUM_MAX_IN), diagonals, '...' broadcasting,
// implicit outputs.
//
// One thread per output element sums the product of the operands over the
// summed dims. An operand's offset is sum(coordinate x stride) over the
// index dims, its stride on a dim adding up the view strides of its axes
// there (a repeated letter walks the diagonal), 0 where it has no axis or
// an extent of 1. Float views (f32, f16, bf16, mixed) accumulate in f32;
// integer views in wrapping i64, stored truncated, as the reference.
//
// A correct general kernel: every thread walks its own contraction, with a
// tight loop when one dim is summed (matmul-like: 'bhid,bhjd->bhij',
// 'bhij,bhjd->bhid', 'bchw,bkc->bkhw', 'nchw,nc->nhw'). Tensor-core
// contractions are for later.
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cuda/kc_device.cuh"

extern "C" {
#include "ir/shape_index.h"
}

namespace {

constexpr int BLOCK = 256;
constexpr int MAXI = KILN_EINSUM_MAX_IN;
constexpr int MAXD = KILN_EINSUM_MAX_DIMS;

struct es_params {
    int n_in, nd, ro, odt;
    bool isf;
    int64_t out_n;
    int64_t dim[MAXD];
    int64_t st[MAXI][MAXD];        // operand strides per index dim
    int64_t ost[KILN_MAX_RANK];    // output strides per output dim
    const void *in[MAXI];
    int dt[MAXI];
};
static_assert(sizeof(es_params) <= 4000, "es_params must fit the kernel parameter space");

__device__ __forceinline__ float ld_f(int dt, const void *p, int64_t i)
{
    switch (dt) {
    case KILN_F16: return __half2float(static_cast<const __half *>(p)[i]);
    case KILN_BF16: return __bfloat162float(static_cast<const __nv_bfloat16 *>(p)[i]);
    default: return static_cast<const float *>(p)[i];
    }
}

__device__ __forceinline__ int64_t ld_i(int dt, const void *p, int64_t i)
{
    switch (dt) {
    case KILN_I32: return static_cast<const int32_t *>(p)[i];
    case KILN_I8: return static_cast<const int8_t *>(p)[i];
    case KILN_U8: return static_cast<const uint8_t *>(p)[i];
    default: return static_cast<const int64_t *>(p)[i];
    }
}

// Product of the operands at offsets off[] (f32 or wrapping i64).
template <bool ISF> struct acc_t;
template <> struct acc_t<true> {
    using T = float;
    static __device__ __forceinline__ float term(const es_params &P, const int64_t *off)
    {
        float p = ld_f(P.dt[0], P.in[0], off[0]);
        for (int i = 1; i < P.n_in; i++) p *= ld_f(P.dt[i], P.in[i], off[i]);
        return p;
    }
};
template <> struct acc_t<false> {
    using T = uint64_t;
    static __device__ __forceinline__ uint64_t term(const es_params &P, const int64_t *off)
    {
        uint64_t p = (uint64_t)ld_i(P.dt[0], P.in[0], off[0]);
        for (int i = 1; i < P.n_in; i++) p *= (uint64_t)ld_i(P.dt[i], P.in[i], off[i]);
        return p;
    }
};

template <bool ISF>
__global__ void __launch_bounds__(BLOCK) einsum_kernel(const __grid_constant__ es_params P, void *out)
{
    using A = acc_t<ISF>;
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < P.out_n; e += step) {
        int64_t off[MAXI], t = e, oo = 0;
        for (int i = 0; i < P.n_in; i++) off[i] = 0;
        for (int d = P.ro - 1; d >= 0; d--) {
            int64_t c = t % P.dim[d];
            t /= P.dim[d];
            oo += c * P.ost[d];
            for (int i = 0; i < P.n_in; i++) off[i] += c * P.st[i][d];
        }
        typename A::T acc = 0;
        int ns = P.nd - P.ro;
        if (ns == 0) {
            acc = A::term(P, off);
        } else if (ns == 1) {
            int d = P.ro;
            for (int64_t c = 0; c < P.dim[d]; c++) {
                acc += A::term(P, off);
                for (int i = 0; i < P.n_in; i++) off[i] += P.st[i][d];
            }
        } else {
            bool empty = false;
            for (int d = P.ro; d < P.nd; d++) empty |= P.dim[d] == 0;
            int64_t idx[MAXD];
            for (int d = 0; d < P.nd; d++) idx[d] = 0;
            while (!empty) {
                acc += A::term(P, off);
                int d = P.nd - 1; // odometer over the summed dims
                for (; d >= P.ro; d--) {
                    for (int i = 0; i < P.n_in; i++) off[i] += P.st[i][d];
                    if (++idx[d] < P.dim[d]) break;
                    for (int i = 0; i < P.n_in; i++) off[i] -= P.st[i][d] * P.dim[d];
                    idx[d] = 0;
                }
                if (d < P.ro) break;
            }
        }
        if constexpr (ISF) {
            switch (P.odt) {
            case KILN_F16: static_cast<__half *>(out)[oo] = __float2half_rn(acc); break;
            case KILN_BF16: static_cast<__nv_bfloat16 *>(out)[oo] = __float2bfloat16_rn(acc); break;
            default: static_cast<float *>(out)[oo] = acc; break;
            }
        } else {
            switch (P.odt) {
            case KILN_I32: static_cast<int32_t *>(out)[oo] = (int32_t)(uint32_t)acc; break;
            case KILN_I8: static_cast<int8_t *>(out)[oo] = (int8_t)(uint8_t)acc; break;
            case KILN_U8: static_cast<uint8_t *>(out)[oo] = (uint8_t)acc; break;
            default: static_cast<int64_t *>(out)[oo] = (int64_t)acc; break;
            }
        }
    }
}

bool is_flt(kiln_dtype t) { return t == KILN_F32 || t == KILN_F16 || t == KILN_BF16; }
bool is_int(kiln_dtype t) { return t == KILN_I64 || t == KILN_I32 || t == KILN_I8 || t == KILN_U8; }

KILN_PRINTF(3, 4) kiln_status node_fail(const kc_launch *L, kiln_status s, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return kiln_fail(s, "%s '%s': %s", L->n->op_type, L->n->name, msg);
}

} // namespace

extern "C" kiln_status kiln_cuda_Einsum(const kc_launch *L)
{
    const kc_view *y = &L->out[0];
    kiln_einsum e;
    kiln_status st = kiln_einsum_plan(L->n, L->v, &e);
    if (st != KILN_OK) return kiln_fail_prefix(st, "Einsum '%s': ", L->n->name);
    if (y->rank != e.out_rank) return node_fail(L, KILN_ERR_INTERNAL, "output rank %d, the equation gives %d", y->rank, e.out_rank);
    es_params P;
    memset(&P, 0, sizeof P);
    P.n_in = e.n_in;
    P.nd = e.n_dims;
    P.ro = e.out_rank;
    P.odt = y->dt;
    P.out_n = 1;
    for (int d = 0; d < e.n_dims; d++) {
        P.dim[d] = e.dim[d];
        if (d < e.out_rank) {
            if (y->d[d] != e.dim[d]) return node_fail(L, KILN_ERR_INTERNAL, "output dim %d disagrees with the equation", d);
            P.ost[d] = y->s[d];
            P.out_n *= e.dim[d];
        }
    }
    if (P.out_n == 0) return KILN_OK;
    P.isf = is_flt(y->dt);
    if (!P.isf && !is_int(y->dt)) return node_fail(L, KILN_ERR_UNSUPPORTED, "output of dtype %s", kiln_dtype_name(y->dt));
    if (!y->p) return node_fail(L, KILN_ERR_INTERNAL, "the output is not on the device");
    if (L->n_in < e.n_in) return node_fail(L, KILN_ERR_INTERNAL, "%d operands, %d views", e.n_in, L->n_in);
    for (int i = 0; i < e.n_in; i++) {
        const kc_view *x = &L->in[i];
        if (!x->p) return node_fail(L, KILN_ERR_UNSUPPORTED, "operand %d is not on the device", i);
        if (is_flt(x->dt) != P.isf || (!P.isf && !is_int(x->dt)))
            return node_fail(L, KILN_ERR_UNSUPPORTED, "operand %d of dtype %s into %s", i, kiln_dtype_name(x->dt),
                             kiln_dtype_name(y->dt));
        if (x->rank != e.rank[i]) return node_fail(L, KILN_ERR_INTERNAL, "operand %d has rank %d", i, x->rank);
        for (int a = 0; a < x->rank; a++) {
            if (x->d[a] == 1) continue; /* broadcast, or a dim of 1: stride 0 */
            if (x->d[a] != e.dim[e.map[i][a]])
                return node_fail(L, KILN_ERR_INTERNAL, "operand %d dim %d disagrees with the equation", i, a);
            P.st[i][e.map[i][a]] += x->s[a];
        }
        P.in[i] = x->p;
        P.dt[i] = x->dt;
    }
    int64_t b = (P.out_n + BLOCK - 1) / BLOCK;
    unsigned grid = (unsigned)(b > (1 << 20) ? (1 << 20) : b);
    if (P.isf)
        einsum_kernel<true><<<grid, BLOCK, 0, L->stream>>>(P, y->p);
    else
        einsum_kernel<false><<<grid, BLOCK, 0, L->stream>>>(P, y->p);
    st = kc_check_launch("Einsum");
    return st == KILN_OK ? st : kiln_fail_prefix(st, "Einsum '%s': ", L->n->name);
}
