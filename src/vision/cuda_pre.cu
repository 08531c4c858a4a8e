// Letterbox pre-processing, ReID crops, L2 normalisation and matching on
// the GPU (issue #15): everything on the device and on the caller's
// stream, no host round trip, no allocation, no copy. The oracles are the
// ref kernels (ref_pre.c, ref_reid.c, the sampler of ref_sample.h); the
// formulas here are theirs, operation for operation:
//
// - The letterbox geometry is computed on the host from the frame sizes by
//   letterbox.h, the very function ref_pre.c uses, and travels to the
//   kernel in its parameters (up to PRE_FRAMES frames per launch, more
//   frames are more launches): no cudaMemcpyAsync, hence no pageable copy
//   that would stall the host.
// - A tap's position (ref_sample.h's kiln_vtap_axis) is computed per thread
//   in f64 and the bilinear blend in f32 with the products through
//   __dmul_rn / __fmul_rn, which nvcc never contracts into an fma (the
//   host's build has none either), so a sample is the ref's bit for bit;
//   divisions and sqrt are IEEE (no fast-math in kiln's CUDA flags).
// - Crops read their boxes on the device; a degenerate box (no area after
//   clipping, NaN) fills its crop with the pad value as ref_reid.c does.
// - Sums of squares and dot products accumulate in f64. A product of two
//   floats is exact in f64, so the dot product's fma is the ref's
//   multiply-then-add, taken in the same order (k ascending): sim is the
//   ref's to the bit and best, an argmax over it, the ref's index.
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "vision/letterbox.h"
#include "vision/vision.h"

namespace {

constexpr int BX = 32, BY = 8;          // a block of output pixels: 32 columns x 8 rows
constexpr int PRE_FRAMES = 64;          // frames in one letterbox launch's parameters
constexpr unsigned MAX_GRID_YZ = 65535; // gridDim.y / gridDim.z limit

// ---------------------------------------------------------------- shared device side

// The normalisation and the output planes of one call.
struct vnorm {
    float mean[3], std[3];
    float pad[3]; // pad_value normalised per channel (the host's kiln_vnorm of it)
    int W, H;     // output plane, o->width x o->height
};

// ref_sample.h's kiln_vnorm: (level / 255 - mean) / std, IEEE divisions.
__device__ __forceinline__ float norm_level(const vnorm &nm, int c, float level)
{
    return (level / 255.0f - nm.mean[c]) / nm.std[c];
}

// One output position along an axis, as kiln_vtap_axis computes tap[d] of
// n positions over [origin, origin + extent), readable pixels lo..hi.
struct tap {
    int i0, i1;
    float w1;
};

__device__ __forceinline__ tap tap_at(int d, int n, double origin, double extent, int lo, int hi)
{
    double step = extent / n;
    double s = origin + __dmul_rn(d + 0.5, step) - 0.5;
    double f = floor(s);
    int i = (int)f;
    float w = (float)(s - f);
    if (i < lo) { // before the first pixel's center: that pixel alone
        i = lo;
        w = 0;
    }
    if (i >= hi) { // at or after the last pixel's center: that pixel alone
        i = hi;
        w = 0;
    }
    tap t;
    t.i0 = i;
    t.i1 = i < hi ? i + 1 : hi;
    t.w1 = w;
    return t;
}

template <bool F16> __device__ __forceinline__ void store(void *out, size_t i, float v)
{
    if (F16)
        static_cast<__half *>(out)[i] = __float2half_rn(v); // round to nearest even, as kiln_f32_to_f16
    else
        static_cast<float *>(out)[i] = v;
}

template <bool F16> __device__ __forceinline__ void store_pad(const vnorm &nm, void *out, size_t at, size_t plane)
{
#pragma unroll
    for (int c = 0; c < 3; c++) store<F16>(out, at + c * plane, nm.pad[c]);
}

// kiln_vsample's inner step for the 3 channels of one output pixel: the
// frame's bytes (row stride `stride`, B G R when bgr) blended through taps
// xt and yt, written as R, G, B to out[at], out[at + plane], out[at + 2 plane].
template <bool F16>
__device__ __forceinline__ void sample3(const vnorm &nm, const uint8_t *__restrict__ data, size_t stride, int bgr,
                                        tap xt, tap yt, void *out, size_t at, size_t plane)
{
    const uint8_t *r0 = data + (size_t)yt.i0 * stride, *r1 = data + (size_t)yt.i1 * stride;
    size_t a = (size_t)xt.i0 * 3, b = (size_t)xt.i1 * 3;
#pragma unroll
    for (int c = 0; c < 3; c++) {
        int sc = bgr ? 2 - c : c;
        int p00 = r0[a + sc], p01 = r0[b + sc], p10 = r1[a + sc], p11 = r1[b + sc];
        float top = (float)p00 + __fmul_rn(xt.w1, (float)(p01 - p00));
        float bot = (float)p10 + __fmul_rn(xt.w1, (float)(p11 - p10));
        store<F16>(out, at + c * plane, norm_level(nm, c, top + __fmul_rn(yt.w1, bot - top)));
    }
}

// ---------------------------------------------------------------- letterbox

// One frame of a letterbox launch: its pixels and where they go.
struct pre_frame {
    const uint8_t *data;
    int stride; // bytes per row, never 0 here
    int width, height, bgr;
    int new_w, new_h, left, top; // letterbox.h's fit
};

struct pre_params {
    vnorm nm;
    int first; // the launch's first frame: image `first` of out
    pre_frame f[PRE_FRAMES];
};
// the classic 4 KiB kernel parameter limit, whatever the architecture
static_assert(sizeof(pre_params) <= 4096, "letterbox parameters exceed 4 KiB");

// One thread per output pixel (x, y) of image blockIdx.z of the launch:
// the frame's resampled pixel inside its fitted rectangle, the pad value
// around it. __grid_constant__: the frame is read from the parameters in
// place, not copied per thread.
template <bool F16>
__global__ void __launch_bounds__(BX *BY) letterbox_kernel(const __grid_constant__ pre_params p, void *out)
{
    int x = (int)(blockIdx.x * BX + threadIdx.x), y = (int)(blockIdx.y * BY + threadIdx.y);
    int W = p.nm.W, H = p.nm.H;
    if (x >= W || y >= H) return;
    const pre_frame &f = p.f[blockIdx.z];
    size_t plane = (size_t)W * H;
    size_t at = ((size_t)p.first + blockIdx.z) * 3 * plane + (size_t)y * W + x;
    int dx = x - f.left, dy = y - f.top;
    if (dx < 0 || dx >= f.new_w || dy < 0 || dy >= f.new_h) {
        store_pad<F16>(p.nm, out, at, plane);
        return;
    }
    // each axis stretched to its own new size (ref_pre.c's taps)
    tap xt = tap_at(dx, f.new_w, 0.0, (double)f.width, 0, f.width - 1);
    tap yt = tap_at(dy, f.new_h, 0.0, (double)f.height, 0, f.height - 1);
    sample3<F16>(p.nm, f.data, (size_t)f.stride, f.bgr, xt, yt, out, at, plane);
}

// ---------------------------------------------------------------- crops

struct crop_params {
    vnorm nm;
    const uint8_t *data;
    size_t stride;
    int width, height, bgr;
    int first; // the launch's first detection
};

// ref_reid.c's clip: v in [0, hi], a NaN stays NaN.
__device__ __forceinline__ float clip(float v, float hi) { return v < 0 ? 0 : v > hi ? hi : v; }

// One thread per output pixel (x, y) of crop first + blockIdx.z; the box
// read from the device (every thread of the block reads the same one).
template <bool F16>
__global__ void __launch_bounds__(BX *BY)
    crops_kernel(const crop_params p, const kiln_detection *__restrict__ dets, void *out)
{
    int x = (int)(blockIdx.x * BX + threadIdx.x), y = (int)(blockIdx.y * BY + threadIdx.y);
    int W = p.nm.W, H = p.nm.H;
    if (x >= W || y >= H) return;
    int i = p.first + (int)blockIdx.z;
    const kiln_detection *d = &dets[i];
    float fw = (float)p.width, fh = (float)p.height;
    float x1 = clip(d->x1, fw), x2 = clip(d->x2, fw);
    float y1 = clip(d->y1, fh), y2 = clip(d->y2, fh);
    size_t plane = (size_t)W * H;
    size_t at = (size_t)i * 3 * plane + (size_t)y * W + x;
    if (!(x2 > x1 && y2 > y1)) { // no area, or NaN: the pad value, as the ref
        store_pad<F16>(p.nm, out, at, plane);
        return;
    }
    tap xt = tap_at(x, W, (double)x1, (double)x2 - x1, (int)floorf(x1), (int)ceilf(x2) - 1);
    tap yt = tap_at(y, H, (double)y1, (double)y2 - y1, (int)floorf(y1), (int)ceilf(y2) - 1);
    sample3<F16>(p.nm, p.data, p.stride, p.bgr, xt, yt, out, at, plane);
}

// ---------------------------------------------------------------- L2

constexpr int L2_BLOCK = 256;

// One block per row: the sum of squares in f64 (as the ref: no overflow
// for rows of float maxima, no zero norm for rows of denormals), then each
// value times 1 / sqrt(sum) in f64; a zero row stays zero.
__global__ void __launch_bounds__(L2_BLOCK) l2_kernel(int d, float *emb)
{
    __shared__ double part[L2_BLOCK / 32];
    __shared__ double total;
    float *row = emb + (size_t)blockIdx.x * d;
    double ss = 0;
    for (int k = (int)threadIdx.x; k < d; k += (int)blockDim.x) {
        double v = row[k];
        ss += v * v;
    }
    for (int off = 16; off > 0; off >>= 1) ss += __shfl_down_sync(0xffffffffu, ss, off);
    int warp = (int)threadIdx.x / 32, warps = (int)blockDim.x / 32;
    if ((threadIdx.x & 31) == 0) part[warp] = ss;
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0;
        for (int w = 0; w < warps; w++) t += part[w];
        total = t;
    }
    __syncthreads();
    double t = total;
    if (t == 0) return; // a zero row stays zero rather than 0/0
    double inv = 1.0 / sqrt(t); // a row with an inf: 0, as the ref
    for (int k = (int)threadIdx.x; k < d; k += (int)blockDim.x) row[k] = (float)(row[k] * inv);
}

// ---------------------------------------------------------------- match

constexpr int MT = 32;      // a block's tile of sim: MT queries x MT gallery entries
constexpr int MK = 32;      // values of d per step through shared memory
constexpr int MROWS = MT / BY; // queries per thread

// sim[i][j] = sum_k q[i][k] g[j][k] in f64, k ascending; block (32, 8):
// thread (tx, ty) computes entry j0 + tx of queries i0 + ty + 8 r.
__global__ void __launch_bounds__(BX *BY)
    match_kernel(int n, int m, int d, const float *__restrict__ q, const float *__restrict__ g, float *__restrict__ sim)
{
    __shared__ float qs[MT][MK + 1], gs[MT][MK + 1]; // +1: gs[tx][k] across a warp hits 32 banks
    int tx = (int)threadIdx.x, ty = (int)threadIdx.y, t = ty * BX + tx;
    int i0 = (int)blockIdx.y * MT, j0 = (int)blockIdx.x * MT;
    double acc[MROWS];
#pragma unroll
    for (int r = 0; r < MROWS; r++) acc[r] = 0;
    for (int k0 = 0; k0 < d; k0 += MK) {
        for (int e = t; e < MT * MK; e += BX * BY) {
            int r = e / MK, c = e % MK, k = k0 + c;
            qs[r][c] = i0 + r < n && k < d ? q[(size_t)(i0 + r) * d + k] : 0.f;
            gs[r][c] = j0 + r < m && k < d ? g[(size_t)(j0 + r) * d + k] : 0.f;
        }
        __syncthreads();
        int kn = d - k0 < MK ? d - k0 : MK; // no zero products past d: the ref's sum has none
        for (int c = 0; c < kn; c++) {
            double gv = gs[tx][c];
#pragma unroll
            for (int r = 0; r < MROWS; r++) acc[r] = fma((double)qs[ty + BY * r][c], gv, acc[r]);
        }
        __syncthreads();
    }
    int j = j0 + tx;
    if (j >= m) return;
#pragma unroll
    for (int r = 0; r < MROWS; r++) {
        int i = i0 + ty + BY * r;
        if (i < n) sim[(size_t)i * m + j] = (float)acc[r];
    }
}

constexpr int ARGMAX_BLOCK = 256; // 8 queries per block, a warp each

// best[i]: the first index of the largest non-NaN sim[i][j] (-1 when all
// are NaN), as the ref's scan: each lane scans j = lane, lane + 32, ...
// keeping its first maximum, then the warp keeps the larger value, the
// lower index on a tie.
__global__ void __launch_bounds__(ARGMAX_BLOCK) argmax_kernel(int n, int m, const float *__restrict__ sim, int *best)
{
    int64_t i = (int64_t)blockIdx.x * (ARGMAX_BLOCK / 32) + threadIdx.x / 32;
    if (i >= n) return; // the whole warp: one query per warp
    int lane = (int)threadIdx.x & 31;
    const float *row = sim + (size_t)i * m;
    float top = 0;
    int arg = -1;
    for (int j = lane; j < m; j += 32) {
        float s = row[j];
        if (s == s && (arg < 0 || s > top)) {
            arg = j;
            top = s;
        }
    }
    for (int off = 16; off > 0; off >>= 1) {
        float ot = __shfl_down_sync(0xffffffffu, top, off);
        int oa = __shfl_down_sync(0xffffffffu, arg, off);
        if (oa >= 0 && (arg < 0 || ot > top || (ot == top && oa < arg))) {
            arg = oa;
            top = ot;
        }
    }
    if (lane == 0) best[i] = arg;
}

// ---------------------------------------------------------------- host side

kiln_status launched(const char *fn, const char *kernel)
{
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) return KILN_OK;
    return kiln_fail(KILN_ERR_DEVICE, "%s: launching the %s kernel failed: %s", fn, kernel, cudaGetErrorString(e));
}

vnorm make_norm(const kiln_preprocess_options *o)
{
    vnorm nm;
    for (int c = 0; c < 3; c++) {
        nm.mean[c] = o->mean[c];
        nm.std[c] = o->std[c];
        // ref_sample.h's kiln_vnorm, on the host: the same IEEE float ops
        nm.pad[c] = ((float)o->pad_value / 255.0f - o->mean[c]) / o->std[c];
    }
    nm.W = o->width;
    nm.H = o->height;
    return nm;
}

int frame_stride(const kiln_frame *f) { return f->stride ? f->stride : f->width * 3; }

} // namespace

extern "C" kiln_status kiln_vcuda_preprocess(const kiln_preprocess_options *o, int n, const kiln_frame *frames,
                                             void *out, kiln_letterbox *boxes, void *stream)
{
    static const char fn[] = "kiln_vision_preprocess (cuda)";
    cudaStream_t s = (cudaStream_t)stream;
    pre_params p;
    memset(&p, 0, sizeof p);
    p.nm = make_norm(o);
    dim3 block(BX, BY);
    for (int first = 0; first < n; first += PRE_FRAMES) {
        int count = n - first < PRE_FRAMES ? n - first : PRE_FRAMES;
        p.first = first;
        for (int k = 0; k < count; k++) {
            const kiln_frame *f = &frames[first + k];
            kiln_vfit g = kiln_vletterbox_fit(o, f->width, f->height);
            pre_frame *pf = &p.f[k];
            pf->data = f->data;
            pf->stride = frame_stride(f);
            pf->width = f->width;
            pf->height = f->height;
            pf->bgr = f->bgr;
            pf->new_w = g.new_w;
            pf->new_h = g.new_h;
            pf->left = g.left;
            pf->top = g.top;
            if (boxes) kiln_vletterbox_record(&g, f, &boxes[first + k]);
        }
        dim3 grid((unsigned)((o->width + BX - 1) / BX), (unsigned)((o->height + BY - 1) / BY), (unsigned)count);
        if (o->dtype == KILN_F16)
            letterbox_kernel<true><<<grid, block, 0, s>>>(p, out);
        else
            letterbox_kernel<false><<<grid, block, 0, s>>>(p, out);
        kiln_status st = launched(fn, "letterbox");
        if (st != KILN_OK) return st;
    }
    return KILN_OK;
}

extern "C" kiln_status kiln_vcuda_crops(const kiln_preprocess_options *o, const kiln_frame *frame, int n,
                                        const kiln_detection *dets, void *out, void *stream)
{
    static const char fn[] = "kiln_vision_crops (cuda)";
    cudaStream_t s = (cudaStream_t)stream;
    crop_params p;
    memset(&p, 0, sizeof p);
    p.nm = make_norm(o);
    p.data = frame->data;
    p.stride = (size_t)frame_stride(frame);
    p.width = frame->width;
    p.height = frame->height;
    p.bgr = frame->bgr;
    dim3 block(BX, BY);
    for (int first = 0; first < n; first += (int)MAX_GRID_YZ) {
        int count = n - first < (int)MAX_GRID_YZ ? n - first : (int)MAX_GRID_YZ;
        p.first = first;
        dim3 grid((unsigned)((o->width + BX - 1) / BX), (unsigned)((o->height + BY - 1) / BY), (unsigned)count);
        if (o->dtype == KILN_F16)
            crops_kernel<true><<<grid, block, 0, s>>>(p, dets, out);
        else
            crops_kernel<false><<<grid, block, 0, s>>>(p, dets, out);
        kiln_status st = launched(fn, "crops");
        if (st != KILN_OK) return st;
    }
    return KILN_OK;
}

extern "C" kiln_status kiln_vcuda_l2_normalize(int n, int d, float *emb, void *stream)
{
    if (n <= 0) return KILN_OK;
    // a warp per 32 values up to a full block: short rows leave no warp idle
    int threads = d >= L2_BLOCK ? L2_BLOCK : (d + 31) / 32 * 32;
    l2_kernel<<<(unsigned)n, (unsigned)threads, 0, (cudaStream_t)stream>>>(d, emb);
    return launched("kiln_vision_l2_normalize (cuda)", "l2");
}

extern "C" kiln_status kiln_vcuda_match(int n, int m, int d, const float *queries, const float *gallery, float *sim,
                                        int *best, void *stream)
{
    static const char fn[] = "kiln_vision_match (cuda)";
    cudaStream_t s = (cudaStream_t)stream;
    if (n <= 0) return KILN_OK;
    if (m == 0) { // no gallery: every best is -1 (all bytes 0xff)
        if (!best) return KILN_OK;
        cudaError_t e = cudaMemsetAsync(best, 0xff, (size_t)n * sizeof *best, s);
        if (e != cudaSuccess) {
            cudaGetLastError();
            return kiln_fail(KILN_ERR_DEVICE, "%s: cudaMemsetAsync of best: %s", fn, cudaGetErrorString(e));
        }
        return KILN_OK;
    }
    // queries in chunks of what gridDim.y reaches
    const int chunk = (int)MAX_GRID_YZ * MT;
    dim3 block(BX, BY);
    for (int first = 0; first < n; first += chunk) {
        int rows = n - first < chunk ? n - first : chunk;
        dim3 grid((unsigned)((m + MT - 1) / MT), (unsigned)((rows + MT - 1) / MT));
        match_kernel<<<grid, block, 0, s>>>(rows, m, d, queries + (size_t)first * d, gallery, sim + (size_t)first * m);
        kiln_status st = launched(fn, "match");
        if (st != KILN_OK) return st;
    }
    if (!best) return KILN_OK;
    int per_block = ARGMAX_BLOCK / 32;
    argmax_kernel<<<(unsigned)((n + per_block - 1) / per_block), ARGMAX_BLOCK, 0, s>>>(n, m, sim, best);
    return launched(fn, "argmax");
}
