// Resize (opsets 13, 18, 19) on the GPU: nearest (every nearest_mode),
// linear and cubic (over any set of axes, with antialias, exclude_outside,
// cubic_coeff_a), every coordinate_transformation_mode including
// tf_crop_and_resize, scales or sizes, axes, keep_aspect_ratio_policy.
//
// The oracle is src/ref/resize.c (itself onnx/reference/ops/op_resize.py);
// its parameter resolution is repeated here on the host and its coordinate
// math on the device, step by step. Nearest picks a pixel from the rounding
// of an input coordinate, so that coordinate must be the ref's bit for bit:
// it is computed in f64 with __dmul_rn, which nvcc never contracts into an
// fma (the ref's host build has no fma either).
//
// Two kernels: a small one fills a table per resized axis in the workspace
// (for each output coordinate, its taps' input indices and weights, or -1:
// tf_crop_and_resize sampled outside, the output is extrapolation_value),
// then one thread per output element, walked in the output's memory order
// (channel-fastest for NHWC), gathers the tensor product of its axes' taps.
// The ref interpolates one axis at a time in f64; the product of the same
// weights is the same sum, here in f32.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <type_traits>

#include "cuda/kc_device.cuh"

namespace {

constexpr int MAXR = KILN_MAX_RANK;
constexpr int BLOCK = 256;

// The attributes, parsed once (n->params.resize, src/ir/params_resize.c),
// under this file's short names.
enum { RS_NEAREST = KILN_RESIZE_NEAREST, RS_LINEAR = KILN_RESIZE_LINEAR, RS_CUBIC = KILN_RESIZE_CUBIC };
enum {
    CT_HALF_PIXEL = KILN_RESIZE_HALF_PIXEL,
    CT_HALF_PIXEL_SYM = KILN_RESIZE_HALF_PIXEL_SYMMETRIC,
    CT_PYTORCH = KILN_RESIZE_PYTORCH_HALF_PIXEL,
    CT_ALIGN = KILN_RESIZE_ALIGN_CORNERS,
    CT_ASYM = KILN_RESIZE_ASYMMETRIC,
    CT_TF_CROP = KILN_RESIZE_TF_CROP_AND_RESIZE
};
enum {
    NM_PREFER_FLOOR = KILN_RESIZE_ROUND_PREFER_FLOOR,
    NM_PREFER_CEIL = KILN_RESIZE_ROUND_PREFER_CEIL,
    NM_FLOOR = KILN_RESIZE_FLOOR,
    NM_CEIL = KILN_RESIZE_CEIL
};

using kc::is_float_dt;
using kc::tag;
using kc::with_float;

// ---------------------------------------------------------------- host: parameters

// One resized axis: its geometry and where its table rows start.
struct rs_axis {
    int axis;
    int taps;       // table entries per output coordinate
    int64_t in, out;
    int64_t toff;   // first table entry of this axis
    double scale, roi_lo, roi_hi;
};

struct rs_cfg {
    int mode, ctm, nearest;
    double cubic_a, extrapolation;
    bool exclude_outside, antialias;
    int rank;
    int64_t in[MAXR], out[MAXR];
    double scale[MAXR], roi_lo[MAXR], roi_hi[MAXR];
    int nres;             // axes the interpolation changes
    rs_axis ax[MAXR];
    int64_t entries;      // table entries over all resized axes
};

void parse_attrs(const kiln_node *n, rs_cfg *c)
{
    const kiln_resize_params *p = &n->params.resize;
    c->mode = (int)p->mode;
    c->ctm = (int)p->ctm;
    c->nearest = (int)p->nearest_mode;
    c->cubic_a = p->cubic_coeff_a;
    c->extrapolation = p->extrapolation_value;
    c->exclude_outside = p->exclude_outside;
    c->antialias = p->antialias && c->mode != RS_NEAREST;
}

// Per-axis scale and roi as the ref's resolve_params gives them.
kiln_status resolve_params(const kiln_node *n, kiln_value *v, rs_cfg *c)
{
    const kiln_value *x = kiln_in(n, v, 0), *roi = kiln_in(n, v, 1), *sc = kiln_in(n, v, 2), *sz = kiln_in(n, v, 3);
    const kiln_value *y = kiln_out(n, v, 0);
    if (!x || !y) return kiln_fail(KILN_ERR_INTERNAL, "node '%s' (Resize): X or Y is missing", n->name);
    int r = x->shape.rank;
    if (r < 0 || y->shape.rank != r)
        return kiln_fail(KILN_ERR_INTERNAL, "node '%s' (Resize): output rank %d, input rank %d", n->name, y->shape.rank, r);
    c->rank = r;
    int axes[MAXR];
    const int64_t *ax = n->params.resize.axes;
    int k = n->params.resize.n_axes;
    if (k > r) return kiln_fail(KILN_ERR_SHAPE, "node '%s' (Resize): %d axes for rank %d", n->name, k, r);
    for (int i = 0; i < k; i++)
        if (kiln_axis(ax[i], r, &axes[i]) != KILN_OK)
            return kiln_fail(KILN_ERR_SHAPE, "node '%s' (Resize): attribute 'axes' is out of range", n->name);
    if (!k) {
        k = r;
        for (int i = 0; i < r; i++) axes[i] = i;
    }
    for (int i = 0; i < r; i++) {
        c->in[i] = x->shape.d[i];
        c->out[i] = y->shape.d[i];
        c->scale[i] = 1.0;
        c->roi_lo[i] = 0.0;
        c->roi_hi[i] = 1.0;
    }
    int64_t nsc = sc && sc->data ? kiln_shape_numel(&sc->shape) : 0;
    if (nsc > 0) {
        if (nsc != k)
            return kiln_fail(KILN_ERR_SHAPE, "node '%s' (Resize): input '%s' has %lld elements, expected %d", n->name,
                             sc->name, (long long)nsc, k);
        for (int i = 0; i < k; i++) c->scale[axes[i]] = kiln_load_f64(sc->dtype, sc->data, i);
    } else {
        if (!sz || !sz->data || kiln_shape_numel(&sz->shape) != k)
            return kiln_fail(KILN_ERR_SHAPE, "node '%s' (Resize): needs %d constant scales or sizes", n->name, k);
        for (int i = 0; i < k; i++) {
            int a = axes[i];
            if (c->in[a] == 0 && c->out[a] > 0)
                return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "node '%s' (Resize): input '%s' axis %d is empty and cannot "
                                 "be resized to %lld", n->name, x->name, a, (long long)c->out[a]);
            c->scale[a] = c->in[a] ? (double)kiln_load_i64(sz->dtype, sz->data, i) / (double)c->in[a] : 1.0;
        }
        kiln_resize_aspect kar = n->params.resize.keep_aspect_ratio_policy;
        if (kar != KILN_RESIZE_STRETCH) {
            bool larger = kar == KILN_RESIZE_NOT_SMALLER;
            double s = c->scale[axes[0]];
            for (int i = 1; i < k; i++) s = larger ? fmax(s, c->scale[axes[i]]) : fmin(s, c->scale[axes[i]]);
            for (int i = 0; i < k; i++) c->scale[axes[i]] = s;
        }
    }
    if (c->ctm == CT_TF_CROP) {
        if (!roi || !roi->data || kiln_shape_numel(&roi->shape) != 2 * k)
            return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "node '%s' (Resize): tf_crop_and_resize needs a constant 'roi' "
                             "with %d values", n->name, 2 * k);
        for (int i = 0; i < k; i++) {
            c->roi_lo[axes[i]] = kiln_load_f64(roi->dtype, roi->data, i);
            c->roi_hi[axes[i]] = kiln_load_f64(roi->dtype, roi->data, k + i);
        }
    }
    return KILN_OK;
}

// Taps per output coordinate in the table: nearest keeps only the pixel it
// picks; the rest as the ref's n_taps.
int n_taps(const rs_cfg *c, double s)
{
    if (c->mode == RS_NEAREST) return 1;
    if (!c->antialias) return c->mode == RS_LINEAR ? 2 : 4;
    s = fmin(s, 1.0);
    double reach = c->mode == RS_LINEAR ? 1.0 : 2.0;
    double start = floor(-reach / s) + 1.0;
    double n = 2.0 - 2.0 * start;
    return n > 1 << 20 ? -1 : (int)n;
}

// An axis the ref leaves alone (every mode maps y to y there).
bool axis_identity(const rs_cfg *c, int a)
{
    return c->scale[a] == 1.0 && c->in[a] == c->out[a] &&
           (c->ctm != CT_TF_CROP || (c->roi_lo[a] == 0.0 && c->roi_hi[a] == 1.0));
}

kiln_status build_cfg(const kc_launch *L, rs_cfg *c)
{
    const kiln_node *n = L->n;
    kiln_value *v = const_cast<kiln_value *>(L->v);
    memset(c, 0, sizeof *c);
    parse_attrs(n, c);
    kiln_status st = resolve_params(n, v, c);
    if (st != KILN_OK) return st;
    c->entries = 0;
    for (int a = 0; a < c->rank; a++) {
        if (axis_identity(c, a)) continue;
        int taps = n_taps(c, c->scale[a]);
        if (taps < 0 || c->in[a] > INT32_MAX || c->out[a] > INT32_MAX)
            return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (Resize): axis %d (%lld -> %lld, scale %g) is beyond the "
                             "GPU kernel", n->name, a, (long long)c->in[a], (long long)c->out[a], c->scale[a]);
        rs_axis *x = &c->ax[c->nres++];
        x->axis = a;
        x->taps = taps;
        x->in = c->in[a];
        x->out = c->out[a];
        x->toff = c->entries;
        x->scale = c->scale[a];
        x->roi_lo = c->roi_lo[a];
        x->roi_hi = c->roi_hi[a];
        c->entries += c->out[a] * taps;
    }
    return KILN_OK;
}

size_t align16(size_t b) { return (b + 15) & ~(size_t)15; }

// Workspace: int32 indices, then f32 weights (linear and cubic), plus
// slack to align the base.
size_t ws_bytes(const rs_cfg *c)
{
    size_t e = (size_t)c->entries;
    return 16 + align16(e * sizeof(int32_t)) + (c->mode == RS_NEAREST ? 0 : align16(e * sizeof(float)));
}

// ---------------------------------------------------------------- device: tables

struct rs_table_params {
    int mode, ctm, nearest, exclude_outside, antialias;
    double cubic_a;
    int nres;
    int64_t rows;         // output coordinates over all resized axes
    rs_axis ax[MAXR];
};

// The ref's x_original, operation for operation.
__device__ double x_original(int ctm, const rs_axis &a, int64_t y, bool *outside)
{
    double in = (double)a.in, s = a.scale, ow = __dmul_rn(s, in), yd = (double)y;
    *outside = false;
    switch (ctm) {
    case CT_ALIGN: return ow == 1.0 ? 0.0 : __dmul_rn(yd, in - 1.0) / (ow - 1.0);
    case CT_ASYM: return yd / s;
    case CT_PYTORCH: return ow == 1.0 ? -0.5 : (yd + 0.5) / s - 0.5;
    case CT_HALF_PIXEL: return (yd + 0.5) / s - 0.5;
    case CT_HALF_PIXEL_SYM: {
        double offset = __dmul_rn(in / 2.0, 1.0 - (double)a.out / ow);
        return offset + (yd + 0.5) / s - 0.5;
    }
    default: { // CT_TF_CROP
        double lo = a.roi_lo, hi = a.roi_hi, x;
        x = ow == 1.0 ? __dmul_rn(hi - lo, in - 1.0) / 2.0 : __dmul_rn(__dmul_rn(yd, hi - lo), in - 1.0) / (ow - 1.0);
        x = x + __dmul_rn(lo, in - 1.0);
        *outside = x < 0.0 || x > in - 1.0;
        return x;
    }
    }
}

// The ref's window_start: first of the n taps nearest to x.
__device__ int64_t window_start(double x, int n)
{
    double xp = x + (double)(n / 2);
    double p = floor(xp);
    int64_t start = (int64_t)p - n / 2 + (xp == p ? 0 : 1);
    return start - n / 2;
}

__device__ double cubic_kernel(double x, double a)
{
    x = fabs(x);
    if (x <= 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    return 0.0;
}

// Weight of tap k before any normalization (the ref's tap_weights).
__device__ double raw_weight(const rs_table_params &p, double ratio, double s, int n, int k)
{
    if (!p.antialias) {
        if (p.mode == RS_LINEAR) return k == 0 ? 1.0 - ratio : ratio;
        return cubic_kernel((double)(k - 1) - ratio, p.cubic_a);
    }
    s = fmin(s, 1.0);
    double t = ((double)(1 - n / 2 + k) - ratio) * s;
    return p.mode == RS_LINEAR ? fmin(fmax(1.0 - fabs(t), 0.0), 1.0) : cubic_kernel(t, p.cubic_a);
}

__global__ void rs_table_kernel(const rs_table_params p, int32_t *__restrict__ idx, float *__restrict__ wt)
{
    int64_t g = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (g >= p.rows) return;
    int r = 0;
    while (r < p.nres - 1 && g >= p.ax[r].out) g -= p.ax[r++].out;
    const rs_axis a = p.ax[r];
    int64_t y = g;
    int n = a.taps;
    int32_t *ix = idx + a.toff + y * n;
    float *w = wt ? wt + a.toff + y * n : nullptr;
    bool outside;
    double x = x_original(p.ctm, a, y, &outside);
    if (outside) {
        for (int k = 0; k < n; k++) {
            ix[k] = k == 0 ? -1 : 0;
            if (w) w[k] = 0.f;
        }
        return;
    }
    double fl = floor(x), ratio = x == fl ? 1.0 : x - fl;
    int64_t last = a.in - 1;
    if (p.mode == RS_NEAREST) {
        bool right;
        if (ratio == 1.0) right = true; // integer x_ori: that very pixel
        else if (p.nearest == NM_PREFER_FLOOR) right = ratio > 0.5;
        else if (p.nearest == NM_PREFER_CEIL) right = ratio >= 0.5;
        else right = p.nearest == NM_CEIL;
        int64_t j = window_start(x, 2) + (right ? 1 : 0);
        ix[0] = (int32_t)(j < 0 ? 0 : j > last ? last : j);
        return;
    }
    int64_t start = window_start(x, n);
    double norm = 1.0;
    if (p.antialias) {
        double sum = 0.0;
        for (int k = 0; k < n; k++) sum += raw_weight(p, ratio, a.scale, n, k);
        norm = sum;
    }
    double keep = 1.0; // exclude_outside: the weights left inside, renormalized
    if (p.exclude_outside) {
        double sum = 0.0;
        for (int k = 0; k < n; k++) {
            int64_t j = start + k;
            if (j >= 0 && j <= last) sum += raw_weight(p, ratio, a.scale, n, k) / norm;
        }
        keep = sum;
    }
    for (int k = 0; k < n; k++) {
        int64_t j = start + k;
        double wk = raw_weight(p, ratio, a.scale, n, k) / norm;
        if (p.exclude_outside) {
            if (j < 0 || j > last) wk = 0.0;
            if (keep != 0.0) wk /= keep;
        }
        w[k] = (float)wk;
        ix[k] = (int32_t)(j < 0 ? 0 : j > last ? last : j);
    }
}

// ---------------------------------------------------------------- device: gather

struct rs_params {
    int64_t total;
    int nwalk;              // output dims walked (extent > 1), slowest first
    int nres;
    int64_t wd[MAXR], wys[MAXR];
    int64_t wxs[MAXR];      // input stride of a kept dim, 0 for a resized one
    int wres[MAXR];         // resized slot of a walked dim, -1 if kept
    int taps[MAXR];         // per resized slot
    int64_t toff[MAXR];
    int64_t rxs[MAXR];      // input stride of a resized slot
    int64_t combos;         // product of taps
    uint64_t fill_bits;     // nearest: extrapolation_value stored as the output dtype
    float fill;             // linear / cubic: extrapolation_value, stored through rs_store
};

// Interpolated integers round half to even and saturate (the ref's
// saturate_cast); NaN becomes 0.
template <typename T> __device__ __forceinline__ T rs_store(float v) { return kc_from_f32<T>(v); }
template <> __device__ __forceinline__ uint8_t rs_store<uint8_t>(float v)
{
    return isnan(v) ? 0 : (uint8_t)fminf(fmaxf(rintf(v), 0.f), 255.f);
}
template <> __device__ __forceinline__ int8_t rs_store<int8_t>(float v)
{
    return isnan(v) ? 0 : (int8_t)fminf(fmaxf(rintf(v), -128.f), 127.f);
}

template <typename Tout, typename Tin> __device__ __forceinline__ Tout rs_copy(Tin v)
{
    if constexpr (std::is_same<Tin, Tout>::value)
        return v;
    else
        return kc_from_f32<Tout>(kc_f32(v));
}

template <bool INTERP, typename Tin, typename Tout, typename IndexT>
__global__ void __launch_bounds__(BLOCK) rs_kernel(const rs_params p, const Tin *__restrict__ x, Tout *__restrict__ y,
                                                   const int32_t *__restrict__ tidx, const float *__restrict__ tw)
{
    IndexT i = (IndexT)blockIdx.x * (IndexT)BLOCK + (IndexT)threadIdx.x;
    if (i >= (IndexT)p.total) return;
    int64_t xo = 0, yo = 0;
    int yc[MAXR];
#pragma unroll
    for (int r = 0; r < MAXR; r++) yc[r] = 0;
    IndexT rem = i;
#pragma unroll
    for (int q = MAXR - 1; q >= 0; q--) {
        if (q >= p.nwalk) continue;
        IndexT d = (IndexT)p.wd[q], c = rem % d;
        rem /= d;
        yo += (int64_t)c * p.wys[q];
        xo += (int64_t)c * p.wxs[q];
#pragma unroll
        for (int r = 0; r < MAXR; r++)
            if (p.wres[q] == r) yc[r] = (int)c;
    }
    int64_t row[MAXR];
    bool outside = false;
#pragma unroll
    for (int r = 0; r < MAXR; r++) {
        row[r] = 0;
        if (r < p.nres) {
            row[r] = p.toff[r] + (int64_t)yc[r] * p.taps[r];
            outside = outside || tidx[row[r]] < 0;
        }
    }
    if constexpr (!INTERP) {
        if (outside) {
            Tout f;
            memcpy(&f, &p.fill_bits, sizeof f);
            y[yo] = f;
            return;
        }
        int64_t off = xo;
#pragma unroll
        for (int r = 0; r < MAXR; r++)
            if (r < p.nres) off += (int64_t)tidx[row[r]] * p.rxs[r];
        y[yo] = rs_copy<Tout>(x[off]);
    } else {
        if (outside) {
            y[yo] = rs_store<Tout>(p.fill);
            return;
        }
        int t[MAXR];
#pragma unroll
        for (int r = 0; r < MAXR; r++) t[r] = 0;
        float acc = 0.f;
        for (int64_t cb = 0; cb < p.combos; cb++) {
            float w = 1.f;
            int64_t off = xo;
#pragma unroll
            for (int r = 0; r < MAXR; r++)
                if (r < p.nres) {
                    int64_t e = row[r] + t[r];
                    w *= tw[e];
                    off += (int64_t)tidx[e] * p.rxs[r];
                }
            acc += w * kc_f32(x[off]);
#pragma unroll
            for (int r = MAXR - 1; r >= 0; r--) {
                if (r >= p.nres) continue;
                if (++t[r] < p.taps[r]) break;
                t[r] = 0;
            }
        }
        y[yo] = rs_store<Tout>(acc);
    }
}

template <bool INTERP, typename Tin, typename Tout>
kiln_status rs_launch(const rs_params &p, const kc_view *x, const kc_view *y, const int32_t *tidx, const float *tw,
                      cudaStream_t s)
{
    int64_t blocks = (p.total + BLOCK - 1) / BLOCK;
    if (blocks > INT32_MAX) return kiln_fail(KILN_ERR_UNSUPPORTED, "Resize: %lld output elements", (long long)p.total);
    const Tin *xp = static_cast<const Tin *>(x->p);
    Tout *yp = static_cast<Tout *>(y->p);
    if (p.total <= (int64_t)INT32_MAX - 4 * BLOCK)
        rs_kernel<INTERP, Tin, Tout, int32_t><<<(unsigned)blocks, BLOCK, 0, s>>>(p, xp, yp, tidx, tw);
    else
        rs_kernel<INTERP, Tin, Tout, int64_t><<<(unsigned)blocks, BLOCK, 0, s>>>(p, xp, yp, tidx, tw);
    return kc_check_launch("Resize");
}

kiln_status resize_run(const kc_launch *L)
{
    const kiln_node *n = L->n;
    const kc_view *x = &L->in[0], *y = &L->out[0];
    rs_cfg c;
    kiln_status st = build_cfg(L, &c);
    if (st != KILN_OK) return st;
    if (x->rank != c.rank || y->rank != c.rank)
        return kiln_fail(KILN_ERR_INTERNAL, "node '%s' (Resize): views of rank %d / %d, values of rank %d", n->name,
                         x->rank, y->rank, c.rank);
    for (int a = 0; a < c.rank; a++)
        if (x->d[a] != c.in[a] || y->d[a] != c.out[a])
            return kiln_fail(KILN_ERR_INTERNAL, "node '%s' (Resize): axis %d views %lld -> %lld, values %lld -> %lld",
                             n->name, a, (long long)x->d[a], (long long)y->d[a], (long long)c.in[a], (long long)c.out[a]);
    int64_t total = kc_view_numel(y);
    if (total == 0) return KILN_OK;
    if (!x->p || !y->p) return kiln_fail(KILN_ERR_INTERNAL, "node '%s' (Resize): X or Y is not on the device", n->name);

    bool interp = c.mode != RS_NEAREST;
    bool ok;
    if (!interp)
        ok = x->dt == y->dt ? kiln_dtype_size(x->dt) > 0 : is_float_dt(x->dt) && is_float_dt(y->dt);
    else
        ok = (is_float_dt(x->dt) && is_float_dt(y->dt)) || (x->dt == y->dt && (x->dt == KILN_U8 || x->dt == KILN_I8));
    if (!ok)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (Resize): mode '%s' from %s to %s is not supported on the GPU",
                         n->name, kiln_resize_mode_name(n->params.resize.mode), kiln_dtype_name(x->dt),
                         kiln_dtype_name(y->dt));

    // the tables, carved from the workspace
    size_t need = ws_bytes(&c);
    if (c.entries > 0 && (!L->ws || L->ws_bytes < need))
        return kiln_fail(KILN_ERR_INTERNAL, "node '%s' (Resize): workspace of %zu bytes, %zu needed", n->name, L->ws_bytes,
                         need);
    int32_t *tidx = nullptr;
    float *tw = nullptr;
    if (c.entries > 0) {
        uintptr_t base = ((uintptr_t)L->ws + 15) & ~(uintptr_t)15;
        tidx = reinterpret_cast<int32_t *>(base);
        if (interp) tw = reinterpret_cast<float *>(base + align16((size_t)c.entries * sizeof(int32_t)));
        rs_table_params tp = {};
        tp.mode = c.mode;
        tp.ctm = c.ctm;
        tp.nearest = c.nearest;
        tp.exclude_outside = c.exclude_outside;
        tp.antialias = c.antialias;
        tp.cubic_a = c.cubic_a;
        tp.nres = c.nres;
        for (int r = 0; r < c.nres; r++) {
            tp.ax[r] = c.ax[r];
            tp.rows += c.ax[r].out;
        }
        if (tp.rows > 0) {
            rs_table_kernel<<<(unsigned)((tp.rows + 127) / 128), 128, 0, L->stream>>>(tp, tidx, tw);
            st = kc_check_launch("Resize tables");
            if (st != KILN_OK) return st;
        }
    }

    rs_params p = {};
    p.total = total;
    p.nres = c.nres;
    p.combos = 1;
    int slot[MAXR];
    for (int a = 0; a < c.rank; a++) slot[a] = -1;
    for (int r = 0; r < c.nres; r++) {
        slot[c.ax[r].axis] = r;
        p.taps[r] = c.ax[r].taps;
        p.toff[r] = c.ax[r].toff;
        p.rxs[r] = x->s[c.ax[r].axis];
        p.combos *= c.ax[r].taps;
    }
    // walk the output in its memory order: dims by stride, largest first
    int order[MAXR];
    for (int k = 0; k < y->rank; k++) {
        if (y->d[k] == 1) continue;
        int pos = p.nwalk++;
        while (pos > 0 && y->s[order[pos - 1]] < y->s[k]) {
            order[pos] = order[pos - 1];
            pos--;
        }
        order[pos] = k;
    }
    for (int q = 0; q < p.nwalk; q++) {
        int k = order[q];
        p.wd[q] = y->d[k];
        p.wys[q] = y->s[k];
        p.wres[q] = slot[k];
        p.wxs[q] = slot[k] < 0 ? x->s[k] : 0;
    }
    unsigned char fill[8] = {0};
    kiln_store_f64(y->dt, fill, 0, c.extrapolation);
    memcpy(&p.fill_bits, fill, sizeof fill);
    p.fill = (float)c.extrapolation;

    if (!interp) {
        if (x->dt == y->dt) {
            switch (kiln_dtype_size(x->dt)) {
            case 1: return rs_launch<false, uint8_t, uint8_t>(p, x, y, tidx, tw, L->stream);
            case 2: return rs_launch<false, uint16_t, uint16_t>(p, x, y, tidx, tw, L->stream);
            case 4: return rs_launch<false, uint32_t, uint32_t>(p, x, y, tidx, tw, L->stream);
            default: return rs_launch<false, uint64_t, uint64_t>(p, x, y, tidx, tw, L->stream);
            }
        }
        return with_float(x->dt, [&](auto ti) {
            return with_float(y->dt, [&](auto to) {
                using Tin = typename decltype(ti)::type;
                using Tout = typename decltype(to)::type;
                return rs_launch<false, Tin, Tout>(p, x, y, tidx, tw, L->stream);
            });
        });
    }
    if (x->dt == KILN_U8) return rs_launch<true, uint8_t, uint8_t>(p, x, y, tidx, tw, L->stream);
    if (x->dt == KILN_I8) return rs_launch<true, int8_t, int8_t>(p, x, y, tidx, tw, L->stream);
    return with_float(x->dt, [&](auto ti) {
        return with_float(y->dt, [&](auto to) {
            using Tin = typename decltype(ti)::type;
            using Tout = typename decltype(to)::type;
            return rs_launch<true, Tin, Tout>(p, x, y, tidx, tw, L->stream);
        });
    });
}

} // namespace

extern "C" kiln_status kiln_cuda_Resize(const kc_launch *L) { return resize_run(L); }

// Workspace of the per-axis tables; 0 when no axis is resized (or when the
// node is malformed: the launch then reports why).
extern "C" size_t kiln_cuda_Resize_ws(const kc_launch *L)
{
    rs_cfg c;
    if (build_cfg(L, &c) != KILN_OK) {
        kiln_clear_error();
        return 0;
    }
    return c.entries > 0 ? ws_bytes(&c) : 0;
}
