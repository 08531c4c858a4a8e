// YOLO decoding + NMS and pose keypoints on the GPU (issue #15: "all on
// the device, no host round trip unless the caller asks"). The oracle is
// ref_detect.c, made bit-identical to Ultralytics 8.4; every formula here
// is its, operation for operation, and the results are its to the bit:
// the same detections, in the same order, with the same f32 boxes, scores,
// classes, anchors and extra values.
//
// - f32 arithmetic: products go through __fmul_rn, which nvcc never
//   contracts into an fma (the host build has none either: ISO C, no
//   -mfma), sums and quotients through __fadd_rn / __fsub_rn / __fdiv_rn
//   so even a --use_fast_math build keeps them IEEE. f16 outputs are
//   widened with the bit recipe of kiln_f16_to_f32, NaN payloads included.
//
// - Per group of images (as many as keep the scratch near
//   GROUP_CANDIDATES candidates), on the caller's stream:
//     1. gather: one thread per candidate computes its score and class as
//        the ref's gather_v8/_v5/_v10 (first class on a tie, NaN rules,
//        YOLOv5's objectness, the class filter) and appends a 64-bit key to
//        its image's list (warp-aggregated atomics: the list is unordered).
//        The key is (~score bits) << IB | anchor, IB the bits of N - 1:
//        scores that passed `> conf >= 0` are positive, so their bits order
//        as the floats do and an ascending sort of the keys is "score
//        descending, anchor ascending", the ref's total order (a stable
//        sort by score over candidates in anchor order).
//     2. sort: CUB's DeviceSegmentedRadixSort, one segment per image, over
//        the 32 + IB key bits. YOLOv10 sorts twice: by anchor first (its
//        rows are kept in output order, the first max_det of them), then
//        those by score.
//     3. NMS: one block per image, the first min(count, max_nms) sorted
//        candidates in tiles of NMS_T (= the block's threads). A tile's
//        candidates are first tested against every box kept so far (the
//        kept list, staged through shared memory NMS_T at a time, each
//        thread its own candidate), then the tile's own IoU bitmask is
//        computed in parallel (row j: the later candidates j suppresses,
//        overlaps(j, t) with j first, as the ref's kept-vs-candidate
//        order), and one warp walks it in order: a live candidate whose bit
//        no kept one of the tile has set is kept (torchvision's gpu walk).
//        The walk stops at max_det, and the tiles after it are skipped.
//        Work: O(M x K / threads) for the kept tests and O(M x NMS_T /
//        threads) for the masks (M candidates into NMS, K <= max_det
//        kept), O(M) warp steps serially; no M x M matrix.
//     4. output: the same block maps its kept boxes to frame pixels through
//        the image's letterbox (per-axis factors, clipping) and writes
//        detections, extra values and the count.
//
// - Scratch: one cudaMallocAsync on the stream per call, released with
//   cudaFreeAsync on the stream (stream-ordered, no host sync): keys x 2,
//   a class per candidate, the kept boxes and keys (min(max_det, N) per
//   image), the segment offsets and CUB's temporary storage; for a group
//   of G images G x (N x 20 + min(max_det, N) x 28) bytes plus CUB's
//   share (its second key buffer, G x N x 8, and a little more), G chosen
//   so that G x N <= GROUP_CANDIDATES (one image at least): about 60 MiB
//   at most for N <= 2^21. The default memory pool keeps freed blocks only
//   up to its release threshold (0 unless the caller raises it).
//
// - Host data (letterboxes, the class filter) reaches the device without a
//   copy: an upload kernel takes up to UPLOAD_BYTES of it by value in its
//   parameters (more is more launches), so nothing here needs pinned
//   memory or waits for the host, and a stream being captured into a CUDA
//   graph can record it.
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cub/device/device_segmented_radix_sort.cuh>
#include <cuda_runtime.h>

// core.h declares kiln_fail and friends without extern "C" of its own, and
// vision.h includes it outside its block: give them C linkage here first
extern "C" {
#include "core/core.h"
}
#include "vision/vision.h"

namespace {

constexpr int BLOCK = 256;
constexpr int NMS_T = 256;                  // candidates per NMS tile: the NMS block's threads
constexpr int NMS_WORDS = NMS_T / 32;       // a tile's bitmask row in 32-bit words
constexpr int64_t GROUP_CANDIDATES = 1 << 21; // images per pass: about this many candidates' scratch
constexpr int64_t MAX_GRID_Y = 65535;
constexpr int UPLOAD_BYTES = 3584;          // by-value payload of one upload launch (params < 4 KiB)

// ---------------------------------------------------------------- errors

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

// ---------------------------------------------------------------- host -> device by value

struct upload_chunk {
    unsigned char b[UPLOAD_BYTES];
};

__global__ void upload_kernel(unsigned char *dst, upload_chunk c, int n)
{
    for (int i = threadIdx.x; i < n; i += blockDim.x) dst[i] = c.b[i];
}

// Copies `bytes` of host memory to device memory `dst` on stream s through
// kernel parameters: no pinned staging, no wait for the host.
kiln_status upload(const char *fn, void *dst, const void *src, size_t bytes, cudaStream_t s)
{
    upload_chunk c;
    for (size_t off = 0; off < bytes; off += UPLOAD_BYTES) {
        size_t len = bytes - off < (size_t)UPLOAD_BYTES ? bytes - off : (size_t)UPLOAD_BYTES;
        memcpy(c.b, (const unsigned char *)src + off, len);
        upload_kernel<<<1, BLOCK, 0, s>>>((unsigned char *)dst + off, c, (int)len);
        kiln_status st = launched(fn, "upload");
        if (st != KILN_OK) return st;
    }
    return KILN_OK;
}

// Offsets into one scratch allocation, each 256-byte aligned.
struct scratch_plan {
    size_t bytes = 0;
    size_t take(size_t n)
    {
        size_t at = bytes;
        bytes += (n + 255) & ~(size_t)255;
        return at;
    }
};

// ---------------------------------------------------------------- reading pred

// kiln_f16_to_f32's recipe, so f16 values (NaN payloads too) widen to the
// host's bits
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

// The network output of a group: value r of candidate i of image b, as the
// ref's pv_at.
template <typename T> struct dpred {
    const T *p;
    int64_t rows, n; // values per candidate, candidates per image
    int v8;          // 1: [B, rows, N]
    __device__ __forceinline__ float at(int64_t b, int64_t r, int64_t i) const
    {
        return ld(p, b * rows * n + (v8 ? r * n + i : i * rows + r));
    }
};

// One call's options as the kernels need them.
struct dopt {
    int layout, C;
    float conf, iou;
    int max_det, max_nms;
    float per_class;    // the class offset: 7680, or 0 when agnostic
    const int *filter;  // the class filter, sorted, duplicates removed (device)
    int n_filter, has_filter;
    int ib;             // anchor bits of a key
};

// A letterbox as the kernels read it: the f32 factors ref_detect.c's
// axis_factor gives, the padding, the frame.
struct dlb {
    float sx, sy, px, py;
    int fw, fh;
};

struct nms_box {
    float x1, y1, x2, y2, area;
};

__device__ __forceinline__ bool wanted(const dopt &o, int cls)
{
    if (!o.has_filter) return true;
    int lo = 0, hi = o.n_filter; // binary search of the sorted list
    while (lo < hi) {
        int mid = (lo + hi) >> 1;
        int v = o.filter[mid];
        if (v == cls) return true;
        if (v < cls)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

// ref_detect.c's class_of: v10's float class column as an int, -1 when it
// is not a class index
__device__ __forceinline__ int class_of(float v)
{
    return v >= 0 && v < 2147483520.0f && v == floorf(v) ? (int)v : -1;
}

__device__ __forceinline__ uint64_t score_key(float score, int64_t i, int ib)
{
    return ((uint64_t)(~__float_as_uint(score)) << ib) | (uint64_t)i;
}

__device__ __forceinline__ float key_score(uint64_t key, int ib) { return __uint_as_float(~(uint32_t)(key >> ib)); }

// ref_detect.c's box_of: corners in network pixels (xywh2xyxy: half size
// first, then center -/+)
template <typename T>
__device__ __forceinline__ void box_of(const dpred<T> &p, int layout, int64_t b, int64_t i, float xy[4])
{
    const float a = p.at(b, 0, i), bb = p.at(b, 1, i), c = p.at(b, 2, i), d = p.at(b, 3, i);
    if (layout == KILN_YOLO_V10) {
        xy[0] = a, xy[1] = bb, xy[2] = c, xy[3] = d;
        return;
    }
    const float hw = __fdiv_rn(c, 2.0f), hh = __fdiv_rn(d, 2.0f);
    xy[0] = __fsub_rn(a, hw), xy[1] = __fsub_rn(bb, hh), xy[2] = __fadd_rn(a, hw), xy[3] = __fadd_rn(bb, hh);
}

__device__ __forceinline__ nms_box nms_box_of(const float xy[4], float offset)
{
    nms_box q = {__fadd_rn(xy[0], offset), __fadd_rn(xy[1], offset), __fadd_rn(xy[2], offset),
                 __fadd_rn(xy[3], offset), 0.f};
    q.area = __fmul_rn(__fsub_rn(q.x2, q.x1), __fsub_rn(q.y2, q.y1));
    return q;
}

// ref_detect.c's overlaps: k the earlier (kept) box, j the later one, term
// by term
__device__ __forceinline__ bool overlaps(const nms_box &k, const nms_box &j, float iou)
{
    const float xx1 = k.x1 < j.x1 ? j.x1 : k.x1;
    const float yy1 = k.y1 < j.y1 ? j.y1 : k.y1;
    const float xx2 = j.x2 < k.x2 ? j.x2 : k.x2;
    const float yy2 = j.y2 < k.y2 ? j.y2 : k.y2;
    const float dw = __fsub_rn(xx2, xx1), dh = __fsub_rn(yy2, yy1);
    const float w = 0 < dw ? dw : 0, h = 0 < dh ? dh : 0;
    const float inter = __fmul_rn(w, h);
    const float uni = __fsub_rn(__fadd_rn(k.area, j.area), inter);
    return __fdiv_rn(inter, uni) > iou;
}

// ref_detect.c's to_frame: (v - pad) / factor clamped to [0, side], NaN kept
__device__ __forceinline__ float to_frame(float v, float pad, float factor, int side)
{
    v = __fdiv_rn(__fsub_rn(v, pad), factor);
    if (v < 0) v = 0;
    if (v > (float)side) v = (float)side;
    return v;
}

// ---------------------------------------------------------------- 1. gather

// One thread per candidate of image b0 + blockIdx.y: its score and class as
// the ref's gather_v8 / gather_v5 / gather_v10, appended to the image's key
// list when it passes. YOLOv10's key is the anchor alone (sorted by output
// order first).
template <typename T>
__global__ void __launch_bounds__(BLOCK) gather_kernel(dpred<T> p, dopt o, int64_t b0, int *cnt, uint64_t *keys,
                                                       int *cls_of_anchor)
{
    const int64_t i = (int64_t)blockIdx.x * BLOCK + threadIdx.x;
    const int bl = blockIdx.y;
    const int64_t b = b0 + bl;
    float score = 0;
    int cls = 0;
    bool ok = false;
    if (i < p.n) {
        if (o.layout == KILN_YOLO_V8) {
            // the best class, row by row; NaN propagates as torch's max (a
            // NaN best stays, and never passes > conf)
            float best = p.at(b, 4, i);
            for (int k = 1; k < o.C && best == best; k++) {
                const float v = p.at(b, 4 + k, i);
                if (v > best || v != v) { // strict: the first class wins a tie
                    best = v;
                    cls = k;
                }
            }
            score = best;
            ok = best > o.conf;
        } else if (o.layout == KILN_YOLO_V5) {
            // YOLOv5: objectness > conf, then the best obj * cls product
            const float obj = p.at(b, 4, i);
            if (obj > o.conf) {
                float best = __fmul_rn(obj, p.at(b, 5, i));
                for (int k = 1; k < o.C && best == best; k++) {
                    const float v = __fmul_rn(obj, p.at(b, 5 + k, i));
                    if (v > best || v != v) {
                        best = v;
                        cls = k;
                    }
                }
                score = best;
                ok = best > o.conf;
            }
        } else {
            const float s = p.at(b, 4, i);
            if (s > o.conf) {
                cls = class_of(p.at(b, 5, i));
                score = s;
                ok = true;
            }
        }
        ok = ok && wanted(o, cls);
    }
    // one atomic per warp for the warp's passing candidates
    const unsigned lane = threadIdx.x & 31u;
    const unsigned pass = __ballot_sync(0xffffffffu, ok);
    if (!pass) return;
    const int leader = __ffs(pass) - 1;
    int base = 0;
    if ((int)lane == leader) base = atomicAdd(&cnt[bl], __popc(pass));
    base = __shfl_sync(0xffffffffu, base, leader);
    if (!ok) return;
    const int64_t slot = (int64_t)bl * p.n + base + __popc(pass & ((1u << lane) - 1u));
    keys[slot] = o.layout == KILN_YOLO_V10 ? (uint64_t)i : score_key(score, i, o.ib);
    cls_of_anchor[(int64_t)bl * p.n + i] = cls;
}

// The segments CUB sorts: image bl's keys are [bl * N, bl * N + count).
__global__ void segments_kernel(const int *cnt, int gn, int n, int *seg_begin, int *seg_end)
{
    const int bl = blockIdx.x * BLOCK + threadIdx.x;
    if (bl >= gn) return;
    seg_begin[bl] = bl * n;
    seg_end[bl] = bl * n + cnt[bl];
}

// YOLOv10 after the sort by anchor: its first max_det rows (the ref's
// gather_v10 stops there) get score keys for the second sort.
template <typename T>
__global__ void __launch_bounds__(BLOCK) v10_rekey_kernel(dpred<T> p, dopt o, int64_t b0, const int *cnt,
                                                           const uint64_t *by_anchor, uint64_t *keys, int *seg_end)
{
    const int bl = blockIdx.x;
    const int64_t b = b0 + bl, seg = (int64_t)bl * p.n;
    const int m = min(cnt[bl], o.max_det);
    for (int k = threadIdx.x; k < m; k += BLOCK) {
        const int64_t i = (int64_t)by_anchor[seg + k];
        keys[seg + k] = score_key(p.at(b, 4, i), i, o.ib);
    }
    if (threadIdx.x == 0) seg_end[bl] = (int)(seg + m);
}

// ---------------------------------------------------------------- 3. NMS and 4. output

struct nms_args {
    int64_t b0;
    const uint64_t *sorted; // the group's keys, sorted per image (segments of N)
    const int *cnt;         // candidates per image
    const int *cls_of;      // class per anchor (segments of N)
    nms_box *kept_box;      // kept_cap per image
    uint64_t *kept_key;
    int kept_cap;
    const dlb *lbs;         // the call's letterboxes (device), NULL: network pixels
    kiln_detection *out;
    int *counts;
    float *extra;
    int E;
    int64_t extra_row;
};

template <typename T> __global__ void __launch_bounds__(NMS_T) nms_kernel(dpred<T> p, dopt o, nms_args a)
{
    __shared__ nms_box cand[NMS_T];
    __shared__ nms_box kept_tile[NMS_T];
    __shared__ uint64_t cand_key[NMS_T];
    __shared__ uint32_t mask[NMS_T][NMS_WORDS];
    __shared__ int alive[NMS_T];
    __shared__ int s_count;

    const int tid = threadIdx.x, bl = blockIdx.x;
    const int64_t b = a.b0 + bl, seg = (int64_t)bl * p.n;
    const int m = min(a.cnt[bl], o.max_nms); // the best max_nms candidates go into NMS
    const uint64_t anchor_mask = ((uint64_t)1 << o.ib) - 1;
    nms_box *kb = a.kept_box + (int64_t)bl * a.kept_cap;
    uint64_t *kk = a.kept_key + (int64_t)bl * a.kept_cap;
    const uint64_t *final_keys = kk;
    int count;

    if (o.layout == KILN_YOLO_V10) { // end to end: no NMS, the best max_det
        count = min(m, o.max_det);
        final_keys = a.sorted + seg;
    } else {
        if (tid == 0) s_count = 0;
        __syncthreads();
        for (int t0 = 0; t0 < m; t0 += NMS_T) {
            const int done = s_count; // boxes kept so far (every thread reads it after a barrier)
            if (done >= o.max_det) break;
            const int i = t0 + tid;
            int live = i < m;
            nms_box q = {0.f, 0.f, 0.f, 0.f, 0.f};
            uint64_t key = 0;
            if (live) {
                key = a.sorted[seg + i];
                const int64_t anchor = (int64_t)(key & anchor_mask);
                float xy[4];
                box_of(p, o.layout, b, anchor, xy);
                // the class offset in f32, as Ultralytics adds it
                q = nms_box_of(xy, __fmul_rn(__int2float_rn(a.cls_of[seg + anchor]), o.per_class));
            }
            cand[tid] = q;
            cand_key[tid] = key;
            // against every box kept by the tiles before, NMS_T at a time
            for (int k0 = 0; k0 < done; k0 += NMS_T) {
                __syncthreads();
                if (k0 + tid < done) kept_tile[tid] = kb[k0 + tid];
                __syncthreads();
                const int kn = min(NMS_T, done - k0);
                for (int k = 0; live && k < kn; k++)
                    if (overlaps(kept_tile[k], q, o.iou)) live = 0;
            }
            alive[tid] = live;
            __syncthreads();
            // the tile's bitmask: row j holds the later live candidates j
            // would suppress; rows of dead candidates are never read
            for (int w = tid; w < NMS_T * NMS_WORDS; w += NMS_T) {
                const int j = w / NMS_WORDS, word = w % NMS_WORDS;
                uint32_t bits = 0;
                if (alive[j] && word * 32 + 31 > j)
                    for (int t = 0; t < 32; t++) {
                        const int c = word * 32 + t;
                        if (c > j && alive[c] && overlaps(cand[j], cand[c], o.iou)) bits |= 1u << t;
                    }
                mask[j][word] = bits;
            }
            __syncthreads();
            // greedy, in score order: lane w holds word w of the tile's
            // "suppressed by a kept one" bits
            if (tid < 32) {
                uint32_t removed = 0;
                int c = done;
                const int tn = min(NMS_T, m - t0);
                for (int j = 0; j < tn && c < o.max_det; j++) {
                    const uint32_t word = __shfl_sync(0xffffffffu, removed, j >> 5);
                    if (alive[j] && !((word >> (j & 31)) & 1u)) {
                        if (tid < NMS_WORDS) removed |= mask[j][tid];
                        if (tid == 0) {
                            kb[c] = cand[j];
                            kk[c] = cand_key[j];
                        }
                        c++;
                    }
                }
                if (tid == 0) s_count = c;
            }
            __syncthreads();
        }
        count = s_count;
    }

    // detections, mapped to the frame
    kiln_detection *out = a.out + b * o.max_det;
    for (int slot = tid; slot < count; slot += NMS_T) {
        const uint64_t key = final_keys[slot];
        const int64_t anchor = (int64_t)(key & anchor_mask);
        float xy[4];
        box_of(p, o.layout, b, anchor, xy);
        kiln_detection r;
        if (a.lbs) {
            const dlb lb = a.lbs[b];
            r.x1 = to_frame(xy[0], lb.px, lb.sx, lb.fw);
            r.y1 = to_frame(xy[1], lb.py, lb.sy, lb.fh);
            r.x2 = to_frame(xy[2], lb.px, lb.sx, lb.fw);
            r.y2 = to_frame(xy[3], lb.py, lb.sy, lb.fh);
        } else {
            r.x1 = xy[0], r.y1 = xy[1], r.x2 = xy[2], r.y2 = xy[3];
        }
        r.score = key_score(key, o.ib);
        r.class_id = a.cls_of[seg + anchor];
        r.anchor = (int)anchor;
        out[slot] = r;
    }
    if (a.extra && a.E > 0) {
        float *e = a.extra + b * o.max_det * (int64_t)a.E;
        const int64_t total = (int64_t)count * a.E;
        for (int64_t k = tid; k < total; k += NMS_T) {
            const int64_t slot = k / a.E, r = k % a.E;
            const int64_t anchor = (int64_t)(final_keys[slot] & anchor_mask);
            e[k] = p.at(b, a.extra_row + r, anchor);
        }
    }
    if (tid == 0) a.counts[b] = count;
}

// ---------------------------------------------------------------- keypoints

// ref_detect.c's kiln_vref_keypoints per (x, y, visibility): x and y
// through the letterbox and clipped, the confidence as given. Reads all
// three before writing, so kp may be extra itself.
__global__ void keypoints_kernel(int64_t total, const float *extra, dlb lb, float *kp)
{
    const int64_t i = (int64_t)blockIdx.x * BLOCK + threadIdx.x;
    if (i >= total) return;
    const float *s = extra + 3 * i;
    const float x = s[0], y = s[1], v = s[2];
    float *t = kp + 3 * i;
    t[0] = to_frame(x, lb.px, lb.sx, lb.fw);
    t[1] = to_frame(y, lb.py, lb.sy, lb.fh);
    t[2] = v;
}

// ---------------------------------------------------------------- host side

int cmp_int(const void *a, const void *b)
{
    const int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

// Bits of an anchor in a key: enough for N - 1, at least 1.
int anchor_bits(int64_t n)
{
    int ib = 1;
    while (ib < 31 && ((int64_t)1 << ib) < n) ib++;
    return ib;
}

// CUB's temporary storage for a group of gn images.
cudaError_t sort_temp(size_t *bytes, int64_t gn, int64_t n, int end_bit, cudaStream_t s)
{
    *bytes = 0;
    return cub::DeviceSegmentedRadixSort::SortKeys(nullptr, *bytes, (const uint64_t *)nullptr, (uint64_t *)nullptr,
                                                   (int)(gn * n), (int)gn, (int *)nullptr, (int *)nullptr, 0,
                                                   end_bit, s);
}

// The scratch of one pass (a group of images), carved from one allocation.
struct detect_scratch {
    int *cnt, *seg_begin, *seg_end; // per image of the group
    uint64_t *keys, *sorted;        // N per image
    int *cls;                       // N per image
    nms_box *kept_box;              // kept_cap per image
    uint64_t *kept_key;
    int kept_cap;
    void *tmp;                      // CUB's
    size_t tmp_bytes;
};

template <typename T>
kiln_status detect_groups(const char *fn, const dopt &o, dpred<T> p, int64_t nb, int64_t group,
                          const detect_scratch &w, const dlb *lbs, kiln_detection *out, int *counts, float *extra,
                          int E, int64_t extra_row, cudaStream_t s)
{
    const int64_t n = p.n;
    for (int64_t b0 = 0; b0 < nb; b0 += group) {
        const int64_t gn = nb - b0 < group ? nb - b0 : group;
        cudaError_t e = cudaMemsetAsync(w.cnt, 0, (size_t)gn * sizeof *w.cnt, s);
        if (e != cudaSuccess) return cuda_failed(fn, "cudaMemsetAsync", e);
        dim3 grid((unsigned)((n + BLOCK - 1) / BLOCK), (unsigned)gn);
        gather_kernel<T><<<grid, BLOCK, 0, s>>>(p, o, b0, w.cnt, w.keys, w.cls);
        kiln_status st = launched(fn, "gather");
        if (st != KILN_OK) return st;
        segments_kernel<<<(unsigned)((gn + BLOCK - 1) / BLOCK), BLOCK, 0, s>>>(w.cnt, (int)gn, (int)n, w.seg_begin,
                                                                               w.seg_end);
        if ((st = launched(fn, "segments")) != KILN_OK) return st;
        size_t tmp = w.tmp_bytes;
        if (o.layout == KILN_YOLO_V10) { // by anchor, then the first max_det of those by score
            e = cub::DeviceSegmentedRadixSort::SortKeys(w.tmp, tmp, w.keys, w.sorted, (int)(gn * n), (int)gn,
                                                        w.seg_begin, w.seg_end, 0, o.ib, s);
            if (e != cudaSuccess) return cuda_failed(fn, "cub::DeviceSegmentedRadixSort::SortKeys", e);
            v10_rekey_kernel<T><<<(unsigned)gn, BLOCK, 0, s>>>(p, o, b0, w.cnt, w.sorted, w.keys, w.seg_end);
            if ((st = launched(fn, "v10_rekey")) != KILN_OK) return st;
            tmp = w.tmp_bytes;
        }
        e = cub::DeviceSegmentedRadixSort::SortKeys(w.tmp, tmp, w.keys, w.sorted, (int)(gn * n), (int)gn,
                                                    w.seg_begin, w.seg_end, 0, 32 + o.ib, s);
        if (e != cudaSuccess) return cuda_failed(fn, "cub::DeviceSegmentedRadixSort::SortKeys", e);
        nms_args a;
        a.b0 = b0;
        a.sorted = w.sorted;
        a.cnt = w.cnt;
        a.cls_of = w.cls;
        a.kept_box = w.kept_box;
        a.kept_key = w.kept_key;
        a.kept_cap = w.kept_cap;
        a.lbs = lbs;
        a.out = out;
        a.counts = counts;
        a.extra = extra;
        a.E = E;
        a.extra_row = extra_row;
        nms_kernel<T><<<(unsigned)gn, NMS_T, 0, s>>>(p, o, a);
        if ((st = launched(fn, "nms")) != KILN_OK) return st;
    }
    return KILN_OK;
}

} // namespace

extern "C" kiln_status kiln_vcuda_detect(const kiln_detect_options *o, const kiln_tensor *pred,
                                         const kiln_letterbox *boxes, kiln_detection *out, int *counts, float *extra,
                                         void *stream)
{
    static const char fn[] = "kiln_vision_detect (cuda)";
    cudaStream_t s = (cudaStream_t)stream;
    const int v8 = o->layout == KILN_YOLO_V8;
    const int64_t nb = pred->dims[0];
    const int64_t rows = v8 ? pred->dims[1] : pred->dims[2], n = v8 ? pred->dims[2] : pred->dims[1];
    const int E = o->num_extra;
    const int64_t extra_row = o->layout == KILN_YOLO_V8   ? 4 + o->num_classes
                              : o->layout == KILN_YOLO_V5 ? 5 + o->num_classes
                                                          : 6;
    if (nb == 0) return KILN_OK;
    if (n == 0) {
        cudaError_t e = cudaMemsetAsync(counts, 0, (size_t)nb * sizeof *counts, s);
        return e == cudaSuccess ? KILN_OK : cuda_failed(fn, "cudaMemsetAsync of counts", e);
    }

    dopt d;
    memset(&d, 0, sizeof d);
    d.layout = o->layout;
    d.C = o->num_classes;
    d.conf = o->conf;
    d.iou = o->iou;
    d.max_det = o->max_det;
    d.max_nms = o->max_nms;
    d.per_class = o->agnostic ? 0.0f : KILN_VISION_MAX_WH;
    d.has_filter = o->classes != NULL;
    d.ib = anchor_bits(n);

    // the class filter sorted and deduplicated (membership is all it says)
    int *filter = NULL;
    if (o->classes && o->n_classes > 0) {
        filter = (int *)kiln_xmalloc((size_t)o->n_classes * sizeof *filter);
        if (!filter) return KILN_ERR_OUT_OF_MEMORY;
        memcpy(filter, o->classes, (size_t)o->n_classes * sizeof *filter);
        qsort(filter, (size_t)o->n_classes, sizeof *filter, cmp_int);
        int u = 0;
        for (int k = 0; k < o->n_classes; k++)
            if (u == 0 || filter[u - 1] != filter[k]) filter[u++] = filter[k];
        d.n_filter = u;
    }
    dlb *lbs = NULL;
    if (boxes) {
        lbs = (dlb *)kiln_xmalloc((size_t)nb * sizeof *lbs);
        if (!lbs) {
            free(filter);
            return KILN_ERR_OUT_OF_MEMORY;
        }
        for (int64_t b = 0; b < nb; b++) {
            const kiln_letterbox *lb = &boxes[b];
            lbs[b].sx = (float)kiln_lb_scale_x(lb);
            lbs[b].sy = (float)kiln_lb_scale_y(lb);
            lbs[b].px = lb->pad_x;
            lbs[b].py = lb->pad_y;
            lbs[b].fw = lb->frame_width;
            lbs[b].fh = lb->frame_height;
        }
    }

    // images per pass, and the scratch of one pass
    int64_t group = GROUP_CANDIDATES / n;
    if (group < 1) group = 1;
    if (group > nb) group = nb;
    if (group > MAX_GRID_Y) group = MAX_GRID_Y;
    const int64_t last = nb % group ? nb % group : group;
    const int64_t kept_cap = o->max_det < n ? o->max_det : n;
    size_t tmp_bytes = 0;
    cudaError_t e = cudaSuccess;
    for (int v = 0; v < 2 && e == cudaSuccess; v++) // the full group and the last one, both key widths
        for (int w = 0; w < 2 && e == cudaSuccess; w++) {
            size_t t = 0;
            e = sort_temp(&t, v ? last : group, n, w ? d.ib : 32 + d.ib, s);
            if (t > tmp_bytes) tmp_bytes = t;
        }
    if (e != cudaSuccess) {
        free(filter);
        free(lbs);
        return cuda_failed(fn, "cub::DeviceSegmentedRadixSort::SortKeys (size)", e);
    }
    scratch_plan sp;
    const size_t off_lbs = sp.take(boxes ? (size_t)nb * sizeof(dlb) : 0);
    const size_t off_filter = sp.take((size_t)d.n_filter * sizeof(int));
    const size_t off_cnt = sp.take((size_t)group * sizeof(int));
    const size_t off_seg_b = sp.take((size_t)group * sizeof(int));
    const size_t off_seg_e = sp.take((size_t)group * sizeof(int));
    const size_t off_keys = sp.take((size_t)(group * n) * sizeof(uint64_t));
    const size_t off_sorted = sp.take((size_t)(group * n) * sizeof(uint64_t));
    const size_t off_cls = sp.take((size_t)(group * n) * sizeof(int));
    const size_t off_kbox = sp.take((size_t)(group * kept_cap) * sizeof(nms_box));
    const size_t off_kkey = sp.take((size_t)(group * kept_cap) * sizeof(uint64_t));
    const size_t off_tmp = sp.take(tmp_bytes);

    char *base = NULL;
    e = cudaMallocAsync((void **)&base, sp.bytes, s);
    if (e != cudaSuccess) {
        free(filter);
        free(lbs);
        return cuda_failed(fn, "cudaMallocAsync of the scratch", e);
    }
    kiln_status st = KILN_OK;
    if (boxes) st = upload(fn, base + off_lbs, lbs, (size_t)nb * sizeof(dlb), s);
    if (st == KILN_OK && d.n_filter) st = upload(fn, base + off_filter, filter, (size_t)d.n_filter * sizeof(int), s);
    free(filter);
    free(lbs);
    d.filter = (const int *)(base + off_filter);
    const dlb *d_lbs = boxes ? (const dlb *)(base + off_lbs) : NULL;
    detect_scratch w;
    w.cnt = (int *)(base + off_cnt);
    w.seg_begin = (int *)(base + off_seg_b);
    w.seg_end = (int *)(base + off_seg_e);
    w.keys = (uint64_t *)(base + off_keys);
    w.sorted = (uint64_t *)(base + off_sorted);
    w.cls = (int *)(base + off_cls);
    w.kept_box = (nms_box *)(base + off_kbox);
    w.kept_key = (uint64_t *)(base + off_kkey);
    w.kept_cap = (int)kept_cap;
    w.tmp = base + off_tmp;
    w.tmp_bytes = tmp_bytes;
    if (st == KILN_OK) {
        if (pred->dtype == KILN_F16) {
            dpred<uint16_t> p = {(const uint16_t *)pred->data, rows, n, v8};
            st = detect_groups(fn, d, p, nb, group, w, d_lbs, out, counts, extra, E, extra_row, s);
        } else {
            dpred<float> p = {(const float *)pred->data, rows, n, v8};
            st = detect_groups(fn, d, p, nb, group, w, d_lbs, out, counts, extra, E, extra_row, s);
        }
    }
    e = cudaFreeAsync(base, s);
    if (e != cudaSuccess && st == KILN_OK) st = cuda_failed(fn, "cudaFreeAsync of the scratch", e);
    return st;
}

extern "C" kiln_status kiln_vcuda_keypoints(int n, int k, const float *extra, const kiln_letterbox *box, float *kp,
                                            void *stream)
{
    static const char fn[] = "kiln_vision_keypoints (cuda)";
    cudaStream_t s = (cudaStream_t)stream;
    const int64_t total = (int64_t)n * k;
    if (total <= 0) return KILN_OK;
    if (!box) { // network pixels: the values as they are
        if (kp == extra) return KILN_OK;
        cudaError_t e = cudaMemcpyAsync(kp, extra, (size_t)total * 3 * sizeof *kp, cudaMemcpyDeviceToDevice, s);
        return e == cudaSuccess ? KILN_OK : cuda_failed(fn, "cudaMemcpyAsync", e);
    }
    dlb lb = {(float)kiln_lb_scale_x(box), (float)kiln_lb_scale_y(box), box->pad_x, box->pad_y, box->frame_width,
                 box->frame_height};
    keypoints_kernel<<<(unsigned)((total + BLOCK - 1) / BLOCK), BLOCK, 0, s>>>(total, extra, lb, kp);
    return launched(fn, "keypoints");
}
