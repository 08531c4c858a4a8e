// Internal helpers shared by the elementwise kernels (elementwise.cu) and
// the fused float program (ew_program.cu): the launch plan over kc_iter
// (walk_plan, walk_dispatch, walk_offsets, WALK_LOOP), the dtype-dispatched
// loads, and the host-side checks of operands. Everything has internal
// linkage: each .cu file that includes this gets its own copy.
#ifndef KILN_CUDA_EW_WALK_CUH
#define KILN_CUDA_EW_WALK_CUH

#include <math.h>
#include <stdio.h>

#include <type_traits>

#include "cuda/kc_device.cuh"

#define EW_BLOCK 256
// Enough blocks to fill any current GPU a few times over; the loop strides
// over the rest.
#define EW_MAX_GRID 8192
// Elements one thread of ew_kernel carries through the program together:
// the decode of each instruction is paid once for four elements, and the
// registers (float4, in local memory since they are indexed at run time)
// move 16 bytes at a time.
#define EW_VEC 4

namespace {

// ---------------------------------------------------------------- walks

// A launch over kc_iter: which index type and offset form the kernel uses.
struct ew_walk {
    kc_iter it;
    bool i32;  // every offset, and n plus the grid stride, fit in int32
    bool flat; // rank 1: offset j is i * s[j][0]
    unsigned grid;
};

// per_thread: elements one thread handles per pass of its loop (sizes the
// grid only).
static inline kiln_status walk_plan(int n_ops, const kc_view *const *ops, int per_thread, ew_walk *w)
{
    kiln_status st = kc_iter_make(n_ops, ops, &w->it);
    if (st != KILN_OK) return st;
    const int64_t per_block = (int64_t)EW_BLOCK * per_thread;
    int64_t blocks = (w->it.n + per_block - 1) / per_block;
    w->grid = (unsigned)(blocks < EW_MAX_GRID ? (blocks > 0 ? blocks : 1) : EW_MAX_GRID);
    // the loop's last index plus its stride must not wrap either (EW_VEC:
    // the most elements per thread of any kernel here); doubles keep a
    // hostile stride from overflowing the bound itself
    const double lim = (double)INT32_MAX - (double)EW_MAX_GRID * EW_BLOCK * EW_VEC;
    bool fits = (double)w->it.n <= lim;
    for (int j = 0; j < n_ops && fits; j++) {
        double span = 0;
        for (int k = 0; k < w->it.rank; k++)
            if (w->it.d[k] > 0) span += (double)(w->it.d[k] - 1) * fabs((double)w->it.s[j][k]);
        fits = span <= lim;
    }
    w->i32 = fits;
    w->flat = fits && w->it.rank == 1;
    return KILN_OK;
}

// Calls f(IndexT{}, std::integral_constant<bool, FLAT>{}) for the walk's
// kernel variant. 64-bit walks are rare (over 2^31 elements) and take the
// general form only.
template <typename F> static void walk_dispatch(const ew_walk &w, F &&f)
{
    if (!w.i32)
        f(int64_t(0), std::false_type());
    else if (w.flat)
        f(int32_t(0), std::true_type());
    else
        f(int32_t(0), std::false_type());
}

template <typename IndexT, bool FLAT, int NOPS>
__device__ __forceinline__ void walk_offsets(const kc_iter &it, IndexT i, IndexT (&off)[NOPS])
{
    if (FLAT) {
#pragma unroll
        for (int j = 0; j < NOPS; j++) off[j] = i * (IndexT)it.s[j][0];
    } else {
        kc_iter_offsets<IndexT, NOPS>(it, i, off);
    }
}

#define WALK_LOOP(i, it)                                                                                          \
    for (IndexT i = (IndexT)(blockIdx.x * EW_BLOCK + threadIdx.x), n_ = (IndexT)(it).n,                          \
                step_ = (IndexT)gridDim.x * EW_BLOCK;                                                             \
         i < n_; i += step_)

// ---------------------------------------------------------------- loads

static inline bool is_float_dt(kiln_dtype t) { return t == KILN_F32 || t == KILN_F16 || t == KILN_BF16; }
static inline bool is_int_dt(kiln_dtype t) { return t == KILN_I64 || t == KILN_I32 || t == KILN_I8 || t == KILN_U8; }

// Element `off` of a f32/f16/bf16 buffer as f32. The dtype is uniform over
// the grid, so the branch never diverges.
template <typename IndexT> __device__ __forceinline__ float load_float(const void *p, int dt, IndexT off)
{
    if (dt == KILN_F16) return __half2float(static_cast<const __half *>(p)[off]);
    if (dt == KILN_BF16) return __bfloat162float(static_cast<const __nv_bfloat16 *>(p)[off]);
    return static_cast<const float *>(p)[off];
}

// Element `off` of an integer or bool buffer as i64 (bool: 0 or 1).
template <typename IndexT> __device__ __forceinline__ int64_t load_int(const void *p, int dt, IndexT off)
{
    switch (dt) {
    case KILN_I32: return static_cast<const int32_t *>(p)[off];
    case KILN_I8: return static_cast<const int8_t *>(p)[off];
    case KILN_U8: return static_cast<const uint8_t *>(p)[off];
    case KILN_BOOL: return static_cast<const uint8_t *>(p)[off] != 0;
    default: return static_cast<const int64_t *>(p)[off];
    }
}

template <typename C, typename IndexT> __device__ __forceinline__ C load_as(const void *p, int dt, IndexT off)
{
    if constexpr (std::is_same<C, int64_t>::value)
        return load_int(p, dt, off);
    else if constexpr (std::is_same<C, double>::value)
        return dt == KILN_F64 ? static_cast<const double *>(p)[off] : (double)load_float(p, dt, off);
    else
        return load_float(p, dt, off);
}

// ---------------------------------------------------------------- host checks

static inline const char *dims_str(const kc_view *v, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int j = 0; j < v->rank && k < n; j++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", j ? "," : "", (long long)v->d[j]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

// Input `in` must broadcast to out's dims (numpy, right-aligned): the walk
// would read out of bounds otherwise.
static inline kiln_status check_bcast(const kc_view *in, const kc_view *out, const char *what, int k)
{
    bool ok = in->rank >= 0 && in->rank <= out->rank;
    for (int j = 0; ok && j < in->rank; j++) {
        int64_t d = in->d[j], o = out->d[out->rank - in->rank + j];
        ok = d == 1 || d == o;
    }
    if (ok) return KILN_OK;
    char a[160], b[160];
    return kiln_fail(KILN_ERR_SHAPE, "%s: input %d %s does not broadcast to the output %s", what, k,
                     dims_str(in, a, sizeof a), dims_str(out, b, sizeof b));
}

static inline kiln_status check_out(const kc_view *out, const char *what)
{
    if (out->rank < 0 || out->rank > KILN_MAX_RANK)
        return kiln_fail(KILN_ERR_INTERNAL, "%s: output of rank %d", what, out->rank);
    if (!out->p) return kiln_fail(KILN_ERR_INTERNAL, "%s: the output is not on the device", what);
    return KILN_OK;
}

} // namespace

#endif
