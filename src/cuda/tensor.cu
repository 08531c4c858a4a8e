// The tensor family of the cuda backend: ops that move elements without
// arithmetic. Most are kc_copy between two views (Transpose, Slice, Concat,
// Split, Expand, and the reshapes of a non-dense tensor); Gather,
// GatherElements and Tile read through indices or wrapped coordinates;
// ConstantOfShape and Range fill.
//
// kc_copy: out = in, converted to out's dtype, through both views' strides.
// The one kernel behind layout changes (NCHW <-> NHWC), casts at the graph's
// edges and the ops above. Conversions follow src/ref/cast.c exactly, so
// that the GPU agrees with the reference bit for bit on every pair of
// kiln's device dtypes:
//  - float -> integer truncates toward zero; out of range and NaN give what
//    x86's cvtt* gives (INT32_MIN / INT64_MIN; 8-bit targets keep the low
//    byte of the 32-bit result). CUDA's own conversion saturates instead,
//    hence the explicit range checks.
//  - integer -> narrower integer drops the high bits.
//  - integer -> bf16 rounds once (through f64, rounded to odd into f32).
//  - anything -> bool is x != 0 (NaN is true); bool -> number is 0 / 1.
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <type_traits>

#include "cuda/kc_device.cuh"

extern "C" {
#include "ir/shape_tensor.h"
}

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
const int TILE = 32;      // transpose tile edge
const int TILE_ROWS = 8;  // a transpose block is TILE x TILE_ROWS threads

unsigned grid_for(int64_t work)
{
    int64_t b = (work + THREADS - 1) / THREADS;
    if (b < 1) b = 1;
    if (b > (1 << 20)) b = 1 << 20; // grid-stride loops do the rest
    return (unsigned)b;
}

// Every operand's offsets stay below 2^31, so the walk may divide in 32 bits.
bool iter_fits32(const kc_iter &it)
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

template <class T> struct alignas(4 * sizeof(T)) vec4 {
    T v[4];
};

// Both dense in the same order: four elements a thread, one vector load and
// store when the pointers allow.
template <class Ti, class To>
__global__ void __launch_bounds__(THREADS) copy_dense(const Ti *in, To *out, int64_t n, bool vec)
{
    int64_t groups = (n + 3) / 4, step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t g = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; g < groups; g += step) {
        int64_t base = g * 4;
        if (vec && base + 4 <= n) {
            vec4<Ti> a = *reinterpret_cast<const vec4<Ti> *>(in + base);
            vec4<To> b;
#pragma unroll
            for (int j = 0; j < 4; j++) b.v[j] = cvt<To>(a.v[j]);
            *reinterpret_cast<vec4<To> *>(out + base) = b;
        } else {
            int64_t end = base + 4 < n ? base + 4 : n;
            for (int64_t i = base; i < end; i++) out[i] = cvt<To>(in[i]);
        }
    }
}

// Any strides: the output's memory order (kc_iter), one element a thread.
template <class Ti, class To, class IndexT>
__global__ void __launch_bounds__(THREADS) copy_strided(const __grid_constant__ kc_iter it, const Ti *in, To *out)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < it.n; i += step) {
        IndexT off[2];
        kc_iter_offsets<IndexT, 2>(it, (IndexT)i, off);
        out[off[0]] = cvt<To>(in[off[1]]);
    }
}

// A layout change: the output is contiguous along dim a, the input along
// dim b. A tile of (a, b) goes through shared memory so that both the reads
// (along b) and the writes (along a) coalesce; the other dims are batches.
struct tr_params {
    int64_t da, db;
    int64_t sa_in, sb_in, sa_out, sb_out;
    int64_t tiles_a, tiles_b, total;
    int nrest;
    int64_t rd[KILN_MAX_RANK], rsi[KILN_MAX_RANK], rso[KILN_MAX_RANK];
};

template <class Ti, class To>
__global__ void __launch_bounds__(TILE *TILE_ROWS) copy_transpose(const __grid_constant__ tr_params P, const Ti *in,
                                                                  To *out)
{
    __shared__ Ti tile[TILE][TILE + 1]; // [a][b]; +1 staggers the banks of a column
    for (int64_t blk = blockIdx.x; blk < P.total; blk += gridDim.x) {
        int64_t t = blk;
        int64_t a0 = (t % P.tiles_a) * TILE;
        t /= P.tiles_a;
        int64_t b0 = (t % P.tiles_b) * TILE;
        t /= P.tiles_b;
        int64_t bi = 0, bo = 0;
        for (int k = P.nrest - 1; k >= 0; k--) {
            int64_t c = t % P.rd[k];
            t /= P.rd[k];
            bi += c * P.rsi[k];
            bo += c * P.rso[k];
        }
        int64_t b = b0 + threadIdx.x;
        for (int r = threadIdx.y; r < TILE; r += TILE_ROWS) {
            int64_t a = a0 + r;
            if (a < P.da && b < P.db) tile[r][threadIdx.x] = in[bi + a * P.sa_in + b * P.sb_in];
        }
        __syncthreads();
        int64_t a = a0 + threadIdx.x;
        for (int r = threadIdx.y; r < TILE; r += TILE_ROWS) {
            int64_t bb = b0 + r;
            if (a < P.da && bb < P.db) out[bo + a * P.sa_out + bb * P.sb_out] = cvt<To>(tile[threadIdx.x][r]);
        }
        __syncthreads(); // the tile is reused by the next block index
    }
}

// The transpose kernel pays off when the output's innermost dim (the walk's
// last) is strided in the input and some other dim is the input's
// innermost, and both are long enough to fill a tile reasonably.
bool transpose_plan(const kc_iter &it, tr_params *P)
{
    int R = it.rank, a = R - 1, b = -1;
    if (R < 2 || it.s[0][a] != 1 || it.s[1][a] == 1) return false;
    for (int k = 0; k < a && b < 0; k++)
        if (it.s[1][k] == 1) b = k;
    if (b < 0 || it.d[a] < TILE / 2 || it.d[b] < TILE / 2) return false;
    memset(P, 0, sizeof *P);
    P->da = it.d[a];
    P->db = it.d[b];
    P->sa_in = it.s[1][a];
    P->sb_in = it.s[1][b];
    P->sa_out = it.s[0][a];
    P->sb_out = it.s[0][b];
    P->tiles_a = (P->da + TILE - 1) / TILE;
    P->tiles_b = (P->db + TILE - 1) / TILE;
    int64_t rest = 1;
    for (int k = 0; k < R; k++) {
        if (k == a || k == b) continue;
        P->rd[P->nrest] = it.d[k];
        P->rsi[P->nrest] = it.s[1][k];
        P->rso[P->nrest] = it.s[0][k];
        P->nrest++;
        rest *= it.d[k];
    }
    P->total = P->tiles_a * P->tiles_b * rest;
    return true;
}

template <class Ti, class To> kiln_status copy_launch(const kc_iter &it, const void *in, void *out, cudaStream_t s)
{
    const Ti *pi = static_cast<const Ti *>(in);
    To *po = static_cast<To *>(out);
    if (it.rank == 1 && (it.d[0] == 1 || (it.s[0][0] == 1 && it.s[1][0] == 1))) {
        bool vec = (uintptr_t)in % sizeof(vec4<Ti>) == 0 && (uintptr_t)out % sizeof(vec4<To>) == 0;
        copy_dense<Ti, To><<<grid_for((it.n + 3) / 4), THREADS, 0, s>>>(pi, po, it.n, vec);
        return kc_check_launch("kc_copy (dense)");
    }
    tr_params P;
    if (transpose_plan(it, &P)) {
        int64_t blocks = P.total < (1 << 24) ? P.total : (1 << 24);
        copy_transpose<Ti, To><<<(unsigned)blocks, dim3(TILE, TILE_ROWS), 0, s>>>(P, pi, po);
        return kc_check_launch("kc_copy (transpose)");
    }
    if (iter_fits32(it))
        copy_strided<Ti, To, int32_t><<<grid_for(it.n), THREADS, 0, s>>>(it, pi, po);
    else
        copy_strided<Ti, To, int64_t><<<grid_for(it.n), THREADS, 0, s>>>(it, pi, po);
    return kc_check_launch("kc_copy (strided)");
}

bool same_placement(const kc_view *a, const kc_view *b)
{
    if (a->p != b->p) return false;
    for (int k = 0; k < a->rank; k++)
        if (a->d[k] != 1 && a->s[k] != b->s[k]) return false;
    return true;
}

} // namespace

extern "C" kiln_status kc_copy(const kc_view *in, const kc_view *out, cudaStream_t s)
{
    if (in->rank != out->rank)
        return kiln_fail(KILN_ERR_INTERNAL, "kc_copy: input of rank %d, output of rank %d", in->rank, out->rank);
    for (int k = 0; k < out->rank; k++)
        if (in->d[k] != out->d[k])
            return kiln_fail(KILN_ERR_INTERNAL, "kc_copy: dim %d is %lld in the input, %lld in the output", k,
                             (long long)in->d[k], (long long)out->d[k]);
    int64_t n = kc_view_numel(out);
    if (n == 0) return KILN_OK;
    if (!in->p || !out->p)
        return kiln_fail(KILN_ERR_INTERNAL, "kc_copy: the %s of %lld elements is not on the device",
                         in->p ? "output" : "input", (long long)n);
    size_t es = kiln_dtype_size(in->dt);
    kc_iter it;
    const kc_view *ops[2] = {out, in};
    kiln_status st = kc_iter_make(2, ops, &it);
    if (st != KILN_OK) return st;
    bool same = in->dt == out->dt && same_placement(in, out);
    if (in->p == out->p && !same)
        return kiln_fail(KILN_ERR_INTERNAL, "kc_copy: in place between different layouts or dtypes");
    if (in->dt == out->dt) {
        if (same) return KILN_OK;
        if (it.rank == 1 && (it.d[0] == 1 || (it.s[0][0] == 1 && it.s[1][0] == 1))) {
            KC_CHECK(cudaMemcpyAsync(out->p, in->p, (size_t)n * es, cudaMemcpyDeviceToDevice, s));
            return KILN_OK;
        }
        return with_bits(es, [&](auto u) {
            using U = typename decltype(u)::type;
            return copy_launch<U, U>(it, in->p, out->p, s);
        });
    }
    return with_type(in->dt, [&](auto ti) {
        return with_type(out->dt, [&](auto to) {
            using Ti = typename decltype(ti)::type;
            using To = typename decltype(to)::type;
            if constexpr (std::is_same<Ti, To>::value)
                return kiln_fail(KILN_ERR_INTERNAL, "kc_copy: same dtype reached the conversion path");
            else
                return copy_launch<Ti, To>(it, in->p, out->p, s);
        });
    });
}

namespace {

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

bool device_dtype(kiln_dtype t)
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

kiln_status copy_named(const kc_launch *L, const kc_view *in, const kc_view *out)
{
    return named(L, kc_copy(in, out, L->stream));
}

char *elem_ptr(const kc_view *v, int64_t off)
{
    return static_cast<char *>(v->p) + off * (int64_t)kiln_dtype_size(v->dt);
}

// Dims of v in C order with the 1s dropped and the runs that are contiguous
// in memory merged; returns the rank (at least 1).
int merge_c_order(const kc_view *v, int64_t *d, int64_t *s)
{
    int m = 0;
    for (int k = 0; k < v->rank; k++) {
        if (v->d[k] == 1) continue;
        if (m > 0 && s[m - 1] == v->s[k] * v->d[k]) {
            d[m - 1] *= v->d[k];
            s[m - 1] = v->s[k];
            continue;
        }
        d[m] = v->d[k];
        s[m] = v->s[k];
        m++;
    }
    if (m == 0) {
        d[0] = 1;
        s[0] = 0;
        m = 1;
    }
    return m;
}

// ---- reshape of a non-dense tensor: element i in C order of the input's
// dims goes to element i in C order of the output's dims.
struct reshape_params {
    int ri, ro;
    int64_t n;
    int64_t di[KILN_MAX_RANK], si[KILN_MAX_RANK], dout[KILN_MAX_RANK], sout[KILN_MAX_RANK];
};

template <class M>
__global__ void __launch_bounds__(THREADS) reshape_kernel(const __grid_constant__ reshape_params P, const char *in,
                                                          char *out, M mv)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < P.n; i += step) {
        int64_t t = i, io = 0, oo = 0;
        for (int k = P.ri - 1; k >= 0; k--) {
            io += (t % P.di[k]) * P.si[k];
            t /= P.di[k];
        }
        t = i;
        for (int k = P.ro - 1; k >= 0; k--) {
            oo += (t % P.dout[k]) * P.sout[k];
            t /= P.dout[k];
        }
        mv(out, oo, in, io);
    }
}

// ---- Gather and GatherElements as one strided walk of three operands in
// the output's memory order: the output, the index tensor seen at the
// output's dims (stride 0 where it does not vary), and the data tensor with
// its gathered axis at stride 0 (the base); the element read is
// base + index * stride of the axis. An index outside [-dim, dim-1] is
// clamped: a kernel cannot fail per element (the reference reports it).
template <class M, class IdxT, class IndexT>
__global__ void __launch_bounds__(THREADS) gather_kernel(const __grid_constant__ kc_iter it, const char *in, char *out,
                                                         const IdxT *idx, int64_t dim, int64_t sax, M mv)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < it.n; i += step) {
        IndexT off[3];
        kc_iter_offsets<IndexT, 3>(it, (IndexT)i, off);
        int64_t k = (int64_t)idx[off[1]];
        if (k < 0) k += dim;
        k = k < 0 ? 0 : k >= dim ? dim - 1 : k;
        mv(out, (int64_t)off[0], in, (int64_t)off[2] + k * sax);
    }
}

kiln_status gather_launch(const kc_launch *L, const kc_view *data, const kc_view *idx_base, const kc_view *idx,
                          int64_t dim, int64_t sax)
{
    const kc_view *y = &L->out[0];
    if (idx->dt != KILN_I64 && idx->dt != KILN_I32)
        return node_fail(L, KILN_ERR_UNSUPPORTED, "indices of dtype %s (int32 or int64 only)", kiln_dtype_name(idx->dt));
    if (dim <= 0) return node_fail(L, KILN_ERR_INVALID_ARGUMENT, "indices into an empty axis");
    if (!data->p || !y->p || !idx->p) return node_fail(L, KILN_ERR_INTERNAL, "a tensor is not on the device");
    kc_iter it;
    const kc_view *ops[3] = {y, idx_base, data};
    kiln_status st = kc_iter_make(3, ops, &it);
    if (st != KILN_OK) return named(L, st);
    bool fits = iter_fits32(it);
    return named(L, with_mover(data->dt, y->dt, [&](auto mv) {
        using M = decltype(mv);
        const char *in = static_cast<const char *>(data->p);
        char *out = static_cast<char *>(y->p);
        unsigned g = grid_for(it.n);
        if (idx->dt == KILN_I64) {
            const int64_t *ix = static_cast<const int64_t *>(idx->p);
            if (fits)
                gather_kernel<M, int64_t, int32_t><<<g, THREADS, 0, L->stream>>>(it, in, out, ix, dim, sax, mv);
            else
                gather_kernel<M, int64_t, int64_t><<<g, THREADS, 0, L->stream>>>(it, in, out, ix, dim, sax, mv);
        } else {
            const int32_t *ix = static_cast<const int32_t *>(idx->p);
            if (fits)
                gather_kernel<M, int32_t, int32_t><<<g, THREADS, 0, L->stream>>>(it, in, out, ix, dim, sax, mv);
            else
                gather_kernel<M, int32_t, int64_t><<<g, THREADS, 0, L->stream>>>(it, in, out, ix, dim, sax, mv);
        }
        return kc_check_launch(L->n->op_type);
    }));
}

// ---- Tile: output coordinate c along dim k reads input coordinate
// c mod d_k. Dims are walked in the output's memory order.
struct tile_params {
    int rank;
    int64_t n;
    int64_t od[KILN_MAX_RANK], os[KILN_MAX_RANK], id[KILN_MAX_RANK], is[KILN_MAX_RANK];
};

template <class M>
__global__ void __launch_bounds__(THREADS) tile_kernel(const __grid_constant__ tile_params P, const char *in, char *out,
                                                       M mv)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < P.n; i += step) {
        int64_t t = i, io = 0, oo = 0;
        for (int k = P.rank - 1; k >= 0; k--) {
            int64_t c = t % P.od[k];
            t /= P.od[k];
            oo += c * P.os[k];
            io += (c < P.id[k] ? c : c % P.id[k]) * P.is[k];
        }
        mv(out, oo, in, io);
    }
}

// ---- fills
template <class U> __global__ void __launch_bounds__(THREADS) fill_kernel(const __grid_constant__ kc_iter it, U *out, U val)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < it.n; i += step) {
        int64_t off[1];
        kc_iter_offsets<int64_t, 1>(it, i, off);
        out[off[0]] = val;
    }
}

// Range-11: element i is start + i * delta, computed per element like the
// reference: in f64 rounded to f32 for float ranges, in wrapping i64 for
// integer ones; then stored in out's dtype.
__global__ void __launch_bounds__(THREADS) range_kernel(char *out, kiln_dtype dt, int64_t stride, int64_t n, bool isf,
                                                        double fs, double fd, int64_t is, int64_t id)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += step) {
        wide w;
        w.isf = isf;
        // no fused multiply-add: the reference rounds the product, then the sum
        w.f = isf ? (float)__dadd_rn(fs, __dmul_rn((double)i, fd)) : 0.f;
        w.i = isf ? 0 : (int64_t)((uint64_t)is + (uint64_t)i * (uint64_t)id);
        store_dyn(dt, out, i * stride, w);
    }
}

// The bits of one element of dtype dst holding the value of src[0] (of
// dtype st), by the host's conversions (core/dtype.c).
void host_element(kiln_dtype st, const void *src, kiln_dtype dst, unsigned char bits[8])
{
    memset(bits, 0, 8);
    if (st == dst) {
        memcpy(bits, src, kiln_dtype_size(st));
    } else if (kiln_dtype_is_float(st)) {
        kiln_store_f64(dst, bits, 0, kiln_load_f64(st, src, 0));
    } else {
        int64_t x = kiln_load_i64(st, src, 0);
        if (kiln_dtype_is_float(dst))
            kiln_store_f64(dst, bits, 0, (double)x);
        else if (dst == KILN_BOOL)
            bits[0] = x != 0;
        else
            memcpy(bits, &x, kiln_dtype_size(dst)); /* little-endian: the low bytes, as a narrowing cast */
    }
}

// Out = in's elements in C order with out's dims (Flatten, Reshape, Squeeze,
// Unsqueeze). Nothing moves when out already is in's bytes.
kiln_status reshape_copy(const kc_launch *L)
{
    const kc_view *x = &L->in[0], *y = &L->out[0];
    int64_t n = kc_view_numel(y);
    if (kc_view_numel(x) != n)
        return node_fail(L, KILN_ERR_INTERNAL, "input has %lld elements, output %lld", (long long)kc_view_numel(x),
                         (long long)n);
    if (n == 0) return KILN_OK;
    if (kc_view_contiguous(x) && kc_view_contiguous(y)) {
        kc_view fx = *x, fy = *y;
        fx.rank = fy.rank = 1;
        fx.d[0] = fy.d[0] = n;
        fx.s[0] = fy.s[0] = 1;
        return copy_named(L, &fx, &fy);
    }
    bool same_dims = x->rank == y->rank;
    for (int k = 0; k < x->rank && same_dims; k++) same_dims = x->d[k] == y->d[k];
    if (same_dims) return copy_named(L, x, y);
    if (!x->p || !y->p) return node_fail(L, KILN_ERR_INTERNAL, "a tensor is not on the device");
    if (x->p == y->p) return node_fail(L, KILN_ERR_INTERNAL, "in place, but the input is not dense");
    reshape_params P;
    memset(&P, 0, sizeof P);
    P.n = n;
    P.ri = merge_c_order(x, P.di, P.si);
    P.ro = merge_c_order(y, P.dout, P.sout);
    return named(L, with_mover(x->dt, y->dt, [&](auto mv) {
        reshape_kernel<decltype(mv)><<<grid_for(n), THREADS, 0, L->stream>>>(P, static_cast<const char *>(x->p),
                                                                             static_cast<char *>(y->p), mv);
        return kc_check_launch(L->n->op_type);
    }));
}

// Gather whose indices live on the host only (computed from shapes): one
// kc_copy per index, of the data's slice at that index into its place.
kiln_status gather_host_indices(const kc_launch *L, int axis)
{
    const kc_view *x = &L->in[0], *y = &L->out[0];
    const kiln_value *iv = kiln_in(L->n, const_cast<kiln_value *>(L->v), 1);
    if (!iv || !iv->data) return node_fail(L, KILN_ERR_INTERNAL, "indices are neither on the device nor known");
    int q = iv->shape.rank, r = x->rank;
    int64_t nidx = kiln_shape_numel(&iv->shape), dim = x->d[axis];
    if (nidx > 4096)
        return node_fail(L, KILN_ERR_UNSUPPORTED, "%lld host-only indices (at most 4096)", (long long)nidx);
    kc_view xs, ys;
    memset(&xs, 0, sizeof xs);
    memset(&ys, 0, sizeof ys);
    xs.dt = x->dt;
    ys.dt = y->dt;
    for (int k = 0; k < r; k++) {
        if (k == axis) continue;
        xs.d[xs.rank] = x->d[k];
        xs.s[xs.rank++] = x->s[k];
        int ky = k < axis ? k : k + q - 1; // y's dim of the same data dim
        ys.d[ys.rank] = y->d[ky];
        ys.s[ys.rank++] = y->s[ky];
    }
    for (int64_t j = 0; j < nidx; j++) {
        int64_t k = kiln_load_i64(iv->dtype, iv->data, j);
        if (k < -dim || k >= dim)
            return node_fail(L, KILN_ERR_INVALID_ARGUMENT, "indices '%s' has %lld at position %lld, outside [%lld, %lld]",
                             iv->name, (long long)k, (long long)j, (long long)-dim, (long long)(dim - 1));
        if (k < 0) k += dim;
        int64_t t = j, off = 0;
        for (int tq = q - 1; tq >= 0; tq--) {
            off += (t % iv->shape.d[tq]) * y->s[axis + tq];
            t /= iv->shape.d[tq];
        }
        xs.p = elem_ptr(x, k * x->s[axis]);
        ys.p = elem_ptr(y, off);
        kiln_status st = copy_named(L, &xs, &ys);
        if (st != KILN_OK) return st;
    }
    return KILN_OK;
}

} // namespace

// ---------------------------------------------------------------- ops

// Transpose: the input read through permuted strides (default perm reverses).
extern "C" kiln_status kiln_cuda_Transpose(const kc_launch *L)
{
    const kc_view *x = &L->in[0];
    int r = x->rank;
    const kiln_transpose_params &tp = L->n->params.transpose;
    const int64_t *perm = tp.perm;
    int np = tp.n_perm;
    bool has = tp.has_perm;
    if (has && np != r) return node_fail(L, KILN_ERR_SHAPE, "perm has %d entries for an input of rank %d", np, r);
    kc_view t = *x;
    bool seen[KILN_MAX_RANK] = {false};
    for (int i = 0; i < r; i++) {
        int64_t p = has ? perm[i] : r - 1 - i;
        if (p < 0 || p >= r || seen[p]) return node_fail(L, KILN_ERR_SHAPE, "perm is not a permutation of 0..%d", r - 1);
        seen[p] = true;
        t.d[i] = x->d[p];
        t.s[i] = x->s[p];
    }
    return copy_named(L, &t, &L->out[0]);
}

// Slice-13: a view that starts at the first selected element and steps
// step * stride (steps may be negative) along each axis; the shape rule's
// own kiln_slice_resolve picks the elements.
extern "C" kiln_status kiln_cuda_Slice(const kc_launch *L)
{
    const kc_view *x = &L->in[0], *y = &L->out[0];
    int64_t start[KILN_MAX_RANK], step[KILN_MAX_RANK], count[KILN_MAX_RANK];
    kiln_status st = kiln_slice_resolve(L->n, const_cast<kiln_value *>(L->v), start, step, count);
    if (st != KILN_OK) return named(L, st);
    if (y->rank != x->rank) return node_fail(L, KILN_ERR_INTERNAL, "output rank %d, input rank %d", y->rank, x->rank);
    kc_view t = *x;
    int64_t off = 0;
    for (int k = 0; k < x->rank; k++) {
        if (count[k] != y->d[k])
            return node_fail(L, KILN_ERR_INTERNAL, "output dim %d is %lld, the slice selects %lld", k,
                             (long long)y->d[k], (long long)count[k]);
        t.d[k] = count[k];
        t.s[k] = count[k] > 1 ? x->s[k] * step[k] : 0; // a lone element's step may be huge; |step| < dim otherwise
        off += start[k] * x->s[k];
    }
    if (kc_view_numel(y) == 0) return KILN_OK;
    t.p = elem_ptr(x, off);
    return copy_named(L, &t, y);
}

// Concat: each input into the output narrowed to its part of the axis.
extern "C" kiln_status kiln_cuda_Concat(const kc_launch *L)
{
    const kc_view *y = &L->out[0];
    int r = y->rank, axis;
    kiln_status st = kiln_axis(L->n->params.axis.axis, r, &axis);
    if (st != KILN_OK) return named(L, st);
    if (kc_view_numel(y) == 0) return KILN_OK;
    int64_t pos = 0;
    for (int i = 0; i < L->n_in; i++) {
        const kc_view *x = &L->in[i];
        if (x->rank != r) {
            if (kc_view_numel(x) == 0) continue; /* as the reference: an empty input of another rank adds nothing */
            return node_fail(L, KILN_ERR_INTERNAL, "input %d has rank %d, the output %d", i, x->rank, r);
        }
        int64_t len = x->d[axis];
        if (pos + len > y->d[axis]) return node_fail(L, KILN_ERR_INTERNAL, "inputs exceed the output along axis %d", axis);
        if (kc_view_numel(x) > 0) {
            kc_view part = *y;
            part.p = elem_ptr(y, pos * y->s[axis]);
            part.d[axis] = len;
            if ((st = copy_named(L, x, &part)) != KILN_OK) return st;
        }
        pos += len;
    }
    if (pos != y->d[axis]) return node_fail(L, KILN_ERR_INTERNAL, "inputs do not fill the output along axis %d", axis);
    return KILN_OK;
}

// Split: each output from the input narrowed to its part. The parts' sizes
// are the outputs' dims on the axis, which the shape rule derived from the
// input 'split', the attribute 'split' or num_outputs (as the reference).
extern "C" kiln_status kiln_cuda_Split(const kc_launch *L)
{
    const kc_view *x = &L->in[0];
    int r = x->rank, axis;
    kiln_status st = kiln_axis(L->n->params.split.axis, r, &axis);
    if (st != KILN_OK) return named(L, st);
    int64_t pos = 0;
    for (int i = 0; i < L->n_out; i++) {
        const kc_view *y = &L->out[i];
        if (i >= L->n->n_outputs || L->n->outputs[i] < 0)
            return node_fail(L, KILN_ERR_UNSUPPORTED, "output %d is omitted; its part's size is unknown", i);
        if (y->rank != r) return node_fail(L, KILN_ERR_INTERNAL, "output %d has rank %d, the input %d", i, y->rank, r);
        int64_t len = y->d[axis];
        if (pos + len > x->d[axis]) return node_fail(L, KILN_ERR_INTERNAL, "outputs exceed the input along axis %d", axis);
        if (kc_view_numel(y) > 0) {
            kc_view part = *x;
            part.p = elem_ptr(x, pos * x->s[axis]);
            part.d[axis] = len;
            if ((st = copy_named(L, &part, y)) != KILN_OK) return st;
        }
        pos += len;
    }
    if (pos != x->d[axis]) return node_fail(L, KILN_ERR_INTERNAL, "outputs do not cover the input along axis %d", axis);
    return KILN_OK;
}

// Expand: the input broadcast to the output's dims (stride 0), copied.
extern "C" kiln_status kiln_cuda_Expand(const kc_launch *L)
{
    const kc_view *x = &L->in[0], *y = &L->out[0];
    if (x->rank > y->rank) return node_fail(L, KILN_ERR_INTERNAL, "input rank %d exceeds output rank %d", x->rank, y->rank);
    for (int k = 0; k < x->rank; k++) {
        int64_t dx = x->d[k], dy = y->d[k + y->rank - x->rank];
        if (dx != 1 && dx != dy)
            return node_fail(L, KILN_ERR_SHAPE, "input dim %d (%lld) cannot expand to %lld", k, (long long)dx,
                             (long long)dy);
    }
    kc_view b;
    kc_view_broadcast(x, y->rank, y->d, &b);
    return copy_named(L, &b, y);
}

extern "C" kiln_status kiln_cuda_Flatten(const kc_launch *L) { return reshape_copy(L); }
extern "C" kiln_status kiln_cuda_Reshape(const kc_launch *L) { return reshape_copy(L); }
extern "C" kiln_status kiln_cuda_Squeeze(const kc_launch *L) { return reshape_copy(L); }
extern "C" kiln_status kiln_cuda_Unsqueeze(const kc_launch *L) { return reshape_copy(L); }

// Gather-13: out[i.., j.., k..] = data[i.., indices[j..], k..].
extern "C" kiln_status kiln_cuda_Gather(const kc_launch *L)
{
    const kc_view *x = &L->in[0], *ix = &L->in[1], *y = &L->out[0];
    int r = x->rank, axis;
    kiln_status st = kiln_axis(L->n->params.axis.axis, r, &axis);
    if (st != KILN_OK) return named(L, st);
    const kiln_value *iv = kiln_in(L->n, const_cast<kiln_value *>(L->v), 1);
    if (!ix->p && !iv) return node_fail(L, KILN_ERR_INTERNAL, "indices are missing");
    int q = ix->p ? ix->rank : iv->shape.rank;
    const int64_t *qd = ix->p ? ix->d : iv->shape.d;
    if (y->rank != r + q - 1) return node_fail(L, KILN_ERR_INTERNAL, "output rank %d, expected %d", y->rank, r + q - 1);
    for (int k = 0; k < y->rank; k++) {
        int64_t want = k < axis ? x->d[k] : k < axis + q ? qd[k - axis] : x->d[k - q + 1];
        if (y->d[k] != want)
            return node_fail(L, KILN_ERR_INTERNAL, "output dim %d is %lld, expected %lld", k, (long long)y->d[k],
                             (long long)want);
    }
    if (kc_view_numel(y) == 0) return KILN_OK;
    if (!ix->p) return gather_host_indices(L, axis);
    kc_view vi, vb;
    memset(&vi, 0, sizeof vi);
    memset(&vb, 0, sizeof vb);
    vi.p = ix->p;
    vi.dt = ix->dt;
    vb.p = x->p;
    vb.dt = x->dt;
    vi.rank = vb.rank = y->rank;
    for (int k = 0; k < y->rank; k++) {
        vi.d[k] = vb.d[k] = y->d[k];
        bool is_idx = k >= axis && k < axis + q;
        vi.s[k] = is_idx ? ix->s[k - axis] : 0;
        vb.s[k] = k < axis ? x->s[k] : is_idx ? 0 : x->s[k - q + 1];
    }
    return gather_launch(L, &vb, &vi, ix, x->d[axis], x->s[axis]);
}

// GatherElements-13: out[i..] = data[i.. with i_axis = indices[i..]].
extern "C" kiln_status kiln_cuda_GatherElements(const kc_launch *L)
{
    const kc_view *x = &L->in[0], *ix = &L->in[1], *y = &L->out[0];
    int r = x->rank, axis;
    kiln_status st = kiln_axis(L->n->params.axis.axis, r, &axis);
    if (st != KILN_OK) return named(L, st);
    if (ix->rank != r || y->rank != r)
        return node_fail(L, KILN_ERR_INTERNAL, "indices rank %d, output rank %d, data rank %d", ix->rank, y->rank, r);
    for (int k = 0; k < r; k++) {
        if (y->d[k] != ix->d[k]) return node_fail(L, KILN_ERR_INTERNAL, "output dim %d differs from the indices'", k);
        if (k != axis && ix->d[k] > x->d[k]) return node_fail(L, KILN_ERR_SHAPE, "indices dim %d exceeds the data's", k);
    }
    if (kc_view_numel(y) == 0) return KILN_OK;
    if (!ix->p) return node_fail(L, KILN_ERR_UNSUPPORTED, "indices that are not on the device");
    kc_view vb = *x;
    for (int k = 0; k < r; k++) vb.d[k] = y->d[k];
    vb.s[axis] = 0;
    return gather_launch(L, &vb, ix, ix, x->d[axis], x->s[axis]);
}

// Tile: each output dim is repeats x the input dim (the output's dims say
// how many; Tile's repeats, when known here, must agree).
extern "C" kiln_status kiln_cuda_Tile(const kc_launch *L)
{
    const kc_view *x = &L->in[0], *y = &L->out[0];
    int r = x->rank;
    if (y->rank != r) return node_fail(L, KILN_ERR_INTERNAL, "output rank %d, input rank %d", y->rank, r);
    const kiln_value *rv = kiln_in(L->n, const_cast<kiln_value *>(L->v), 1);
    int64_t reps[KILN_MAX_RANK];
    int nrep = 0;
    bool have_reps = rv && rv->data && kiln_value_ints(rv, reps, KILN_MAX_RANK, &nrep) == KILN_OK && nrep == r;
    int64_t n = kc_view_numel(y);
    for (int k = 0; k < r; k++) {
        if (x->d[k] == 0 ? y->d[k] != 0 : y->d[k] % x->d[k] != 0)
            return node_fail(L, KILN_ERR_INTERNAL, "output dim %d (%lld) is not a multiple of the input's (%lld)", k,
                             (long long)y->d[k], (long long)x->d[k]);
        if (have_reps && y->d[k] != x->d[k] * reps[k])
            return node_fail(L, KILN_ERR_INTERNAL, "output dim %d is %lld, not %lld x %lld", k, (long long)y->d[k],
                             (long long)x->d[k], (long long)reps[k]);
    }
    if (n == 0) return KILN_OK;
    if (!x->p || !y->p) return node_fail(L, KILN_ERR_INTERNAL, "a tensor is not on the device");
    // dims of the output ordered by its strides, largest first (stores
    // coalesce for any layout); dims of 1 dropped
    tile_params P;
    memset(&P, 0, sizeof P);
    P.n = n;
    for (int k = 0; k < r; k++) {
        if (y->d[k] == 1) continue;
        int pos = P.rank++;
        while (pos > 0 && P.os[pos - 1] < y->s[k]) {
            P.od[pos] = P.od[pos - 1];
            P.os[pos] = P.os[pos - 1];
            P.id[pos] = P.id[pos - 1];
            P.is[pos] = P.is[pos - 1];
            pos--;
        }
        P.od[pos] = y->d[k];
        P.os[pos] = y->s[k];
        P.id[pos] = x->d[k];
        P.is[pos] = x->s[k];
    }
    if (P.rank == 0) {
        P.rank = 1;
        P.od[0] = P.id[0] = 1;
    }
    return named(L, with_mover(x->dt, y->dt, [&](auto mv) {
        tile_kernel<decltype(mv)><<<grid_for(n), THREADS, 0, L->stream>>>(P, static_cast<const char *>(x->p),
                                                                          static_cast<char *>(y->p), mv);
        return kc_check_launch("Tile");
    }));
}

// ConstantOfShape-9: every element is the 'value' tensor's one element
// (default f32 0), in the output's dtype.
extern "C" kiln_status kiln_cuda_ConstantOfShape(const kc_launch *L)
{
    const kc_view *y = &L->out[0];
    int64_t n = kc_view_numel(y);
    if (n == 0) return KILN_OK;
    if (!device_dtype(y->dt)) return node_fail(L, KILN_ERR_UNSUPPORTED, "output of dtype %s", kiln_dtype_name(y->dt));
    if (!y->p) return node_fail(L, KILN_ERR_INTERNAL, "the output is not on the device");
    unsigned char bits[8] = {0};
    const kiln_value *val = L->n->params.constant_of_shape.value;
    if (val && val->data) {
        if (!device_dtype(val->dtype) && !kiln_dtype_is_float(val->dtype))
            return node_fail(L, KILN_ERR_UNSUPPORTED, "value of dtype %s", kiln_dtype_name(val->dtype));
        host_element(val->dtype, val->data, y->dt, bits);
    }
    kc_iter it;
    const kc_view *ops[1] = {y};
    kiln_status st = kc_iter_make(1, ops, &it);
    if (st != KILN_OK) return named(L, st);
    size_t es = kiln_dtype_size(y->dt);
    bool zero = true;
    for (size_t b = 0; b < es; b++) zero = zero && bits[b] == 0;
    if (zero && it.rank == 1 && (it.d[0] == 1 || it.s[0][0] == 1)) {
        KC_CHECK(cudaMemsetAsync(y->p, 0, (size_t)n * es, L->stream));
        return KILN_OK;
    }
    return named(L, with_bits(es, [&](auto u) {
        using U = typename decltype(u)::type;
        U val;
        memcpy(&val, bits, sizeof val);
        fill_kernel<U><<<grid_for(n), THREADS, 0, L->stream>>>(it, static_cast<U *>(y->p), val);
        return kc_check_launch("ConstantOfShape");
    }));
}

// Range-11: start and delta are host constants (inputs 0 and 2); the
// output's length is its dim.
extern "C" kiln_status kiln_cuda_Range(const kc_launch *L)
{
    const kc_view *y = &L->out[0];
    kiln_value *v = const_cast<kiln_value *>(L->v);
    const kiln_value *vs = kiln_in(L->n, v, 0), *vd = kiln_in(L->n, v, 2), *vo = kiln_out(L->n, v, 0);
    if (y->rank != 1) return node_fail(L, KILN_ERR_INTERNAL, "output of rank %d", y->rank);
    int64_t n = y->d[0];
    if (n == 0) return KILN_OK;
    if (!vs || !vd || !vo || !vs->data || !vd->data)
        return node_fail(L, KILN_ERR_UNSUPPORTED, "start and delta must be known on the host");
    if (!device_dtype(y->dt)) return node_fail(L, KILN_ERR_UNSUPPORTED, "output of dtype %s", kiln_dtype_name(y->dt));
    if (!y->p) return node_fail(L, KILN_ERR_INTERNAL, "the output is not on the device");
    bool isf = kiln_dtype_is_float(vo->dtype);
    double fs = 0, fd = 0;
    int64_t is = 0, id = 0;
    if (isf) {
        fs = kiln_load_f64(vs->dtype, vs->data, 0);
        fd = kiln_load_f64(vd->dtype, vd->data, 0);
    } else {
        is = kiln_load_i64(vs->dtype, vs->data, 0);
        id = kiln_load_i64(vd->dtype, vd->data, 0);
    }
    range_kernel<<<grid_for(n), THREADS, 0, L->stream>>>(static_cast<char *>(y->p), y->dt, y->s[0], n, isf, fs, fd, is,
                                                         id);
    return kc_check_launch("Range");
}
