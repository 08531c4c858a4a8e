// The tensor family of the cuda backend: ops that move elements without
// arithmetic. Most are kc_copy between two views (Transpose, Slice, Concat,
// Split, Expand, and the reshapes of a non-dense tensor); ConstantOfShape
// and Range fill. Gather, GatherElements and Tile live in gather.cu; the
// helpers both files share in tensor_util.cuh.
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
#include "cuda/tensor_util.cuh"

extern "C" {
#include "ir/shape_tensor.h"
}

namespace {

const int TILE = 32;      // transpose tile edge
const int TILE_ROWS = 8;  // a transpose block is TILE x TILE_ROWS threads

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
