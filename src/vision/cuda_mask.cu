// Segmentation masks on the GPU (kiln_vision_masks, issue #15). The oracle
// is ref_mask.c, whose top comment says what a mask is (logits at proto
// resolution, resampled bilinearly, thresholded as a logit cut, cropped as
// crop_mask); this is the same computation, operation for operation, so a
// mask is the ref's pixel for pixel:
//
// - The sample maps (per output column and row: two proto pixels and a
//   weight) are filled on the device from the affine map the host computes
//   exactly as the ref does (double, the same clamping), with
//   __dmul_rn / __dadd_rn so nvcc cannot contract them into an fma the
//   host does not do.
// - Each detection's crop (its box in output pixels, ref_mask.c's
//   to_output with the whole-pixel snap, then crop_mask's index ranges) is
//   computed on the device from the detections there, in the ref's doubles.
// - Logits: a small GEMM [n x P] x [P x mh*mw], tiled as LOGIT_DETS
//   detections x BLOCK proto pixels per block with the coefficients staged
//   in shared memory; each logit is summed p = 0, 1, ... with a separate
//   multiply and add (__fmul_rn, __fadd_rn), the ref's order and rounding,
//   so the logits are the ref's bits.
// - Masks: one thread per output pixel of each detection blends four
//   logits in PyTorch's order (along x, then the rows) and compares with
//   the cut; pixels outside the crop are 0.
//
// Scratch: one cudaMallocAsync on the stream, freed by cudaFreeAsync on
// the stream: the sample maps ((W + H) x 12 bytes), the crops (n x 16) and
// the logits of a group of detections (up to LOGIT_BYTES, one detection's
// plane at least); more detections than a group holds are more passes.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <cuda_runtime.h>

// core.h declares kiln_fail and friends without extern "C" of its own, and
// vision.h includes it outside its block: give them C linkage here first
extern "C" {
#include "core/core.h"
}
#include "vision/vision.h"

namespace {

constexpr int BLOCK = 256;
constexpr int MX = 32, MY = 8;           // a block of mask pixels: 32 columns x 8 rows
constexpr int LOGIT_DETS = 8;            // detections per logits block
constexpr int LOGIT_P = 64;              // coefficients per shared-memory stage
constexpr size_t LOGIT_BYTES = 64u << 20; // the logits of one pass at most (one plane at least)
constexpr int64_t MAX_GRID_Z = 65535;

kiln_status cuda_failed(const char *fn, const char *what, cudaError_t e)
{
    cudaGetLastError(); // the failed call set this thread's last error: keep the next check clean
    if (e == cudaErrorMemoryAllocation)
        return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "%s: %s: out of GPU memory (%s)", fn, what, cudaGetErrorString(e));
    return kiln_fail(KILN_ERR_DEVICE, "%s: %s: %s", fn, what, cudaGetErrorString(e));
}

kiln_status launched(const char *fn, const char *kernel)
{
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) return KILN_OK;
    return kiln_fail(KILN_ERR_DEVICE, "%s: launching the %s kernel failed: %s", fn, kernel, cudaGetErrorString(e));
}

// kiln_f16_to_f32's recipe (the ref widens f16 protos with it)
__device__ __forceinline__ float ld(const uint16_t *p, int64_t k)
{
    const uint32_t h = p[k];
    const uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0x1f) return __uint_as_float(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        const float v = __fmul_rn((float)man, 5.9604644775390625e-8f); // man * 2^-24, exact
        return sign ? -v : v;
    }
    return __uint_as_float(sign | ((exp + 112) << 23) | (man << 13));
}

__device__ __forceinline__ float ld(const float *p, int64_t k) { return p[k]; }

// One axis of the resampling (ref_mask.c's axis_map / axis_fill): output
// pixel k reads proto pixels i0[k], i1[k] with weight w[k] on i1, from
// u = a * k + b clamped to [lo, hi] (the host clamped lo and hi as
// axis_fill does).
struct axis_params {
    double a, b, lo, hi;
    int n_out, n_proto;
};

__global__ void axis_kernel(axis_params m, int *i0, int *i1, float *w)
{
    const int k = blockIdx.x * BLOCK + threadIdx.x;
    if (k >= m.n_out) return;
    double u = __dadd_rn(__dmul_rn(m.a, (double)k), m.b);
    if (u < m.lo) u = m.lo;
    if (u > m.hi) u = m.hi;
    const int f = (int)floor(u);
    i0[k] = f;
    i1[k] = f < m.n_proto - 1 ? f + 1 : f;
    w[k] = __double2float_rn(__dsub_rn(u, (double)f));
}

// How a detection's box becomes output pixels (out = det * scale + offset
// per axis) and the output's size.
struct crop_params {
    double sx, ox, sy, oy;
    int snap; // round-tripped boxes: edges this close to a whole pixel are it
    int W, H;
};

// ref_mask.c's to_output
__device__ __forceinline__ double to_output(float v, double scale, double offset, int snap)
{
    double x = __dadd_rn(__dmul_rn((double)v, scale), offset);
    if (snap) {
        const double w = floor(x + 0.5);
        if (fabs(x - w) <= ldexp(fabs(x) > 1 ? fabs(x) : 1, -21)) x = w;
    }
    return x;
}

// ref_mask.c's first_index_at_or_after
__device__ __forceinline__ int first_at_or_after(double v, int n)
{
    if (!(v > 0)) return 0;
    if (v >= n) return n;
    return (int)ceil(v);
}

// Detection i's crop as pixel ranges [x, y) of columns and [z, w) of rows;
// empty (0, 0, 0, 0) when a coordinate is NaN.
__global__ void crop_kernel(int n, const kiln_detection *dets, crop_params c, int4 *crop)
{
    const int i = blockIdx.x * BLOCK + threadIdx.x;
    if (i >= n) return;
    const kiln_detection d = dets[i];
    const double x1 = to_output(d.x1, c.sx, c.ox, c.snap), x2 = to_output(d.x2, c.sx, c.ox, c.snap);
    const double y1 = to_output(d.y1, c.sy, c.oy, c.snap), y2 = to_output(d.y2, c.sy, c.oy, c.snap);
    int4 r = make_int4(0, 0, 0, 0);
    if (!isnan(x1) && !isnan(x2) && !isnan(y1) && !isnan(y2)) {
        r.x = first_at_or_after(x1, c.W), r.y = first_at_or_after(x2, c.W);
        r.z = first_at_or_after(y1, c.H), r.w = first_at_or_after(y2, c.H);
    }
    crop[i] = r;
}

// Logits of detections first + blockIdx.y * LOGIT_DETS .. (LOGIT_DETS of
// them, fewer at the end) at BLOCK proto pixels: L[d][pix] = sum over p in
// order of coeff[d][p] * proto[p][pix], each product and sum rounded as
// the ref's `dst += c * src` (no fma). Detections with an empty crop are
// never read and not computed.
template <typename T>
__global__ void __launch_bounds__(BLOCK) logits_kernel(const T *protos, const float *coeffs, const int4 *crop, int P,
                                                       int64_t plane, int first, int gn, float *L)
{
    __shared__ float cs[LOGIT_DETS][LOGIT_P];
    __shared__ int any;
    const int64_t pix = (int64_t)blockIdx.x * BLOCK + threadIdx.x;
    const int d0 = blockIdx.y * LOGIT_DETS;
    const int dn = min(LOGIT_DETS, gn - d0);
    if (threadIdx.x == 0) {
        int a = 0;
        for (int d = 0; d < dn; d++) {
            const int4 r = crop[first + d0 + d];
            a |= r.x < r.y && r.z < r.w;
        }
        any = a;
    }
    __syncthreads();
    if (!any) return; // uniform: every crop of the block is empty
    float acc[LOGIT_DETS];
#pragma unroll
    for (int d = 0; d < LOGIT_DETS; d++) acc[d] = 0.f;
    for (int p0 = 0; p0 < P; p0 += LOGIT_P) {
        const int pn = min(LOGIT_P, P - p0);
        __syncthreads();
        for (int k = threadIdx.x; k < LOGIT_DETS * LOGIT_P; k += BLOCK) {
            const int d = k / LOGIT_P, q = k % LOGIT_P;
            cs[d][q] = d < dn && q < pn ? coeffs[(int64_t)(first + d0 + d) * P + p0 + q] : 0.f;
        }
        __syncthreads();
        if (pix < plane)
            for (int q = 0; q < pn; q++) {
                const float v = ld(protos, (int64_t)(p0 + q) * plane + pix);
#pragma unroll
                for (int d = 0; d < LOGIT_DETS; d++) acc[d] = __fadd_rn(acc[d], __fmul_rn(cs[d][q], v));
            }
    }
    if (pix < plane)
        for (int d = 0; d < dn; d++) L[(int64_t)(d0 + d) * plane + pix] = acc[d];
}

struct mask_maps {
    const int *ci0, *ci1, *ri0, *ri1;
    const float *cw, *rw;
};

// Pixel (x, y) of detection first + blockIdx.z: inside its crop, the
// bilinear logit > cut (ref_mask.c's inner loop, PyTorch's order); 0
// outside.
__global__ void __launch_bounds__(MX *MY) mask_kernel(const float *L, const int4 *crop, mask_maps m, int W, int H,
                                                       int mw, int64_t plane, float cut, int first, uint8_t *masks)
{
    const int x = blockIdx.x * MX + threadIdx.x, y = blockIdx.y * MY + threadIdx.y, d = blockIdx.z;
    if (x >= W || y >= H) return;
    const int4 r = crop[first + d];
    uint8_t in = 0;
    if (x >= r.x && x < r.y && y >= r.z && y < r.w) {
        const float *l = L + (int64_t)d * plane;
        const float *a = l + (int64_t)m.ri0[y] * mw, *b = l + (int64_t)m.ri1[y] * mw;
        const float wy = m.rw[y], vy = __fsub_rn(1.f, wy);
        const int j0 = m.ci0[x], j1 = m.ci1[x];
        const float wx = m.cw[x], vx = __fsub_rn(1.f, wx);
        const float top = __fadd_rn(__fmul_rn(vx, a[j0]), __fmul_rn(wx, a[j1]));
        const float bot = __fadd_rn(__fmul_rn(vx, b[j0]), __fmul_rn(wx, b[j1]));
        const float v = __fadd_rn(__fmul_rn(vy, top), __fmul_rn(wy, bot));
        in = v > cut;
    }
    masks[(int64_t)(first + d) * H * W + (int64_t)y * W + x] = in;
}

// ref_mask.c's axis_fill clamping of [lo, hi] to the proto's pixels.
axis_params make_axis(int n_out, int n_proto, double a, double b, double lo, double hi)
{
    if (lo < 0) lo = 0;
    if (hi > n_proto - 1) hi = n_proto - 1;
    if (lo > n_proto - 1) lo = n_proto - 1;
    if (hi < lo) hi = lo;
    axis_params m = {a, b, lo, hi, n_out, n_proto};
    return m;
}

// ref_mask.c's content_side: max(round(side * scale), 1), Python's round
double content_side(int side, float scale)
{
    const double x = side * (double)scale, f = floor(x), d = x - f;
    const double r = d > 0.5 ? f + 1 : d < 0.5 ? f : fmod(f, 2.0) == 0 ? f : f + 1;
    return r < 1 ? 1 : r;
}

size_t align256(size_t n) { return (n + 255) & ~(size_t)255; }

template <typename T>
kiln_status run_masks(const char *fn, int n, const float *coeffs, const T *protos, int P, int mw, int64_t plane,
                      int W, int H, float cut, const int4 *crop, const mask_maps &maps, float *L, int64_t group,
                      uint8_t *masks, cudaStream_t s)
{
    for (int64_t first = 0; first < n; first += group) {
        const int gn = (int)(n - first < group ? n - first : group);
        dim3 lg((unsigned)((plane + BLOCK - 1) / BLOCK), (unsigned)((gn + LOGIT_DETS - 1) / LOGIT_DETS));
        logits_kernel<T><<<lg, BLOCK, 0, s>>>(protos, coeffs, crop, P, plane, (int)first, gn, L);
        kiln_status st = launched(fn, "logits");
        if (st != KILN_OK) return st;
        dim3 mg((unsigned)((W + MX - 1) / MX), (unsigned)((H + MY - 1) / MY), (unsigned)gn);
        mask_kernel<<<mg, dim3(MX, MY), 0, s>>>(L, crop, maps, W, H, mw, plane, cut, (int)first, masks);
        if ((st = launched(fn, "mask")) != KILN_OK) return st;
    }
    return KILN_OK;
}

} // namespace

extern "C" kiln_status kiln_vcuda_masks(const kiln_mask_options *o, int n, const float *coeffs,
                                        const kiln_detection *dets, const kiln_tensor *protos,
                                        const kiln_letterbox *box, int net_width, int net_height, uint8_t *masks,
                                        void *stream)
{
    static const char fn[] = "kiln_vision_masks";         // argument errors: the ref's words
    static const char dfn[] = "kiln_vision_masks (cuda)"; // device errors
    cudaStream_t s = (cudaStream_t)stream;
    // the ref's checks, with its words
    const int r = protos->rank;
    const int64_t p64 = protos->dims[r - 3], mh64 = protos->dims[r - 2], mw64 = protos->dims[r - 1];
    const int64_t side = KILN_VISION_MAX_SIDE;
    if (p64 <= 0 || mh64 <= 0 || mw64 <= 0 || p64 > side || mh64 > side || mw64 > side ||
        p64 * mh64 * mw64 > ((int64_t)1 << 31))
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "%s: protos [%lld, %lld, %lld] must have P, mh and mw in 1..%d", fn,
                         (long long)p64, (long long)mh64, (long long)mw64, KILN_VISION_MAX_SIDE);
    if (isnan(o->threshold)) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "%s: threshold is NaN", fn);
    const int P = (int)p64, mh = (int)mh64, mw = (int)mw64;
    const int sized = o->out_width > 0;
    if (!sized && (box->frame_width <= 0 || box->frame_height <= 0 || box->frame_width > KILN_VISION_MAX_SIDE ||
                   box->frame_height > KILN_VISION_MAX_SIDE))
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "%s: the letterbox's frame is %dx%d; sides must be 1..%d", fn,
                         box->frame_width, box->frame_height, KILN_VISION_MAX_SIDE);
    if (n <= 0) return KILN_OK;
    const int W = sized ? o->out_width : box->frame_width;
    const int H = sized ? o->out_height : box->frame_height;
    const double t = o->threshold;
    const float cut = t <= 0 ? -INFINITY : t >= 1 ? INFINITY : (float)log(t / (1 - t));

    // the sample maps and the box mapping, as the ref computes them
    axis_params cols, rows;
    crop_params c = {1, 0, 1, 0, 0, W, H};
    if (sized) {
        const double ax = (double)mw / W, ay = (double)mh / H;
        cols = make_axis(W, mw, ax, 0.5 * ax - 0.5, 0, mw - 1);
        rows = make_axis(H, mh, ay, 0.5 * ay - 0.5, 0, mh - 1);
        const double sx = box ? kiln_lb_scale_x(box) : 1, sy = box ? kiln_lb_scale_y(box) : 1;
        const double px = box ? box->pad_x : 0, py = box ? box->pad_y : 0;
        const double ox = (double)W / net_width, oy = (double)H / net_height;
        c.sx = sx * ox, c.ox = px * ox;
        c.sy = sy * oy, c.oy = py * oy;
        c.snap = box != NULL;
    } else {
        const double kx = (double)mw / net_width, ky = (double)mh / net_height;
        const double cw = content_side(W, box->scale), ch = content_side(H, box->scale);
        const double sx = cw / W, sy = ch / H, px = box->pad_x, py = box->pad_y;
        cols = make_axis(W, mw, sx * kx, (0.5 * sx + px) * kx - 0.5, px * kx, (px + cw) * kx - 1);
        rows = make_axis(H, mh, sy * ky, (0.5 * sy + py) * ky - 0.5, py * ky, (py + ch) * ky - 1);
    }

    // scratch: maps, crops, one pass's logits
    const int64_t plane = (int64_t)mh * mw;
    int64_t group = (int64_t)(LOGIT_BYTES / ((size_t)plane * sizeof(float)));
    if (group < 1) group = 1;
    if (group > n) group = n;
    if (group > MAX_GRID_Z) group = MAX_GRID_Z;
    const size_t b_cols = align256((size_t)W * 12), b_rows = align256((size_t)H * 12);
    const size_t b_crop = align256((size_t)n * sizeof(int4));
    const size_t b_logits = (size_t)group * (size_t)plane * sizeof(float);
    char *base = NULL;
    cudaError_t e = cudaMallocAsync((void **)&base, b_cols + b_rows + b_crop + b_logits, s);
    if (e != cudaSuccess) return cuda_failed(dfn, "cudaMallocAsync of the scratch", e);
    int *ci0 = (int *)base, *ci1 = ci0 + W;
    float *cwt = (float *)(ci1 + W);
    int *ri0 = (int *)(base + b_cols), *ri1 = ri0 + H;
    float *rwt = (float *)(ri1 + H);
    int4 *crop = (int4 *)(base + b_cols + b_rows);
    float *L = (float *)(base + b_cols + b_rows + b_crop);
    mask_maps maps = {ci0, ci1, ri0, ri1, cwt, rwt};

    kiln_status st = KILN_OK;
    axis_kernel<<<(unsigned)((W + BLOCK - 1) / BLOCK), BLOCK, 0, s>>>(cols, ci0, ci1, cwt);
    st = launched(dfn, "axis");
    if (st == KILN_OK) {
        axis_kernel<<<(unsigned)((H + BLOCK - 1) / BLOCK), BLOCK, 0, s>>>(rows, ri0, ri1, rwt);
        st = launched(dfn, "axis");
    }
    if (st == KILN_OK) {
        crop_kernel<<<(unsigned)((n + BLOCK - 1) / BLOCK), BLOCK, 0, s>>>(n, dets, c, crop);
        st = launched(dfn, "crop");
    }
    if (st == KILN_OK) {
        if (protos->dtype == KILN_F16)
            st = run_masks(dfn, n, coeffs, (const uint16_t *)protos->data, P, mw, plane, W, H, cut, crop, maps, L,
                           group, masks, s);
        else
            st = run_masks(dfn, n, coeffs, (const float *)protos->data, P, mw, plane, W, H, cut, crop, maps, L, group,
                           masks, s);
    }
    e = cudaFreeAsync(base, s);
    if (e != cudaSuccess && st == KILN_OK) st = cuda_failed(dfn, "cudaFreeAsync of the scratch", e);
    return st;
}
