// Internal helpers shared by the tensor family's kernels (tensor.cu and
// gather.cu): the element conversions of kc_copy (which follow
// src/ref/cast.c exactly, see tensor.cu), dtype dispatch, launch sizing,
// the run-time element movers of the kernels that seldom convert, and the
// node-named failure messages. Everything has internal linkage: each .cu
// file that includes this gets its own copy.
#ifndef KILN_CUDA_TENSOR_UTIL_CUH
#define KILN_CUDA_TENSOR_UTIL_CUH

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include <type_traits>

#include "cuda/kc_device.cuh"

namespace {


// bool's storage: one byte, distinct from u8 for the conversion rules
struct kc_bool8 {
    uint8_t v;
};

template <class T> struct is_flt : std::false_type {};
template <> struct is_flt<float> : std::true_type {};
template <> struct is_flt<__half> : std::true_type {};
template <> struct is_flt<__nv_bfloat16> : std::true_type {};

// every float source widens to f32 exactly; every integer source to i64
__device__ __forceinline__ float to_flt(float x) { return x; }
__device__ __forceinline__ float to_flt(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_flt(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ int64_t to_int(int64_t x) { return x; }
__device__ __forceinline__ int64_t to_int(int32_t x) { return x; }
__device__ __forceinline__ int64_t to_int(int8_t x) { return x; }
__device__ __forceinline__ int64_t to_int(uint8_t x) { return x; }
__device__ __forceinline__ int64_t to_int(kc_bool8 x) { return x.v != 0; }

// Both bounds are powers of two, exact in f32; NaN fails both comparisons.
__device__ __forceinline__ int32_t f2i32(float x)
{
    return x >= -2147483648.0f && x < 2147483648.0f ? (int32_t)x : INT32_MIN;
}
__device__ __forceinline__ int64_t f2i64(float x)
{
    return x >= -9223372036854775808.0f && x < 9223372036854775808.0f ? (int64_t)x : INT64_MIN;
}

// d rounded to f32 toward odd: truncate, then make the last bit sticky. A
// later round-to-nearest-even into a narrower format is then the correct
// single rounding of d (as the reference does).
__device__ __forceinline__ float f32_round_odd(double d)
{
    float f = __double2float_rz(d);
    if ((double)f != d && d == d) f = __uint_as_float(__float_as_uint(f) | 1u);
    return f;
}

template <class T> __device__ __forceinline__ T from_flt(float x);
template <> __device__ __forceinline__ float from_flt<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_flt<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_flt<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <> __device__ __forceinline__ int64_t from_flt<int64_t>(float x) { return f2i64(x); }
template <> __device__ __forceinline__ int32_t from_flt<int32_t>(float x) { return f2i32(x); }
template <> __device__ __forceinline__ int8_t from_flt<int8_t>(float x) { return (int8_t)(uint8_t)(uint32_t)f2i32(x); }
template <> __device__ __forceinline__ uint8_t from_flt<uint8_t>(float x) { return (uint8_t)(uint32_t)f2i32(x); }
template <> __device__ __forceinline__ kc_bool8 from_flt<kc_bool8>(float x) { return kc_bool8{(uint8_t)(x != 0.f)}; }

template <class T> __device__ __forceinline__ T from_int(int64_t x);
template <> __device__ __forceinline__ float from_int<float>(int64_t x) { return (float)x; }
// |x| > 2^24 is past f16's largest finite value either way: no double rounding
template <> __device__ __forceinline__ __half from_int<__half>(int64_t x) { return __float2half_rn((float)x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_int<__nv_bfloat16>(int64_t x)
{
    return __float2bfloat16_rn(f32_round_odd((double)x));
}
template <> __device__ __forceinline__ int64_t from_int<int64_t>(int64_t x) { return x; }
template <> __device__ __forceinline__ int32_t from_int<int32_t>(int64_t x) { return (int32_t)(uint32_t)(uint64_t)x; }
template <> __device__ __forceinline__ int8_t from_int<int8_t>(int64_t x) { return (int8_t)(uint8_t)(uint64_t)x; }
template <> __device__ __forceinline__ uint8_t from_int<uint8_t>(int64_t x) { return (uint8_t)(uint64_t)x; }
template <> __device__ __forceinline__ kc_bool8 from_int<kc_bool8>(int64_t x) { return kc_bool8{(uint8_t)(x != 0)}; }

template <class To, class Ti> __device__ __forceinline__ To cvt(Ti x)
{
    if constexpr (std::is_same<To, Ti>::value)
        return x;
    else if constexpr (is_flt<Ti>::value)
        return from_flt<To>(to_flt(x));
    else
        return from_int<To>(to_int(x));
}

template <class T> struct tag {
    using type = T;
};

// Calls f(tag<T>) for the storage type of t.
template <class F> kiln_status with_type(kiln_dtype t, F &&f)
{
    switch (t) {
    case KILN_F32: return f(tag<float>());
    case KILN_F16: return f(tag<__half>());
    case KILN_BF16: return f(tag<__nv_bfloat16>());
    case KILN_I64: return f(tag<int64_t>());
    case KILN_I32: return f(tag<int32_t>());
    case KILN_I8: return f(tag<int8_t>());
    case KILN_U8: return f(tag<uint8_t>());
    case KILN_BOOL: return f(tag<kc_bool8>());
    default: return kiln_fail(KILN_ERR_UNSUPPORTED, "kc_copy: %s tensors are not supported by the cuda backend", kiln_dtype_name(t));
    }
}

// Calls f(tag<U>) for an unsigned integer of `size` bytes: same-dtype copies
// move bits, whatever the dtype.
template <class F> kiln_status with_bits(size_t size, F &&f)
{
    switch (size) {
    case 1: return f(tag<uint8_t>());
    case 2: return f(tag<uint16_t>());
    case 4: return f(tag<uint32_t>());
    case 8: return f(tag<uint64_t>());
    default: return kiln_fail(KILN_ERR_UNSUPPORTED, "kc_copy: elements of %zu bytes", size);
    }
}

const int THREADS = 256;

static inline unsigned grid_for(int64_t work)
{
    int64_t b = (work + THREADS - 1) / THREADS;
    if (b < 1) b = 1;
    if (b > (1 << 20)) b = 1 << 20; // grid-stride loops do the rest
    return (unsigned)b;
}

// Every operand's offsets stay below 2^31, so the walk may divide in 32 bits.
static inline bool iter_fits32(const kc_iter &it)
{
    if (it.n > INT32_MAX) return false;
    for (int j = 0; j < it.n_ops; j++) {
        int64_t ext = 0;
        for (int k = 0; k < it.rank; k++) {
            int64_t s = it.s[j][k] < 0 ? -it.s[j][k] : it.s[j][k];
            if (s > INT32_MAX) return false;
            ext += (it.d[k] - 1) * s;
            if (ext > INT32_MAX) return false;
        }
    }
    return true;
}

// ---- element moves for the kernels that seldom convert: bits when the
// dtypes match, else a conversion chosen at run time (warp-uniform switch)
// with the same rules as kc_copy.
struct wide {
    float f;
    int64_t i;
    bool isf;
};

__device__ __forceinline__ wide load_dyn(kiln_dtype t, const char *p, int64_t off)
{
    wide w = {0.f, 0, false};
    switch (t) {
    case KILN_F32: w.isf = true, w.f = reinterpret_cast<const float *>(p)[off]; break;
    case KILN_F16: w.isf = true, w.f = __half2float(reinterpret_cast<const __half *>(p)[off]); break;
    case KILN_BF16: w.isf = true, w.f = __bfloat162float(reinterpret_cast<const __nv_bfloat16 *>(p)[off]); break;
    case KILN_I64: w.i = reinterpret_cast<const int64_t *>(p)[off]; break;
    case KILN_I32: w.i = reinterpret_cast<const int32_t *>(p)[off]; break;
    case KILN_I8: w.i = reinterpret_cast<const int8_t *>(p)[off]; break;
    case KILN_U8: w.i = reinterpret_cast<const uint8_t *>(p)[off]; break;
    case KILN_BOOL: w.i = reinterpret_cast<const uint8_t *>(p)[off] != 0; break;
    default: break;
    }
    return w;
}

template <class T> __device__ __forceinline__ T from_wide(wide w) { return w.isf ? from_flt<T>(w.f) : from_int<T>(w.i); }

__device__ __forceinline__ void store_dyn(kiln_dtype t, char *p, int64_t off, wide w)
{
    switch (t) {
    case KILN_F32: reinterpret_cast<float *>(p)[off] = from_wide<float>(w); break;
    case KILN_F16: reinterpret_cast<__half *>(p)[off] = from_wide<__half>(w); break;
    case KILN_BF16: reinterpret_cast<__nv_bfloat16 *>(p)[off] = from_wide<__nv_bfloat16>(w); break;
    case KILN_I64: reinterpret_cast<int64_t *>(p)[off] = from_wide<int64_t>(w); break;
    case KILN_I32: reinterpret_cast<int32_t *>(p)[off] = from_wide<int32_t>(w); break;
    case KILN_I8: reinterpret_cast<int8_t *>(p)[off] = from_wide<int8_t>(w); break;
    case KILN_U8: reinterpret_cast<uint8_t *>(p)[off] = from_wide<uint8_t>(w); break;
    case KILN_BOOL: reinterpret_cast<kc_bool8 *>(p)[off] = from_wide<kc_bool8>(w); break;
    default: break;
    }
}

template <class U> struct mv_bits {
    __device__ __forceinline__ void operator()(char *o, int64_t oo, const char *i, int64_t io) const
    {
        reinterpret_cast<U *>(o)[oo] = reinterpret_cast<const U *>(i)[io];
    }
};

struct mv_dyn {
    kiln_dtype ti, to;
    __device__ __forceinline__ void operator()(char *o, int64_t oo, const char *i, int64_t io) const
    {
        store_dyn(to, o, oo, load_dyn(ti, i, io));
    }
};

static inline bool device_dtype(kiln_dtype t)
{
    switch (t) {
    case KILN_F32: case KILN_F16: case KILN_BF16: case KILN_I64: case KILN_I32: case KILN_I8: case KILN_U8:
    case KILN_BOOL: return true;
    default: return false;
    }
}

// Calls f(mover) for a move from ti to to.
template <class F> kiln_status with_mover(kiln_dtype ti, kiln_dtype to, F &&f)
{
    if (!device_dtype(ti) || !device_dtype(to))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "%s to %s is not supported by the cuda backend", kiln_dtype_name(ti),
                         kiln_dtype_name(to));
    if (ti == to) {
        switch (kiln_dtype_size(ti)) {
        case 1: return f(mv_bits<uint8_t>());
        case 2: return f(mv_bits<uint16_t>());
        case 4: return f(mv_bits<uint32_t>());
        case 8: return f(mv_bits<uint64_t>());
        default: break;
        }
    }
    return f(mv_dyn{ti, to});
}

// ---- messages: every failure names the node
KILN_PRINTF(3, 4) static inline kiln_status node_fail(const kc_launch *L, kiln_status s, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return kiln_fail(s, "%s '%s': %s", L->n->op_type, L->n->name, msg);
}

static inline kiln_status named(const kc_launch *L, kiln_status st)
{
    return st == KILN_OK ? st : kiln_fail_prefix(st, "%s '%s': ", L->n->op_type, L->n->name);
}

static inline kiln_status copy_named(const kc_launch *L, const kc_view *in, const kc_view *out)
{
    return named(L, kc_copy(in, out, L->stream));
}

static inline char *elem_ptr(const kc_view *v, int64_t off)
{
    return static_cast<char *>(v->p) + off * (int64_t)kiln_dtype_size(v->dt);
}

} // namespace

#endif
