/* One-input elementwise kernels: activations, math functions, Clip, Not.
 *
 * Floats are computed in f64 (f32/f16/bf16 converted a chunk at a time and
 * rounded once on the way out, so the result is the correctly rounded value
 * or within an ulp of it: within 1e-6 relative of numpy); integers in i64
 * with two's-complement wrap-around on the way out (Neg and Abs of the most
 * negative value give it back, as numpy and onnxruntime do). */
#include "ref/elementwise.h"
#include "ref/ref.h"

#include <math.h>
#include <string.h>

#define SQRT1_2 0.70710678118654752440    /* 1/sqrt(2) */
#define SQRT_2_PI 0.79788456080286535588  /* sqrt(2/pi) */

typedef enum unary_op {
    U_RELU, U_LEAKY_RELU, U_SIGMOID, U_HARD_SIGMOID, U_HARD_SWISH, U_TANH, U_ERF, U_GELU, U_GELU_TANH,
    U_SQRT, U_EXP, U_LOG, U_NEG, U_ABS, U_RECIPROCAL, U_FLOOR, U_CEIL, U_ROUND, U_CLIP,
    U_MISH, U_SOFTPLUS, U_SOFTSIGN, U_ELU, U_SELU, U_CELU, U_THRESHOLDED_RELU
} unary_op;

typedef struct unary {
    unary_op op;
    double alpha, beta; /* LeakyRelu, HardSigmoid, Elu, Celu, ThresholdedRelu; Selu (beta: gamma) */
    double lo, hi;      /* Clip of floats */
    int64_t ilo, ihi;   /* Clip of integers */
} unary;

/* clamp to [0, 1] letting NaN through, as numpy's clip/minimum/maximum do */
static inline double unit_clamp(double t) { return t < 0 ? 0 : t > 1 ? 1 : t; }

/* ln(1 + e^t) without overflow for large t or loss for very negative t */
static inline double softplus(double t) { return t > 0 ? t + log1p(exp(-t)) : log1p(exp(t)); }

static inline double sigmoid(double t)
{
    /* the two forms keep exp() from overflowing */
    if (t >= 0) return 1 / (1 + exp(-t));
    double e = exp(t);
    return e / (1 + e);
}

/* y[i] = expr of t = x[i] */
#define EACH(expr)                             \
    for (int64_t i = 0; i < n; i++) {          \
        const double t = x[i];                 \
        y[i] = (expr);                         \
    }                                          \
    break

static void unary_f64(const unary *u, double *y, const double *x, int64_t n)
{
    const double a = u->alpha, b = u->beta, lo = u->lo, hi = u->hi;
    switch (u->op) {
    case U_RELU: EACH(t < 0 ? 0 : t); /* NaN passes, as np.maximum(x, 0) */
    case U_LEAKY_RELU: EACH(t < 0 ? a * t : t);
    case U_SIGMOID: EACH(sigmoid(t));
    case U_HARD_SIGMOID: EACH(unit_clamp(a * t + b));
    case U_HARD_SWISH: EACH(t * unit_clamp(t / 6 + 0.5)); /* HardSwish-14: alpha 1/6, beta 0.5 */
    case U_TANH: EACH(tanh(t));
    case U_ERF: EACH(erf(t));
    case U_GELU: EACH(0.5 * t * (1 + erf(t * SQRT1_2)));
    case U_GELU_TANH: EACH(0.5 * t * (1 + tanh(SQRT_2_PI * (t + 0.044715 * t * t * t))));
    case U_SQRT: EACH(sqrt(t));
    case U_EXP: EACH(exp(t));
    case U_LOG: EACH(log(t));
    case U_NEG: EACH(-t);
    case U_ABS: EACH(fabs(t));
    case U_RECIPROCAL: EACH(1 / t);
    case U_FLOOR: EACH(floor(t));
    case U_CEIL: EACH(ceil(t));
    case U_ROUND: EACH(nearbyint(t)); /* the default rounding mode: halves to even, as Round */
    case U_CLIP: /* with min > max every element becomes max (Clip-13) */
        EACH(t < lo ? (lo > hi ? hi : lo) : t > hi ? hi : t);
    case U_MISH: EACH(t * tanh(softplus(t)));
    case U_SOFTPLUS: EACH(softplus(t));
    case U_SOFTSIGN: EACH(t / (1 + fabs(t)));
    case U_ELU: EACH(t < 0 ? a * expm1(t) : t);
    case U_SELU: EACH(t <= 0 ? b * a * expm1(t) : b * t); /* gamma * (alpha * e^x - alpha) */
    case U_CELU: EACH(t > 0 ? t : a * expm1(t / a));      /* max(0,x) + min(0, alpha * (e^(x/alpha) - 1)) */
    case U_THRESHOLDED_RELU: EACH(t > a ? t : 0);
    }
}

#undef EACH
#define EACH(expr)                             \
    for (int64_t i = 0; i < n; i++) {          \
        const int64_t t = x[i];                \
        y[i] = (expr);                         \
    }                                          \
    break

static inline int64_t neg_wrap(int64_t t) { return (int64_t)(0 - (uint64_t)t); }

/* The ops ONNX defines on integers too. */
static bool unary_has_int(unary_op op) { return op == U_RELU || op == U_NEG || op == U_ABS || op == U_CLIP; }

static void unary_i64(const unary *u, int64_t *y, const int64_t *x, int64_t n)
{
    const int64_t lo = u->ilo, hi = u->ihi;
    switch (u->op) {
    case U_RELU: EACH(t < 0 ? 0 : t);
    case U_NEG: EACH(neg_wrap(t));
    case U_ABS: EACH(t < 0 ? neg_wrap(t) : t);
    case U_CLIP: EACH(t < lo ? (lo > hi ? hi : lo) : t > hi ? hi : t);
    default: break; /* excluded by unary_has_int */
    }
}
#undef EACH

static const char *unary_name(unary_op op)
{
    static const char *names[] = {"Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Erf", "Gelu",
                                  "Gelu", "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Floor", "Ceil", "Round", "Clip",
                                  "Mish", "Softplus", "Softsign", "Elu", "Selu", "Celu", "ThresholdedRelu"};
    return names[op];
}

static kiln_status run_unary(const kiln_node *n, kiln_value *v, const unary *u)
{
    kiln_value *x = kiln_in(n, v, 0), *y = kiln_out(n, v, 0);
    int64_t cnt = kiln_shape_numel(&x->shape);
    bool fl = kiln_dtype_is_float(x->dtype) && x->dtype != KILN_F8E4M3;
    bool in = x->dtype == KILN_I64 || x->dtype == KILN_I32 || x->dtype == KILN_I8 || x->dtype == KILN_U8;
    if (!fl && (!in || !unary_has_int(u->op)))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "%s of '%s' (%s) is not supported", unary_name(u->op), x->name,
                         kiln_dtype_name(x->dtype));
    kiln_dtype dom = fl ? KILN_F64 : KILN_I64;
    if (x->dtype == dom) {
        if (fl)
            unary_f64(u, y->data, x->data, cnt);
        else
            unary_i64(u, y->data, x->data, cnt);
        return KILN_OK;
    }
    size_t es = kiln_dtype_size(x->dtype);
    union {
        double f[KILN_EW_CHUNK];
        int64_t i[KILN_EW_CHUNK];
    } buf;
    for (int64_t k = 0; k < cnt; k += KILN_EW_CHUNK) {
        int64_t m = cnt - k < KILN_EW_CHUNK ? cnt - k : KILN_EW_CHUNK;
        kiln_ref_convert(dom, &buf, x->dtype, (const char *)x->data + (size_t)k * es, m, true);
        if (fl)
            unary_f64(u, buf.f, buf.f, m);
        else
            unary_i64(u, buf.i, buf.i, m);
        kiln_ref_convert(y->dtype, (char *)y->data + (size_t)k * es, dom, &buf, m, true);
    }
    return KILN_OK;
}

static kiln_status unary_simple(const kiln_node *n, kiln_value *v, unary_op op)
{
    unary u = {.op = op};
    return run_unary(n, v, &u);
}

kiln_status kiln_ref_Relu(const kiln_node *n, kiln_value *v) { return unary_simple(n, v, U_RELU); }
kiln_status kiln_ref_Sigmoid(const kiln_node *n, kiln_value *v) { return unary_simple(n, v, U_SIGMOID); }
kiln_status kiln_ref_HardSwish(const kiln_node *n, kiln_value *v) { return unary_simple(n, v, U_HARD_SWISH); }
kiln_status kiln_ref_Tanh(const kiln_node *n, kiln_value *v) { return unary_simple(n, v, U_TANH); }
kiln_status kiln_ref_Erf(const kiln_node *n, kiln_value *v) { return unary_simple(n, v, U_ERF); }
kiln_status kiln_ref_Sqrt(const kiln_node *n, kiln_value *v) { return unary_simple(n, v, U_SQRT); }
kiln_status kiln_ref_Exp(const kiln_node *n, kiln_value *v) { return unary_simple(n, v, U_EXP); }
kiln_status kiln_ref_Log(const kiln_node *n, kiln_value *v) { return unary_simple(n, v, U_LOG); }
kiln_status kiln_ref_Neg(const kiln_node *n, kiln_value *v) { return unary_simple(n, v, U_NEG); }
kiln_status kiln_ref_Abs(const kiln_node *n, kiln_value *v) { return unary_simple(n, v, U_ABS); }
kiln_status kiln_ref_Reciprocal(const kiln_node *n, kiln_value *v) { return unary_simple(n, v, U_RECIPROCAL); }
kiln_status kiln_ref_Floor(const kiln_node *n, kiln_value *v) { return unary_simple(n, v, U_FLOOR); }
kiln_status kiln_ref_Ceil(const kiln_node *n, kiln_value *v) { return unary_simple(n, v, U_CEIL); }
kiln_status kiln_ref_Round(const kiln_node *n, kiln_value *v) { return unary_simple(n, v, U_ROUND); }

kiln_status kiln_ref_LeakyRelu(const kiln_node *n, kiln_value *v)
{
    /* attributes are f32 in ONNX: (double)0.01f, as numpy multiplies by np.float32(alpha) */
    unary u = {.op = U_LEAKY_RELU, .alpha = n->params.act.alpha};
    return run_unary(n, v, &u);
}

kiln_status kiln_ref_HardSigmoid(const kiln_node *n, kiln_value *v)
{
    unary u = {.op = U_HARD_SIGMOID, .alpha = n->params.act.alpha, .beta = n->params.act.beta};
    return run_unary(n, v, &u);
}

kiln_status kiln_ref_Gelu(const kiln_node *n, kiln_value *v)
{
    unary u = {.op = n->params.gelu.approximate == KILN_GELU_TANH ? U_GELU_TANH : U_GELU};
    return run_unary(n, v, &u);
}

/* Clip-13: min and max are optional scalar inputs; an omitted bound does not clip. */
kiln_status kiln_ref_Clip(const kiln_node *n, kiln_value *v)
{
    kiln_value *lo = kiln_in(n, v, 1), *hi = kiln_in(n, v, 2);
    unary u = {.op = U_CLIP, .lo = -INFINITY, .hi = INFINITY, .ilo = INT64_MIN, .ihi = INT64_MAX};
    if (lo) {
        u.lo = kiln_load_f64(lo->dtype, lo->data, 0);
        u.ilo = kiln_load_i64(lo->dtype, lo->data, 0);
    }
    if (hi) {
        u.hi = kiln_load_f64(hi->dtype, hi->data, 0);
        u.ihi = kiln_load_i64(hi->dtype, hi->data, 0);
    }
    return run_unary(n, v, &u);
}

/* ---- added ops, part 1. Attributes are f32 in ONNX: their defaults are the
 * f32 values (src/ir/params_elementwise.c), widened (Selu's are the f32
 * roundings of its constants). */
kiln_status kiln_ref_Mish(const kiln_node *n, kiln_value *v) { return unary_simple(n, v, U_MISH); }
kiln_status kiln_ref_Softplus(const kiln_node *n, kiln_value *v) { return unary_simple(n, v, U_SOFTPLUS); }
kiln_status kiln_ref_Softsign(const kiln_node *n, kiln_value *v) { return unary_simple(n, v, U_SOFTSIGN); }

kiln_status kiln_ref_Elu(const kiln_node *n, kiln_value *v)
{
    unary u = {.op = U_ELU, .alpha = n->params.act.alpha};
    return run_unary(n, v, &u);
}

kiln_status kiln_ref_Selu(const kiln_node *n, kiln_value *v)
{
    unary u = {.op = U_SELU, .alpha = n->params.act.alpha, .beta = n->params.act.gamma};
    return run_unary(n, v, &u);
}

kiln_status kiln_ref_Celu(const kiln_node *n, kiln_value *v)
{
    unary u = {.op = U_CELU, .alpha = n->params.act.alpha};
    if (u.alpha == 0) return kiln_fail(KILN_ERR_UNSUPPORTED, "Celu alpha=0 is not defined (x / alpha)");
    return run_unary(n, v, &u);
}

kiln_status kiln_ref_ThresholdedRelu(const kiln_node *n, kiln_value *v)
{
    unary u = {.op = U_THRESHOLDED_RELU, .alpha = n->params.act.alpha};
    return run_unary(n, v, &u);
}

kiln_status kiln_ref_Not(const kiln_node *n, kiln_value *v)
{
    kiln_value *x = kiln_in(n, v, 0), *y = kiln_out(n, v, 0);
    const uint8_t *a = x->data;
    uint8_t *r = y->data;
    int64_t cnt = kiln_shape_numel(&x->shape);
    for (int64_t i = 0; i < cnt; i++) r[i] = !a[i];
    return KILN_OK;
}
