// The index family on the GPU: GatherND, ScatterND, Trilu, DepthToSpace,
// SpaceToDepth, OneHot, with the semantics of the reference kernels
// (src/ref/index.c). NonZero is not here: its output size depends on the
// data (ops.def says so with CU_NONE).
//
// DepthToSpace and SpaceToDepth are one kc_copy between 6-D views (a
// reshape, a transpose and a reshape are only strides). The others are one
// thread per output (or update) element that decomposes its linear index
// into coordinates, so views of any strides work. Elements move as bits
// when the views share a dtype (any dtype) and through f32 between float
// dtypes. An index outside [-dim, dim-1] is clamped: a kernel cannot fail
// per element (the reference reports it).
//
// ScatterND without reduction writes every update element in parallel
// (ONNX leaves duplicate indices undefined then); with a reduction each
// thread owns one element of the slice and applies the updates in order,
// so duplicates reduce exactly as the reference does (floats in f32,
// integers in wrapping i64).
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cuda/kc_device.cuh"

extern "C" {
#include "ir/shape_index.h"
}

namespace {

constexpr int MAXR = KILN_MAX_RANK;
constexpr int BLOCK = 256;

unsigned grid_for(int64_t work)
{
    int64_t b = (work + BLOCK - 1) / BLOCK;
    if (b < 1) b = 1;
    if (b > (1 << 20)) b = 1 << 20; // grid-stride loops do the rest
    return (unsigned)b;
}

KILN_PRINTF(3, 4) kiln_status node_fail(const kc_launch *L, kiln_status s, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return kiln_fail(s, "%s '%s': %s", L->n->op_type, L->n->name, msg);
}

kiln_status named(const kc_launch *L, kiln_status st)
{
    return st == KILN_OK ? st : kiln_fail_prefix(st, "%s '%s': ", L->n->op_type, L->n->name);
}

kiln_value *values(const kc_launch *L) { return const_cast<kiln_value *>(L->v); }

bool is_flt(kiln_dtype t) { return t == KILN_F32 || t == KILN_F16 || t == KILN_BF16; }
bool is_int(kiln_dtype t)
{
    return t == KILN_I64 || t == KILN_I32 || t == KILN_I8 || t == KILN_U8 || t == KILN_BOOL;
}

// ---- dynamic element access (the dtype switch is uniform across a warp)
__device__ __forceinline__ float ld_f(int dt, const void *p, int64_t i)
{
    switch (dt) {
    case KILN_F16: return __half2float(static_cast<const __half *>(p)[i]);
    case KILN_BF16: return __bfloat162float(static_cast<const __nv_bfloat16 *>(p)[i]);
    default: return static_cast<const float *>(p)[i];
    }
}

__device__ __forceinline__ void st_f(int dt, void *p, int64_t i, float v)
{
    switch (dt) {
    case KILN_F16: static_cast<__half *>(p)[i] = __float2half_rn(v); break;
    case KILN_BF16: static_cast<__nv_bfloat16 *>(p)[i] = __float2bfloat16_rn(v); break;
    default: static_cast<float *>(p)[i] = v; break;
    }
}

__device__ __forceinline__ int64_t ld_i(int dt, const void *p, int64_t i)
{
    switch (dt) {
    case KILN_I32: return static_cast<const int32_t *>(p)[i];
    case KILN_I8: return static_cast<const int8_t *>(p)[i];
    case KILN_U8: return static_cast<const uint8_t *>(p)[i];
    case KILN_BOOL: return static_cast<const uint8_t *>(p)[i] != 0;
    default: return static_cast<const int64_t *>(p)[i];
    }
}

__device__ __forceinline__ void st_i(int dt, void *p, int64_t i, int64_t v)
{
    switch (dt) {
    case KILN_I32: static_cast<int32_t *>(p)[i] = (int32_t)(uint32_t)(uint64_t)v; break;
    case KILN_I8: static_cast<int8_t *>(p)[i] = (int8_t)(uint8_t)(uint64_t)v; break;
    case KILN_U8: static_cast<uint8_t *>(p)[i] = (uint8_t)(uint64_t)v; break;
    case KILN_BOOL: static_cast<uint8_t *>(p)[i] = v != 0; break;
    default: static_cast<int64_t *>(p)[i] = v; break;
    }
}

// An index of any numeric dtype as an integer (floats truncate; NaN and
// out-of-range floats give INT64_MIN, outside every range).
__device__ __forceinline__ int64_t ld_index(int dt, const void *p, int64_t i)
{
    if (dt == KILN_F32 || dt == KILN_F16 || dt == KILN_BF16) {
        float f = ld_f(dt, p, i);
        return f > -9.0e15f && f < 9.0e15f ? (int64_t)f : INT64_MIN;
    }
    return ld_i(dt, p, i);
}

// ---- element movers: out[oo] = in[io], and out[oo] = 0
template <class U> struct mv_bits {
    __device__ __forceinline__ void operator()(void *o, int64_t oo, const void *i, int64_t io) const
    {
        static_cast<U *>(o)[oo] = static_cast<const U *>(i)[io];
    }
    __device__ __forceinline__ void zero(void *o, int64_t oo) const { static_cast<U *>(o)[oo] = U(0); }
};

struct mv_float {
    int ti, to;
    __device__ __forceinline__ void operator()(void *o, int64_t oo, const void *i, int64_t io) const
    {
        st_f(to, o, oo, ld_f(ti, i, io));
    }
    __device__ __forceinline__ void zero(void *o, int64_t oo) const { st_f(to, o, oo, 0.f); }
};

template <class F> kiln_status with_mover(const kc_launch *L, kiln_dtype ti, kiln_dtype to, F &&f)
{
    if (ti == to) {
        switch (kiln_dtype_size(ti)) {
        case 1: return f(mv_bits<uint8_t>());
        case 2: return f(mv_bits<uint16_t>());
        case 4: return f(mv_bits<uint32_t>());
        case 8: return f(mv_bits<uint64_t>());
        default: break;
        }
    }
    if (is_flt(ti) && is_flt(to)) return f(mv_float{ti, to});
    return node_fail(L, KILN_ERR_UNSUPPORTED, "%s into %s is not supported", kiln_dtype_name(ti), kiln_dtype_name(to));
}

bool on_device(const kc_launch *L, int k) { return k < L->n_in && L->in[k].p != NULL; }

// an index normalized into [0, dim) (clamped when outside)
__device__ __forceinline__ int64_t fix_index(int64_t k, int64_t dim)
{
    if (k < 0) k += dim;
    return k < 0 ? 0 : k >= dim ? dim - 1 : k;
}

// ---------------------------------------------------------------- GatherND

struct gnd_params {
    int ro, q, b, k;
    int64_t n;
    int64_t od[MAXR], os[MAXR]; // output dims and strides
    int64_t dd[MAXR], ds[MAXR]; // data
    int64_t is[MAXR];           // indices' strides
    int idt;
};

template <class M>
__global__ void __launch_bounds__(BLOCK) gathernd_kernel(const __grid_constant__ gnd_params P, const void *data,
                                                         const void *idx, void *out, M mv)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < P.n; i += step) {
        int64_t c[MAXR], t = i, oo = 0;
        for (int d = P.ro - 1; d >= 0; d--) {
            c[d] = t % P.od[d];
            t /= P.od[d];
            oo += c[d] * P.os[d];
        }
        int64_t io = 0, doff = 0;
        for (int d = 0; d < P.q - 1; d++) io += c[d] * P.is[d];
        for (int d = 0; d < P.b; d++) doff += c[d] * P.ds[d];
        for (int m = 0; m < P.k; m++)
            doff += fix_index(ld_i(P.idt, idx, io + m * P.is[P.q - 1]), P.dd[P.b + m]) * P.ds[P.b + m];
        for (int d = P.q - 1; d < P.ro; d++) doff += c[d] * P.ds[P.b + P.k + d - (P.q - 1)];
        mv(out, oo, data, doff);
    }
}

// ---------------------------------------------------------------- ScatterND

struct snd_params {
    int q, k, ur, red, dt;
    int64_t rows, slice;        // update rows, elements per slice
    int64_t xd[MAXR], ys[MAXR]; // data dims, output strides
    int64_t ud[MAXR], us[MAXR]; // updates dims and strides (rank ur = q - 1 + r - k)
    int64_t is[MAXR];           // indices' strides
    int idt;
};

// output offset of update row u's slice start, and updates offset of row u
__device__ __forceinline__ void snd_row(const snd_params &P, const void *idx, int64_t u, int64_t *oo, int64_t *uo)
{
    int64_t t = u, io = 0, up = 0;
    for (int d = P.q - 2; d >= 0; d--) {
        int64_t c = t % P.ud[d];
        t /= P.ud[d];
        io += c * P.is[d];
        up += c * P.us[d];
    }
    int64_t o = 0;
    for (int m = 0; m < P.k; m++) o += fix_index(ld_i(P.idt, idx, io + m * P.is[P.q - 1]), P.xd[m]) * P.ys[m];
    *oo = o;
    *uo = up;
}

// element j of a slice: its offsets in the output and in an update row
__device__ __forceinline__ void snd_elem(const snd_params &P, int64_t j, int64_t *oo, int64_t *uo)
{
    int64_t t = j, o = 0, up = 0;
    for (int d = P.ur - 1; d >= P.q - 1; d--) {
        int64_t c = t % P.ud[d];
        t /= P.ud[d];
        up += c * P.us[d];
        o += c * P.ys[P.k + d - (P.q - 1)];
    }
    *oo = o;
    *uo = up;
}

template <class M>
__global__ void __launch_bounds__(BLOCK) scatter_kernel(const __grid_constant__ snd_params P, const void *idx,
                                                        const void *upd, void *out, M mv)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x, n = P.rows * P.slice;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += step) {
        int64_t ro, ru, eo, eu;
        snd_row(P, idx, i / P.slice, &ro, &ru);
        snd_elem(P, i % P.slice, &eo, &eu);
        mv(out, ro + eo, upd, ru + eu);
    }
}

__device__ __forceinline__ float red_f(int red, float a, float b)
{
    switch (red) {
    case KILN_RED_ADD: return a + b;
    case KILN_RED_MUL: return a * b;
    case KILN_RED_MAX: return isnan(a) || isnan(b) ? __int_as_float(0x7fc00000) : fmaxf(a, b);
    case KILN_RED_MIN: return isnan(a) || isnan(b) ? __int_as_float(0x7fc00000) : fminf(a, b);
    default: return b;
    }
}

__device__ __forceinline__ int64_t red_i(int red, int64_t a, int64_t b)
{
    switch (red) {
    case KILN_RED_ADD: return (int64_t)((uint64_t)a + (uint64_t)b);
    case KILN_RED_MUL: return (int64_t)((uint64_t)a * (uint64_t)b);
    case KILN_RED_MAX: return a > b ? a : b;
    case KILN_RED_MIN: return a < b ? a : b;
    default: return b;
    }
}

// one thread per slice element; the update rows in order
__global__ void __launch_bounds__(BLOCK) scatter_reduce_kernel(const __grid_constant__ snd_params P, const void *idx,
                                                               const void *upd, void *out, bool isf)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; j < P.slice; j += step) {
        int64_t eo, eu;
        snd_elem(P, j, &eo, &eu);
        for (int64_t u = 0; u < P.rows; u++) {
            int64_t ro, ru;
            snd_row(P, idx, u, &ro, &ru);
            int64_t o = ro + eo, s = ru + eu;
            if (isf)
                st_f(P.dt, out, o, red_f(P.red, ld_f(P.dt, out, o), ld_f(P.dt, upd, s)));
            else
                st_i(P.dt, out, o, red_i(P.red, ld_i(P.dt, out, o), ld_i(P.dt, upd, s)));
        }
    }
}

// ---------------------------------------------------------------- Trilu

struct trilu_params {
    int rank;
    bool upper;
    int64_t n, k;
    const void *k_dev; // k on the device (a tensor computed or fed at run time); NULL: P.k
    int k_dt;
    int64_t d[MAXR], xs[MAXR], ys[MAXR];
};

template <class M>
__global__ void __launch_bounds__(BLOCK) trilu_kernel(const __grid_constant__ trilu_params P, const void *in, void *out,
                                                      M mv)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    // k read once per thread from the device when it is a run-time tensor
    // (ONNX makes it a 0-D int64 input): no host copy, so graphs capture it
    const int64_t k = P.k_dev ? (P.k_dt == KILN_I32 ? (int64_t) * (const int32_t *)P.k_dev
                                                     : *(const int64_t *)P.k_dev)
                              : P.k;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < P.n; i += step) {
        int64_t t = i, xo = 0, yo = 0, row = 0, col = 0;
        for (int d = P.rank - 1; d >= 0; d--) {
            int64_t c = t % P.d[d];
            t /= P.d[d];
            xo += c * P.xs[d];
            yo += c * P.ys[d];
            if (d == P.rank - 1) col = c;
            if (d == P.rank - 2) row = c;
        }
        bool keep = P.upper ? col - row >= k : col - row <= k;
        if (keep)
            mv(out, yo, in, xo);
        else
            mv.zero(out, yo);
    }
}

// ---------------------------------------------------------------- OneHot

struct onehot_params {
    int rank, axis, idt;
    bool neg; // OneHot-11: [-depth, -1] counts from the end
    int64_t n, depth, vstride;
    int64_t od[MAXR], os[MAXR], is[MAXR]; // is: the indices' strides along the output's dims (0 on axis)
    uint64_t bits[2];                     // off / on in the output dtype, when values live on the host
};

template <class M>
__global__ void __launch_bounds__(BLOCK) onehot_kernel(const __grid_constant__ onehot_params P, const void *idx,
                                                       const void *vals, void *out, M mv)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < P.n; i += step) {
        int64_t t = i, oo = 0, io = 0, at = 0;
        for (int d = P.rank - 1; d >= 0; d--) {
            int64_t c = t % P.od[d];
            t /= P.od[d];
            oo += c * P.os[d];
            io += c * P.is[d];
            if (d == P.axis) at = c;
        }
        int64_t k = ld_index(P.idt, idx, io);
        if (k < 0 && P.neg && k != INT64_MIN) k += P.depth;
        bool on = k == at;
        if (vals)
            mv(out, oo, vals, on ? P.vstride : 0);
        else
            mv(out, oo, &P.bits[on], 0);
    }
}

// The bits of element 0 of (st, src) converted into dtype dst (host side).
void host_bits(kiln_dtype st, const void *src, int64_t i, kiln_dtype dst, uint64_t *bits)
{
    unsigned char b[8] = {0};
    if (kiln_dtype_is_float(dst)) {
        kiln_store_f64(dst, b, 0, kiln_load_f64(st, src, i));
    } else {
        int64_t x = kiln_dtype_is_float(st) ? (int64_t)kiln_load_f64(st, src, i) : kiln_load_i64(st, src, i);
        if (dst == KILN_BOOL)
            b[0] = x != 0;
        else
            memcpy(b, &x, kiln_dtype_size(dst)); /* little-endian: the low bytes */
    }
    memcpy(bits, b, 8);
}

} // namespace

// ---------------------------------------------------------------- ops

// GatherND-11/12/13: out[b.., r.., s..] = data[b.., indices[b.., r.., :], s..].
extern "C" kiln_status kiln_cuda_GatherND(const kc_launch *L)
{
    const kc_view *x = &L->in[0], *ix = &L->in[1], *y = &L->out[0];
    int r = x->rank, q = ix->rank, b = (int)L->n->params.gathernd.batch_dims;
    if (kc_view_numel(y) == 0) return KILN_OK;
    if (!on_device(L, 0) || !on_device(L, 1) || !y->p) return node_fail(L, KILN_ERR_UNSUPPORTED, "a tensor is not on the device");
    if (ix->dt != KILN_I64 && ix->dt != KILN_I32)
        return node_fail(L, KILN_ERR_UNSUPPORTED, "indices of dtype %s", kiln_dtype_name(ix->dt));
    if (q < 1 || b < 0 || b >= q || b >= r) return node_fail(L, KILN_ERR_INTERNAL, "ranks %d, %d, batch_dims %d", r, q, b);
    int k = (int)ix->d[q - 1];
    int ro = q - 1 + r - k - b;
    if (k < 1 || k > r - b || y->rank != ro) return node_fail(L, KILN_ERR_INTERNAL, "output rank %d, expected %d", y->rank, ro);
    for (int d = 0; d < b + k; d++)
        if (x->d[d] <= 0) return node_fail(L, KILN_ERR_INVALID_ARGUMENT, "indices into an empty axis %d", d);
    gnd_params P;
    memset(&P, 0, sizeof P);
    P.ro = ro;
    P.q = q;
    P.b = b;
    P.k = k;
    P.n = kc_view_numel(y);
    P.idt = ix->dt;
    for (int d = 0; d < ro; d++) {
        P.od[d] = y->d[d];
        P.os[d] = y->s[d];
    }
    for (int d = 0; d < r; d++) {
        P.dd[d] = x->d[d];
        P.ds[d] = x->s[d];
    }
    for (int d = 0; d < q; d++) P.is[d] = ix->s[d];
    return with_mover(L, x->dt, y->dt, [&](auto mv) {
        gathernd_kernel<<<grid_for(P.n), BLOCK, 0, L->stream>>>(P, x->p, ix->p, y->p, mv);
        return named(L, kc_check_launch("GatherND"));
    });
}

// ScatterND-11/13/16/18: out = data, then each index row's slice replaced
// by (or reduced with) its row of updates.
extern "C" kiln_status kiln_cuda_ScatterND(const kc_launch *L)
{
    const kc_view *x = &L->in[0], *ix = &L->in[1], *up = &L->in[2], *y = &L->out[0];
    kiln_scatter_red red = L->n->params.scatternd.reduction;
    kiln_status st;
    if (kc_view_numel(y) == 0) return KILN_OK;
    if (!on_device(L, 0) || !y->p) return node_fail(L, KILN_ERR_UNSUPPORTED, "a tensor is not on the device");
    if ((st = named(L, kc_copy(x, y, L->stream))) != KILN_OK) return st;
    int r = x->rank, q = ix->rank;
    if (q < 1 || ix->d[q - 1] < 1 || ix->d[q - 1] > r) return node_fail(L, KILN_ERR_INTERNAL, "indices of rank %d", q);
    int k = (int)ix->d[q - 1];
    snd_params P;
    memset(&P, 0, sizeof P);
    P.q = q;
    P.k = k;
    P.ur = q - 1 + r - k;
    P.red = red;
    P.dt = y->dt;
    P.idt = ix->dt;
    P.rows = 1;
    P.slice = 1;
    if (up->rank != P.ur) return node_fail(L, KILN_ERR_INTERNAL, "updates of rank %d, expected %d", up->rank, P.ur);
    for (int d = 0; d < r; d++) {
        P.xd[d] = x->d[d];
        P.ys[d] = y->s[d];
    }
    for (int d = 0; d < P.ur; d++) {
        P.ud[d] = up->d[d];
        P.us[d] = up->s[d];
        *(d < q - 1 ? &P.rows : &P.slice) *= up->d[d];
    }
    for (int d = 0; d < q; d++) P.is[d] = ix->s[d];
    if (P.rows * P.slice == 0) return KILN_OK;
    if (!on_device(L, 1) || !on_device(L, 2)) return node_fail(L, KILN_ERR_UNSUPPORTED, "indices or updates not on the device");
    if (ix->dt != KILN_I64 && ix->dt != KILN_I32)
        return node_fail(L, KILN_ERR_UNSUPPORTED, "indices of dtype %s", kiln_dtype_name(ix->dt));
    for (int d = 0; d < k; d++)
        if (x->d[d] <= 0) return node_fail(L, KILN_ERR_INVALID_ARGUMENT, "indices into an empty axis %d", d);
    if (red == KILN_RED_NONE)
        return with_mover(L, up->dt, y->dt, [&](auto mv) {
            scatter_kernel<<<grid_for(P.rows * P.slice), BLOCK, 0, L->stream>>>(P, ix->p, up->p, y->p, mv);
            return named(L, kc_check_launch("ScatterND"));
        });
    bool isf = is_flt(y->dt);
    if (up->dt != y->dt || (!isf && !is_int(y->dt)))
        return node_fail(L, KILN_ERR_UNSUPPORTED, "reduction of %s updates into %s", kiln_dtype_name(up->dt),
                         kiln_dtype_name(y->dt));
    scatter_reduce_kernel<<<grid_for(P.slice), BLOCK, 0, L->stream>>>(P, ix->p, up->p, y->p, isf);
    return named(L, kc_check_launch("ScatterND (reduction)"));
}

// Trilu-14: upper keeps [.., i, j] with j - i >= k, lower with j - i <= k.
extern "C" kiln_status kiln_cuda_Trilu(const kc_launch *L)
{
    const kc_view *x = &L->in[0], *y = &L->out[0];
    int r = x->rank;
    if (r < 2 || y->rank != r) return node_fail(L, KILN_ERR_INTERNAL, "input of rank %d", r);
    trilu_params P;
    memset(&P, 0, sizeof P);
    const kiln_value *kv = kiln_in(L->n, values(L), 1);
    if (kv && kv->data) {
        if (kiln_shape_numel(&kv->shape) != 1)
            return node_fail(L, KILN_ERR_SHAPE, "k '%s' must hold one value", kv->name);
        P.k = kiln_load_i64(kv->dtype, kv->data, 0);
    } else if (kv) {
        const kc_view *kd = L->n_in > 1 ? &L->in[1] : NULL;
        if (!kd || !kd->p || kc_view_numel(kd) != 1 || (kd->dt != KILN_I64 && kd->dt != KILN_I32))
            return node_fail(L, KILN_ERR_SHAPE, "k '%s' must be one int64 value on the device", kv->name);
        P.k_dev = kd->p;
        P.k_dt = kd->dt;
    }
    P.n = kc_view_numel(y);
    if (P.n == 0) return KILN_OK;
    if (!x->p || !y->p) return node_fail(L, KILN_ERR_INTERNAL, "a tensor is not on the device");
    P.rank = r;
    P.upper = L->n->params.trilu.upper;
    for (int d = 0; d < r; d++) {
        P.d[d] = y->d[d];
        P.xs[d] = x->s[d];
        P.ys[d] = y->s[d];
    }
    return with_mover(L, x->dt, y->dt, [&](auto mv) {
        trilu_kernel<<<grid_for(P.n), BLOCK, 0, L->stream>>>(P, x->p, y->p, mv);
        return named(L, kc_check_launch("Trilu"));
    });
}

// DepthToSpace: out [N, C', H*b, W*b] seen as [N, C', H, b1, W, b2]; the
// input channel is (b1*b + b2)*C' + c' (DCR) or c'*b*b + b1*b + b2 (CRD).
extern "C" kiln_status kiln_cuda_DepthToSpace(const kc_launch *L)
{
    const kc_view *x = &L->in[0], *y = &L->out[0];
    int64_t b = L->n->params.block.blocksize;
    if (x->rank != 4 || y->rank != 4 || b < 1) return node_fail(L, KILN_ERR_INTERNAL, "ranks %d, %d", x->rank, y->rank);
    int64_t cp = x->d[1] / (b * b);
    if (y->d[0] != x->d[0] || y->d[1] != cp || y->d[2] != x->d[2] * b || y->d[3] != x->d[3] * b)
        return node_fail(L, KILN_ERR_INTERNAL, "output dims disagree with the block size");
    if (kc_view_numel(y) == 0) return KILN_OK;
    bool crd = L->n->params.block.crd;
    kc_view vi = *x, vo = *y;
    vi.rank = vo.rank = 6;
    const int64_t dims[6] = {x->d[0], cp, x->d[2], b, x->d[3], b};
    const int64_t so[6] = {y->s[0], y->s[1], b * y->s[2], y->s[2], b * y->s[3], y->s[3]};
    const int64_t dcr[6] = {x->s[0], x->s[1], x->s[2], b * cp * x->s[1], x->s[3], cp * x->s[1]};
    const int64_t crds[6] = {x->s[0], b * b * x->s[1], x->s[2], b * x->s[1], x->s[3], x->s[1]};
    for (int i = 0; i < 6; i++) {
        vi.d[i] = vo.d[i] = dims[i];
        vo.s[i] = so[i];
        vi.s[i] = crd ? crds[i] : dcr[i];
    }
    return named(L, kc_copy(&vi, &vo, L->stream));
}

// SpaceToDepth: out [N, C*b*b, H/b, W/b] seen as [N, b1, b2, C, H', W'] is
// x[n, c, h'*b + b1, w'*b + b2].
extern "C" kiln_status kiln_cuda_SpaceToDepth(const kc_launch *L)
{
    const kc_view *x = &L->in[0], *y = &L->out[0];
    int64_t b = L->n->params.block.blocksize;
    if (x->rank != 4 || y->rank != 4 || b < 1) return node_fail(L, KILN_ERR_INTERNAL, "ranks %d, %d", x->rank, y->rank);
    int64_t c = x->d[1];
    if (y->d[0] != x->d[0] || y->d[1] != c * b * b || y->d[2] * b != x->d[2] || y->d[3] * b != x->d[3])
        return node_fail(L, KILN_ERR_INTERNAL, "output dims disagree with the block size");
    if (kc_view_numel(y) == 0) return KILN_OK;
    kc_view vi = *x, vo = *y;
    vi.rank = vo.rank = 6;
    const int64_t dims[6] = {x->d[0], b, b, c, y->d[2], y->d[3]};
    const int64_t so[6] = {y->s[0], b * c * y->s[1], c * y->s[1], y->s[1], y->s[2], y->s[3]};
    const int64_t si[6] = {x->s[0], x->s[2], x->s[3], x->s[1], b * x->s[2], b * x->s[3]};
    for (int i = 0; i < 6; i++) {
        vi.d[i] = vo.d[i] = dims[i];
        vo.s[i] = so[i];
        vi.s[i] = si[i];
    }
    return named(L, kc_copy(&vi, &vo, L->stream));
}

// OneHot-9/11: on_value where the index equals the coordinate on `axis`,
// off_value elsewhere. Depth is known on the host (it is a dim).
extern "C" kiln_status kiln_cuda_OneHot(const kc_launch *L)
{
    const kc_view *ix = &L->in[0], *vals = &L->in[2], *y = &L->out[0];
    int64_t depth;
    kiln_status st = kiln_onehot_depth(L->n, L->v, &depth);
    if (st != KILN_OK) return named(L, st);
    int r = ix->rank, axis;
    if ((st = kiln_axis(L->n->params.axis.axis, r + 1, &axis)) != KILN_OK) return named(L, st);
    if (y->rank != r + 1 || y->d[axis] != depth) return node_fail(L, KILN_ERR_INTERNAL, "output disagrees with depth");
    onehot_params P;
    memset(&P, 0, sizeof P);
    P.n = kc_view_numel(y);
    if (P.n == 0) return KILN_OK;
    if (!on_device(L, 0) || !y->p) return node_fail(L, KILN_ERR_UNSUPPORTED, "a tensor is not on the device");
    if (!is_flt(ix->dt) && !is_int(ix->dt))
        return node_fail(L, KILN_ERR_UNSUPPORTED, "indices of dtype %s", kiln_dtype_name(ix->dt));
    P.rank = r + 1;
    P.axis = axis;
    P.idt = ix->dt;
    P.neg = L->n->version >= 11;
    P.depth = depth;
    for (int d = 0, j = 0; d <= r; d++) {
        P.od[d] = y->d[d];
        P.os[d] = y->s[d];
        P.is[d] = d == axis ? 0 : ix->s[j++];
    }
    const void *vp = NULL;
    kiln_dtype vdt = y->dt;
    if (on_device(L, 2)) {
        if (vals->rank != 1 || vals->d[0] != 2) return node_fail(L, KILN_ERR_SHAPE, "values must be [off, on]");
        vp = vals->p;
        vdt = vals->dt;
        P.vstride = vals->s[0];
    } else {
        const kiln_value *vv = kiln_in(L->n, values(L), 2);
        if (!vv || !vv->data || kiln_shape_numel(&vv->shape) != 2)
            return node_fail(L, KILN_ERR_UNSUPPORTED, "values are neither on the device nor known");
        host_bits(vv->dtype, vv->data, 0, y->dt, &P.bits[0]);
        host_bits(vv->dtype, vv->data, 1, y->dt, &P.bits[1]);
    }
    return with_mover(L, vdt, y->dt, [&](auto mv) {
        onehot_kernel<<<grid_for(P.n), BLOCK, 0, L->stream>>>(P, ix->p, vp, y->p, mv);
        return named(L, kc_check_launch("OneHot"));
    });
}
