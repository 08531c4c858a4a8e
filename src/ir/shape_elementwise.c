/* Shape rules of the elementwise ops (kernels in src/ref/activation.c,
 * binary.c, cast.c, variadic.c) and the cost of one operation per output
 * element.
 *
 * Binary ops broadcast the numpy way (ONNX Broadcasting.md) through
 * kiln_broadcast, which keeps symbolic dims: [batch,3,H,W] + [1,3,1,1] is
 * [batch,3,H,W]. Inputs that must share a dtype and do not are a
 * contradiction (KILN_ERR_SHAPE); a dtype the op does not take is
 * KILN_ERR_UNSUPPORTED, so the node is listed rather than run. */
#include "ir/ops.h"

#include <inttypes.h>
#include <string.h>

#define DT(t) (1u << (t))
#define FLOATS (DT(KILN_F32) | DT(KILN_F16) | DT(KILN_BF16) | DT(KILN_F64))
#define SIGNED_INTS (DT(KILN_I8) | DT(KILN_I32) | DT(KILN_I64))
#define NUMERIC (FLOATS | SIGNED_INTS | DT(KILN_U8))
#define BOOLS DT(KILN_BOOL)
#define ANY (NUMERIC | BOOLS | DT(KILN_F8E4M3))

static kiln_status need(const kiln_node *n, kiln_value *v, int i, kiln_value **out)
{
    *out = kiln_in(n, v, i);
    if (!*out) return kiln_fail(KILN_ERR_SHAPE, "required input %d is missing", i);
    return KILN_OK;
}

static kiln_status check_dtype(const kiln_node *n, const kiln_value *x, unsigned allowed)
{
    if (x->dtype > 0 && x->dtype < 32 && (allowed & DT(x->dtype))) return KILN_OK;
    return kiln_fail(KILN_ERR_UNSUPPORTED, "%s does not take input '%s' of dtype %s", n->op_type, x->name,
                     kiln_dtype_name(x->dtype));
}

static kiln_status same_dtype(const kiln_value *a, const kiln_value *b)
{
    if (a->dtype == b->dtype) return KILN_OK;
    return kiln_fail(KILN_ERR_SHAPE, "inputs '%s' (%s) and '%s' (%s) must have the same dtype", a->name,
                     kiln_dtype_name(a->dtype), b->name, kiln_dtype_name(b->dtype));
}

static kiln_status broadcast2(const kiln_value *a, const kiln_value *b, kiln_shape *out)
{
    if (kiln_broadcast(&a->shape, &b->shape, out) == KILN_OK) return KILN_OK;
    char sa[128], sb[128];
    return kiln_fail(KILN_ERR_SHAPE, "cannot broadcast '%s' %s with '%s' %s", a->name,
                     kiln_shape_str(NULL, &a->shape, sa, sizeof sa), b->name,
                     kiln_shape_str(NULL, &b->shape, sb, sizeof sb));
}

static void set_out(const kiln_node *n, kiln_value *v, int i, kiln_dtype dt, const kiln_shape *s)
{
    kiln_value *y = kiln_out(n, v, i);
    if (!y) return;
    y->dtype = dt;
    y->shape = *s;
}

/* Y has X's dtype and shape. */
static kiln_status shape_unary(const kiln_node *n, kiln_value *v, unsigned allowed)
{
    kiln_value *x;
    kiln_status st = need(n, v, 0, &x);
    if (st == KILN_OK) st = check_dtype(n, x, allowed);
    if (st != KILN_OK) return st;
    set_out(n, v, 0, x->dtype, &x->shape);
    return KILN_OK;
}

/* Y = op(A, B) broadcast; out_dt 0: A's dtype. */
static kiln_status shape_binary(const kiln_node *n, kiln_value *v, unsigned allowed, kiln_dtype out_dt)
{
    kiln_value *a, *b;
    kiln_shape s;
    kiln_status st = need(n, v, 0, &a);
    if (st == KILN_OK) st = need(n, v, 1, &b);
    if (st == KILN_OK) st = check_dtype(n, a, allowed);
    if (st == KILN_OK) st = same_dtype(a, b);
    if (st == KILN_OK) st = broadcast2(a, b, &s);
    if (st != KILN_OK) return st;
    set_out(n, v, 0, out_dt ? out_dt : a->dtype, &s);
    return KILN_OK;
}

kiln_status kiln_shape_Relu(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, FLOATS | SIGNED_INTS); }
kiln_status kiln_shape_LeakyRelu(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, FLOATS); }
kiln_status kiln_shape_Sigmoid(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, FLOATS); }
kiln_status kiln_shape_HardSigmoid(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, FLOATS); }
kiln_status kiln_shape_HardSwish(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, FLOATS); }
kiln_status kiln_shape_Tanh(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, FLOATS); }
kiln_status kiln_shape_Erf(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, FLOATS); }
kiln_status kiln_shape_Sqrt(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, FLOATS); }
kiln_status kiln_shape_Exp(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, FLOATS); }
kiln_status kiln_shape_Log(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, FLOATS); }
kiln_status kiln_shape_Neg(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, FLOATS | SIGNED_INTS); }
kiln_status kiln_shape_Abs(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, NUMERIC); }
kiln_status kiln_shape_Reciprocal(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, FLOATS); }
kiln_status kiln_shape_Floor(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, FLOATS); }
kiln_status kiln_shape_Round(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, FLOATS); }
kiln_status kiln_shape_Ceil(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, FLOATS); }
kiln_status kiln_shape_Not(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, BOOLS); }
kiln_status kiln_shape_Identity(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, ANY); }

/* Gelu: approximate none or tanh (checked by the parser) */
kiln_status kiln_shape_Gelu(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, FLOATS); }

/* Clip-13: optional scalar min (input 1) and max (input 2) of X's dtype. */
kiln_status kiln_shape_Clip(const kiln_node *n, kiln_value *v)
{
    kiln_status st = shape_unary(n, v, NUMERIC);
    if (st != KILN_OK) return st;
    kiln_value *x = kiln_in(n, v, 0);
    for (int i = 1; i <= 2; i++) {
        kiln_value *b = kiln_in(n, v, i);
        if (!b) continue;
        if ((st = same_dtype(x, b)) != KILN_OK) return st;
        int64_t cnt = kiln_shape_numel(&b->shape);
        /* a scalar, or a one-element tensor as some exporters write it */
        if (cnt >= 0 && cnt != 1)
            return kiln_fail(KILN_ERR_SHAPE, "'%s' (%s) must be a scalar, has %" PRId64 " elements", b->name,
                             i == 1 ? "min" : "max", cnt);
    }
    return KILN_OK;
}

kiln_status kiln_shape_Add(const kiln_node *n, kiln_value *v) { return shape_binary(n, v, NUMERIC, 0); }
kiln_status kiln_shape_Sub(const kiln_node *n, kiln_value *v) { return shape_binary(n, v, NUMERIC, 0); }
kiln_status kiln_shape_Mul(const kiln_node *n, kiln_value *v) { return shape_binary(n, v, NUMERIC, 0); }
kiln_status kiln_shape_Div(const kiln_node *n, kiln_value *v) { return shape_binary(n, v, NUMERIC, 0); }
kiln_status kiln_shape_Equal(const kiln_node *n, kiln_value *v) { return shape_binary(n, v, NUMERIC | BOOLS, KILN_BOOL); }
kiln_status kiln_shape_Greater(const kiln_node *n, kiln_value *v) { return shape_binary(n, v, NUMERIC, KILN_BOOL); }
kiln_status kiln_shape_Less(const kiln_node *n, kiln_value *v) { return shape_binary(n, v, NUMERIC, KILN_BOOL); }
kiln_status kiln_shape_And(const kiln_node *n, kiln_value *v) { return shape_binary(n, v, BOOLS, KILN_BOOL); }

/* Pow-15: the exponent may have any numeric dtype; Z has the base's. */
kiln_status kiln_shape_Pow(const kiln_node *n, kiln_value *v)
{
    kiln_value *a, *b;
    kiln_shape s;
    kiln_status st = need(n, v, 0, &a);
    if (st == KILN_OK) st = need(n, v, 1, &b);
    if (st == KILN_OK) st = check_dtype(n, a, NUMERIC);
    if (st == KILN_OK) st = check_dtype(n, b, NUMERIC);
    if (st == KILN_OK) st = broadcast2(a, b, &s);
    if (st != KILN_OK) return st;
    set_out(n, v, 0, a->dtype, &s);
    return KILN_OK;
}

/* PRelu-16: slope broadcasts to X one way only (ONNX "unidirectional
 * broadcasting"): Y has X's shape. */
kiln_status kiln_shape_PRelu(const kiln_node *n, kiln_value *v)
{
    kiln_value *x, *slope;
    kiln_status st = need(n, v, 0, &x);
    if (st == KILN_OK) st = need(n, v, 1, &slope);
    if (st == KILN_OK) st = check_dtype(n, x, NUMERIC);
    if (st == KILN_OK) st = same_dtype(x, slope);
    if (st != KILN_OK) return st;
    const kiln_shape *xs = &x->shape, *ss = &slope->shape;
    if (xs->rank >= 0 && ss->rank >= 0) {
        bool ok = ss->rank <= xs->rank;
        for (int i = 1; ok && i <= ss->rank; i++) {
            int64_t sd = ss->d[ss->rank - i], xd = xs->d[xs->rank - i];
            if (sd != 1 && sd >= 0 && xd >= 0 && sd != xd) ok = false;
        }
        if (!ok) {
            char a[128], b[128];
            return kiln_fail(KILN_ERR_SHAPE, "slope '%s' %s does not broadcast to input '%s' %s", slope->name,
                             kiln_shape_str(NULL, ss, a, sizeof a), x->name, kiln_shape_str(NULL, xs, b, sizeof b));
        }
    }
    set_out(n, v, 0, x->dtype, xs);
    return KILN_OK;
}

kiln_status kiln_shape_Where(const kiln_node *n, kiln_value *v)
{
    kiln_value *c, *x, *y;
    kiln_shape s1, s;
    kiln_status st = need(n, v, 0, &c);
    if (st == KILN_OK) st = need(n, v, 1, &x);
    if (st == KILN_OK) st = need(n, v, 2, &y);
    if (st != KILN_OK) return st;
    if (c->dtype != KILN_BOOL)
        return kiln_fail(KILN_ERR_SHAPE, "condition '%s' must be bool, is %s", c->name, kiln_dtype_name(c->dtype));
    if ((st = check_dtype(n, x, ANY)) != KILN_OK || (st = same_dtype(x, y)) != KILN_OK) return st;
    if ((st = broadcast2(c, x, &s1)) != KILN_OK) return st;
    if (kiln_broadcast(&s1, &y->shape, &s) != KILN_OK) {
        char a[128], b[128], d[128];
        return kiln_fail(KILN_ERR_SHAPE, "cannot broadcast '%s' %s, '%s' %s and '%s' %s", c->name,
                         kiln_shape_str(NULL, &c->shape, a, sizeof a), x->name,
                         kiln_shape_str(NULL, &x->shape, b, sizeof b), y->name,
                         kiln_shape_str(NULL, &y->shape, d, sizeof d));
    }
    set_out(n, v, 0, x->dtype, &s);
    return KILN_OK;
}

kiln_status kiln_shape_Cast(const kiln_node *n, kiln_value *v)
{
    kiln_value *x;
    kiln_status st = need(n, v, 0, &x);
    if (st == KILN_OK) st = check_dtype(n, x, ANY);
    if (st != KILN_OK) return st;
    /* 'to': an ONNX TensorProto.DataType in 1..31 (the parser checked it;
     * kiln_dtype uses the same numbers) */
    kiln_dtype to = n->params.cast.to;
    if (!(ANY & DT(to))) {
        const char *what = to == 8 ? " (string)" : "";
        return kiln_fail(KILN_ERR_UNSUPPORTED, "Cast to ONNX dtype %d%s is not supported", (int)to, what);
    }
    set_out(n, v, 0, to, &x->shape);
    return KILN_OK;
}

/* Dropout-13/22 as inference runs it: Y = X, and the optional mask all
 * true. training_mode true with a nonzero ratio draws random masks: not
 * supported (kiln never trains). When training_mode or ratio is not known
 * at build time (a graph input), the ref kernel checks the values it gets. */
kiln_status kiln_shape_Dropout(const kiln_node *n, kiln_value *v)
{
    kiln_value *x;
    kiln_status st = need(n, v, 0, &x);
    if (st == KILN_OK) st = check_dtype(n, x, FLOATS | DT(KILN_F8E4M3));
    if (st != KILN_OK) return st;
    kiln_value *ratio = kiln_in(n, v, 1), *train = kiln_in(n, v, 2);
    if (train && train->data && kiln_load_i64(train->dtype, train->data, 0) && (!ratio || ratio->data)) {
        double r = ratio ? kiln_load_f64(ratio->dtype, ratio->data, 0) : 0.5;
        if (r != 0)
            return kiln_fail(KILN_ERR_UNSUPPORTED, "Dropout with training_mode true (ratio %g) is not supported", r);
    }
    set_out(n, v, 0, x->dtype, &x->shape);
    set_out(n, v, 1, KILN_BOOL, &x->shape);
    return KILN_OK;
}

double kiln_flops_elementwise(const kiln_node *n, const kiln_value *v)
{
    if (n->n_outputs < 1 || n->outputs[0] < 0) return 0;
    int64_t cnt = kiln_shape_numel(&v[n->outputs[0]].shape);
    return cnt < 0 ? 0 : (double)cnt;
}

/* ---- added ops, part 1: variadic Sum/Mean/Max/Min, Mod, activations */

/* Sum, Mean (6/8/13), Max, Min (6/8/12/13): 1..N inputs of one dtype,
 * broadcast together (numpy, multidirectional; version 6 did not
 * broadcast, equal shapes are a case of it). */
static kiln_status shape_variadic(const kiln_node *n, kiln_value *v, unsigned allowed)
{
    kiln_value *x0;
    kiln_status st = need(n, v, 0, &x0);
    if (st == KILN_OK) st = check_dtype(n, x0, allowed);
    if (st != KILN_OK) return st;
    kiln_shape s = x0->shape;
    for (int i = 1; i < n->n_inputs; i++) {
        kiln_value *x;
        if ((st = need(n, v, i, &x)) != KILN_OK || (st = same_dtype(x0, x)) != KILN_OK) return st;
        kiln_shape t;
        if (kiln_broadcast(&s, &x->shape, &t) != KILN_OK) {
            char a[128], b[128];
            return kiln_fail(KILN_ERR_SHAPE, "cannot broadcast inputs 0..%d %s with '%s' %s", i - 1,
                             kiln_shape_str(NULL, &s, a, sizeof a), x->name,
                             kiln_shape_str(NULL, &x->shape, b, sizeof b));
        }
        s = t;
    }
    set_out(n, v, 0, x0->dtype, &s);
    return KILN_OK;
}

kiln_status kiln_shape_Sum(const kiln_node *n, kiln_value *v) { return shape_variadic(n, v, FLOATS); }
kiln_status kiln_shape_Mean(const kiln_node *n, kiln_value *v) { return shape_variadic(n, v, FLOATS); }
kiln_status kiln_shape_Max(const kiln_node *n, kiln_value *v) { return shape_variadic(n, v, NUMERIC); }
kiln_status kiln_shape_Min(const kiln_node *n, kiln_value *v) { return shape_variadic(n, v, NUMERIC); }

/* Sum and Max/Min: one operation per output element per input after the
 * first; Mean one more (the division). */
static double flops_variadic(const kiln_node *n, const kiln_value *v, int extra)
{
    double per = (double)(n->n_inputs - 1 + extra);
    return kiln_flops_elementwise(n, v) * (per < 1 ? 1 : per);
}

double kiln_flops_Sum(const kiln_node *n, const kiln_value *v) { return flops_variadic(n, v, 0); }
double kiln_flops_Mean(const kiln_node *n, const kiln_value *v) { return flops_variadic(n, v, 1); }
double kiln_flops_Max(const kiln_node *n, const kiln_value *v) { return flops_variadic(n, v, 0); }
double kiln_flops_Min(const kiln_node *n, const kiln_value *v) { return flops_variadic(n, v, 0); }

/* Mod-10/13: fmod 0 is the integer remainder with the divisor's sign
 * (Python's %), fmod 1 C's fmod (the dividend's sign). ONNX requires fmod 1
 * for floats. */
kiln_status kiln_shape_Mod(const kiln_node *n, kiln_value *v)
{
    kiln_status st = shape_binary(n, v, NUMERIC, 0);
    if (st != KILN_OK) return st;
    bool fmod = n->params.mod.fmod; /* 0 or 1: checked by the parser */
    const kiln_value *a = kiln_in(n, v, 0);
    if (!fmod && (FLOATS & DT(a->dtype)))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "Mod of '%s' (%s) needs fmod=1: ONNX defines fmod=0 for integers only",
                         a->name, kiln_dtype_name(a->dtype));
    return KILN_OK;
}

kiln_status kiln_shape_Mish(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, FLOATS); }
kiln_status kiln_shape_Softplus(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, FLOATS); }
kiln_status kiln_shape_Softsign(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, FLOATS); }
kiln_status kiln_shape_Elu(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, FLOATS); }
kiln_status kiln_shape_Selu(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, FLOATS); }
kiln_status kiln_shape_ThresholdedRelu(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, FLOATS); }

/* Celu-12: alpha must not be 0 (x / alpha): the parser refuses it. */
kiln_status kiln_shape_Celu(const kiln_node *n, kiln_value *v) { return shape_unary(n, v, FLOATS); }
