// Normalizations over channels and spatial dims on the GPU: LRN (across
// channels), InstanceNormalization, GroupNormalization (versions 18: scale
// and bias per group, 21: per channel), and CumSum, with the semantics of
// the reference kernels (src/ref/norm.c). Float tensors compute in f32 on
// f32/f16/bf16 views (CumSum adds in f64, integers in i64).
//
// X is [N, C, D1, ...]; every kernel takes the views' strides as they are
// (NCHW or NHWC in, the output's own order out). The spatial dims of X and
// Y are merged where both step through them as one run (one dim for dense
// NCHW and NHWC alike), so a spatial offset is usually one multiplication.
#include <math.h>
#include <string.h>

#include <type_traits>

#include "cuda/kc_device.cuh"

namespace {

constexpr int MAXR = KILN_MAX_RANK;
constexpr int NORM_BLOCK = 256;
constexpr int NORM_MAX_GRID = 8192;

template <typename IndexT> __device__ __forceinline__ float load_float(const void *p, int dt, IndexT off)
{
    if (dt == KILN_F16) return __half2float(static_cast<const __half *>(p)[off]);
    if (dt == KILN_BF16) return __bfloat162float(static_cast<const __nv_bfloat16 *>(p)[off]);
    return static_cast<const float *>(p)[off];
}

// The spatial dims (2..rank-1) of X and Y, dims of 1 dropped and runs
// merged; S their product.
struct spatial {
    int ns;
    int64_t S;
    int64_t d[MAXR], sx[MAXR], sy[MAXR];
};

void make_spatial(const kc_view *x, const kc_view *y, spatial *sp)
{
    memset(sp, 0, sizeof *sp);
    sp->S = 1;
    for (int k = 2; k < x->rank; k++) {
        const int64_t d = x->d[k];
        sp->S *= d;
        if (d == 1) continue;
        const int q = sp->ns;
        if (q > 0 && sp->sx[q - 1] == x->s[k] * d && sp->sy[q - 1] == y->s[k] * d) {
            sp->d[q - 1] *= d;
            sp->sx[q - 1] = x->s[k];
            sp->sy[q - 1] = y->s[k];
            continue;
        }
        sp->d[q] = d;
        sp->sx[q] = x->s[k];
        sp->sy[q] = y->s[k];
        sp->ns++;
    }
}

template <typename IndexT>
__device__ __forceinline__ void spatial_offsets(const spatial &sp, IndexT s, IndexT *ox, IndexT *oy)
{
    if (sp.ns == 1) {
        *ox = s * (IndexT)sp.sx[0];
        *oy = s * (IndexT)sp.sy[0];
        return;
    }
    IndexT a = 0, b = 0;
    for (int q = sp.ns - 1; q >= 0; q--) {
        const IndexT c = s % (IndexT)sp.d[q];
        s /= (IndexT)sp.d[q];
        a += c * (IndexT)sp.sx[q];
        b += c * (IndexT)sp.sy[q];
    }
    *ox = a;
    *oy = b;
}

// Whether every offset into v (and n plus a grid's stride) fits in int32.
bool fits_i32(const kc_view *v, int64_t n)
{
    const double lim = (double)INT32_MAX - (double)NORM_MAX_GRID * 1024;
    if ((double)n > lim) return false;
    double span = 0;
    for (int k = 0; k < v->rank; k++)
        if (v->d[k] > 0) span += (double)(v->d[k] - 1) * fabs((double)v->s[k]);
    return span <= lim;
}

unsigned grid_for(int64_t n, int block)
{
    int64_t b = (n + block - 1) / block;
    return (unsigned)(b < NORM_MAX_GRID ? (b > 0 ? b : 1) : NORM_MAX_GRID);
}

kiln_status node_fail(const kc_launch *L, kiln_status st)
{
    return st == KILN_OK ? st : kiln_fail_prefix(st, "%s '%s': ", L->n->op_type, L->n->name);
}

// X and Y of one float dtype family, the same dims, rank >= 2, on the device.
kiln_status check_xy(const kc_launch *L, int min_rank)
{
    const kc_view *x = &L->in[0], *y = &L->out[0];
    if (!kc::is_float_dt(x->dt) || !kc::is_float_dt(y->dt))
        return node_fail(L, kiln_fail(KILN_ERR_UNSUPPORTED, "dtype %s is not supported by the cuda backend",
                                      kiln_dtype_name(kc::is_float_dt(x->dt) ? y->dt : x->dt)));
    if (x->rank < min_rank || x->rank != y->rank)
        return node_fail(L, kiln_fail(KILN_ERR_INTERNAL, "input rank %d, output rank %d", x->rank, y->rank));
    for (int k = 0; k < x->rank; k++)
        if (x->d[k] != y->d[k]) return node_fail(L, kiln_fail(KILN_ERR_INTERNAL, "input and output dims differ"));
    if (!x->p || !y->p) return node_fail(L, kiln_fail(KILN_ERR_INTERNAL, "X or Y is not on the device"));
    return KILN_OK;
}

// ---------------------------------------------------------------- LRN

struct lrn_args {
    spatial sp;
    const void *x;
    void *y;
    int x_dt;
    int64_t n, C, xs0, xs1, ys0, ys1;
    int before, after;
    float alpha_over_size, beta, bias;
};

// One thread per output element (n, c, s), s fastest: a warp reads and
// writes neighbouring pixels of NCHW tensors.
template <typename TO, typename IndexT> __global__ void __launch_bounds__(NORM_BLOCK) lrn_kernel(const __grid_constant__ lrn_args a)
{
    const IndexT n = (IndexT)a.n, S = (IndexT)a.sp.S, C = (IndexT)a.C, step = (IndexT)gridDim.x * NORM_BLOCK;
    for (IndexT i = (IndexT)(blockIdx.x * NORM_BLOCK + threadIdx.x); i < n; i += step) {
        const IndexT s = i % S, t = i / S, c = t % C, b = t / C;
        IndexT ox, oy;
        spatial_offsets<IndexT>(a.sp, s, &ox, &oy);
        const IndexT base = b * (IndexT)a.xs0 + ox;
        const IndexT lo = c - a.before < 0 ? 0 : c - a.before, hi = c + a.after > C - 1 ? C - 1 : c + a.after;
        float sq = 0.f;
        for (IndexT k = lo; k <= hi; k++) {
            const float v = load_float(a.x, a.x_dt, base + k * (IndexT)a.xs1);
            sq += v * v;
        }
        const float xv = load_float(a.x, a.x_dt, base + c * (IndexT)a.xs1);
        const float r = xv / powf(a.bias + a.alpha_over_size * sq, a.beta);
        static_cast<TO *>(a.y)[b * (IndexT)a.ys0 + c * (IndexT)a.ys1 + oy] = kc_from_f32<TO>(r);
    }
}

kiln_status lrn_run(const kc_launch *L)
{
    if (L->n_out < 1 || kc_view_numel(&L->out[0]) == 0) return KILN_OK;
    kiln_status st = check_xy(L, 2);
    if (st != KILN_OK) return st;
    const kiln_node *n = L->n;
    const int64_t size = n->params.lrn.size;
    if (size < 1 || size > INT32_MAX)
        return node_fail(L, kiln_fail(KILN_ERR_UNSUPPORTED, "size=%lld (must be 1 or more)", (long long)size));
    const kc_view *x = &L->in[0], *y = &L->out[0];
    lrn_args a;
    memset(&a, 0, sizeof a);
    make_spatial(x, y, &a.sp);
    a.x = x->p;
    a.y = y->p;
    a.x_dt = x->dt;
    a.n = kc_view_numel(y);
    a.C = x->d[1];
    a.xs0 = x->s[0];
    a.xs1 = x->s[1];
    a.ys0 = y->s[0];
    a.ys1 = y->s[1];
    a.before = (int)((size - 1) / 2); // floor((size-1)/2) channels before, ceil((size-1)/2) after
    a.after = (int)(size - 1 - a.before);
    a.alpha_over_size = n->params.lrn.alpha / (float)size;
    a.beta = n->params.lrn.beta;
    a.bias = n->params.lrn.bias;
    const bool i32 = fits_i32(x, a.n) && fits_i32(y, a.n);
    const unsigned grid = grid_for(a.n, NORM_BLOCK);
    return kc::with_float(y->dt, [&](auto t) {
        using TO = typename decltype(t)::type;
        if (i32)
            lrn_kernel<TO, int32_t><<<grid, NORM_BLOCK, 0, L->stream>>>(a);
        else
            lrn_kernel<TO, int64_t><<<grid, NORM_BLOCK, 0, L->stream>>>(a);
        return node_fail(L, kc_check_launch("LRN"));
    });
}

// ---------------------------------------------------------------- Instance / GroupNormalization

struct gn_args {
    spatial sp;
    const void *x, *scale, *bias;
    void *y;
    int x_dt, s_dt, b_dt;
    int per_group;          // GroupNormalization-18: scale and bias per group
    int64_t G, cg, len;     // groups, channels per group, elements per row (cg * S)
    int64_t xs0, xs1, ys0, ys1, ss, bs; // strides of X, Y (batch, channel), scale, bias
    float eps;
};

// The sum of v over the block; every thread gets it.
__device__ __forceinline__ float block_sum(float v, float *sm)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    __syncthreads(); // the previous sum's readers are done with sm
    if (lane == 0) sm[warp] = v;
    __syncthreads();
    float t = 0.f;
    for (int w = 0; w < nw; w++) t += sm[w];
    return t;
}

// One block per row (n, g): the mean, then the sum of squared deviations
// (the ref's two passes, re-reading the row), then Y.
template <typename TO, typename IndexT>
__global__ void __launch_bounds__(NORM_BLOCK) gn_kernel(const __grid_constant__ gn_args a)
{
    __shared__ float sm[32];
    const IndexT row = (IndexT)blockIdx.x, G = (IndexT)a.G, b = row / G, g = row % G;
    const IndexT len = (IndexT)a.len, S = (IndexT)a.sp.S, cg = (IndexT)a.cg;
    const IndexT xrow = b * (IndexT)a.xs0 + g * cg * (IndexT)a.xs1, yrow = b * (IndexT)a.ys0 + g * cg * (IndexT)a.ys1;
    auto xoff = [&](IndexT j, IndexT *oy) {
        const IndexT cl = j / S, s = j - cl * S;
        IndexT ox;
        spatial_offsets<IndexT>(a.sp, s, &ox, oy);
        *oy += yrow + cl * (IndexT)a.ys1;
        return xrow + cl * (IndexT)a.xs1 + ox;
    };
    float sum = 0.f;
    for (IndexT j = threadIdx.x; j < len; j += blockDim.x) {
        IndexT oy;
        sum += load_float(a.x, a.x_dt, xoff(j, &oy));
    }
    const float mean = block_sum(sum, sm) / (float)a.len; // 0/0: NaN for an empty row, as the ref
    float sq = 0.f;
    for (IndexT j = threadIdx.x; j < len; j += blockDim.x) {
        IndexT oy;
        const float d = load_float(a.x, a.x_dt, xoff(j, &oy)) - mean;
        sq += d * d;
    }
    const float inv = 1.f / sqrtf(block_sum(sq, sm) / (float)a.len + a.eps);
    for (IndexT j = threadIdx.x; j < len; j += blockDim.x) {
        IndexT oy;
        const float v = load_float(a.x, a.x_dt, xoff(j, &oy));
        const IndexT k = a.per_group ? g : g * cg + j / S;
        const float r = (v - mean) * inv * load_float(a.scale, a.s_dt, k * (IndexT)a.ss) +
                        load_float(a.bias, a.b_dt, k * (IndexT)a.bs);
        static_cast<TO *>(a.y)[oy] = kc_from_f32<TO>(r);
    }
}

kiln_status gn_run(const kc_launch *L, int64_t G, bool per_group)
{
    if (L->n_out < 1 || kc_view_numel(&L->out[0]) == 0) return KILN_OK;
    kiln_status st = check_xy(L, 2);
    if (st != KILN_OK) return st;
    const kc_view *x = &L->in[0], *y = &L->out[0];
    const int64_t C = x->d[1];
    if (G < 1 || C % G)
        return node_fail(L, kiln_fail(KILN_ERR_SHAPE, "%lld channels do not split into %lld groups", (long long)C,
                                      (long long)G));
    const int64_t np = per_group ? G : C;
    for (int k = 1; k <= 2; k++) {
        const kc_view *p = k < L->n_in ? &L->in[k] : nullptr;
        if (!p || !p->p || !kc::is_float_dt(p->dt) || p->rank != 1 || p->d[0] != np)
            return node_fail(L, kiln_fail(KILN_ERR_UNSUPPORTED, "%s must be a [%lld] float tensor on the device",
                                          k == 1 ? "scale" : "bias", (long long)np));
    }
    gn_args a;
    memset(&a, 0, sizeof a);
    make_spatial(x, y, &a.sp);
    a.x = x->p;
    a.y = y->p;
    a.scale = L->in[1].p;
    a.bias = L->in[2].p;
    a.x_dt = x->dt;
    a.s_dt = L->in[1].dt;
    a.b_dt = L->in[2].dt;
    a.per_group = per_group;
    a.G = G;
    a.cg = C / G;
    a.len = a.cg * a.sp.S;
    a.xs0 = x->s[0];
    a.xs1 = x->s[1];
    a.ys0 = y->s[0];
    a.ys1 = y->s[1];
    a.ss = L->in[1].s[0];
    a.bs = L->in[2].s[0];
    a.eps = L->n->params.norm.epsilon;
    const int64_t rows = x->d[0] * G;
    if (rows > INT32_MAX) return node_fail(L, kiln_fail(KILN_ERR_UNSUPPORTED, "%lld rows", (long long)rows));
    const int64_t numel = kc_view_numel(x);
    const bool i32 = fits_i32(x, numel) && fits_i32(y, numel);
    // short rows need fewer threads (a multiple of the warp size)
    const int block = a.len >= NORM_BLOCK ? NORM_BLOCK : a.len <= 32 ? 32 : (int)((a.len + 31) / 32 * 32);
    return kc::with_float(y->dt, [&](auto t) {
        using TO = typename decltype(t)::type;
        if (i32)
            gn_kernel<TO, int32_t><<<(unsigned)rows, block, 0, L->stream>>>(a);
        else
            gn_kernel<TO, int64_t><<<(unsigned)rows, block, 0, L->stream>>>(a);
        return node_fail(L, kc_check_launch(L->n->op_type));
    });
}

// ---------------------------------------------------------------- CumSum

struct cs_args {
    const void *x;
    void *y;
    int x_dt;
    int rank;                   // the dims other than the axis (extents of 1 dropped)
    int64_t lines, len, xa, ya; // lines, the axis' extent and strides
    int64_t d[MAXR], sx[MAXR], sy[MAXR];
    int exclusive, reverse;
};

__device__ __forceinline__ double cs_add(double a, double e) { return a + e; }
__device__ __forceinline__ int64_t cs_add(int64_t a, int64_t e) { return (int64_t)((uint64_t)a + (uint64_t)e); }

// One thread per line along the axis, adding in f64 (floats) or i64 with
// wrap-around (integers, C = int64_t).
template <typename C, typename TO> __global__ void __launch_bounds__(NORM_BLOCK) cumsum_kernel(const __grid_constant__ cs_args a)
{
    const int64_t step = (int64_t)gridDim.x * NORM_BLOCK;
    for (int64_t l = (int64_t)blockIdx.x * NORM_BLOCK + threadIdx.x; l < a.lines; l += step) {
        int64_t ox = 0, oy = 0, r = l;
        for (int k = a.rank - 1; k >= 0; k--) {
            const int64_t c = r % a.d[k];
            r /= a.d[k];
            ox += c * a.sx[k];
            oy += c * a.sy[k];
        }
        C acc = 0;
        for (int64_t q = 0; q < a.len; q++) {
            const int64_t at = a.reverse ? a.len - 1 - q : q;
            C e;
            if constexpr (std::is_same<C, int64_t>::value)
                e = a.x_dt == KILN_I32 ? (int64_t) static_cast<const int32_t *>(a.x)[ox + at * a.xa]
                                       : static_cast<const int64_t *>(a.x)[ox + at * a.xa];
            else
                e = (double)load_float(a.x, a.x_dt, ox + at * a.xa);
            if (!a.exclusive) acc = cs_add(acc, e);
            if constexpr (std::is_same<C, int64_t>::value)
                static_cast<TO *>(a.y)[oy + at * a.ya] = (TO)(uint64_t)acc;
            else
                static_cast<TO *>(a.y)[oy + at * a.ya] = kc_from_f32<TO>((float)acc);
            if (a.exclusive) acc = cs_add(acc, e);
        }
    }
}

kiln_status cumsum_run(const kc_launch *L)
{
    const kiln_node *n = L->n;
    if (L->n_out < 1 || kc_view_numel(&L->out[0]) == 0) return KILN_OK;
    const kc_view *x = &L->in[0], *y = &L->out[0];
    const kiln_value *ax = n->n_inputs > 1 && n->inputs[1] >= 0 ? &L->v[n->inputs[1]] : nullptr;
    if (!ax || !ax->data || kiln_shape_numel(&ax->shape) != 1)
        return node_fail(L, kiln_fail(KILN_ERR_UNSUPPORTED, "an axis computed on the device is not supported"));
    int axis;
    kiln_status st = kiln_axis(kiln_load_i64(ax->dtype, ax->data, 0), x->rank, &axis);
    if (st != KILN_OK) return node_fail(L, st);
    const bool ints = x->dt == KILN_I32 || x->dt == KILN_I64;
    if (ints ? !(y->dt == KILN_I32 || y->dt == KILN_I64) : !(kc::is_float_dt(x->dt) && kc::is_float_dt(y->dt)))
        return node_fail(L, kiln_fail(KILN_ERR_UNSUPPORTED, "dtype %s is not supported by the cuda backend",
                                      kiln_dtype_name(x->dt)));
    if (x->rank != y->rank || !x->p || !y->p)
        return node_fail(L, kiln_fail(KILN_ERR_INTERNAL, "X or Y is not on the device, or their ranks differ"));
    cs_args a;
    memset(&a, 0, sizeof a);
    a.x = x->p;
    a.y = y->p;
    a.x_dt = x->dt;
    a.len = x->d[axis];
    a.xa = x->s[axis];
    a.ya = y->s[axis];
    a.lines = 1;
    for (int k = 0; k < x->rank; k++) {
        if (k == axis || x->d[k] == 1) continue;
        a.d[a.rank] = x->d[k];
        a.sx[a.rank] = x->s[k];
        a.sy[a.rank] = y->s[k];
        a.rank++;
        a.lines *= x->d[k];
    }
    a.exclusive = n->params.cumsum.exclusive;
    a.reverse = n->params.cumsum.reverse;
    const unsigned grid = grid_for(a.lines, NORM_BLOCK);
    if (ints) {
        if (y->dt == KILN_I32)
            cumsum_kernel<int64_t, int32_t><<<grid, NORM_BLOCK, 0, L->stream>>>(a);
        else
            cumsum_kernel<int64_t, int64_t><<<grid, NORM_BLOCK, 0, L->stream>>>(a);
        return node_fail(L, kc_check_launch("CumSum"));
    }
    return kc::with_float(y->dt, [&](auto t) {
        using TO = typename decltype(t)::type;
        cumsum_kernel<double, TO><<<grid, NORM_BLOCK, 0, L->stream>>>(a);
        return node_fail(L, kc_check_launch("CumSum"));
    });
}

} // namespace

extern "C" kiln_status kiln_cuda_LRN(const kc_launch *L) { return lrn_run(L); }

extern "C" kiln_status kiln_cuda_InstanceNormalization(const kc_launch *L)
{
    return gn_run(L, L->in[0].rank > 1 ? L->in[0].d[1] : 1, false);
}

extern "C" kiln_status kiln_cuda_GroupNormalization(const kc_launch *L)
{
    return gn_run(L, L->n->params.norm.num_groups, L->n->version < 21);
}

extern "C" kiln_status kiln_cuda_CumSum(const kc_launch *L) { return cumsum_run(L); }
