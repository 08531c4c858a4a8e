// The fused float program of the cuda backend: kc_ew_run, the interpreter
// kernel (ew_kernel) that every float unary/binary op and every fusion
// chain runs through, and kc_bias_act, the conv epilogue (bias, residual,
// activation) on the dense layouts convs write.
//
// Walks, loads and host checks are shared with elementwise.cu through
// ew_walk.cuh.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <type_traits>

#include "cuda/ew_walk.cuh"

// Internal linkage: other .cu files have kernels and helpers of their own.
namespace {

// ---------------------------------------------------------------- the fused float program

struct ew_args {
    kc_iter it;
    kc_ew_prog prog;
    void *out;
    const void *in[KC_EW_MAX_IN];
    int in_dt[KC_EW_MAX_IN];
};
// passed by value as one __grid_constant__ parameter: keep inside the 4 KB
// every architecture accepts
static_assert(sizeof(ew_args) <= 4000, "ew_args must fit the kernel parameter space");

template <typename F> __device__ __forceinline__ float4 map1(float4 x, F f)
{
    return make_float4(f(x.x), f(x.y), f(x.z), f(x.w));
}

template <typename F> __device__ __forceinline__ float4 map2(float4 x, float4 z, F f)
{
    return make_float4(f(x.x, z.x), f(x.y, z.y), f(x.z, z.z), f(x.w, z.w));
}

// The program is uniform over the grid, so the switch never diverges. A
// thread's four elements are EW_BLOCK apart, so that every load and store
// of a warp stays coalesced.
template <typename TO, typename IndexT, bool FLAT>
__global__ void __launch_bounds__(EW_BLOCK) ew_kernel(const __grid_constant__ ew_args a)
{
    const kc_ew_prog &P = a.prog;
    const IndexT n = (IndexT)a.it.n, tile = (IndexT)EW_BLOCK * EW_VEC;
    for (IndexT base = (IndexT)blockIdx.x * tile; base < n; base += (IndexT)gridDim.x * tile) {
        IndexT idx[EW_VEC];
        bool live[EW_VEC];
        // FLAT walks compute offsets where they are used (i * stride); the
        // others once per element, here
        IndexT off[FLAT ? 1 : EW_VEC][KC_MAX_OPS];
#pragma unroll
        for (int v = 0; v < EW_VEC; v++) {
            idx[v] = base + (IndexT)(v * EW_BLOCK + threadIdx.x);
            live[v] = idx[v] < n;
            if (!FLAT) walk_offsets<IndexT, false, KC_MAX_OPS>(a.it, live[v] ? idx[v] : 0, off[FLAT ? 0 : v]);
        }
        auto offset = [&](int v, int j) -> IndexT {
            return FLAT ? idx[v] * (IndexT)a.it.s[j][0] : off[FLAT ? 0 : v][j];
        };
        float4 r[KC_EW_MAX_REGS];
        for (int pc = 0; pc < P.n_ins; pc++) {
            const kc_ew_ins &q = P.ins[pc];
            float4 d = make_float4(0.f, 0.f, 0.f, 0.f);
            switch (q.op) {
            case KC_EW_LOAD: {
                const void *p = a.in[q.a];
                const int dt = a.in_dt[q.a];
                float t[EW_VEC];
#pragma unroll
                for (int v = 0; v < EW_VEC; v++) t[v] = live[v] ? load_float(p, dt, offset(v, q.a + 1)) : 0.f;
                d = make_float4(t[0], t[1], t[2], t[3]);
                break;
            }
            case KC_EW_IMM: d = make_float4(q.p0, q.p0, q.p0, q.p0); break;
            case KC_EW_ADD: d = map2(r[q.a], r[q.b], [](float x, float z) { return x + z; }); break;
            case KC_EW_SUB: d = map2(r[q.a], r[q.b], [](float x, float z) { return x - z; }); break;
            case KC_EW_MUL: d = map2(r[q.a], r[q.b], [](float x, float z) { return x * z; }); break;
            case KC_EW_DIV: d = map2(r[q.a], r[q.b], [](float x, float z) { return x / z; }); break;
            // in f64 as the ref (powf is off by a few ulp); Pow is rare
            case KC_EW_POW:
                d = map2(r[q.a], r[q.b], [](float x, float z) { return (float)pow((double)x, (double)z); });
                break;
            case KC_EW_MAX: d = map2(r[q.a], r[q.b], [](float x, float z) { return fmaxf(x, z); }); break;
            case KC_EW_MIN: d = map2(r[q.a], r[q.b], [](float x, float z) { return fminf(x, z); }); break;
            case KC_EW_NEG: d = map1(r[q.a], [](float x) { return -x; }); break;
            case KC_EW_ABS: d = map1(r[q.a], [](float x) { return fabsf(x); }); break;
            case KC_EW_SQRT: d = map1(r[q.a], [](float x) { return sqrtf(x); }); break;
            case KC_EW_EXP: d = map1(r[q.a], [](float x) { return expf(x); }); break;
            case KC_EW_LOG: d = map1(r[q.a], [](float x) { return logf(x); }); break;
            case KC_EW_RECIP: d = map1(r[q.a], [](float x) { return 1.f / x; }); break;
            case KC_EW_FLOOR: d = map1(r[q.a], [](float x) { return floorf(x); }); break;
            case KC_EW_CEIL: d = map1(r[q.a], [](float x) { return ceilf(x); }); break;
            case KC_EW_ROUND: d = map1(r[q.a], [](float x) { return rintf(x); }); break;
            case KC_EW_ERF: d = map1(r[q.a], [](float x) { return erff(x); }); break;
            case KC_EW_ACT: {
                const int act = q.act;
                const float p0 = q.p0, p1 = q.p1;
                d = map1(r[q.a], [=](float x) { return kc_act_apply(x, act, p0, p1); });
                break;
            }
            case KC_EW_PRELU:
                d = map2(r[q.a], r[q.b], [](float x, float z) { return x < 0.f ? x * z : x; });
                break;
            default: break;
            }
            r[q.dst] = d;
        }
        const float4 y = r[P.result];
        const float t[EW_VEC] = {y.x, y.y, y.z, y.w};
#pragma unroll
        for (int v = 0; v < EW_VEC; v++)
            if (live[v]) static_cast<TO *>(a.out)[offset(v, 0)] = kc_from_f32<TO>(t[v]);
    }
}

static bool ew_is_binary(int op)
{
    return (op >= KC_EW_ADD && op <= KC_EW_MIN) || op == KC_EW_PRELU;
}

// A program from the builder is trusted to be well formed; checking it
// here costs nothing per element and turns a builder bug into a message
// instead of garbage (every register read must have been written before).
static kiln_status ew_check(const kc_ew_prog *p)
{
    if (p->n_in < 0 || p->n_in > KC_EW_MAX_IN || p->n_ins < 1 || p->n_ins > KC_EW_MAX_INS || p->result < 0 ||
        p->result >= KC_EW_MAX_REGS)
        return kiln_fail(KILN_ERR_INTERNAL, "elementwise program: %d inputs, %d instructions, result r%d", p->n_in,
                         p->n_ins, p->result);
    uint32_t written = 0;
    for (int pc = 0; pc < p->n_ins; pc++) {
        const kc_ew_ins *q = &p->ins[pc];
        bool ok = q->op <= KC_EW_ROUND && q->dst < KC_EW_MAX_REGS && q->a < KC_EW_MAX_REGS && q->b < KC_EW_MAX_REGS;
        if (ok && q->op == KC_EW_LOAD) ok = q->a < p->n_in;
        if (ok && q->op == KC_EW_ACT) ok = q->act <= KC_ACT_GELU_TANH;
        if (ok && q->op != KC_EW_LOAD && q->op != KC_EW_IMM) ok = (written >> q->a) & 1u;
        if (ok && ew_is_binary(q->op)) ok = (written >> q->b) & 1u;
        if (!ok)
            return kiln_fail(KILN_ERR_INTERNAL, "elementwise program: bad instruction %d (op %d, r%d = r%d, r%d)", pc,
                             q->op, q->dst, q->a, q->b);
        written |= 1u << q->dst;
    }
    if (!((written >> p->result) & 1u))
        return kiln_fail(KILN_ERR_INTERNAL, "elementwise program: result r%d is never written", p->result);
    return KILN_OK;
}

template <typename TO> static void ew_launch(const ew_walk &w, const ew_args &a, cudaStream_t s)
{
    walk_dispatch(w, [&](auto idx, auto flat) {
        ew_kernel<TO, decltype(idx), decltype(flat)::value><<<w.grid, EW_BLOCK, 0, s>>>(a);
    });
}

} // namespace

extern "C" kiln_status kc_ew_run(const kc_ew_prog *p, const kc_view *in, const kc_view *out, cudaStream_t s)
{
    static const char what[] = "elementwise program";
    kiln_status st = ew_check(p);
    if (st != KILN_OK) return st;
    if (!is_float_dt(out->dt))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "%s: output dtype %s (f32, f16 or bf16 only)", what,
                         kiln_dtype_name(out->dt));
    if (out->rank < 0 || out->rank > KILN_MAX_RANK)
        return kiln_fail(KILN_ERR_INTERNAL, "%s: output of rank %d", what, out->rank);
    if (kc_view_numel(out) == 0) return KILN_OK;
    if ((st = check_out(out, what)) != KILN_OK) return st;

    ew_args a;
    memset(&a, 0, sizeof a);
    kc_view bv[KC_EW_MAX_IN];
    const kc_view *ops[KC_MAX_OPS];
    ops[0] = out;
    for (int k = 0; k < p->n_in; k++) {
        if (!is_float_dt(in[k].dt))
            return kiln_fail(KILN_ERR_UNSUPPORTED, "%s: input %d has dtype %s (f32, f16 or bf16 only)", what, k,
                             kiln_dtype_name(in[k].dt));
        if (!in[k].p) return kiln_fail(KILN_ERR_INTERNAL, "%s: input %d is not on the device", what, k);
        if ((st = check_bcast(&in[k], out, what, k)) != KILN_OK) return st;
        kc_view_broadcast(&in[k], out->rank, out->d, &bv[k]);
        ops[k + 1] = &bv[k];
        a.in[k] = in[k].p;
        a.in_dt[k] = in[k].dt;
    }
    ew_walk w;
    if ((st = walk_plan(1 + p->n_in, ops, EW_VEC, &w)) != KILN_OK) return st;
    a.it = w.it;
    a.prog = *p;
    a.out = out->p;
    switch (out->dt) {
    case KILN_F16: ew_launch<__half>(w, a, s); break;
    case KILN_BF16: ew_launch<__nv_bfloat16>(w, a, s); break;
    default: ew_launch<float>(w, a, s); break;
    }
    return kc_check_launch("kc_ew_run");
}

// ---------------------------------------------------------------- conv epilogue
//
// y = act(y + bias[channel] + z) in place, for the epilogue of convs whose
// library call could not fuse it. The general program above walks strides
// with a division per operand and interprets its instructions per element;
// on the dense layouts convs write (NCHW, NHWC) the channel of element i is
// (i / inner) % K, one division per vector of 16 bytes, and the kernel
// runs at memory speed.
namespace {

template <typename T> struct vec16 {
    static constexpr int n = 16 / sizeof(T);
    union {
        uint4 raw;
        T e[16 / sizeof(T)];
    };
};

// MODE 0: one element per step, any inner; 1: channels last (inner 1,
// K % V == 0), the vector's channels are ch0 .. ch0+V-1; 2: channel-major
// (inner % V == 0), the vector is one channel. Element i (in the dense
// order of the layout) lives at (i / row) * pitch + i % row: row == n for
// a dense y; a concat input written in place is rows of `row` elements
// (the channels of a pixel, or one image) `pitch` apart.
template <typename T, int MODE, bool ROWS, typename IndexT>
__global__ void __launch_bounds__(EW_BLOCK) bias_act_kernel(T *y, const T *z, const void *bias, int bias_dt, IndexT n,
                                                            IndexT inner, IndexT K, IndexT row, IndexT ypitch,
                                                            IndexT zpitch, int act, float a, float b)
{
    constexpr int V = MODE == 0 ? 1 : vec16<T>::n;
    const IndexT steps = n / V, stride = (IndexT)gridDim.x * EW_BLOCK;
    for (IndexT v = (IndexT)(blockIdx.x * EW_BLOCK + threadIdx.x); v < steps; v += stride) {
        const IndexT i0 = v * V;
        const IndexT ch0 = (i0 / inner) % K;
        // dense (ROWS false): one division less per vector
        const IndexT r0 = ROWS ? i0 / row : 0, c0 = i0 - r0 * row;
        const IndexT yo = ROWS ? r0 * ypitch + c0 : i0, zo = ROWS ? r0 * zpitch + c0 : i0;
        float r[V];
        if (MODE == 0) {
            r[0] = kc_f32(y[yo]);
            if (z) r[0] += kc_f32(z[zo]);
        } else {
            vec16<T> ry;
            ry.raw = *reinterpret_cast<const uint4 *>(y + yo);
#pragma unroll
            for (int j = 0; j < V; j++) r[j] = kc_f32(ry.e[j]);
            if (z) {
                vec16<T> rz;
                rz.raw = *reinterpret_cast<const uint4 *>(z + zo);
#pragma unroll
                for (int j = 0; j < V; j++) r[j] += kc_f32(rz.e[j]);
            }
        }
        if (bias) {
#pragma unroll
            for (int j = 0; j < V; j++) r[j] += load_float(bias, bias_dt, MODE == 1 ? ch0 + j : ch0);
        }
#pragma unroll
        for (int j = 0; j < V; j++) r[j] = kc_act_apply(r[j], act, a, b);
        if (MODE == 0) {
            y[yo] = kc_from_f32<T>(r[0]);
        } else {
            vec16<T> ro;
#pragma unroll
            for (int j = 0; j < V; j++) ro.e[j] = kc_from_f32<T>(r[j]);
            *reinterpret_cast<uint4 *>(y + yo) = ro.raw;
        }
    }
}

// The rows of a view in the dense order of layout `cl`: dense (row = n,
// pitch = n), or rows of `row` elements `pitch` apart, the outer axes
// (the pixels' for channels last, the batch for NCHW) one pitch per step.
bool view_rows(const kc_view *v, bool cl, int64_t n, int64_t *row, int64_t *pitch)
{
    if (kc_view_is_dense(v, cl)) {
        *row = *pitch = n;
        return true;
    }
    const int r = v->rank;
    if (cl) {
        // channels innermost, then the spatial axes from the last, then the batch
        if (v->d[1] > 1 && v->s[1] != 1) return false;
        *row = v->d[1];
        int64_t p = -1, span = 1;
        for (int k = r; k >= 2; k--) {
            const int ax = k == 2 ? 0 : k - 1;
            if (v->d[ax] == 1) continue;
            if (p < 0) p = v->s[ax];
            if (v->s[ax] != p * span) return false;
            span *= v->d[ax];
        }
        *pitch = p < 0 ? *row : p;
    } else {
        // one image dense, the batch `pitch` apart
        int64_t span = 1;
        for (int k = r - 1; k >= 1; k--) {
            if (v->d[k] != 1 && v->s[k] != span) return false;
            span *= v->d[k];
        }
        *row = span;
        *pitch = v->d[0] > 1 ? v->s[0] : span;
    }
    return *pitch >= *row;
}

template <typename T, int MODE, bool ROWS, typename IndexT>
static void bias_act_launch(const kc_view *y, const kc_view *bias, const kc_view *z, int64_t n, int64_t inner,
                            int64_t K, int64_t row, int64_t ypitch, int64_t zpitch, int act, float a, float b,
                            cudaStream_t s)
{
    constexpr int V = MODE == 0 ? 1 : vec16<T>::n;
    int64_t blocks = (n / V + EW_BLOCK - 1) / EW_BLOCK;
    unsigned grid = (unsigned)(blocks < EW_MAX_GRID ? (blocks > 0 ? blocks : 1) : EW_MAX_GRID);
    bias_act_kernel<T, MODE, ROWS, IndexT><<<grid, EW_BLOCK, 0, s>>>(
        static_cast<T *>(y->p), z && z->p ? static_cast<const T *>(z->p) : nullptr, bias && bias->p ? bias->p : nullptr,
        bias && bias->p ? (int)bias->dt : (int)KILN_F32, (IndexT)n, (IndexT)inner, (IndexT)K, (IndexT)row,
        (IndexT)ypitch, (IndexT)zpitch, act, a, b);
}

} // namespace

extern "C" kiln_status kc_bias_act(const kc_view *y, const kc_view *bias, const kc_view *z, int act, float a, float b,
                                   cudaStream_t s)
{
    if (!is_float_dt(y->dt) || y->rank < 2 || y->rank > KILN_MAX_RANK || !y->p)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "conv epilogue: output of rank %d, %s", y->rank, kiln_dtype_name(y->dt));
    const int64_t n = kc_view_numel(y), K = y->d[1];
    if (n == 0) return KILN_OK;
    /* dense in both orders (1x1 spatial, or K == 1): either reads the same;
     * not dense: a concat input written in place, rows a pitch apart */
    const bool cl = kc_view_is_dense(y, true) || (!kc_view_is_dense(y, false) && y->d[1] > 1 && y->s[1] == 1);
    int64_t row, ypitch, zpitch = 0;
    if (!view_rows(y, cl, n, &row, &ypitch))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "conv epilogue: output neither NCHW nor NHWC rows");
    if (z && z->p) {
        if (z->dt != y->dt || z->rank != y->rank) return kiln_fail(KILN_ERR_UNSUPPORTED, "conv epilogue: residual");
        int64_t zrow;
        for (int k = 0; k < y->rank; k++)
            if (z->d[k] != y->d[k]) return kiln_fail(KILN_ERR_UNSUPPORTED, "conv epilogue: residual of other dims");
        if (!view_rows(z, cl, n, &zrow, &zpitch))
            return kiln_fail(KILN_ERR_UNSUPPORTED, "conv epilogue: residual of another layout");
        if (zrow == n && zpitch == n)
            zpitch = row; /* dense: y's rows back to back */
        else if (zrow != row)
            return kiln_fail(KILN_ERR_UNSUPPORTED, "conv epilogue: residual rows unlike the output's");
    }
    if (bias && bias->p && (!is_float_dt(bias->dt) || bias->rank != 1 || bias->d[0] != K || (K > 1 && bias->s[0] != 1)))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "conv epilogue: bias not a dense [K]");
    int64_t inner = cl ? 1 : n / (y->d[0] * K);
    const bool i32 = n <= INT32_MAX - (int64_t)EW_MAX_GRID * EW_BLOCK && (n / row + 1) * (ypitch > zpitch ? ypitch : zpitch) <= INT32_MAX;
    return kc::with_float(y->dt, [&](auto t) {
        using T = typename decltype(t)::type;
        constexpr int V = vec16<T>::n;
        uintptr_t align = (uintptr_t)y->p | (z && z->p ? (uintptr_t)z->p : 0);
        bool vec = align % 16 == 0 && (cl ? K % V == 0 : inner % V == 0) && row % V == 0 && ypitch % V == 0 &&
                   zpitch % V == 0;
        int mode = vec ? (cl ? 1 : 2) : 0;
        const bool rows = row != n || ypitch != n || (z && z->p && zpitch != n);
#define KC_BA(M, R)                                                                                               \
    (i32 ? bias_act_launch<T, M, R, int32_t>(y, bias, z, n, inner, K, row, ypitch, zpitch, act, a, b, s)          \
         : bias_act_launch<T, M, R, int64_t>(y, bias, z, n, inner, K, row, ypitch, zpitch, act, a, b, s))
        if (mode == 1) rows ? KC_BA(1, true) : KC_BA(1, false);
        else if (mode == 2) rows ? KC_BA(2, true) : KC_BA(2, false);
        else rows ? KC_BA(0, true) : KC_BA(0, false);
#undef KC_BA
        return kc_check_launch("conv epilogue");
    });
}
