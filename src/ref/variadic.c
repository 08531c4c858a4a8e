/* Variadic elementwise kernels with numpy broadcasting: Sum, Mean, Max, Min
 * (1..N inputs), and Mod (two inputs, fmod 0 or 1).
 *
 * Sum, Mean, Max and Min fold their inputs into an accumulator of the
 * output's shape in a compute dtype, f64 for every float dtype (a sum of f32,
 * f16 or bf16 values is rounded once, on the way out) and i64 for the
 * integers (Max/Min only: exact), then convert it into the output. Max and
 * Min propagate NaN as numpy's maximum/minimum do. */
#include "ref/broadcast.h"
#include "ref/elementwise.h"
#include "ref/ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum var_op { V_SUM, V_MEAN, V_MAX, V_MIN } var_op;

static bool is_int_dt(kiln_dtype t) { return t == KILN_I64 || t == KILN_I32 || t == KILN_I8 || t == KILN_U8; }
static bool is_float_dt(kiln_dtype t) { return t == KILN_F32 || t == KILN_F64 || t == KILN_F16 || t == KILN_BF16; }

static inline double max_f(double a, double b) { return a != a || a > b ? a : b; } /* NaN wins */
static inline double min_f(double a, double b) { return a != a || a < b ? a : b; }

/* acc[i] op= x[i*sx], i < n (first: acc[i] = x[i*sx]) */
static void fold_f64(var_op op, bool first, double *acc, const double *x, int64_t sx, int64_t n)
{
    if (first) {
        for (int64_t i = 0; i < n; i++) acc[i] = x[i * sx];
        return;
    }
    switch (op) {
    case V_SUM: case V_MEAN: for (int64_t i = 0; i < n; i++) acc[i] += x[i * sx]; break;
    case V_MAX: for (int64_t i = 0; i < n; i++) acc[i] = max_f(acc[i], x[i * sx]); break;
    case V_MIN: for (int64_t i = 0; i < n; i++) acc[i] = min_f(acc[i], x[i * sx]); break;
    }
}

static void fold_i64(var_op op, bool first, int64_t *acc, const int64_t *x, int64_t sx, int64_t n)
{
    if (first || op == V_SUM || op == V_MEAN) { /* integers reach Max and Min only */
        for (int64_t i = 0; i < n; i++) acc[i] = x[i * sx];
        return;
    }
    if (op == V_MAX)
        for (int64_t i = 0; i < n; i++) acc[i] = x[i * sx] > acc[i] ? x[i * sx] : acc[i];
    else
        for (int64_t i = 0; i < n; i++) acc[i] = x[i * sx] < acc[i] ? x[i * sx] : acc[i];
}

static kiln_status run_variadic(const kiln_node *n, kiln_value *v, var_op op)
{
    static const char *const names[] = {"Sum", "Mean", "Max", "Min"};
    kiln_value *y = kiln_out(n, v, 0);
    const bool fl = is_float_dt(y->dtype);
    if (!fl && !(is_int_dt(y->dtype) && (op == V_MAX || op == V_MIN)))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "%s into '%s' (%s) is not supported", names[op], y->name,
                         kiln_dtype_name(y->dtype));
    const kiln_dtype dom = fl ? KILN_F64 : KILN_I64;
    const int64_t cnt = kiln_shape_numel(&y->shape);
    /* 8-byte elements: the output itself when it has the compute dtype */
    void *acc = y->dtype == dom ? y->data : malloc((size_t)(cnt > 0 ? cnt : 1) * 8);
    if (!acc) return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of memory in %s of '%s'", names[op], y->name);
    kiln_status st = KILN_OK;
    for (int k = 0; k < n->n_inputs && st == KILN_OK && cnt > 0; k++) {
        const kiln_value *x = kiln_in(n, v, k);
        if (!x || x->dtype != y->dtype) {
            st = kiln_fail(KILN_ERR_SHAPE, "%s: input %d must have the dtype of '%s' (%s)", names[op], k, y->name,
                           kiln_dtype_name(y->dtype));
            break;
        }
        kiln_bcast it;
        const kiln_shape *in[1] = {&x->shape};
        if ((st = kiln_bcast_init(&it, &y->shape, 1, in)) != KILN_OK) {
            st = kiln_fail_prefix(st, "'%s' into '%s': ", x->name, y->name);
            break;
        }
        const size_t es = kiln_dtype_size(x->dtype);
        const int64_t sx = it.inner_stride[0];
        int64_t yo;
        union {
            double f[KILN_EW_CHUNK];
            int64_t i[KILN_EW_CHUNK];
        } buf;
        while (kiln_bcast_next(&it, &yo)) {
            const char *row = (const char *)x->data + (size_t)it.off[0] * es;
            for (int64_t j = 0; j < it.inner; j += KILN_EW_CHUNK) {
                int64_t m = it.inner - j < KILN_EW_CHUNK ? it.inner - j : KILN_EW_CHUNK;
                const void *px = row + (size_t)(j * sx) * es;
                if (x->dtype != dom) {
                    kiln_ref_convert(dom, &buf, x->dtype, px, sx ? m : 1, true);
                    px = &buf;
                }
                if (fl)
                    fold_f64(op, k == 0, (double *)acc + yo + j, px, sx, m);
                else
                    fold_i64(op, k == 0, (int64_t *)acc + yo + j, px, sx, m);
            }
        }
    }
    if (st == KILN_OK && op == V_MEAN) {
        double *a = acc;
        for (int64_t i = 0; i < cnt; i++) a[i] /= (double)n->n_inputs;
    }
    if (acc != y->data) {
        if (st == KILN_OK && cnt > 0) kiln_ref_convert(y->dtype, y->data, dom, acc, cnt, true);
        free(acc);
    }
    return st;
}

kiln_status kiln_ref_Sum(const kiln_node *n, kiln_value *v) { return run_variadic(n, v, V_SUM); }
kiln_status kiln_ref_Mean(const kiln_node *n, kiln_value *v) { return run_variadic(n, v, V_MEAN); }
kiln_status kiln_ref_Max(const kiln_node *n, kiln_value *v) { return run_variadic(n, v, V_MAX); }
kiln_status kiln_ref_Min(const kiln_node *n, kiln_value *v) { return run_variadic(n, v, V_MIN); }

/* ---- Mod-10/13. Integers (in i64; exact for every integer dtype kiln has):
 * fmod 0 is the remainder with the divisor's sign (Python's %, numpy's
 * mod), fmod 1 C's truncating remainder (numpy's fmod); a zero divisor is
 * bad data, refused as Div refuses it. Floats (fmod 1 only, in f64: fmod is
 * exact, so the result is the f32/f16/bf16 one): C's fmod, NaN for a zero
 * divisor. */

static inline int64_t mod_int(int64_t x, int64_t z, bool py, bool *bad)
{
    if (z == 0) {
        *bad = true;
        return 0;
    }
    if (z == -1) return 0; /* INT64_MIN % -1 overflows in C */
    int64_t r = x % z;
    if (py && r != 0 && ((r < 0) != (z < 0))) r += z;
    return r;
}

kiln_status kiln_ref_Mod(const kiln_node *n, kiln_value *v)
{
    kiln_value *A = kiln_in(n, v, 0), *B = kiln_in(n, v, 1), *Y = kiln_out(n, v, 0);
    const bool fmod_ = n->params.mod.fmod;
    const bool fl = is_float_dt(A->dtype);
    if (A->dtype != B->dtype || (!fl && !is_int_dt(A->dtype)))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "Mod of '%s' (%s) and '%s' (%s) is not supported", A->name,
                         kiln_dtype_name(A->dtype), B->name, kiln_dtype_name(B->dtype));
    if (fl && !fmod_)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "Mod of '%s' (%s) needs fmod=1: ONNX defines fmod=0 for integers only",
                         A->name, kiln_dtype_name(A->dtype));
    const kiln_dtype dom = fl ? KILN_F64 : KILN_I64;
    kiln_bcast it;
    const kiln_shape *in[2] = {&A->shape, &B->shape};
    kiln_status st = kiln_bcast_init(&it, &Y->shape, 2, in);
    if (st != KILN_OK) return kiln_fail_prefix(st, "'%s' and '%s' into '%s': ", A->name, B->name, Y->name);
    const size_t es = kiln_dtype_size(A->dtype);
    const int64_t sa = it.inner_stride[0], sb = it.inner_stride[1];
    union {
        double f[KILN_EW_CHUNK];
        int64_t i[KILN_EW_CHUNK];
    } ba, bb, by;
    bool bad = false;
    int64_t yo;
    while (kiln_bcast_next(&it, &yo)) {
        const char *ra = (const char *)A->data + (size_t)it.off[0] * es, *rb = (const char *)B->data + (size_t)it.off[1] * es;
        for (int64_t j = 0; j < it.inner; j += KILN_EW_CHUNK) {
            int64_t m = it.inner - j < KILN_EW_CHUNK ? it.inner - j : KILN_EW_CHUNK;
            kiln_ref_convert(dom, &ba, A->dtype, ra + (size_t)(j * sa) * es, sa ? m : 1, true);
            kiln_ref_convert(dom, &bb, B->dtype, rb + (size_t)(j * sb) * es, sb ? m : 1, true);
            if (fl)
                for (int64_t i = 0; i < m; i++) by.f[i] = fmod(ba.f[i * sa], bb.f[i * sb]);
            else
                for (int64_t i = 0; i < m; i++) by.i[i] = mod_int(ba.i[i * sa], bb.i[i * sb], !fmod_, &bad);
            kiln_ref_convert(Y->dtype, (char *)Y->data + (size_t)(yo + j) * es, dom, &by, m, true);
        }
    }
    if (bad) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "Mod: integer division by zero (divisor '%s')", B->name);
    return KILN_OK;
}
