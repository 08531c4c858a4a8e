// Variadic elementwise kernels of the cuda backend: Sum, Mean, Max, Min
// (1..N inputs, numpy broadcasting) and Mod (two inputs), with the
// semantics of the reference kernels (src/ref/variadic.c).
//
// Floats compute in f32 on f32/f16/bf16 views (each input read in its own
// dtype), integers in i64 (Max, Min and Mod on i8/u8/i32/i64). The kernel
// walks the output with kc_iter (inputs broadcast by stride 0) in a
// grid-stride loop; any strides, so NCHW and NHWC inputs alike. A walk has
// at most KC_MAX_OPS operands: a node of more inputs runs in passes, each
// after the first folding the output so far with the next inputs.
// Max and Min propagate NaN (numpy's maximum / minimum, as the ref).
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <type_traits>

#include "cuda/kc_device.cuh"

namespace {

constexpr int VAR_BLOCK = 256;
constexpr int VAR_MAX_GRID = 8192;
constexpr int VAR_MAX_IN = KC_MAX_OPS - 1; // inputs of one pass

enum var_op { V_SUM, V_MEAN, V_MAX, V_MIN, V_MOD, V_FMOD };

struct var_args {
    kc_iter it;
    void *out;
    const void *in[VAR_MAX_IN];
    int in_dt[VAR_MAX_IN];
    int n_in;
    int op;
    float div; // Mean's last pass: the number of inputs; 0: none
};
static_assert(sizeof(var_args) <= 4000, "var_args must fit the kernel parameter space");

bool is_int_dt(kiln_dtype t) { return t == KILN_I64 || t == KILN_I32 || t == KILN_I8 || t == KILN_U8; }

template <typename IndexT> __device__ __forceinline__ float load_float(const void *p, int dt, IndexT off)
{
    if (dt == KILN_F16) return __half2float(static_cast<const __half *>(p)[off]);
    if (dt == KILN_BF16) return __bfloat162float(static_cast<const __nv_bfloat16 *>(p)[off]);
    return static_cast<const float *>(p)[off];
}

template <typename IndexT> __device__ __forceinline__ int64_t load_int(const void *p, int dt, IndexT off)
{
    switch (dt) {
    case KILN_I32: return static_cast<const int32_t *>(p)[off];
    case KILN_I8: return static_cast<const int8_t *>(p)[off];
    case KILN_U8: return static_cast<const uint8_t *>(p)[off];
    default: return static_cast<const int64_t *>(p)[off];
    }
}

template <typename C> __device__ __forceinline__ C load_as(const void *p, int dt, int64_t off)
{
    if constexpr (std::is_same<C, int64_t>::value)
        return load_int(p, dt, off);
    else
        return load_float(p, dt, off);
}

// NaN wins (x != x), as numpy's maximum / minimum
template <typename C> __device__ __forceinline__ C vmax(C x, C z) { return x != x || x > z ? x : z; }
template <typename C> __device__ __forceinline__ C vmin(C x, C z) { return x != x || x < z ? x : z; }

// Mod of integers: fmod 0 takes the divisor's sign (Python's %), fmod 1
// the dividend's (C's %). A zero divisor, which the ref refuses, gives 0.
__device__ __forceinline__ int64_t mod_int(int64_t x, int64_t z, bool py)
{
    if (z == 0 || z == -1) return 0; // INT64_MIN % -1 overflows
    int64_t r = x % z;
    if (py && r != 0 && ((r < 0) != (z < 0))) r += z;
    return r;
}

template <typename C> __device__ __forceinline__ C combine(int op, C x, C z)
{
    if constexpr (std::is_same<C, int64_t>::value) {
        switch (op) {
        case V_MAX: return vmax(x, z);
        case V_MIN: return vmin(x, z);
        case V_MOD: return mod_int(x, z, true);
        case V_FMOD: return mod_int(x, z, false);
        default: return (int64_t)((uint64_t)x + (uint64_t)z);
        }
    } else {
        switch (op) {
        case V_MAX: return vmax(x, z);
        case V_MIN: return vmin(x, z);
        case V_MOD: case V_FMOD: return fmodf(x, z); // exact: the f32 value of the ref's f64 fmod
        default: return x + z;
        }
    }
}

// C: compute type (float or int64_t); TO: the output's storage type.
template <typename C, typename TO, typename IndexT, int NOPS>
__global__ void __launch_bounds__(VAR_BLOCK) var_kernel(const __grid_constant__ var_args a)
{
    const IndexT n = (IndexT)a.it.n, step = (IndexT)gridDim.x * VAR_BLOCK;
    for (IndexT i = (IndexT)(blockIdx.x * VAR_BLOCK + threadIdx.x); i < n; i += step) {
        IndexT off[NOPS];
        if (a.it.rank == 1) {
#pragma unroll
            for (int j = 0; j < NOPS; j++) off[j] = i * (IndexT)a.it.s[j][0];
        } else {
            kc_iter_offsets<IndexT, NOPS>(a.it, i, off);
        }
        C r = load_as<C>(a.in[0], a.in_dt[0], off[1]);
#pragma unroll
        for (int j = 1; j < NOPS - 1; j++)
            if (j < a.n_in) r = combine<C>(a.op, r, load_as<C>(a.in[j], a.in_dt[j], off[j + 1]));
        if constexpr (std::is_same<C, int64_t>::value) {
            static_cast<TO *>(a.out)[off[0]] = (TO)(uint64_t)r;
        } else {
            if (a.div != 0.f) r = r / a.div;
            static_cast<TO *>(a.out)[off[0]] = kc_from_f32<TO>(r);
        }
    }
}

bool walk_fits_i32(const kc_iter &it)
{
    const double lim = (double)INT32_MAX - (double)VAR_MAX_GRID * VAR_BLOCK;
    if ((double)it.n > lim) return false;
    for (int j = 0; j < it.n_ops; j++) {
        double span = 0;
        for (int k = 0; k < it.rank; k++)
            if (it.d[k] > 0) span += (double)(it.d[k] - 1) * fabs((double)it.s[j][k]);
        if (span > lim) return false;
    }
    return true;
}

template <typename C, typename TO, int NOPS> void var_launch3(const var_args &a, unsigned grid, bool i32, cudaStream_t s)
{
    if (i32)
        var_kernel<C, TO, int32_t, NOPS><<<grid, VAR_BLOCK, 0, s>>>(a);
    else
        var_kernel<C, TO, int64_t, NOPS><<<grid, VAR_BLOCK, 0, s>>>(a);
}

// two inputs (the usual Max(a, b), Mod) walk three operands; more, all nine
template <typename C, typename TO> void var_launch(const var_args &a, unsigned grid, bool i32, cudaStream_t s)
{
    if (a.n_in <= 2)
        var_launch3<C, TO, 3>(a, grid, i32, s);
    else
        var_launch3<C, TO, KC_MAX_OPS>(a, grid, i32, s);
}

const char *dims_str(const kc_view *v, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int j = 0; j < v->rank && k < n; j++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", j ? "," : "", (long long)v->d[j]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

kiln_status node_fail(const kc_launch *L, kiln_status st)
{
    return st == KILN_OK ? st : kiln_fail_prefix(st, "%s '%s': ", L->n->op_type, L->n->name);
}

// One pass: out = fold of views[0..n_views) (each broadcast to out), then
// divided by div when it is not 0.
kiln_status var_pass(const kc_launch *L, int op, const kc_view *const *views, int n_views, float div, bool ints)
{
    const kc_view *out = &L->out[0];
    var_args a;
    memset(&a, 0, sizeof a);
    kc_view bv[VAR_MAX_IN];
    const kc_view *ops[KC_MAX_OPS];
    ops[0] = out;
    for (int k = 0; k < n_views; k++) {
        kc_view_broadcast(views[k], out->rank, out->d, &bv[k]);
        ops[k + 1] = &bv[k];
        a.in[k] = views[k]->p;
        a.in_dt[k] = views[k]->dt;
    }
    kiln_status st = kc_iter_make(1 + n_views, ops, &a.it);
    if (st != KILN_OK) return node_fail(L, st);
    a.out = out->p;
    a.n_in = n_views;
    a.op = op;
    a.div = div;
    int64_t blocks = (a.it.n + VAR_BLOCK - 1) / VAR_BLOCK;
    unsigned grid = (unsigned)(blocks < VAR_MAX_GRID ? (blocks > 0 ? blocks : 1) : VAR_MAX_GRID);
    const bool i32 = walk_fits_i32(a.it);
    cudaStream_t s = L->stream;
    if (ints) {
        switch (out->dt) {
        case KILN_I64: var_launch<int64_t, int64_t>(a, grid, i32, s); break;
        case KILN_I32: var_launch<int64_t, int32_t>(a, grid, i32, s); break;
        case KILN_I8: var_launch<int64_t, int8_t>(a, grid, i32, s); break;
        default: var_launch<int64_t, uint8_t>(a, grid, i32, s); break;
        }
    } else {
        switch (out->dt) {
        case KILN_F16: var_launch<float, __half>(a, grid, i32, s); break;
        case KILN_BF16: var_launch<float, __nv_bfloat16>(a, grid, i32, s); break;
        default: var_launch<float, float>(a, grid, i32, s); break;
        }
    }
    return node_fail(L, kc_check_launch("var_kernel"));
}

kiln_status var_run(const kc_launch *L, int op)
{
    const kiln_node *n = L->n;
    if (L->n_out < 1 || kc_view_numel(&L->out[0]) == 0) return KILN_OK;
    const kc_view *out = &L->out[0];
    if (!out->p || out->rank < 0 || out->rank > KILN_MAX_RANK)
        return node_fail(L, kiln_fail(KILN_ERR_INTERNAL, "the output is not on the device"));
    const bool ints = is_int_dt(out->dt);
    if (!kc::is_float_dt(out->dt) && !(ints && op != V_SUM && op != V_MEAN))
        return node_fail(L, kiln_fail(KILN_ERR_UNSUPPORTED, "dtype %s is not supported by the cuda backend",
                                      kiln_dtype_name(out->dt)));
    if (L->n_in < 1) return node_fail(L, kiln_fail(KILN_ERR_INTERNAL, "no inputs"));
    for (int k = 0; k < L->n_in; k++) {
        const kc_view *v = &L->in[k];
        if (!v->p) return node_fail(L, kiln_fail(KILN_ERR_INTERNAL, "input %d is not on the device", k));
        if (ints ? !is_int_dt(v->dt) : !kc::is_float_dt(v->dt))
            return node_fail(L, kiln_fail(KILN_ERR_UNSUPPORTED, "input %d of dtype %s into %s is not supported", k,
                                          kiln_dtype_name(v->dt), kiln_dtype_name(out->dt)));
        bool ok = v->rank >= 0 && v->rank <= out->rank;
        for (int j = 0; ok && j < v->rank; j++) {
            int64_t d = v->d[j], o = out->d[out->rank - v->rank + j];
            ok = d == 1 || d == o;
        }
        if (!ok) {
            char a[160], b[160];
            return node_fail(L, kiln_fail(KILN_ERR_SHAPE, "input %d %s does not broadcast to the output %s", k,
                                          dims_str(v, a, sizeof a), dims_str(out, b, sizeof b)));
        }
    }
    if (op == V_MOD && n->params.mod.fmod) op = V_FMOD;
    if (op == V_MOD && !ints)
        return node_fail(L, kiln_fail(KILN_ERR_UNSUPPORTED, "Mod of floats needs fmod=1 (ONNX)"));
    // passes: the first takes up to VAR_MAX_IN inputs, each later one the
    // output so far and up to VAR_MAX_IN - 1 more
    int done = 0;
    while (done < L->n_in) {
        const kc_view *views[VAR_MAX_IN];
        int nv = 0;
        if (done > 0) views[nv++] = out;
        while (nv < VAR_MAX_IN && done < L->n_in) views[nv++] = &L->in[done++];
        const float div = op == V_MEAN && done == L->n_in ? (float)L->n_in : 0.f;
        kiln_status st = var_pass(L, op, views, nv, div, ints);
        if (st != KILN_OK) return st;
    }
    return KILN_OK;
}

} // namespace

extern "C" kiln_status kiln_cuda_Sum(const kc_launch *L) { return var_run(L, V_SUM); }
extern "C" kiln_status kiln_cuda_Mean(const kc_launch *L) { return var_run(L, V_MEAN); }
extern "C" kiln_status kiln_cuda_Max(const kc_launch *L) { return var_run(L, V_MAX); }
extern "C" kiln_status kiln_cuda_Min(const kc_launch *L) { return var_run(L, V_MIN); }
extern "C" kiln_status kiln_cuda_Mod(const kc_launch *L) { return var_run(L, V_MOD); }
