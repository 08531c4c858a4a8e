// Elementwise ops of the cuda backend: the float unary/binary ops (built
// as programs for kc_ew_run, in ew_program.cu), and the few kernels that
// are not float arithmetic: integer arithmetic, comparisons and logic,
// Where, and the copies (Cast, Identity, Dropout) that go through kc_copy.
//
// Every kernel walks its output with kc_iter (inputs numpy-broadcast to the
// output by stride 0, ONNX Broadcasting.md) in a grid-stride loop. Index
// math is 32-bit whenever every operand's offsets fit, and a walk that
// merged into one dim (dense tensors of equal dims, or a scalar operand)
// computes offsets as i * stride with no division.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <type_traits>
#include "cuda/ew_walk.cuh"

namespace {

// ---------------------------------------------------------------- op plumbing

// The node's input i as the ONNX value (host data of constants), or NULL.
static const kiln_value *host_in(const kc_launch *L, int i)
{
    return i < L->n->n_inputs && L->n->inputs[i] >= 0 ? &L->v[L->n->inputs[i]] : NULL;
}

static bool dev_in(const kc_launch *L, int i) { return i < L->n_in && L->in[i].p; }

static kiln_status unsupported(const kc_launch *L, kiln_dtype dt)
{
    return kiln_fail(KILN_ERR_UNSUPPORTED, "%s '%s': dtype %s is not supported by the cuda backend", L->n->op_type,
                     L->n->name, kiln_dtype_name(dt));
}

// Puts the node's name in front of a failure from below.
static kiln_status node_status(const kc_launch *L, kiln_status st)
{
    if (st == KILN_OK) return st;
    return kiln_fail_prefix(st, "%s '%s': ", L->n->op_type, L->n->name);
}

// True when output 0 has no elements: nothing to do (its buffer, and the
// inputs', may be NULL).
static bool out_empty(const kc_launch *L)
{
    return L->n_out < 1 || kc_view_numel(&L->out[0]) == 0;
}

// A program under construction for one node, with the views it loads.
struct ew_build {
    kc_ew_prog p;
    kc_view in[KC_EW_MAX_IN];
};

static void eb_init(ew_build *b)
{
    memset(b, 0, sizeof *b);
}

static void eb_ins(ew_build *b, int op, int dst, int a, int bb, int act = 0, float p0 = 0.f, float p1 = 0.f)
{
    kc_ew_ins *q = &b->p.ins[b->p.n_ins++];
    q->op = (uint8_t)op;
    q->dst = (uint8_t)dst;
    q->a = (uint8_t)a;
    q->b = (uint8_t)bb;
    q->act = (uint8_t)act;
    q->p0 = p0;
    q->p1 = p1;
    b->p.result = dst;
}

// r[dst] = node input i: loaded from its device view, or an immediate when
// the value is a scalar that lives on the host only.
static kiln_status eb_operand(ew_build *b, const kc_launch *L, int i, int dst)
{
    const kiln_value *hv = host_in(L, i);
    if (dev_in(L, i)) {
        if (!is_float_dt(L->in[i].dt)) return unsupported(L, L->in[i].dt);
        b->in[b->p.n_in] = L->in[i];
        eb_ins(b, KC_EW_LOAD, dst, b->p.n_in++, 0);
        return KILN_OK;
    }
    if (hv && hv->data && kiln_shape_numel(&hv->shape) == 1) {
        eb_ins(b, KC_EW_IMM, dst, 0, 0, 0, (float)kiln_load_f64(hv->dtype, hv->data, 0));
        return KILN_OK;
    }
    return kiln_fail(KILN_ERR_INTERNAL, "%s '%s': input %d is not on the device", L->n->op_type, L->n->name, i);
}

static kiln_status eb_run(const ew_build *b, const kc_launch *L)
{
    return node_status(L, kc_ew_run(&b->p, b->in, &L->out[0], L->stream));
}

// y = op(x) (op an opcode of one operand; KC_EW_ACT with act, p0, p1)
static kiln_status float_unary(const kc_launch *L, int op, int act, float p0, float p1)
{
    ew_build b;
    eb_init(&b);
    kiln_status st = eb_operand(&b, L, 0, 0);
    if (st != KILN_OK) return st;
    eb_ins(&b, op, 1, 0, 0, act, p0, p1);
    return eb_run(&b, L);
}

static kiln_status float_binary(const kc_launch *L, int op)
{
    ew_build b;
    eb_init(&b);
    kiln_status st = eb_operand(&b, L, 0, 0);
    if (st == KILN_OK) st = eb_operand(&b, L, 1, 1);
    if (st != KILN_OK) return st;
    eb_ins(&b, op, 2, 0, 1);
    return eb_run(&b, L);
}

// ---------------------------------------------------------------- integer arithmetic

// Computed in i64 with two's-complement wrap-around (through uint64: signed
// overflow is undefined), then narrowed to the output dtype by dropping
// high bits: i32/i8/u8 arithmetic modulo 2^bits, as the ref, numpy and
// onnxruntime do.
enum int_op { I_ADD, I_SUB, I_MUL, I_DIV, I_POW, I_PRELU, I_NEG, I_ABS, I_RELU, I_CLIP };

struct int_args {
    kc_iter it;
    void *out;
    const void *in[2];
    int in_dt[2];
    int op;
    int64_t lo, hi; // Clip
};
static_assert(sizeof(int_args) <= 4000, "int_args must fit the kernel parameter space");

__device__ __forceinline__ int64_t wrap_add(int64_t x, int64_t z) { return (int64_t)((uint64_t)x + (uint64_t)z); }
__device__ __forceinline__ int64_t wrap_sub(int64_t x, int64_t z) { return (int64_t)((uint64_t)x - (uint64_t)z); }
__device__ __forceinline__ int64_t wrap_mul(int64_t x, int64_t z) { return (int64_t)((uint64_t)x * (uint64_t)z); }

// C division, truncating toward zero (onnxruntime; numpy's // floors). The
// ref fails the run on a zero divisor; a kernel cannot, and writes 0 as the
// ref's buffer holds.
__device__ __forceinline__ int64_t int_div(int64_t x, int64_t z)
{
    if (z == 0) return 0;
    return z == -1 ? wrap_sub(0, x) : x / z; // INT64_MIN / -1 wraps
}

// x^e as the ref: by squaring for e >= 0; 1 / x^-e truncated for e < 0
// (0 for 0^-e, which the ref refuses as bad data)
__device__ __forceinline__ int64_t int_pow(int64_t x, int64_t e)
{
    if (e < 0) {
        if (x == 1) return 1;
        if (x == -1) return (e & 1) ? -1 : 1;
        return 0;
    }
    int64_t r = 1;
    while (e) {
        if (e & 1) r = wrap_mul(r, x);
        x = wrap_mul(x, x);
        e >>= 1;
    }
    return r;
}

template <typename T, typename IndexT, bool FLAT>
__global__ void __launch_bounds__(EW_BLOCK) int_kernel(const __grid_constant__ int_args a)
{
    const bool binary = a.op < I_NEG;
    WALK_LOOP(i, a.it)
    {
        IndexT off[3];
        walk_offsets<IndexT, FLAT, 3>(a.it, i, off);
        const int64_t x = load_int(a.in[0], a.in_dt[0], off[1]);
        const int64_t z = binary ? load_int(a.in[1], a.in_dt[1], off[2]) : 0;
        int64_t y;
        switch (a.op) {
        case I_ADD: y = wrap_add(x, z); break;
        case I_SUB: y = wrap_sub(x, z); break;
        case I_MUL: y = wrap_mul(x, z); break;
        case I_DIV: y = int_div(x, z); break;
        case I_POW: y = int_pow(x, z); break;
        case I_PRELU: y = x < 0 ? wrap_mul(x, z) : x; break;
        case I_NEG: y = wrap_sub(0, x); break;
        case I_ABS: y = x < 0 ? wrap_sub(0, x) : x; break;
        case I_RELU: y = x < 0 ? 0 : x; break;
        // Clip-13: with min > max every element becomes max
        default: y = x < a.lo ? (a.lo > a.hi ? a.hi : a.lo) : x > a.hi ? a.hi : x; break;
        }
        static_cast<T *>(a.out)[off[0]] = (T)(uint64_t)y;
    }
}

template <typename T> static void int_launch(const ew_walk &w, const int_args &a, cudaStream_t s)
{
    walk_dispatch(w, [&](auto idx, auto flat) {
        int_kernel<T, decltype(idx), decltype(flat)::value><<<w.grid, EW_BLOCK, 0, s>>>(a);
    });
}

// The walk over output `out` of node inputs 0..n_in-1 (at most 2), each
// broadcast to it: their pointers and dtypes into in / in_dt. Errors carry
// the node (node_status).
static kiln_status walk_inputs(const kc_launch *L, int n_in, const kc_view *out, const void **in, int *in_dt,
                               ew_walk *w)
{
    kc_view bv[2];
    const kc_view *ops[3] = {out, NULL, NULL};
    for (int k = 0; k < n_in; k++) {
        const kc_view *v = &L->in[k];
        kiln_status st = check_bcast(v, out, L->n->op_type, k);
        if (st != KILN_OK) return node_status(L, st);
        kc_view_broadcast(v, out->rank, out->d, &bv[k]);
        ops[k + 1] = &bv[k];
        in[k] = v->p;
        in_dt[k] = v->dt;
    }
    kiln_status st = walk_plan(1 + n_in, ops, 1, w);
    return st == KILN_OK ? KILN_OK : node_status(L, st);
}

// Integer op on node inputs 0 (and 1 for binary ops), any integer dtypes,
// broadcast to output 0.
static kiln_status int_run(const kc_launch *L, int op, int64_t lo, int64_t hi)
{
    const kc_view *out = &L->out[0];
    const int n_in = op < I_NEG ? 2 : 1;
    kiln_status st = check_out(out, L->n->op_type);
    if (st != KILN_OK) return node_status(L, st);
    int_args a;
    memset(&a, 0, sizeof a);
    for (int k = 0; k < n_in; k++) {
        if (!dev_in(L, k)) return node_status(L, kiln_fail(KILN_ERR_INTERNAL, "input %d is not on the device", k));
        if (!is_int_dt(L->in[k].dt)) return unsupported(L, L->in[k].dt);
    }
    ew_walk w;
    if ((st = walk_inputs(L, n_in, out, a.in, a.in_dt, &w)) != KILN_OK) return st;
    a.it = w.it;
    a.out = out->p;
    a.op = op;
    a.lo = lo;
    a.hi = hi;
    switch (out->dt) {
    case KILN_I64: int_launch<int64_t>(w, a, L->stream); break;
    case KILN_I32: int_launch<int32_t>(w, a, L->stream); break;
    case KILN_I8: int_launch<int8_t>(w, a, L->stream); break;
    case KILN_U8: int_launch<uint8_t>(w, a, L->stream); break;
    default: return unsupported(L, out->dt);
    }
    return node_status(L, kc_check_launch("int_kernel"));
}

// ---------------------------------------------------------------- float ops, routed by the output's dtype

// int_op < 0: the op has no integer form
static kiln_status unary_op(const kc_launch *L, int ew_op, int act, float p0, float p1, int int_op)
{
    if (out_empty(L)) return KILN_OK;
    kiln_dtype dt = L->out[0].dt;
    if (is_float_dt(dt)) return float_unary(L, ew_op, act, p0, p1);
    if (int_op >= 0 && is_int_dt(dt)) return int_run(L, int_op, INT64_MIN, INT64_MAX);
    return unsupported(L, dt);
}

static kiln_status binary_op(const kc_launch *L, int ew_op, int int_op)
{
    if (out_empty(L)) return KILN_OK;
    kiln_dtype dt = L->out[0].dt;
    if (is_float_dt(dt)) return float_binary(L, ew_op);
    if (int_op >= 0 && is_int_dt(dt)) return int_run(L, int_op, 0, 0);
    return unsupported(L, dt);
}

static kiln_status act_op(const kc_launch *L, kc_act act, float p0, float p1, int int_op)
{
    return unary_op(L, KC_EW_ACT, act, p0, p1, int_op);
}

} // namespace

extern "C" kiln_status kiln_cuda_Relu(const kc_launch *L) { return act_op(L, KC_ACT_RELU, 0.f, 0.f, I_RELU); }
extern "C" kiln_status kiln_cuda_Sigmoid(const kc_launch *L) { return act_op(L, KC_ACT_SIGMOID, 0.f, 0.f, -1); }
extern "C" kiln_status kiln_cuda_HardSwish(const kc_launch *L) { return act_op(L, KC_ACT_HARDSWISH, 0.f, 0.f, -1); }
extern "C" kiln_status kiln_cuda_Tanh(const kc_launch *L) { return act_op(L, KC_ACT_TANH, 0.f, 0.f, -1); }

extern "C" kiln_status kiln_cuda_LeakyRelu(const kc_launch *L)
{
    return act_op(L, KC_ACT_LEAKY, L->n->params.act.alpha, 0.f, -1);
}

extern "C" kiln_status kiln_cuda_HardSigmoid(const kc_launch *L)
{
    return act_op(L, KC_ACT_HARDSIGMOID, L->n->params.act.alpha, L->n->params.act.beta, -1);
}

extern "C" kiln_status kiln_cuda_Gelu(const kc_launch *L)
{
    // approximate: none or tanh (the parser refuses anything else)
    bool tanh_ = L->n->params.gelu.approximate == KILN_GELU_TANH;
    return act_op(L, tanh_ ? KC_ACT_GELU_TANH : KC_ACT_GELU, 0.f, 0.f, -1);
}

extern "C" kiln_status kiln_cuda_Erf(const kc_launch *L) { return unary_op(L, KC_EW_ERF, 0, 0.f, 0.f, -1); }
extern "C" kiln_status kiln_cuda_Sqrt(const kc_launch *L) { return unary_op(L, KC_EW_SQRT, 0, 0.f, 0.f, -1); }
extern "C" kiln_status kiln_cuda_Exp(const kc_launch *L) { return unary_op(L, KC_EW_EXP, 0, 0.f, 0.f, -1); }
extern "C" kiln_status kiln_cuda_Log(const kc_launch *L) { return unary_op(L, KC_EW_LOG, 0, 0.f, 0.f, -1); }
extern "C" kiln_status kiln_cuda_Neg(const kc_launch *L) { return unary_op(L, KC_EW_NEG, 0, 0.f, 0.f, I_NEG); }
extern "C" kiln_status kiln_cuda_Abs(const kc_launch *L) { return unary_op(L, KC_EW_ABS, 0, 0.f, 0.f, I_ABS); }
extern "C" kiln_status kiln_cuda_Reciprocal(const kc_launch *L) { return unary_op(L, KC_EW_RECIP, 0, 0.f, 0.f, -1); }
extern "C" kiln_status kiln_cuda_Floor(const kc_launch *L) { return unary_op(L, KC_EW_FLOOR, 0, 0.f, 0.f, -1); }
extern "C" kiln_status kiln_cuda_Ceil(const kc_launch *L) { return unary_op(L, KC_EW_CEIL, 0, 0.f, 0.f, -1); }
extern "C" kiln_status kiln_cuda_Round(const kc_launch *L) { return unary_op(L, KC_EW_ROUND, 0, 0.f, 0.f, -1); }

extern "C" kiln_status kiln_cuda_Add(const kc_launch *L) { return binary_op(L, KC_EW_ADD, I_ADD); }
extern "C" kiln_status kiln_cuda_Sub(const kc_launch *L) { return binary_op(L, KC_EW_SUB, I_SUB); }
extern "C" kiln_status kiln_cuda_Mul(const kc_launch *L) { return binary_op(L, KC_EW_MUL, I_MUL); }
extern "C" kiln_status kiln_cuda_Div(const kc_launch *L) { return binary_op(L, KC_EW_DIV, I_DIV); }
// PRelu-16: the slope broadcasts one way, into X's shape, which is Y's.
extern "C" kiln_status kiln_cuda_PRelu(const kc_launch *L) { return binary_op(L, KC_EW_PRELU, I_PRELU); }

// Pow-15: the exponent may have another dtype than the base. A scalar
// exponent known on the host (the usual x^2, x^0.5) becomes an immediate,
// whatever its dtype; an integer base needs an integer exponent.
extern "C" kiln_status kiln_cuda_Pow(const kc_launch *L)
{
    if (out_empty(L)) return KILN_OK;
    kiln_dtype dt = L->out[0].dt;
    if (is_float_dt(dt)) {
        const kiln_value *e = host_in(L, 1);
        if (!(e && e->data && kiln_shape_numel(&e->shape) == 1)) return float_binary(L, KC_EW_POW);
        ew_build b;
        eb_init(&b);
        kiln_status st = eb_operand(&b, L, 0, 0);
        if (st != KILN_OK) return st;
        eb_ins(&b, KC_EW_IMM, 1, 0, 0, 0, (float)kiln_load_f64(e->dtype, e->data, 0));
        eb_ins(&b, KC_EW_POW, 2, 0, 1);
        return eb_run(&b, L);
    }
    if (is_int_dt(dt)) return int_run(L, I_POW, 0, 0);
    return unsupported(L, dt);
}

// Clip-13: min (input 1) and max (input 2) are optional scalars of X's
// dtype; an omitted bound does not clip. Bounds known on the host (the
// usual Relu6) become the activation's parameters; a bound computed on the
// device is loaded per element. Float NaN inputs become a bound (fmaxf),
// where the ref lets them through.
extern "C" kiln_status kiln_cuda_Clip(const kc_launch *L)
{
    if (out_empty(L)) return KILN_OK;
    kiln_dtype dt = L->out[0].dt;
    const kiln_value *hv[3] = {NULL, host_in(L, 1), host_in(L, 2)};
    bool on_host = true;
    for (int i = 1; i <= 2; i++)
        if (hv[i] && !hv[i]->data) on_host = false;
    if (is_int_dt(dt)) {
        if (!on_host)
            return kiln_fail(KILN_ERR_UNSUPPORTED, "Clip '%s': integer bounds computed at run time are not supported",
                             L->n->name);
        int64_t lo = hv[1] ? kiln_load_i64(hv[1]->dtype, hv[1]->data, 0) : INT64_MIN;
        int64_t hi = hv[2] ? kiln_load_i64(hv[2]->dtype, hv[2]->data, 0) : INT64_MAX;
        return int_run(L, I_CLIP, lo, hi);
    }
    if (!is_float_dt(dt)) return unsupported(L, dt);
    if (on_host) {
        float lo = hv[1] ? (float)kiln_load_f64(hv[1]->dtype, hv[1]->data, 0) : -INFINITY;
        float hi = hv[2] ? (float)kiln_load_f64(hv[2]->dtype, hv[2]->data, 0) : INFINITY;
        return float_unary(L, KC_EW_ACT, KC_ACT_CLIP, lo, hi);
    }
    // min(max(x, lo), hi): max wins when lo > hi, as Clip-13 says
    ew_build b;
    eb_init(&b);
    kiln_status st = eb_operand(&b, L, 0, 0);
    for (int i = 1; i <= 2 && st == KILN_OK; i++) {
        if (!hv[i]) continue;
        st = eb_operand(&b, L, i, i);
        if (st == KILN_OK) eb_ins(&b, i == 1 ? KC_EW_MAX : KC_EW_MIN, 0, 0, i);
    }
    if (st != KILN_OK) return st;
    return eb_run(&b, L);
}

namespace {

// ---------------------------------------------------------------- comparisons and logic

// Output bool (one byte, 0 or 1). Floats compare in f32 (exact for f16 and
// bf16), f64 in f64, integers and bools in i64.
enum cmp_op { C_EQUAL, C_GREATER, C_LESS, C_AND, C_NOT };

struct cmp_args {
    kc_iter it;
    uint8_t *out;
    const void *in[2];
    int in_dt[2];
    int op;
};
static_assert(sizeof(cmp_args) <= 4000, "cmp_args must fit the kernel parameter space");

template <typename C, typename IndexT, bool FLAT>
__global__ void __launch_bounds__(EW_BLOCK) cmp_kernel(const __grid_constant__ cmp_args a)
{
    WALK_LOOP(i, a.it)
    {
        IndexT off[3];
        walk_offsets<IndexT, FLAT, 3>(a.it, i, off);
        const C x = load_as<C>(a.in[0], a.in_dt[0], off[1]);
        bool y;
        if (a.op == C_NOT) {
            y = x == (C)0;
        } else {
            const C z = load_as<C>(a.in[1], a.in_dt[1], off[2]);
            switch (a.op) {
            case C_EQUAL: y = x == z; break;
            case C_GREATER: y = x > z; break;
            case C_LESS: y = x < z; break;
            default: y = x != (C)0 && z != (C)0; break;
            }
        }
        a.out[off[0]] = y ? 1 : 0;
    }
}

template <typename C> static void cmp_launch(const ew_walk &w, const cmp_args &a, cudaStream_t s)
{
    walk_dispatch(w, [&](auto idx, auto flat) {
        cmp_kernel<C, decltype(idx), decltype(flat)::value><<<w.grid, EW_BLOCK, 0, s>>>(a);
    });
}

enum cmp_domain { D_NONE, D_F32, D_F64, D_I64 };

static cmp_domain cmp_domain_of(int op, kiln_dtype a, kiln_dtype b)
{
    bool fa = is_float_dt(a) || a == KILN_F64, fb = is_float_dt(b) || b == KILN_F64;
    if (op == C_AND || op == C_NOT) return a == KILN_BOOL && b == KILN_BOOL ? D_I64 : D_NONE;
    if (fa && fb) return a == KILN_F64 || b == KILN_F64 ? D_F64 : D_F32;
    if (is_int_dt(a) && is_int_dt(b)) return D_I64;
    // bools compare for equality only (ONNX Greater/Less take numbers)
    if (a == KILN_BOOL && b == KILN_BOOL && op == C_EQUAL) return D_I64;
    return D_NONE;
}

static kiln_status cmp_run(const kc_launch *L, int op)
{
    if (out_empty(L)) return KILN_OK;
    const kc_view *out = &L->out[0];
    const int n_in = op == C_NOT ? 1 : 2;
    kiln_status st = check_out(out, L->n->op_type);
    if (st != KILN_OK) return node_status(L, st);
    if (out->dt != KILN_BOOL) return unsupported(L, out->dt);
    for (int k = 0; k < n_in; k++)
        if (!dev_in(L, k)) return node_status(L, kiln_fail(KILN_ERR_INTERNAL, "input %d is not on the device", k));
    kiln_dtype da = L->in[0].dt, db = n_in > 1 ? L->in[1].dt : da;
    cmp_domain dom = cmp_domain_of(op, da, db);
    if (dom == D_NONE) {
        if (da != db)
            return kiln_fail(KILN_ERR_UNSUPPORTED, "%s '%s': inputs of dtypes %s and %s are not supported",
                             L->n->op_type, L->n->name, kiln_dtype_name(da), kiln_dtype_name(db));
        return unsupported(L, da);
    }
    cmp_args a;
    memset(&a, 0, sizeof a);
    ew_walk w;
    if ((st = walk_inputs(L, n_in, out, a.in, a.in_dt, &w)) != KILN_OK) return st;
    a.it = w.it;
    a.out = static_cast<uint8_t *>(out->p);
    a.op = op;
    switch (dom) {
    case D_F32: cmp_launch<float>(w, a, L->stream); break;
    case D_F64: cmp_launch<double>(w, a, L->stream); break;
    default: cmp_launch<int64_t>(w, a, L->stream); break;
    }
    return node_status(L, kc_check_launch("cmp_kernel"));
}

} // namespace

extern "C" kiln_status kiln_cuda_Equal(const kc_launch *L) { return cmp_run(L, C_EQUAL); }
extern "C" kiln_status kiln_cuda_Greater(const kc_launch *L) { return cmp_run(L, C_GREATER); }
extern "C" kiln_status kiln_cuda_Less(const kc_launch *L) { return cmp_run(L, C_LESS); }
extern "C" kiln_status kiln_cuda_And(const kc_launch *L) { return cmp_run(L, C_AND); }
extern "C" kiln_status kiln_cuda_Not(const kc_launch *L) { return cmp_run(L, C_NOT); }

namespace {

// ---------------------------------------------------------------- Where

// out = cond ? x : y, all three broadcast. x, y and out of one dtype copy
// elements as bits (any dtype); float views of different dtypes (an f16
// activation beside an f32 constant) convert through f32.
struct where_args {
    kc_iter it;
    void *out;
    const uint8_t *c;
    const void *x, *y;
    int x_dt, y_dt;
};
static_assert(sizeof(where_args) <= 4000, "where_args must fit the kernel parameter space");

template <typename T, typename IndexT, bool FLAT>
__global__ void __launch_bounds__(EW_BLOCK) where_copy_kernel(const __grid_constant__ where_args a)
{
    WALK_LOOP(i, a.it)
    {
        IndexT off[4];
        walk_offsets<IndexT, FLAT, 4>(a.it, i, off);
        static_cast<T *>(a.out)[off[0]] =
            a.c[off[1]] ? static_cast<const T *>(a.x)[off[2]] : static_cast<const T *>(a.y)[off[3]];
    }
}

template <typename TO, typename IndexT, bool FLAT>
__global__ void __launch_bounds__(EW_BLOCK) where_float_kernel(const __grid_constant__ where_args a)
{
    WALK_LOOP(i, a.it)
    {
        IndexT off[4];
        walk_offsets<IndexT, FLAT, 4>(a.it, i, off);
        float v = a.c[off[1]] ? load_float(a.x, a.x_dt, off[2]) : load_float(a.y, a.y_dt, off[3]);
        static_cast<TO *>(a.out)[off[0]] = kc_from_f32<TO>(v);
    }
}

template <typename T> static void where_copy_launch(const ew_walk &w, const where_args &a, cudaStream_t s)
{
    walk_dispatch(w, [&](auto idx, auto flat) {
        where_copy_kernel<T, decltype(idx), decltype(flat)::value><<<w.grid, EW_BLOCK, 0, s>>>(a);
    });
}

template <typename TO> static void where_float_launch(const ew_walk &w, const where_args &a, cudaStream_t s)
{
    walk_dispatch(w, [&](auto idx, auto flat) {
        where_float_kernel<TO, decltype(idx), decltype(flat)::value><<<w.grid, EW_BLOCK, 0, s>>>(a);
    });
}

} // namespace

extern "C" kiln_status kiln_cuda_Where(const kc_launch *L)
{
    if (out_empty(L)) return KILN_OK;
    const kc_view *out = &L->out[0];
    kiln_status st = check_out(out, "Where");
    if (st != KILN_OK) return node_status(L, st);
    for (int k = 0; k < 3; k++)
        if (!dev_in(L, k)) return node_status(L, kiln_fail(KILN_ERR_INTERNAL, "input %d is not on the device", k));
    const kc_view *c = &L->in[0], *x = &L->in[1], *y = &L->in[2];
    if (c->dt != KILN_BOOL)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "Where '%s': condition of dtype %s (bool only)", L->n->name,
                         kiln_dtype_name(c->dt));
    const bool same = x->dt == out->dt && y->dt == out->dt;
    const bool floats = is_float_dt(x->dt) && is_float_dt(y->dt) && is_float_dt(out->dt);
    const size_t es = kiln_dtype_size(out->dt);
    if (!(same && (es == 1 || es == 2 || es == 4 || es == 8)) && !floats)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "Where '%s': x %s, y %s into %s is not supported", L->n->name,
                         kiln_dtype_name(x->dt), kiln_dtype_name(y->dt), kiln_dtype_name(out->dt));
    kc_view bv[3];
    const kc_view *ops[4] = {out, &bv[0], &bv[1], &bv[2]};
    for (int k = 0; k < 3; k++) {
        if ((st = check_bcast(&L->in[k], out, "Where", k)) != KILN_OK) return node_status(L, st);
        kc_view_broadcast(&L->in[k], out->rank, out->d, &bv[k]);
    }
    ew_walk w;
    if ((st = walk_plan(4, ops, 1, &w)) != KILN_OK) return node_status(L, st);
    where_args a;
    memset(&a, 0, sizeof a);
    a.it = w.it;
    a.out = out->p;
    a.c = static_cast<const uint8_t *>(c->p);
    a.x = x->p;
    a.y = y->p;
    a.x_dt = x->dt;
    a.y_dt = y->dt;
    if (same) {
        switch (es) {
        case 1: where_copy_launch<uint8_t>(w, a, L->stream); break;
        case 2: where_copy_launch<uint16_t>(w, a, L->stream); break;
        case 4: where_copy_launch<uint32_t>(w, a, L->stream); break;
        default: where_copy_launch<uint64_t>(w, a, L->stream); break;
        }
    } else {
        switch (out->dt) {
        case KILN_F16: where_float_launch<__half>(w, a, L->stream); break;
        case KILN_BF16: where_float_launch<__nv_bfloat16>(w, a, L->stream); break;
        default: where_float_launch<float>(w, a, L->stream); break;
        }
    }
    return node_status(L, kc_check_launch("where_kernel"));
}

// ---------------------------------------------------------------- copies

// Cast (ONNX Cast: float -> integer truncates, see src/ref/cast.c),
// Identity and Dropout are kc_copy: it converts dtypes and strides.
extern "C" kiln_status kiln_cuda_Cast(const kc_launch *L)
{
    if (out_empty(L)) return KILN_OK;
    return node_status(L, kc_copy(&L->in[0], &L->out[0], L->stream));
}

namespace {

static bool same_view(const kc_view *a, const kc_view *b)
{
    if (a->p != b->p || a->dt != b->dt || a->rank != b->rank) return false;
    for (int k = 0; k < a->rank; k++)
        if (a->d[k] != b->d[k] || (a->d[k] != 1 && a->s[k] != b->s[k])) return false;
    return true;
}

} // namespace

extern "C" kiln_status kiln_cuda_Identity(const kc_launch *L)
{
    if (out_empty(L) || same_view(&L->in[0], &L->out[0])) return KILN_OK;
    return node_status(L, kc_copy(&L->in[0], &L->out[0], L->stream));
}

namespace {

struct fill_args {
    kc_iter it;
    uint8_t *out;
    uint8_t v;
};

template <typename IndexT, bool FLAT>
__global__ void __launch_bounds__(EW_BLOCK) fill_u8_kernel(const __grid_constant__ fill_args a)
{
    WALK_LOOP(i, a.it)
    {
        IndexT off[1];
        walk_offsets<IndexT, FLAT, 1>(a.it, i, off);
        a.out[off[0]] = a.v;
    }
}

// Sets every element of a one-byte view to v.
static kiln_status fill_u8(const kc_view *out, uint8_t v, cudaStream_t s)
{
    if (kc_view_contiguous(out)) {
        KC_CHECK(cudaMemsetAsync(out->p, v, (size_t)kc_view_numel(out), s));
        return KILN_OK;
    }
    const kc_view *ops[1] = {out};
    ew_walk w;
    kiln_status st = walk_plan(1, ops, 1, &w);
    if (st != KILN_OK) return st;
    fill_args a;
    memset(&a, 0, sizeof a);
    a.it = w.it;
    a.out = static_cast<uint8_t *>(out->p);
    a.v = v;
    walk_dispatch(w, [&](auto idx, auto flat) {
        fill_u8_kernel<decltype(idx), decltype(flat)::value><<<w.grid, EW_BLOCK, 0, s>>>(a);
    });
    return kc_check_launch("fill_u8_kernel");
}

} // namespace

// Dropout in inference (Dropout-13/22): Y = X, the optional mask all true.
// Training with a nonzero ratio is refused, as the ref refuses it, when the
// run-time values say so.
extern "C" kiln_status kiln_cuda_Dropout(const kc_launch *L)
{
    const kiln_value *ratio = host_in(L, 1), *train = host_in(L, 2);
    if (train && train->data && kiln_load_i64(train->dtype, train->data, 0)) {
        double r = ratio && ratio->data ? kiln_load_f64(ratio->dtype, ratio->data, 0) : 0.5;
        if (r != 0)
            return kiln_fail(KILN_ERR_UNSUPPORTED, "Dropout '%s': training_mode true (ratio %g) is not supported",
                             L->n->name, r);
    }
    if (out_empty(L)) return KILN_OK;
    kiln_status st = KILN_OK;
    if (L->out[0].p && !same_view(&L->in[0], &L->out[0])) st = kc_copy(&L->in[0], &L->out[0], L->stream);
    if (st != KILN_OK) return node_status(L, st);
    if (L->n_out > 1 && L->out[1].p) {
        const kc_view *mask = &L->out[1];
        if (kiln_dtype_size(mask->dt) != 1) return unsupported(L, mask->dt);
        st = fill_u8(mask, 1, L->stream);
    }
    return node_status(L, st);
}
