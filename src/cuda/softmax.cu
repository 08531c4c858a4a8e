// Row normalizations on the GPU: Softmax and LogSoftmax (opset 13: along
// one axis) and LayerNormalization (opset 17: over the dims from `axis` on,
// with its optional Mean and InvStdDev outputs), with the semantics of the
// reference kernels (src/ref/softmax.c).
//
// A row is one slice that is normalized; the dims outside it (the "outer"
// dims) and inside it (the "inner" dims) are each sorted by stride and
// merged where every operand steps through them as one run. A block holds
// bx rows times by lanes (a power of two) that split a row and meet in a
// shared-memory tree. When the row is the input's fastest dim (softmax
// over the last axis, NHWC channels), the lanes are consecutive threads;
// otherwise (softmax over the channels of NCHW) the rows are, so a warp
// still reads and writes neighbouring elements.
//
// Every pass re-reads the row (from L1/L2 for short rows), so the sums are
// the ref's: max first, then the sum of exp(x - max); mean first, then the
// sum of squared deviations. All in f32.
#include <math.h>
#include <math_constants.h>
#include <stdint.h>

#include "cuda/kc_device.cuh"

namespace {

constexpr int MAXR = KILN_MAX_RANK;
constexpr int ROW_THREADS = 256;
constexpr int ROW_MAX_THREADS = 1024;
// operands of the walk: inner dims use the first four, outer dims all six
enum { OP_X, OP_Y, OP_SCALE, OP_BIAS, OP_MEAN, OP_INV, N_OPS };

using kc::is_float_dt;
using kc::tag;
using kc::with_float;

int64_t pow2_ceil(int64_t v)
{
    int64_t p = 1;
    while (p < v) p <<= 1;
    return p;
}

struct row_params {
    int no, ni;               // outer / inner dims after merging, outermost first
    int lanes_fast;
    int bx, by;
    int64_t rows, len;
    int64_t od[MAXR], os[N_OPS][MAXR];
    int64_t id[MAXR], is[OP_MEAN][MAXR];
    float eps;
    int log_out;
    int sdt, bdt, mdt, idt;   // dtypes of scale, bias, mean, inv_std_dev
};

struct ent {
    int64_t d;
    int64_t s[N_OPS];
};

// Sorts by the stride of operand `key`, largest first, and merges
// neighbours that form one run in all nops operands; drops extents of 1.
int sort_merge(ent *e, int n, int key, int nops)
{
    ent tmp[MAXR];
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (e[i].d == 1) continue;
        int pos = m++;
        while (pos > 0 && tmp[pos - 1].s[key] < e[i].s[key]) {
            tmp[pos] = tmp[pos - 1];
            pos--;
        }
        tmp[pos] = e[i];
    }
    int r = 0;
    for (int i = 0; i < m; i++) {
        bool merge = r > 0;
        for (int j = 0; j < nops && merge; j++) merge = e[r - 1].s[j] == tmp[i].s[j] * tmp[i].d;
        if (merge) {
            e[r - 1].d *= tmp[i].d;
            for (int j = 0; j < nops; j++) e[r - 1].s[j] = tmp[i].s[j];
            continue;
        }
        e[r++] = tmp[i];
    }
    return r;
}

// Dims of x in [lo, hi) form a row; ops[j] (NULL: absent) are views of x's
// rank whose strides the walk follows.
void plan_rows(const kc_view *x, int lo, int hi, const kc_view *const *ops, row_params *p)
{
    ent oe[MAXR], ie[MAXR];
    int no = 0, ni = 0;
    int64_t min_out = INT64_MAX, min_in = INT64_MAX;
    p->rows = 1;
    p->len = 1;
    for (int k = 0; k < x->rank; k++) {
        bool inner = k >= lo && k < hi;
        ent e = {};
        e.d = x->d[k];
        for (int j = 0; j < N_OPS; j++) e.s[j] = ops[j] && (inner ? j < OP_MEAN : true) ? ops[j]->s[k] : 0;
        if (inner) {
            ie[ni++] = e;
            p->len *= x->d[k];
            if (x->d[k] > 1 && x->s[k] < min_in) min_in = x->s[k];
        } else {
            oe[no++] = e;
            p->rows *= x->d[k];
            if (x->d[k] > 1 && x->s[k] < min_out) min_out = x->s[k];
        }
    }
    // rows in the output's memory order, a row's elements in the input's
    p->no = sort_merge(oe, no, OP_Y, N_OPS);
    p->ni = sort_merge(ie, ni, OP_X, OP_MEAN);
    for (int q = 0; q < p->no; q++) {
        p->od[q] = oe[q].d;
        for (int j = 0; j < N_OPS; j++) p->os[j][q] = oe[q].s[j];
    }
    for (int q = 0; q < p->ni; q++) {
        p->id[q] = ie[q].d;
        for (int j = 0; j < OP_MEAN; j++) p->is[j][q] = ie[q].s[j];
    }
    p->lanes_fast = min_in < min_out;
    if (p->lanes_fast) {
        int64_t by = pow2_ceil(p->len);
        p->by = (int)(by < 32 ? 32 : by > ROW_MAX_THREADS ? ROW_MAX_THREADS : by);
        p->bx = p->by >= ROW_THREADS ? 1 : ROW_THREADS / p->by;
    } else if (p->len < 64) {
        p->by = 1;
        p->bx = ROW_THREADS;
    } else {
        p->bx = 32;
        p->by = p->rows >= 32 * 1024 ? 8 : 32;
    }
}

// ---------------------------------------------------------------- device helpers

__device__ __forceinline__ int64_t inner_offset(const row_params &p, int op, int64_t j)
{
    if (p.ni == 1) return j * p.is[op][0];
    if (p.ni == 0) return 0;
    int64_t off = 0;
    for (int k = p.ni - 1; k >= 0; k--) {
        off += (j % p.id[k]) * p.is[op][k];
        j /= p.id[k];
    }
    return off;
}

// Element of a float buffer of a dtype known only at run time (the
// parameters and statistics of LayerNormalization); uniform branches.
__device__ __forceinline__ float load_any(const void *p, int dt, int64_t off)
{
    if (dt == KILN_F16) return __half2float(static_cast<const __half *>(p)[off]);
    if (dt == KILN_BF16) return __bfloat162float(static_cast<const __nv_bfloat16 *>(p)[off]);
    return static_cast<const float *>(p)[off];
}

__device__ __forceinline__ void store_any(void *p, int dt, int64_t off, float v)
{
    if (dt == KILN_F16) static_cast<__half *>(p)[off] = __float2half_rn(v);
    else if (dt == KILN_BF16) static_cast<__nv_bfloat16 *>(p)[off] = __float2bfloat16_rn(v);
    else static_cast<float *>(p)[off] = v;
}

// The lane index and row slot of this thread in its block.
__device__ __forceinline__ void row_slot(const row_params &p, int *lane, int *sub)
{
    int tid = threadIdx.x;
    if (p.lanes_fast) {
        *lane = tid % p.by;
        *sub = tid / p.by;
    } else {
        *sub = tid % p.bx;
        *lane = tid / p.bx;
    }
}

// Folds v over the lanes of a row; every lane gets the result. Called by
// every thread of the block the same number of times.
template <bool MAX> __device__ __forceinline__ float row_reduce(const row_params &p, float *sm, float v, int lane)
{
    if (p.by == 1) return v;
    int tid = threadIdx.x, step = p.lanes_fast ? 1 : p.bx;
    __syncthreads(); // the previous fold's readers are done with sm
    sm[tid] = v;
    __syncthreads();
    for (int s = p.by / 2; s > 0; s >>= 1) {
        if (lane < s) sm[tid] = MAX ? fmaxf(sm[tid], sm[tid + s * step]) : sm[tid] + sm[tid + s * step];
        __syncthreads();
    }
    return sm[tid - lane * step];
}

// Offsets of this row's start in operands [0, nops).
template <int NOPS> __device__ __forceinline__ void row_offsets(const row_params &p, int64_t row, int64_t (&off)[NOPS])
{
#pragma unroll
    for (int j = 0; j < NOPS; j++) off[j] = 0;
    for (int q = p.no - 1; q >= 0; q--) {
        int64_t c = row % p.od[q];
        row /= p.od[q];
#pragma unroll
        for (int j = 0; j < NOPS; j++) off[j] += c * p.os[j][q];
    }
}

// ---------------------------------------------------------------- Softmax / LogSoftmax

template <typename Tin, typename Tout>
__global__ void __launch_bounds__(ROW_MAX_THREADS) softmax_kernel(const row_params p, const Tin *__restrict__ x, Tout *__restrict__ y)
{
    __shared__ float sm[ROW_MAX_THREADS];
    int lane, sub;
    row_slot(p, &lane, &sub);
    int64_t row = (int64_t)blockIdx.x * p.bx + sub;
    bool active = row < p.rows;
    int64_t off[2] = {0, 0};
    if (active) row_offsets<2>(p, row, off);
    // NaN is skipped by the max, as the ref's `x > m ? x : m` skips it
    float m = -CUDART_INF_F;
    if (active)
        for (int64_t j = lane; j < p.len; j += p.by) m = fmaxf(m, kc_f32(x[off[OP_X] + inner_offset(p, OP_X, j)]));
    m = row_reduce<true>(p, sm, m, lane);
    float s = 0.f;
    if (active)
        for (int64_t j = lane; j < p.len; j += p.by) s += expf(kc_f32(x[off[OP_X] + inner_offset(p, OP_X, j)]) - m);
    s = row_reduce<false>(p, sm, s, lane);
    if (!active) return;
    float ls = logf(s);
    for (int64_t j = lane; j < p.len; j += p.by) {
        float v = kc_f32(x[off[OP_X] + inner_offset(p, OP_X, j)]) - m;
        y[off[OP_Y] + inner_offset(p, OP_Y, j)] = kc_from_f32<Tout>(p.log_out ? v - ls : expf(v) / s);
    }
}

template <typename Tin, typename Tout>
kiln_status softmax_launch(const row_params &p, const kc_view *x, const kc_view *y, cudaStream_t s)
{
    const char *name = p.log_out ? "LogSoftmax" : "Softmax";
    int64_t blocks = (p.rows + p.bx - 1) / p.bx;
    if (blocks > INT32_MAX) return kiln_fail(KILN_ERR_UNSUPPORTED, "%s: %lld rows", name, (long long)p.rows);
    softmax_kernel<Tin, Tout><<<(unsigned)blocks, p.bx * p.by, 0, s>>>(p, static_cast<const Tin *>(x->p),
                                                                      static_cast<Tout *>(y->p));
    return kc_check_launch(name);
}

kiln_status softmax_run(const kc_launch *L, bool log_out)
{
    const kiln_node *n = L->n;
    const kc_view *x = &L->in[0], *y = &L->out[0];
    int axis;
    kiln_status st = kiln_axis(n->params.softmax.axis, x->rank, &axis);
    if (st != KILN_OK) return kiln_fail_prefix(st, "node '%s' (%s): ", n->name, n->op_type);
    if (y->rank != x->rank)
        return kiln_fail(KILN_ERR_INTERNAL, "node '%s' (%s): output rank %d, input rank %d", n->name, n->op_type, y->rank,
                         x->rank);
    if (!is_float_dt(x->dt) || !is_float_dt(y->dt))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (%s): %s input, %s output is not supported on the GPU", n->name,
                         n->op_type, kiln_dtype_name(x->dt), kiln_dtype_name(y->dt));
    if (kc_view_numel(y) == 0) return KILN_OK;
    if (!x->p || !y->p) return kiln_fail(KILN_ERR_INTERNAL, "node '%s' (%s): X or Y is not on the device", n->name, n->op_type);
    const kc_view *ops[N_OPS] = {x, y, nullptr, nullptr, nullptr, nullptr};
    row_params p = {};
    plan_rows(x, axis, axis + 1, ops, &p);
    p.log_out = log_out;
    return with_float(x->dt, [&](auto ti) {
        return with_float(y->dt, [&](auto to) {
            using Tin = typename decltype(ti)::type;
            using Tout = typename decltype(to)::type;
            return softmax_launch<Tin, Tout>(p, x, y, L->stream);
        });
    });
}

// ---------------------------------------------------------------- LayerNormalization

template <typename Tin, typename Tout>
__global__ void __launch_bounds__(ROW_MAX_THREADS) layernorm_kernel(const row_params p, const Tin *__restrict__ x, Tout *__restrict__ y,
                                                                    const void *__restrict__ scale, const void *__restrict__ bias,
                                                                    void *__restrict__ mean_out, void *__restrict__ inv_out)
{
    __shared__ float sm[ROW_MAX_THREADS];
    int lane, sub;
    row_slot(p, &lane, &sub);
    int64_t row = (int64_t)blockIdx.x * p.bx + sub;
    bool active = row < p.rows;
    int64_t off[N_OPS] = {0, 0, 0, 0, 0, 0};
    if (active) row_offsets<N_OPS>(p, row, off);
    float sum = 0.f;
    if (active)
        for (int64_t j = lane; j < p.len; j += p.by) sum += kc_f32(x[off[OP_X] + inner_offset(p, OP_X, j)]);
    sum = row_reduce<false>(p, sm, sum, lane);
    float mean = sum / (float)p.len; // 0/0: NaN for an empty row, as the ref
    float sq = 0.f;
    if (active)
        for (int64_t j = lane; j < p.len; j += p.by) {
            float d = kc_f32(x[off[OP_X] + inner_offset(p, OP_X, j)]) - mean;
            sq += d * d;
        }
    sq = row_reduce<false>(p, sm, sq, lane);
    if (!active) return;
    float var = sq / (float)p.len;
    float r = 1.f / sqrtf(var + p.eps);
    for (int64_t j = lane; j < p.len; j += p.by) {
        float z = (kc_f32(x[off[OP_X] + inner_offset(p, OP_X, j)]) - mean) * r;
        if (scale) z *= load_any(scale, p.sdt, off[OP_SCALE] + inner_offset(p, OP_SCALE, j));
        if (bias) z += load_any(bias, p.bdt, off[OP_BIAS] + inner_offset(p, OP_BIAS, j));
        y[off[OP_Y] + inner_offset(p, OP_Y, j)] = kc_from_f32<Tout>(z);
    }
    if (lane == 0) {
        if (mean_out) store_any(mean_out, p.mdt, off[OP_MEAN], mean);
        if (inv_out) store_any(inv_out, p.idt, off[OP_INV], r);
    }
}

kiln_status layernorm_run(const kc_launch *L)
{
    const kiln_node *n = L->n;
    const kc_view *x = &L->in[0];
    const kc_view *y = L->n_out > 0 && L->out[0].p ? &L->out[0] : nullptr;
    const kc_view *mo = L->n_out > 1 && L->out[1].p ? &L->out[1] : nullptr;
    const kc_view *io = L->n_out > 2 && L->out[2].p ? &L->out[2] : nullptr;
    const kc_view *sc = L->n_in > 1 && L->in[1].p ? &L->in[1] : nullptr;
    const kc_view *bi = L->n_in > 2 && L->in[2].p ? &L->in[2] : nullptr;
    int axis;
    kiln_status st = kiln_axis(n->params.layernorm.axis, x->rank, &axis);
    if (st != KILN_OK) return kiln_fail_prefix(st, "node '%s' (LayerNormalization): ", n->name);
    if (!y && !mo && !io) return KILN_OK;
    if (!y)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (LayerNormalization): only Mean / InvStdDev wanted, without Y",
                         n->name);
    if (y->rank != x->rank)
        return kiln_fail(KILN_ERR_INTERNAL, "node '%s' (LayerNormalization): output rank %d, input rank %d", n->name,
                         y->rank, x->rank);
    const kc_view *fl[] = {x, y, sc, bi, mo, io};
    for (int j = 0; j < N_OPS; j++)
        if (fl[j] && !is_float_dt(fl[j]->dt))
            return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (LayerNormalization): operand of dtype %s is not supported "
                             "on the GPU", n->name, kiln_dtype_name(fl[j]->dt));
    const kc_view *stats[] = {mo, io};
    for (const kc_view *o : stats)
        if (o && o->rank != x->rank)
            return kiln_fail(KILN_ERR_INTERNAL, "node '%s' (LayerNormalization): statistics of rank %d, input rank %d",
                             n->name, o->rank, x->rank);
    // Scale and B broadcast (numpy, right-aligned) to X: stride 0 where they repeat
    kc_view sb = {}, bb = {};
    if (sc) {
        if (sc->rank > x->rank)
            return kiln_fail(KILN_ERR_SHAPE, "node '%s' (LayerNormalization): scale of rank %d", n->name, sc->rank);
        kc_view_broadcast(sc, x->rank, x->d, &sb);
    }
    if (bi) {
        if (bi->rank > x->rank)
            return kiln_fail(KILN_ERR_SHAPE, "node '%s' (LayerNormalization): bias of rank %d", n->name, bi->rank);
        kc_view_broadcast(bi, x->rank, x->d, &bb);
    }
    int64_t rows = 1;
    for (int k = 0; k < axis; k++) rows *= x->d[k];
    if (rows == 0) return KILN_OK;
    if (!x->p) return kiln_fail(KILN_ERR_INTERNAL, "node '%s' (LayerNormalization): X is not on the device", n->name);
    const kc_view *ops[N_OPS] = {x, y, sc ? &sb : nullptr, bi ? &bb : nullptr, mo, io};
    row_params p = {};
    plan_rows(x, axis, x->rank, ops, &p);
    p.eps = n->params.layernorm.epsilon;
    p.sdt = sc ? sc->dt : KILN_F32;
    p.bdt = bi ? bi->dt : KILN_F32;
    p.mdt = mo ? mo->dt : KILN_F32;
    p.idt = io ? io->dt : KILN_F32;
    int64_t blocks = (p.rows + p.bx - 1) / p.bx;
    if (blocks > INT32_MAX)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (LayerNormalization): %lld rows", n->name, (long long)p.rows);
    return with_float(x->dt, [&](auto ti) {
        return with_float(y->dt, [&](auto to) {
            using Tin = typename decltype(ti)::type;
            using Tout = typename decltype(to)::type;
            layernorm_kernel<Tin, Tout><<<(unsigned)blocks, p.bx * p.by, 0, L->stream>>>(
                p, static_cast<const Tin *>(x->p), static_cast<Tout *>(y->p), sc ? sc->p : nullptr,
                bi ? bi->p : nullptr, mo ? mo->p : nullptr, io ? io->p : nullptr);
            return kc_check_launch("LayerNormalization");
        });
    });
}

} // namespace

extern "C" kiln_status kiln_cuda_Softmax(const kc_launch *L) { return softmax_run(L, false); }
extern "C" kiln_status kiln_cuda_LogSoftmax(const kc_launch *L) { return softmax_run(L, true); }
extern "C" kiln_status kiln_cuda_LayerNormalization(const kc_launch *L) { return layernorm_run(L); }
