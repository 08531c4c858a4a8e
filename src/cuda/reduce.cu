// Reductions on the GPU: ReduceMean, ReduceSum, ReduceMax, ReduceMin,
// ArgMax, and TopK, with the semantics of the reference kernels
// (src/ref/reduce.c, src/ref/topk.c) that the GPU tests compare against.
//
// Reduce* and ArgMax share one kernel shape. The reduced dims and the kept
// dims are each sorted by stride and merged where they form one run, then a
// block holds bx outputs times by lanes (by a power of two): lanes split an
// output's reduced elements and meet in a shared-memory tree. When the
// reduced elements are the input's fastest dim (a row reduction), lanes are
// consecutive threads, so a warp reads one contiguous run; otherwise outputs
// are consecutive threads (a column reduction: NHWC spatial means, axis 0)
// and a warp reads 32 neighbouring kept elements, written in the output's
// memory order.
//
// Float inputs (f32, f16, bf16) accumulate in f32; Max/Min propagate NaN as
// numpy does. Integer inputs (i32, i64, i8, u8, bool) accumulate exactly in
// i64 and wrap when stored, as the ref does.
//
// TopK gives a block to each slice along its axis: the slice is sorted in
// shared memory by a bitonic sort whose order is the ref's stable order
// (value, then lower index first, NaN above every number), padded to a
// power of two with entries that sort last.
#include <math.h>
#include <math_constants.h>
#include <stdint.h>
#include <string.h>

#include <type_traits>

#include "cuda/kc_device.cuh"

namespace {

constexpr int MAXR = KILN_MAX_RANK;
constexpr int RED_THREADS = 256;   // usual block
constexpr int RED_MAX_THREADS = 1024;

template <typename T> struct tag {
    using type = T;
};

bool is_float_dt(kiln_dtype t) { return t == KILN_F32 || t == KILN_F16 || t == KILN_BF16; }
bool is_int_dt(kiln_dtype t)
{
    return t == KILN_I64 || t == KILN_I32 || t == KILN_I8 || t == KILN_U8 || t == KILN_BOOL;
}

template <typename F> kiln_status with_float(kiln_dtype dt, F &&f)
{
    switch (dt) {
    case KILN_F32: return f(tag<float>());
    case KILN_F16: return f(tag<__half>());
    case KILN_BF16: return f(tag<__nv_bfloat16>());
    default: return kiln_fail(KILN_ERR_INTERNAL, "reduce: dtype %s reached a float kernel", kiln_dtype_name(dt));
    }
}

template <typename F> kiln_status with_int(kiln_dtype dt, F &&f)
{
    switch (dt) {
    case KILN_I64: return f(tag<int64_t>());
    case KILN_I32: return f(tag<int32_t>());
    case KILN_I8: return f(tag<int8_t>());
    case KILN_U8: return f(tag<uint8_t>());
    case KILN_BOOL: return f(tag<bool>());
    default: return kiln_fail(KILN_ERR_INTERNAL, "reduce: dtype %s reached an integer kernel", kiln_dtype_name(dt));
    }
}

int64_t pow2_ceil(int64_t v)
{
    int64_t p = 1;
    while (p < v) p <<= 1;
    return p;
}

// ---------------------------------------------------------------- the plan

struct red_params {
    int nk, nr;                       // kept / reduced dims after merging
    int lanes_fast;                   // lanes are consecutive threads
    int bx, by;                       // outputs x lanes per block
    int64_t K, R;                     // outputs, reduced elements per output
    int64_t kd[MAXR], kxs[MAXR], kys[MAXR];  // kept dims, outermost first
    int64_t rd[MAXR], rxs[MAXR];      // reduced dims, outermost first
    int64_t init_i;                   // integer Max/Min: the dtype's lowest / highest
    int mean;
    int last;                         // ArgMax select_last_index
};

struct dim_entry {
    int64_t d, a, b; // extent; strides in two operands (input and output)
};

// Sorts entries by stride a, largest first, and merges neighbours that
// form one run in both operands. Entries of extent 1 are dropped.
int sort_merge(dim_entry *e, int n, bool use_b)
{
    int m = 0;
    dim_entry tmp[MAXR];
    for (int i = 0; i < n; i++) {
        if (e[i].d == 1) continue;
        int pos = m++;
        while (pos > 0 && tmp[pos - 1].a < e[i].a) {
            tmp[pos] = tmp[pos - 1];
            pos--;
        }
        tmp[pos] = e[i];
    }
    int r = 0;
    for (int i = 0; i < m; i++) {
        if (r > 0 && e[r - 1].a == tmp[i].a * tmp[i].d && (!use_b || e[r - 1].b == tmp[i].b * tmp[i].d)) {
            e[r - 1].d *= tmp[i].d;
            e[r - 1].a = tmp[i].a;
            e[r - 1].b = tmp[i].b;
            continue;
        }
        e[r++] = tmp[i];
    }
    return r;
}

// Fills the dims and the block shape of a reduction of x over red[] into y
// (y has x's rank when keepdims, else the kept dims only).
void plan_reduce(const kc_view *x, const kc_view *y, const bool *red, bool keepdims, red_params *p)
{
    dim_entry ke[MAXR], re[MAXR];
    int nk = 0, nr = 0, yi = 0;
    p->K = 1;
    p->R = 1;
    int64_t min_kept = INT64_MAX, min_red = INT64_MAX;
    for (int k = 0; k < x->rank; k++) {
        if (red[k]) {
            re[nr++] = {x->d[k], x->s[k], 0};
            p->R *= x->d[k];
            if (x->d[k] > 1 && x->s[k] < min_red) min_red = x->s[k];
            if (keepdims) yi++;
        } else {
            ke[nk++] = {x->d[k], y->s[yi], x->s[k]};
            p->K *= x->d[k];
            if (x->d[k] > 1 && x->s[k] < min_kept) min_kept = x->s[k];
            yi++;
        }
    }
    // kept dims sorted by the output's stride: consecutive outputs are
    // neighbours in memory
    p->nk = sort_merge(ke, nk, true);
    for (int i = 0; i < p->nk; i++) {
        p->kd[i] = ke[i].d;
        p->kys[i] = ke[i].a;
        p->kxs[i] = ke[i].b;
    }
    p->nr = sort_merge(re, nr, false);
    for (int i = 0; i < p->nr; i++) {
        p->rd[i] = re[i].d;
        p->rxs[i] = re[i].a;
    }
    p->lanes_fast = min_red < min_kept;
    if (p->lanes_fast) {
        int64_t by = pow2_ceil(p->R);
        p->by = (int)(by < 32 ? 32 : by > RED_MAX_THREADS ? RED_MAX_THREADS : by);
        p->bx = p->by >= RED_THREADS ? 1 : RED_THREADS / p->by;
    } else if (p->R < 64) {
        p->by = 1;
        p->bx = RED_THREADS;
    } else {
        // few outputs over long columns: more lanes per output
        p->bx = 32;
        p->by = p->K >= 32 * 1024 ? 8 : 32;
    }
}

__device__ __forceinline__ int64_t red_offset(const red_params &p, int64_t j)
{
    if (p.nr == 1) return j * p.rxs[0];
    if (p.nr == 0) return 0;
    int64_t off = 0;
    for (int k = p.nr - 1; k >= 0; k--) {
        off += (j % p.rd[k]) * p.rxs[k];
        j /= p.rd[k];
    }
    return off;
}

// ---------------------------------------------------------------- the operations

// NaN propagates, as numpy's maximum.reduce (the ONNX reference) does
__device__ __forceinline__ float max_nan(float a, float b) { return (b > a || isnan(b)) && !isnan(a) ? b : a; }
__device__ __forceinline__ float min_nan(float a, float b) { return (b < a || isnan(b)) && !isnan(a) ? b : a; }

template <typename T> __device__ __forceinline__ int64_t as_i64(T v) { return (int64_t)v; }
template <> __device__ __forceinline__ int64_t as_i64<bool>(bool v) { return v ? 1 : 0; }

// Integer results keep their low bits (two's complement wrap).
template <typename T> __device__ __forceinline__ T wrap_store(int64_t v)
{
    if constexpr (std::is_same<T, bool>::value)
        return v != 0;
    else
        return (T)(uint64_t)v;
}

struct SumF {
    using acc = float;
    template <typename T> static __device__ float init(const red_params &) { return 0.f; }
    template <typename T> static __device__ float step(float a, T x, int64_t) { return a + kc_f32(x); }
    static __device__ float combine(const red_params &, float a, float b) { return a + b; }
    template <typename T> static __device__ T finish(const red_params &p, float a)
    {
        return kc_from_f32<T>(p.mean ? a / (float)p.R : a);
    }
};

struct MaxF {
    using acc = float;
    template <typename T> static __device__ float init(const red_params &) { return -CUDART_INF_F; }
    template <typename T> static __device__ float step(float a, T x, int64_t) { return max_nan(a, kc_f32(x)); }
    static __device__ float combine(const red_params &, float a, float b) { return max_nan(a, b); }
    template <typename T> static __device__ T finish(const red_params &, float a) { return kc_from_f32<T>(a); }
};

struct MinF {
    using acc = float;
    template <typename T> static __device__ float init(const red_params &) { return CUDART_INF_F; }
    template <typename T> static __device__ float step(float a, T x, int64_t) { return min_nan(a, kc_f32(x)); }
    static __device__ float combine(const red_params &, float a, float b) { return min_nan(a, b); }
    template <typename T> static __device__ T finish(const red_params &, float a) { return kc_from_f32<T>(a); }
};

struct SumI {
    using acc = int64_t;
    template <typename T> static __device__ int64_t init(const red_params &) { return 0; }
    template <typename T> static __device__ int64_t step(int64_t a, T x, int64_t)
    {
        return (int64_t)((uint64_t)a + (uint64_t)as_i64(x));
    }
    static __device__ int64_t combine(const red_params &, int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
    template <typename T> static __device__ T finish(const red_params &p, int64_t a)
    {
        // integer mean truncates toward zero (numpy mean cast back)
        return wrap_store<T>(p.mean ? (p.R ? a / p.R : 0) : a);
    }
};

struct MaxI {
    using acc = int64_t;
    template <typename T> static __device__ int64_t init(const red_params &p) { return p.init_i; }
    template <typename T> static __device__ int64_t step(int64_t a, T x, int64_t)
    {
        int64_t v = as_i64(x);
        return v > a ? v : a;
    }
    static __device__ int64_t combine(const red_params &, int64_t a, int64_t b) { return b > a ? b : a; }
    template <typename T> static __device__ T finish(const red_params &, int64_t a) { return wrap_store<T>(a); }
};

struct MinI {
    using acc = int64_t;
    template <typename T> static __device__ int64_t init(const red_params &p) { return p.init_i; }
    template <typename T> static __device__ int64_t step(int64_t a, T x, int64_t)
    {
        int64_t v = as_i64(x);
        return v < a ? v : a;
    }
    static __device__ int64_t combine(const red_params &, int64_t a, int64_t b) { return b < a ? b : a; }
    template <typename T> static __device__ T finish(const red_params &, int64_t a) { return wrap_store<T>(a); }
};

// ArgMax: (key, index) pairs; index -1 is "nothing seen yet".
template <typename Key> struct arg_pair {
    Key key;
    int64_t idx;
};

// NaN counts as larger than any number (numpy argmax returns the first NaN)
__device__ __forceinline__ bool key_gt(float a, float b) { return isnan(a) ? !isnan(b) : !isnan(b) && a > b; }
__device__ __forceinline__ bool key_gt(int64_t a, int64_t b) { return a > b; }

__device__ __forceinline__ float arg_key(float v) { return v; }
__device__ __forceinline__ float arg_key(__half v) { return __half2float(v); }
__device__ __forceinline__ float arg_key(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ int64_t arg_key(int64_t v) { return v; }
__device__ __forceinline__ int64_t arg_key(int32_t v) { return v; }
__device__ __forceinline__ int64_t arg_key(int8_t v) { return v; }
__device__ __forceinline__ int64_t arg_key(uint8_t v) { return v; }

// The first maximum wins (the last with select_last_index): the result of
// the ref's sequential scan, whatever order the partials meet in.
template <typename Key>
__device__ __forceinline__ arg_pair<Key> arg_better(const red_params &p, arg_pair<Key> a, arg_pair<Key> b)
{
    if (a.idx < 0) return b;
    if (b.idx < 0) return a;
    if (key_gt(b.key, a.key)) return b;
    if (key_gt(a.key, b.key)) return a;
    return (p.last ? b.idx > a.idx : b.idx < a.idx) ? b : a;
}

template <typename Key> struct ArgMaxOp {
    using acc = arg_pair<Key>;
    template <typename T> static __device__ acc init(const red_params &) { return acc{Key(0), -1}; }
    template <typename T> static __device__ acc step(acc a, T x, int64_t j)
    {
        // sequential scan inside a thread: j ascends, so only a strictly
        // greater key (or an equal one with select_last_index) moves it
        Key k = arg_key(x);
        if (a.idx < 0 || key_gt(k, a.key)) return acc{k, j};
        return a;
    }
    static __device__ acc combine(const red_params &p, acc a, acc b) { return arg_better(p, a, b); }
    template <typename T> static __device__ T finish(const red_params &, acc a) { return (T)a.idx; }
};

// select_last_index: an equal key later in the scan moves the result too
template <typename Key> struct ArgMaxLastOp : ArgMaxOp<Key> {
    using acc = arg_pair<Key>;
    template <typename T> static __device__ acc step(acc a, T x, int64_t j)
    {
        Key k = arg_key(x);
        if (a.idx < 0 || !key_gt(a.key, k)) return acc{k, j};
        return a;
    }
};

template <typename Op, typename Tin, typename Tout>
__global__ void __launch_bounds__(RED_MAX_THREADS) red_kernel(const red_params p, const Tin *__restrict__ x, Tout *__restrict__ y)
{
    using A = typename Op::acc;
    __shared__ A sm[RED_MAX_THREADS];
    int tid = threadIdx.x, lane, sub;
    if (p.lanes_fast) {
        lane = tid % p.by;
        sub = tid / p.by;
    } else {
        sub = tid % p.bx;
        lane = tid / p.bx;
    }
    int64_t o = (int64_t)blockIdx.x * p.bx + sub;
    A acc = Op::template init<Tin>(p);
    int64_t yo = 0;
    if (o < p.K) {
        int64_t xo = 0, rem = o;
        for (int k = p.nk - 1; k >= 0; k--) {
            int64_t c = rem % p.kd[k];
            rem /= p.kd[k];
            xo += c * p.kxs[k];
            yo += c * p.kys[k];
        }
        for (int64_t j = lane; j < p.R; j += p.by) acc = Op::template step<Tin>(acc, x[xo + red_offset(p, j)], j);
    }
    if (p.by > 1) {
        int step = p.lanes_fast ? 1 : p.bx;
        sm[tid] = acc;
        __syncthreads();
        for (int s = p.by / 2; s > 0; s >>= 1) {
            if (lane < s) sm[tid] = Op::combine(p, sm[tid], sm[tid + s * step]);
            __syncthreads();
        }
        acc = sm[tid];
    }
    if (o < p.K && lane == 0) y[yo] = Op::template finish<Tout>(p, acc);
}

template <typename Op, typename Tin, typename Tout>
kiln_status red_launch(const red_params &p, const kc_view *x, const kc_view *y, cudaStream_t s, const char *name)
{
    int64_t blocks = (p.K + p.bx - 1) / p.bx;
    if (blocks > INT32_MAX) return kiln_fail(KILN_ERR_UNSUPPORTED, "%s: %lld outputs", name, (long long)p.K);
    red_kernel<Op, Tin, Tout><<<(unsigned)blocks, p.bx * p.by, 0, s>>>(p, static_cast<const Tin *>(x->p),
                                                                      static_cast<Tout *>(y->p));
    return kc_check_launch(name);
}

// ---------------------------------------------------------------- Reduce*

enum red_op { OP_SUM, OP_MEAN, OP_MAX, OP_MIN };

int64_t int_lowest(kiln_dtype t)
{
    switch (t) {
    case KILN_I32: return INT32_MIN;
    case KILN_I8: return INT8_MIN;
    case KILN_U8:
    case KILN_BOOL: return 0;
    default: return INT64_MIN;
    }
}

int64_t int_highest(kiln_dtype t)
{
    switch (t) {
    case KILN_I32: return INT32_MAX;
    case KILN_I8: return INT8_MAX;
    case KILN_U8: return UINT8_MAX;
    case KILN_BOOL: return 1;
    default: return INT64_MAX;
    }
}

// Which axes a Reduce* node reduces: attribute (opset 13) or input 1
// (ReduceSum-13, every Reduce* since 18), as the ref reads them.
kiln_status reduce_axes(const kc_launch *L, int rank, bool red[MAXR], bool *noop)
{
    const kiln_node *n = L->n;
    kiln_value *v = const_cast<kiln_value *>(L->v);
    int64_t axes[MAXR];
    int n_axes = 0;
    kiln_status st;
    const kiln_reduce_params *rp = &n->params.reduce;
    if (rp->axes_from_input) {
        const kiln_value *a = kiln_in(n, v, 1);
        if (a && kiln_shape_numel(&a->shape) > 0 && !a->data)
            return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (%s): 'axes' must be known before the run", n->name,
                             n->op_type);
        if (a && kiln_shape_numel(&a->shape) > 0 && (st = kiln_value_ints(a, axes, MAXR, &n_axes)) != KILN_OK)
            return kiln_fail_prefix(st, "node '%s' (%s): ", n->name, n->op_type);
    } else {
        n_axes = rp->n_axes;
        for (int i = 0; i < n_axes; i++) axes[i] = rp->axes[i];
    }
    for (int i = 0; i < rank; i++) red[i] = n_axes == 0;
    *noop = n_axes == 0 && rp->noop_with_empty_axes;
    for (int i = 0; i < n_axes; i++) {
        int ax;
        if ((st = kiln_axis(axes[i], rank, &ax)) != KILN_OK) return kiln_fail_prefix(st, "node '%s' (%s): ", n->name, n->op_type);
        red[ax] = true;
    }
    if (*noop)
        for (int i = 0; i < rank; i++) red[i] = false;
    return KILN_OK;
}

kiln_status reduce_run(const kc_launch *L, red_op op)
{
    const kiln_node *n = L->n;
    const kc_view *x = &L->in[0], *y = &L->out[0];
    bool red[MAXR], noop = false;
    kiln_status st = reduce_axes(L, x->rank, red, &noop);
    if (st != KILN_OK) return st;
    // noop_with_empty_axes: Identity, a reduction over no axes
    bool keepdims = noop || n->params.reduce.keepdims;
    int kept = 0;
    for (int k = 0; k < x->rank; k++) kept += !red[k];
    if (y->rank != (keepdims ? x->rank : kept))
        return kiln_fail(KILN_ERR_INTERNAL, "node '%s' (%s): output rank %d for input rank %d", n->name, n->op_type,
                         y->rank, x->rank);
    if (kc_view_numel(y) == 0) return KILN_OK;
    if (!x->p || !y->p) return kiln_fail(KILN_ERR_INTERNAL, "node '%s' (%s): X or Y is not on the device", n->name, n->op_type);
    bool fl = is_float_dt(x->dt) && is_float_dt(y->dt);
    bool in = is_int_dt(x->dt) && x->dt == y->dt;
    if (!fl && !in)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (%s): %s input, %s output is not supported on the GPU", n->name,
                         n->op_type, kiln_dtype_name(x->dt), kiln_dtype_name(y->dt));
    red_params p = {};
    plan_reduce(x, y, red, keepdims, &p);
    p.mean = op == OP_MEAN;
    p.init_i = op == OP_MAX ? int_lowest(x->dt) : op == OP_MIN ? int_highest(x->dt) : 0;
    const char *name = n->op_type;
    cudaStream_t s = L->stream;
    if (fl)
        return with_float(x->dt, [&](auto ti) {
            return with_float(y->dt, [&](auto to) {
                using Tin = typename decltype(ti)::type;
                using Tout = typename decltype(to)::type;
                if (op == OP_MAX) return red_launch<MaxF, Tin, Tout>(p, x, y, s, name);
                if (op == OP_MIN) return red_launch<MinF, Tin, Tout>(p, x, y, s, name);
                return red_launch<SumF, Tin, Tout>(p, x, y, s, name);
            });
        });
    return with_int(x->dt, [&](auto ti) {
        using T = typename decltype(ti)::type;
        if (op == OP_MAX) return red_launch<MaxI, T, T>(p, x, y, s, name);
        if (op == OP_MIN) return red_launch<MinI, T, T>(p, x, y, s, name);
        return red_launch<SumI, T, T>(p, x, y, s, name);
    });
}

// ---------------------------------------------------------------- ArgMax

template <typename T>
kiln_status argmax_launch(const red_params &p, const kc_view *x, const kc_view *y, cudaStream_t s)
{
    using Key = typename std::conditional<std::is_integral<T>::value, int64_t, float>::type;
    if (p.last) return red_launch<ArgMaxLastOp<Key>, T, int64_t>(p, x, y, s, "ArgMax");
    return red_launch<ArgMaxOp<Key>, T, int64_t>(p, x, y, s, "ArgMax");
}

kiln_status argmax_run(const kc_launch *L)
{
    const kiln_node *n = L->n;
    const kc_view *x = &L->in[0], *y = &L->out[0];
    int axis;
    const kiln_argmax_params *ap = &n->params.argmax;
    kiln_status st = kiln_axis(ap->axis, x->rank, &axis);
    if (st != KILN_OK) return kiln_fail_prefix(st, "node '%s' (ArgMax): ", n->name);
    bool keepdims = ap->keepdims;
    if (y->rank != (keepdims ? x->rank : x->rank - 1))
        return kiln_fail(KILN_ERR_INTERNAL, "node '%s' (ArgMax): output rank %d for input rank %d", n->name, y->rank,
                         x->rank);
    if (kc_view_numel(y) == 0) return KILN_OK;
    if (x->d[axis] == 0)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "node '%s' (ArgMax): 0 elements along axis %d", n->name, axis);
    if (!x->p || !y->p) return kiln_fail(KILN_ERR_INTERNAL, "node '%s' (ArgMax): X or Y is not on the device", n->name);
    if (y->dt != KILN_I64 || !(is_float_dt(x->dt) || (is_int_dt(x->dt) && x->dt != KILN_BOOL)))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (ArgMax): %s input, %s output is not supported on the GPU",
                         n->name, kiln_dtype_name(x->dt), kiln_dtype_name(y->dt));
    bool red[MAXR] = {false};
    red[axis] = true;
    red_params p = {};
    plan_reduce(x, y, red, keepdims, &p);
    p.last = ap->select_last_index;
    switch (x->dt) {
    case KILN_F32: return argmax_launch<float>(p, x, y, L->stream);
    case KILN_F16: return argmax_launch<__half>(p, x, y, L->stream);
    case KILN_BF16: return argmax_launch<__nv_bfloat16>(p, x, y, L->stream);
    case KILN_I64: return argmax_launch<int64_t>(p, x, y, L->stream);
    case KILN_I32: return argmax_launch<int32_t>(p, x, y, L->stream);
    case KILN_I8: return argmax_launch<int8_t>(p, x, y, L->stream);
    default: return argmax_launch<uint8_t>(p, x, y, L->stream);
    }
}

// ---------------------------------------------------------------- TopK

struct topk_params {
    int64_t rows;
    int len, k, n;         // slice length, K, sort size (power of two >= len)
    int largest;
    int no;                // outer dims (all but the axis), outermost first
    int64_t od[MAXR], oxs[MAXR], ovs[MAXR], ois[MAXR];
    int64_t xs, vs, is;    // strides along the axis: input, values, indices
};

// Does (a, ia) come strictly before (b, ib)? The ref's stable order: by
// value (NaN above every number), ties by lower index; padding (an index
// >= len) after everything.
__device__ __forceinline__ bool tk_before(float a, int ia, float b, int ib, int len, bool largest)
{
    if (ia >= len || ib >= len) return ia < ib;
    bool na = isnan(a), nb = isnan(b);
    if (na || nb) {
        if (na && nb) return ia < ib;
        return largest ? na : nb;
    }
    if (a != b) return largest ? a > b : a < b;
    return ia < ib;
}

__device__ __forceinline__ bool tk_before(int64_t a, int ia, int64_t b, int ib, int len, bool largest)
{
    if (ia >= len || ib >= len) return ia < ib;
    if (a != b) return largest ? a > b : a < b;
    return ia < ib;
}

template <typename Tout, typename Tin> __device__ __forceinline__ Tout tk_copy(Tin v)
{
    if constexpr (std::is_same<Tin, Tout>::value)
        return v;
    else
        return kc_from_f32<Tout>(kc_f32(v));
}

template <typename Key, typename Tin, typename Tout>
__global__ void topk_kernel(const topk_params p, const Tin *__restrict__ x, Tout *__restrict__ yv, int64_t *__restrict__ yi)
{
    extern __shared__ __align__(16) unsigned char tk_smem[];
    Key *keys = reinterpret_cast<Key *>(tk_smem);
    int *ids = reinterpret_cast<int *>(keys + p.n);
    int64_t row = blockIdx.x, rem = row, xo = 0, vo = 0, io = 0;
    for (int q = p.no - 1; q >= 0; q--) {
        int64_t c = rem % p.od[q];
        rem /= p.od[q];
        xo += c * p.oxs[q];
        vo += c * p.ovs[q];
        io += c * p.ois[q];
    }
    for (int j = threadIdx.x; j < p.n; j += blockDim.x) {
        keys[j] = j < p.len ? arg_key(x[xo + (int64_t)j * p.xs]) : Key(0);
        ids[j] = j;
    }
    __syncthreads();
    bool largest = p.largest != 0;
    for (int size = 2; size <= p.n; size <<= 1) {
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            for (int i = threadIdx.x; i < p.n; i += blockDim.x) {
                int j = i ^ stride;
                if (j <= i) continue;
                Key ki = keys[i], kj = keys[j];
                int ii = ids[i], ij = ids[j];
                // ascending (in tk_before order) where bit `size` of i is 0
                bool swap = (i & size) == 0 ? tk_before(kj, ij, ki, ii, p.len, largest)
                                            : tk_before(ki, ii, kj, ij, p.len, largest);
                if (swap) {
                    keys[i] = kj;
                    keys[j] = ki;
                    ids[i] = ij;
                    ids[j] = ii;
                }
            }
            __syncthreads();
        }
    }
    for (int j = threadIdx.x; j < p.k; j += blockDim.x) {
        int src = ids[j];
        // values are copied from the input, not from the f32 keys
        if (yv) yv[vo + (int64_t)j * p.vs] = tk_copy<Tout>(x[xo + (int64_t)src * p.xs]);
        if (yi) yi[io + (int64_t)j * p.is] = src;
    }
}

template <typename Tin, typename Tout>
kiln_status topk_launch(const topk_params &p, const kc_view *x, const kc_view *yv, const kc_view *yi, cudaStream_t s)
{
    using Key = typename std::conditional<std::is_integral<Tin>::value, int64_t, float>::type;
    size_t smem = (size_t)p.n * (sizeof(Key) + sizeof(int));
    int dev = 0, optin = 48 * 1024;
    KC_CHECK(cudaGetDevice(&dev));
    KC_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    if (smem > (size_t)optin)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "TopK: a slice of %d elements needs %zu bytes of shared memory, the GPU "
                         "has %d per block", p.len, smem, optin);
    auto kern = topk_kernel<Key, Tin, Tout>;
    if (smem > 48 * 1024) KC_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    int threads = p.n < 1024 ? (p.n < 32 ? 32 : p.n) : 1024;
    kern<<<(unsigned)p.rows, threads, smem, s>>>(p, static_cast<const Tin *>(x->p),
                                                 yv ? static_cast<Tout *>(yv->p) : nullptr,
                                                 yi ? static_cast<int64_t *>(yi->p) : nullptr);
    return kc_check_launch("TopK");
}

kiln_status topk_run(const kc_launch *L)
{
    const kiln_node *n = L->n;
    kiln_value *v = const_cast<kiln_value *>(L->v);
    const kc_view *x = &L->in[0];
    const kc_view *yv = L->n_out > 0 && L->out[0].p ? &L->out[0] : nullptr;
    const kc_view *yi = L->n_out > 1 && L->out[1].p ? &L->out[1] : nullptr;
    const kiln_value *kv = kiln_in(n, v, 1);
    int axis, cnt;
    int64_t k;
    kiln_status st = kiln_axis(n->params.topk.axis, x->rank, &axis);
    if (st != KILN_OK) return kiln_fail_prefix(st, "node '%s' (TopK): ", n->name);
    if (!kv || !kv->data) return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (TopK): K must be known before the run", n->name);
    if ((st = kiln_value_ints(kv, &k, 1, &cnt)) != KILN_OK) return kiln_fail_prefix(st, "node '%s' (TopK): ", n->name);
    int64_t len = x->d[axis], rows = 1;
    if (cnt != 1 || k < 0 || k > len)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "node '%s' (TopK): K must be one value in [0, %lld]", n->name,
                         (long long)len);
    for (int i = 0; i < x->rank; i++)
        if (i != axis) rows *= x->d[i];
    if (k == 0 || rows == 0 || (!yv && !yi)) return KILN_OK;
    if (!x->p) return kiln_fail(KILN_ERR_INTERNAL, "node '%s' (TopK): X is not on the device", n->name);
    if (yi && yi->dt != KILN_I64)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (TopK): indices of dtype %s", n->name, kiln_dtype_name(yi->dt));
    bool fl = is_float_dt(x->dt) && (!yv || is_float_dt(yv->dt));
    bool in = is_int_dt(x->dt) && x->dt != KILN_BOOL && (!yv || yv->dt == x->dt);
    if (!fl && !in)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (TopK): %s input, %s values are not supported on the GPU", n->name,
                         kiln_dtype_name(x->dt), yv ? kiln_dtype_name(yv->dt) : "no");
    if (len > 16384)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (TopK): slices of %lld elements; the GPU kernel sorts at most "
                         "16384", n->name, (long long)len);
    if (rows > INT32_MAX) return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (TopK): %lld slices", n->name, (long long)rows);
    const kc_view *ref = yv ? yv : yi;
    for (int i = 0; i < x->rank; i++)
        if (ref->rank != x->rank || ref->d[i] != (i == axis ? k : x->d[i]) ||
            (yv && yi && yi->d[i] != yv->d[i]))
            return kiln_fail(KILN_ERR_INTERNAL, "node '%s' (TopK): output views do not match K = %lld", n->name, (long long)k);

    topk_params p = {};
    p.rows = rows;
    p.len = (int)len;
    p.k = (int)k;
    p.n = (int)pow2_ceil(len);
    p.largest = n->params.topk.largest;
    p.xs = x->s[axis];
    p.vs = yv ? yv->s[axis] : 0;
    p.is = yi ? yi->s[axis] : 0;
    for (int i = 0; i < x->rank; i++) {
        if (i == axis || x->d[i] == 1) continue;
        p.od[p.no] = x->d[i];
        p.oxs[p.no] = x->s[i];
        p.ovs[p.no] = yv ? yv->s[i] : 0;
        p.ois[p.no] = yi ? yi->s[i] : 0;
        p.no++;
    }
    cudaStream_t s = L->stream;
    if (in) {
        switch (x->dt) {
        case KILN_I64: return topk_launch<int64_t, int64_t>(p, x, yv, yi, s);
        case KILN_I32: return topk_launch<int32_t, int32_t>(p, x, yv, yi, s);
        case KILN_I8: return topk_launch<int8_t, int8_t>(p, x, yv, yi, s);
        default: return topk_launch<uint8_t, uint8_t>(p, x, yv, yi, s);
        }
    }
    kiln_dtype vdt = yv ? yv->dt : x->dt; // no values output: any float type will do
    return with_float(x->dt, [&](auto ti) {
        return with_float(vdt, [&](auto to) {
            using Tin = typename decltype(ti)::type;
            using Tout = typename decltype(to)::type;
            return topk_launch<Tin, Tout>(p, x, yv, yi, s);
        });
    });
}

} // namespace

extern "C" kiln_status kiln_cuda_ReduceMean(const kc_launch *L) { return reduce_run(L, OP_MEAN); }
extern "C" kiln_status kiln_cuda_ReduceSum(const kc_launch *L) { return reduce_run(L, OP_SUM); }
extern "C" kiln_status kiln_cuda_ReduceMax(const kc_launch *L) { return reduce_run(L, OP_MAX); }
extern "C" kiln_status kiln_cuda_ReduceMin(const kc_launch *L) { return reduce_run(L, OP_MIN); }
extern "C" kiln_status kiln_cuda_ArgMax(const kc_launch *L) { return argmax_run(L); }
extern "C" kiln_status kiln_cuda_TopK(const kc_launch *L) { return topk_run(L); }
