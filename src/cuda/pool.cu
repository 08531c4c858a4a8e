// Pooling kernels of the cuda backend: MaxPool, AveragePool (1-D to 6-D
// spatial windows) and GlobalAveragePool, GlobalMaxPool.
//
// Semantics are those of the reference kernels (src/ref/pool.c), which the
// GPU test suite compares against: window geometry from kiln_window_pool (so
// auto_pad and ceil_mode cannot disagree), the first maximum of a window in
// row-major window order wins (a NaN there sticks, a later NaN is skipped),
// and count_include_pad counts only positions inside the padded extent, not
// the ones a ceil_mode window runs past. Sums accumulate in f32.
//
// Every kernel indexes through the views' strides. Windowed pools give one
// output element to a thread, walked in the output's memory order, so NHWC
// stores (and loads) go channel-fastest and NCHW ones width-fastest.
#include <math.h>
#include <math_constants.h>
#include <stdint.h>

#include "cuda/kc_device.cuh"

extern "C" {
#include "ir/shape_conv.h"
}

namespace {

constexpr int MAXR = KILN_MAX_RANK;
constexpr int MAXSP = KILN_MAX_SPATIAL;
constexpr int BLOCK = 256;

using kc::is_float_dt;
using kc::tag;
using kc::with_float;

// Grid of one thread per element; false when it is beyond what a launch takes.
bool grid_1d(int64_t n, unsigned *blocks)
{
    int64_t b = (n + BLOCK - 1) / BLOCK;
    if (b > INT32_MAX) return false;
    *blocks = (unsigned)(b > 0 ? b : 1);
    return true;
}

// 32-bit index math when the index plus a block's overshoot cannot wrap.
bool fits_i32(int64_t n) { return n <= (int64_t)INT32_MAX - 4 * BLOCK; }

// ---------------------------------------------------------------- windowed

struct pool_params {
    int nwalk;             // output dims walked (extent > 1), slowest first
    int max_pool;
    int count_include_pad;
    int ksz;               // window positions
    int64_t total;         // output elements
    int64_t wd[MAXR];      // extent of each walked dim
    int64_t wys[MAXR];     // its output stride
    int64_t wxs[MAXR];     // its input stride for N and C, 0 for spatial dims
    int wsp[MAXR];         // its spatial index, -1 for N and C
    int in[MAXSP], kernel[MAXSP], stride[MAXSP], dil[MAXSP], pad_begin[MAXSP], pad_end[MAXSP];
    int64_t xs[MAXSP];     // input strides of the spatial dims
};

// Max of integer inputs is an integer; only an empty window (-inf) needs
// the saturation the reference applies.
template <typename T> __device__ __forceinline__ T pool_store(float v) { return kc_from_f32<T>(v); }
template <> __device__ __forceinline__ int8_t pool_store<int8_t>(float v) { return (int8_t)fminf(fmaxf(v, -128.f), 127.f); }
template <> __device__ __forceinline__ uint8_t pool_store<uint8_t>(float v) { return (uint8_t)fminf(fmaxf(v, 0.f), 255.f); }

template <int NSP, typename Tin, typename Tout, typename IndexT>
__global__ void __launch_bounds__(BLOCK) pool_kernel(const pool_params p, const Tin *__restrict__ x, Tout *__restrict__ y)
{
    IndexT i = (IndexT)blockIdx.x * (IndexT)BLOCK + (IndexT)threadIdx.x;
    if (i >= (IndexT)p.total) return;
    // window origin of every spatial dim; a dim of extent 1 is not walked
    // and sits at output coordinate 0
    int st[NSP];
#pragma unroll
    for (int s = 0; s < NSP; s++) st[s] = -p.pad_begin[s];
    int64_t xo = 0, yo = 0;
    IndexT rem = i;
#pragma unroll
    for (int q = MAXR - 1; q >= 0; q--) {
        if (q >= p.nwalk) continue;
        IndexT d = (IndexT)p.wd[q], c = rem % d;
        rem /= d;
        yo += (int64_t)c * p.wys[q];
        xo += (int64_t)c * p.wxs[q];
        // unrolled selection keeps st[] in registers
#pragma unroll
        for (int s = 0; s < NSP; s++)
            if (p.wsp[q] == s) st[s] = (int)c * p.stride[s] - p.pad_begin[s];
    }

    int k[NSP];
#pragma unroll
    for (int s = 0; s < NSP; s++) k[s] = 0;
    float acc = p.max_pool ? -CUDART_INF_F : 0.f;
    int valid = 0, counted = 0;
    for (int t = 0; t < p.ksz; t++) {
        bool inside = true, in_padded = true;
        int64_t off = xo;
#pragma unroll
        for (int s = 0; s < NSP; s++) {
            int pos = st[s] + k[s] * p.dil[s];
            inside = inside && pos >= 0 && pos < p.in[s];
            in_padded = in_padded && pos < p.in[s] + p.pad_end[s];
            off += (int64_t)pos * p.xs[s];
        }
        counted += in_padded;
        if (inside) {
            float v = kc_f32(x[off]);
            if (p.max_pool) {
                if (valid == 0 || v > acc) acc = v;
            } else {
                acc += v;
            }
            valid++;
        }
#pragma unroll
        for (int s = NSP - 1; s >= 0; s--) {
            if (++k[s] < p.kernel[s]) break;
            k[s] = 0;
        }
    }
    if (!p.max_pool) {
        int div = p.count_include_pad ? counted : valid;
        acc = div > 0 ? acc / (float)div : CUDART_NAN_F;
    }
    y[yo] = pool_store<Tout>(acc);
}

template <int NSP, typename Tin, typename Tout>
kiln_status pool_launch(const pool_params &p, const kc_view *x, const kc_view *y, unsigned blocks, cudaStream_t s)
{
    const Tin *xp = static_cast<const Tin *>(x->p);
    Tout *yp = static_cast<Tout *>(y->p);
    if (fits_i32(p.total))
        pool_kernel<NSP, Tin, Tout, int32_t><<<blocks, BLOCK, 0, s>>>(p, xp, yp);
    else
        pool_kernel<NSP, Tin, Tout, int64_t><<<blocks, BLOCK, 0, s>>>(p, xp, yp);
    return kc_check_launch(p.max_pool ? "MaxPool" : "AveragePool");
}

template <typename Tin, typename Tout>
kiln_status pool_nsp(int nsp, const pool_params &p, const kc_view *x, const kc_view *y, unsigned blocks, cudaStream_t s)
{
    switch (nsp) {
    case 1: return pool_launch<1, Tin, Tout>(p, x, y, blocks, s);
    case 2: return pool_launch<2, Tin, Tout>(p, x, y, blocks, s);
    case 3: return pool_launch<3, Tin, Tout>(p, x, y, blocks, s);
    case 4: return pool_launch<4, Tin, Tout>(p, x, y, blocks, s);
    case 5: return pool_launch<5, Tin, Tout>(p, x, y, blocks, s);
    default: return pool_launch<6, Tin, Tout>(p, x, y, blocks, s);
    }
}

// Dims of a view sorted by stride, largest first (a stable insertion sort:
// C order on ties), leaving out dims of extent 1.
int memory_order(const kc_view *v, int *order)
{
    int r = 0;
    for (int k = 0; k < v->rank; k++) {
        if (v->d[k] == 1) continue;
        int pos = r++;
        while (pos > 0 && v->s[order[pos - 1]] < v->s[k]) {
            order[pos] = order[pos - 1];
            pos--;
        }
        order[pos] = k;
    }
    return r;
}

kiln_status pool_run(const kc_launch *L, bool max_pool)
{
    const kiln_node *n = L->n;
    kiln_value *v = const_cast<kiln_value *>(L->v);
    if (max_pool && kiln_out(n, v, 1))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (MaxPool): output 1 (Indices) is not supported on the GPU",
                         n->name);
    const kc_view *x = &L->in[0], *y = &L->out[0];
    const kiln_value *xv = kiln_in(n, v, 0);
    if (!xv || !x->p || !y->p) return kiln_fail(KILN_ERR_INTERNAL, "node '%s' (%s): X or Y is not on the device", n->name, n->op_type);
    int nsp = x->rank - 2;
    if (nsp < 1 || nsp > MAXSP || y->rank != x->rank)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (%s): input of rank %d", n->name, n->op_type, x->rank);
    bool fl = is_float_dt(x->dt) && is_float_dt(y->dt);
    bool in8 = max_pool && x->dt == y->dt && (x->dt == KILN_I8 || x->dt == KILN_U8);
    if (!fl && !in8)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (%s): %s input, %s output is not supported on the GPU", n->name,
                         n->op_type, kiln_dtype_name(x->dt), kiln_dtype_name(y->dt));
    kiln_window w;
    kiln_status st = kiln_window_pool(n, &xv->shape, &w);
    if (st != KILN_OK) return kiln_fail_prefix(st, "node '%s' (%s): ", n->name, n->op_type);

    pool_params p = {};
    p.max_pool = max_pool;
    p.count_include_pad = n->params.pool.count_include_pad;
    int64_t ksz = 1;
    for (int s = 0; s < nsp; s++) {
        if (w.in[s] != x->d[s + 2] || w.out[s] != y->d[s + 2])
            return kiln_fail(KILN_ERR_INTERNAL, "node '%s' (%s): window of axis %d is %lld -> %lld, the views say %lld -> %lld",
                             n->name, n->op_type, s + 2, (long long)w.in[s], (long long)w.out[s],
                             (long long)x->d[s + 2], (long long)y->d[s + 2]);
        // every position a window reaches must fit the kernel's 32-bit math
        const int64_t lim = INT32_MAX / 4;
        int64_t reach = w.out[s] * w.stride[s] + (w.kernel[s] - 1) * w.dilation[s];
        if (w.in[s] > lim || w.kernel[s] > lim || w.stride[s] > lim || w.dilation[s] > lim || w.pad_begin[s] > lim ||
            w.pad_end[s] > lim || w.pad_begin[s] < 0 || w.pad_end[s] < 0 || w.out[s] > lim || reach > lim)
            return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (%s): window of axis %d is too large for the GPU kernel",
                             n->name, n->op_type, s + 2);
        p.in[s] = (int)w.in[s];
        p.kernel[s] = (int)w.kernel[s];
        p.stride[s] = (int)w.stride[s];
        p.dil[s] = (int)w.dilation[s];
        p.pad_begin[s] = (int)w.pad_begin[s];
        p.pad_end[s] = (int)w.pad_end[s];
        p.xs[s] = x->s[s + 2];
        ksz *= w.kernel[s];
    }
    if (ksz > INT32_MAX)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (%s): window of %lld positions", n->name, n->op_type, (long long)ksz);
    p.ksz = (int)ksz;
    p.total = kc_view_numel(y);
    if (p.total == 0) return KILN_OK;
    int order[MAXR];
    p.nwalk = memory_order(y, order);
    for (int q = 0; q < p.nwalk; q++) {
        int k = order[q];
        p.wd[q] = y->d[k];
        p.wys[q] = y->s[k];
        p.wxs[q] = k < 2 ? x->s[k] : 0;
        p.wsp[q] = k < 2 ? -1 : k - 2;
    }
    unsigned blocks;
    if (!grid_1d(p.total, &blocks))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (%s): %lld output elements", n->name, n->op_type, (long long)p.total);
    if (in8) {
        if (x->dt == KILN_I8) return pool_nsp<int8_t, int8_t>(nsp, p, x, y, blocks, L->stream);
        return pool_nsp<uint8_t, uint8_t>(nsp, p, x, y, blocks, L->stream);
    }
    return with_float(x->dt, [&](auto ti) {
        return with_float(y->dt, [&](auto to) {
            using Tin = typename decltype(ti)::type;
            using Tout = typename decltype(to)::type;
            return pool_nsp<Tin, Tout>(nsp, p, x, y, blocks, L->stream);
        });
    });
}

// ---------------------------------------------------------------- global

struct gpool_params {
    int64_t batch, C, sp;  // sp: spatial elements per (n, c) plane
    int64_t xs0, xs1, ys0, ys1;
    int nsd;               // spatial dims after merging (0: a single element)
    int64_t sd[MAXSP], ss[MAXSP];
    int lanes;             // plane kernel: threads per plane (32 or 256)
};

__device__ __forceinline__ int64_t sp_offset(const gpool_params &p, int64_t j)
{
    if (p.nsd == 1) return j * p.ss[0];
    if (p.nsd == 0) return 0;
    int64_t off = 0;
    for (int k = p.nsd - 1; k >= 0; k--) {
        off += (j % p.sd[k]) * p.ss[k];
        j /= p.sd[k];
    }
    return off;
}

// NaN is skipped, as the reference's `x > acc ? x : acc` skips it
template <bool MAX> __device__ __forceinline__ float gp_op(float a, float b) { return MAX ? fmaxf(a, b) : a + b; }

template <bool MAX> __device__ __forceinline__ float gp_finish(const gpool_params &p, float acc)
{
    if (MAX) return acc;
    return p.sp > 0 ? acc / (float)p.sp : CUDART_NAN_F;
}

// Channels-fastest inputs (NHWC): a block is 32 channels of one image, so
// every load of a warp is one contiguous run; blockDim.y threads split the
// spatial walk and meet in shared memory.
template <bool MAX, typename Tin, typename Tout>
__global__ void gpool_channels_kernel(const gpool_params p, const Tin *__restrict__ x, Tout *__restrict__ y)
{
    __shared__ float part[32][33];
    int tx = threadIdx.x, ty = threadIdx.y;
    int64_t ctiles = (p.C + 31) / 32;
    int64_t nb = blockIdx.x / ctiles;
    int64_t c = (blockIdx.x % ctiles) * 32 + tx;
    float acc = MAX ? -CUDART_INF_F : 0.f;
    if (c < p.C) {
        const Tin *xp = x + nb * p.xs0 + c * p.xs1;
        for (int64_t j = ty; j < p.sp; j += blockDim.y) acc = gp_op<MAX>(acc, kc_f32(xp[sp_offset(p, j)]));
    }
    part[ty][tx] = acc;
    __syncthreads();
    if (ty == 0 && c < p.C) {
        for (int k = 1; k < (int)blockDim.y; k++) acc = gp_op<MAX>(acc, part[k][tx]);
        y[nb * p.ys0 + c * p.ys1] = kc_from_f32<Tout>(gp_finish<MAX>(p, acc));
    }
}

// Spatial-fastest inputs (NCHW): p.lanes threads per plane (a warp, or the
// whole block for large planes) stride through it.
template <bool MAX, typename Tin, typename Tout>
__global__ void __launch_bounds__(BLOCK) gpool_planes_kernel(const gpool_params p, const Tin *__restrict__ x, Tout *__restrict__ y)
{
    __shared__ float part[BLOCK / 32];
    int tid = threadIdx.x, lane = tid % p.lanes;
    int64_t plane = (int64_t)blockIdx.x * (BLOCK / p.lanes) + tid / p.lanes;
    bool active = plane < p.batch * p.C;
    int64_t nb = 0, c = 0;
    float acc = MAX ? -CUDART_INF_F : 0.f;
    if (active) {
        nb = plane / p.C;
        c = plane % p.C;
        const Tin *xp = x + nb * p.xs0 + c * p.xs1;
        for (int64_t j = lane; j < p.sp; j += p.lanes) acc = gp_op<MAX>(acc, kc_f32(xp[sp_offset(p, j)]));
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) acc = gp_op<MAX>(acc, __shfl_xor_sync(0xffffffffu, acc, o));
    if (p.lanes > 32) {
        // one plane per block: warp 0 folds the warps' partials
        if ((tid & 31) == 0) part[tid >> 5] = acc;
        __syncthreads();
        if (tid < 32) {
            acc = tid < BLOCK / 32 ? part[tid] : (MAX ? -CUDART_INF_F : 0.f);
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) acc = gp_op<MAX>(acc, __shfl_xor_sync(0xffffffffu, acc, o));
        }
    }
    if (active && lane == 0) y[nb * p.ys0 + c * p.ys1] = kc_from_f32<Tout>(gp_finish<MAX>(p, acc));
}

template <bool MAX, typename Tin, typename Tout>
kiln_status gpool_launch(const gpool_params &p, bool channels_fast, const kc_view *x, const kc_view *y, cudaStream_t s)
{
    const Tin *xp = static_cast<const Tin *>(x->p);
    Tout *yp = static_cast<Tout *>(y->p);
    const char *name = MAX ? "GlobalMaxPool" : "GlobalAveragePool";
    if (channels_fast) {
        int64_t blocks = p.batch * ((p.C + 31) / 32);
        if (blocks > INT32_MAX) return kiln_fail(KILN_ERR_UNSUPPORTED, "%s: %lld blocks", name, (long long)blocks);
        // a few blocks over a large plane: more threads along the plane
        int by = p.sp <= 4 ? 1 : (blocks < 512 && p.sp >= 256 ? 32 : 8);
        gpool_channels_kernel<MAX, Tin, Tout><<<(unsigned)blocks, dim3(32, by), 0, s>>>(p, xp, yp);
    } else {
        int64_t per = BLOCK / p.lanes, blocks = (p.batch * p.C + per - 1) / per;
        if (blocks > INT32_MAX) return kiln_fail(KILN_ERR_UNSUPPORTED, "%s: %lld blocks", name, (long long)blocks);
        gpool_planes_kernel<MAX, Tin, Tout><<<(unsigned)blocks, BLOCK, 0, s>>>(p, xp, yp);
    }
    return kc_check_launch(name);
}

kiln_status global_run(const kc_launch *L, bool max_pool)
{
    const kiln_node *n = L->n;
    const kc_view *x = &L->in[0], *y = &L->out[0];
    if (!x->p || !y->p) return kiln_fail(KILN_ERR_INTERNAL, "node '%s' (%s): X or Y is not on the device", n->name, n->op_type);
    if (x->rank < 2 || y->rank != x->rank)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (%s): input of rank %d", n->name, n->op_type, x->rank);
    if (!is_float_dt(x->dt) || !is_float_dt(y->dt))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (%s): %s input, %s output is not supported on the GPU", n->name,
                         n->op_type, kiln_dtype_name(x->dt), kiln_dtype_name(y->dt));
    gpool_params p = {};
    p.batch = x->d[0];
    p.C = x->d[1];
    p.xs0 = x->s[0];
    p.xs1 = x->s[1];
    p.ys0 = y->s[0];
    p.ys1 = y->s[1];
    if (p.batch * p.C == 0) return KILN_OK;
    // spatial dims by stride, largest first, merged where they form one run
    int order[MAXSP], r = 0;
    p.sp = 1;
    for (int k = 2; k < x->rank; k++) {
        p.sp *= x->d[k];
        if (x->d[k] == 1) continue;
        int pos = r++;
        while (pos > 0 && x->s[order[pos - 1]] < x->s[k]) {
            order[pos] = order[pos - 1];
            pos--;
        }
        order[pos] = k;
    }
    int64_t min_sp_stride = INT64_MAX;
    for (int q = 0; q < r; q++) {
        int k = order[q];
        if (x->s[k] < min_sp_stride) min_sp_stride = x->s[k];
        if (p.nsd > 0 && p.ss[p.nsd - 1] == x->s[k] * x->d[k]) {
            p.sd[p.nsd - 1] *= x->d[k];
            p.ss[p.nsd - 1] = x->s[k];
            continue;
        }
        p.sd[p.nsd] = x->d[k];
        p.ss[p.nsd] = x->s[k];
        p.nsd++;
    }
    if (p.sp == 0) p.nsd = 0;
    bool channels_fast = r == 0 || (p.C > 1 && x->s[1] < min_sp_stride);
    p.lanes = p.sp >= 1024 ? BLOCK : 32;
    return with_float(x->dt, [&](auto ti) {
        return with_float(y->dt, [&](auto to) {
            using Tin = typename decltype(ti)::type;
            using Tout = typename decltype(to)::type;
            return max_pool ? gpool_launch<true, Tin, Tout>(p, channels_fast, x, y, L->stream)
                            : gpool_launch<false, Tin, Tout>(p, channels_fast, x, y, L->stream);
        });
    });
}

} // namespace

extern "C" kiln_status kiln_cuda_MaxPool(const kc_launch *L) { return pool_run(L, true); }
extern "C" kiln_status kiln_cuda_AveragePool(const kc_launch *L) { return pool_run(L, false); }
extern "C" kiln_status kiln_cuda_GlobalAveragePool(const kc_launch *L) { return global_run(L, false); }
extern "C" kiln_status kiln_cuda_GlobalMaxPool(const kc_launch *L) { return global_run(L, true); }
