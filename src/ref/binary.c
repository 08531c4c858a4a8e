/* Two-input elementwise kernels with numpy broadcasting (ONNX
 * Broadcasting.md): Add Sub Mul Div Pow, PRelu (slope broadcast one way),
 * Equal Greater Less, And; and Where (three inputs).
 *
 * Each op runs in a compute dtype: f32 for f32/f16/bf16 (one rounding into
 * f16/bf16 afterwards is exact for + - * /, which f32 carries with more than
 * twice their precision), f64, i64 for every integer dtype (wrap-around on
 * the way back out gives i32/i8/u8 arithmetic modulo 2^bits, as numpy and
 * onnxruntime compute it), bool. Operands that are not in the compute dtype
 * are converted a chunk at a time; the row loops never switch on the dtype.
 * kiln_bcast collapses equal shapes and scalar operands into one row. */
#include "ref/broadcast.h"
#include "ref/elementwise.h"
#include "ref/ref.h"

#include <math.h>
#include <string.h>

typedef enum bin_op { B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_PRELU, B_EQUAL, B_GREATER, B_LESS, B_AND } bin_op;

static const char *const BIN_NAMES[] = {"Add", "Sub", "Mul", "Div", "Pow", "PRelu", "Equal", "Greater", "Less", "And"};

/* One row: y[i] = op(a[i*sa], b[i*sb]) with sa, sb in {0, 1}. Returns false
 * when the data was bad (integer division by zero). */
typedef bool (*bin_row_fn)(bin_op op, void *y, const void *a, int64_t sa, const void *b, int64_t sb, int64_t n);

/* The loop of one op: x and z are the two operands, of type TA; the four
 * stride cases are split so that the compiler vectorizes each. */
#define BIN_LOOP(TA, TY, expr)                                                         \
    do {                                                                               \
        const TA *pa = a, *pb = b;                                                     \
        TY *py = y;                                                                    \
        if (sa && sb) {                                                                \
            for (int64_t i = 0; i < n; i++) {                                          \
                const TA x = pa[i], z = pb[i];                                         \
                py[i] = (expr);                                                        \
            }                                                                          \
        } else if (sb) {                                                               \
            const TA x = pa[0];                                                        \
            for (int64_t i = 0; i < n; i++) {                                          \
                const TA z = pb[i];                                                    \
                py[i] = (expr);                                                        \
            }                                                                          \
        } else if (sa) {                                                               \
            const TA z = pb[0];                                                        \
            for (int64_t i = 0; i < n; i++) {                                          \
                const TA x = pa[i];                                                    \
                py[i] = (expr);                                                        \
            }                                                                          \
        } else {                                                                       \
            const TA x = pa[0], z = pb[0];                                             \
            const TY r = (expr);                                                       \
            for (int64_t i = 0; i < n; i++) py[i] = r;                                 \
        }                                                                              \
    } while (0)

static bool row_f32(bin_op op, void *y, const void *a, int64_t sa, const void *b, int64_t sb, int64_t n)
{
    switch (op) {
    case B_ADD: BIN_LOOP(float, float, x + z); break;
    case B_SUB: BIN_LOOP(float, float, x - z); break;
    case B_MUL: BIN_LOOP(float, float, x * z); break;
    case B_DIV: BIN_LOOP(float, float, x / z); break;
    case B_POW: BIN_LOOP(float, float, (float)pow(x, z)); break;
    case B_PRELU: BIN_LOOP(float, float, x < 0 ? x * z : x); break;
    case B_EQUAL: BIN_LOOP(float, uint8_t, x == z); break;
    case B_GREATER: BIN_LOOP(float, uint8_t, x > z); break;
    case B_LESS: BIN_LOOP(float, uint8_t, x < z); break;
    case B_AND: return false;
    }
    return true;
}

static bool row_f64(bin_op op, void *y, const void *a, int64_t sa, const void *b, int64_t sb, int64_t n)
{
    switch (op) {
    case B_ADD: BIN_LOOP(double, double, x + z); break;
    case B_SUB: BIN_LOOP(double, double, x - z); break;
    case B_MUL: BIN_LOOP(double, double, x * z); break;
    case B_DIV: BIN_LOOP(double, double, x / z); break;
    case B_POW: BIN_LOOP(double, double, pow(x, z)); break;
    case B_PRELU: BIN_LOOP(double, double, x < 0 ? x * z : x); break;
    case B_EQUAL: BIN_LOOP(double, uint8_t, x == z); break;
    case B_GREATER: BIN_LOOP(double, uint8_t, x > z); break;
    case B_LESS: BIN_LOOP(double, uint8_t, x < z); break;
    case B_AND: return false;
    }
    return true;
}

/* Wrapping integer arithmetic: signed overflow is undefined in C, so it is
 * done on uint64 and converted back. */
static inline int64_t add_w(int64_t x, int64_t z) { return (int64_t)((uint64_t)x + (uint64_t)z); }
static inline int64_t sub_w(int64_t x, int64_t z) { return (int64_t)((uint64_t)x - (uint64_t)z); }
static inline int64_t mul_w(int64_t x, int64_t z) { return (int64_t)((uint64_t)x * (uint64_t)z); }

/* Integer Div truncates toward zero (C division; onnxruntime and ONNX's
 * reference implementation do the same, numpy's // floors instead). */
static inline int64_t div_t0(int64_t x, int64_t z, bool *bad)
{
    if (z == 0) {
        *bad = true;
        return 0;
    }
    return z == -1 ? sub_w(0, x) : x / z; /* INT64_MIN / -1 wraps */
}

/* Integer power, as std::pow(x, e) truncated: exact for e >= 0 (by
 * squaring, wrapping like repeated multiplication); for e < 0 the result
 * is 1 / x^-e truncated, nonzero only for x = +-1; 0 to a negative power is
 * bad data (numpy refuses it, onnxruntime gives an undefined conversion). */
static inline int64_t pow_int(int64_t x, int64_t e, bool *bad)
{
    if (e < 0) {
        if (x == 1) return 1;
        if (x == -1) return (e & 1) ? -1 : 1;
        if (x == 0) *bad = true;
        return 0;
    }
    int64_t r = 1;
    while (e) {
        if (e & 1) r = mul_w(r, x);
        x = mul_w(x, x);
        e >>= 1;
    }
    return r;
}

static bool row_i64(bin_op op, void *y, const void *a, int64_t sa, const void *b, int64_t sb, int64_t n)
{
    bool bad = false;
    switch (op) {
    case B_ADD: BIN_LOOP(int64_t, int64_t, add_w(x, z)); break;
    case B_SUB: BIN_LOOP(int64_t, int64_t, sub_w(x, z)); break;
    case B_MUL: BIN_LOOP(int64_t, int64_t, mul_w(x, z)); break;
    case B_DIV: BIN_LOOP(int64_t, int64_t, div_t0(x, z, &bad)); break;
    case B_POW: BIN_LOOP(int64_t, int64_t, pow_int(x, z, &bad)); break;
    case B_PRELU: BIN_LOOP(int64_t, int64_t, x < 0 ? mul_w(x, z) : x); break;
    case B_EQUAL: BIN_LOOP(int64_t, uint8_t, x == z); break;
    case B_GREATER: BIN_LOOP(int64_t, uint8_t, x > z); break;
    case B_LESS: BIN_LOOP(int64_t, uint8_t, x < z); break;
    case B_AND: return false;
    }
    return !bad;
}

static bool row_bool(bin_op op, void *y, const void *a, int64_t sa, const void *b, int64_t sb, int64_t n)
{
    switch (op) {
    case B_AND: BIN_LOOP(uint8_t, uint8_t, x && z); break;
    case B_EQUAL: BIN_LOOP(uint8_t, uint8_t, !x == !z); break;
    default: return false;
    }
    return true;
}

#undef BIN_LOOP

typedef struct bin_plan {
    bin_row_fn fn;
    kiln_dtype dom;     /* dtype the row function reads */
    kiln_dtype dom_out; /* dtype it writes */
} bin_plan;

static kiln_dtype compute_dtype(kiln_dtype t)
{
    switch (t) {
    case KILN_F32: case KILN_F16: case KILN_BF16: return KILN_F32;
    case KILN_F64: return KILN_F64;
    case KILN_I64: case KILN_I32: case KILN_I8: case KILN_U8: return KILN_I64;
    case KILN_BOOL: return KILN_BOOL;
    default: return KILN_DTYPE_UNDEFINED;
    }
}

static bin_row_fn row_for(kiln_dtype dom)
{
    switch (dom) {
    case KILN_F32: return row_f32;
    case KILN_F64: return row_f64;
    case KILN_I64: return row_i64;
    case KILN_BOOL: return row_bool;
    default: return NULL;
    }
}

static bool plan_binary(bin_op op, kiln_dtype ta, kiln_dtype tb, bin_plan *p)
{
    kiln_dtype dom = compute_dtype(ta);
    if (op == B_POW && tb != ta) {
        /* Pow-15: the exponent may have another dtype; the result has the
         * base's. An integer base with a float exponent is computed in f64
         * and truncated, as onnxruntime's std::pow and ONNX's
         * np.power(a, b).astype(a.dtype) do. */
        kiln_dtype db = compute_dtype(tb);
        if (dom == KILN_BOOL || db == KILN_BOOL || !dom || !db) return false;
        if (dom != db) dom = dom == KILN_F32 && db == KILN_I64 ? KILN_F32 : KILN_F64;
    } else if (ta != tb) {
        return false;
    }
    p->dom = dom;
    p->dom_out = op == B_EQUAL || op == B_GREATER || op == B_LESS || op == B_AND ? KILN_BOOL : dom;
    p->fn = row_for(dom);
    if (!p->fn || (op == B_AND && dom != KILN_BOOL)) return false;
    if (dom == KILN_BOOL && op != B_AND && op != B_EQUAL) return false;
    return true;
}

/* A: first input, B: second (broadcast into Y's shape: both ways, or for
 * PRelu only B into A's). */
static kiln_status run_binary(const kiln_node *n, kiln_value *v, bin_op op)
{
    kiln_value *A = kiln_in(n, v, 0), *B = kiln_in(n, v, 1), *Y = kiln_out(n, v, 0);
    bin_plan p;
    if (!plan_binary(op, A->dtype, B->dtype, &p))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "%s of '%s' (%s) and '%s' (%s) is not supported", BIN_NAMES[op],
                         A->name, kiln_dtype_name(A->dtype), B->name, kiln_dtype_name(B->dtype));
    kiln_bcast it;
    const kiln_shape *in[2] = {&A->shape, &B->shape};
    kiln_status st = kiln_bcast_init(&it, &Y->shape, 2, in);
    if (st != KILN_OK) return kiln_fail_prefix(st, "'%s' and '%s' into '%s': ", A->name, B->name, Y->name);

    const size_t ea = kiln_dtype_size(A->dtype), eb = kiln_dtype_size(B->dtype), ey = kiln_dtype_size(Y->dtype);
    const bool ca = A->dtype != p.dom, cb = B->dtype != p.dom, cy = Y->dtype != p.dom_out;
    const int64_t sa = it.inner_stride[0], sb = it.inner_stride[1];
    const char *a = A->data, *b = B->data;
    char *y = Y->data;
    bool ok = true;
    int64_t yo;
    /* 8-byte slots hold any compute dtype */
    double bufa[KILN_EW_CHUNK], bufb[KILN_EW_CHUNK], bufy[KILN_EW_CHUNK];
    while (kiln_bcast_next(&it, &yo)) {
        const char *ra = a + (size_t)it.off[0] * ea, *rb = b + (size_t)it.off[1] * eb;
        char *ry = y + (size_t)yo * ey;
        if (!ca && !cb && !cy) {
            ok &= p.fn(op, ry, ra, sa, rb, sb, it.inner);
            continue;
        }
        for (int64_t k = 0; k < it.inner; k += KILN_EW_CHUNK) {
            int64_t m = it.inner - k < KILN_EW_CHUNK ? it.inner - k : KILN_EW_CHUNK;
            const void *pa = ra + (size_t)(k * sa) * ea, *pb = rb + (size_t)(k * sb) * eb;
            if (ca) {
                kiln_ref_convert(p.dom, bufa, A->dtype, pa, sa ? m : 1, true);
                pa = bufa;
            }
            if (cb) {
                kiln_ref_convert(p.dom, bufb, B->dtype, pb, sb ? m : 1, true);
                pb = bufb;
            }
            void *py = cy ? (void *)bufy : ry + (size_t)k * ey;
            ok &= p.fn(op, py, pa, sa, pb, sb, m);
            if (cy) kiln_ref_convert(Y->dtype, ry + (size_t)k * ey, p.dom_out, bufy, m, true);
        }
    }
    if (!ok) {
        if (op == B_POW) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "Pow: integer 0 in '%s' raised to a negative power", A->name);
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "Div: integer division by zero (divisor '%s')", B->name);
    }
    return KILN_OK;
}

kiln_status kiln_ref_Add(const kiln_node *n, kiln_value *v) { return run_binary(n, v, B_ADD); }
kiln_status kiln_ref_Sub(const kiln_node *n, kiln_value *v) { return run_binary(n, v, B_SUB); }
kiln_status kiln_ref_Mul(const kiln_node *n, kiln_value *v) { return run_binary(n, v, B_MUL); }
kiln_status kiln_ref_Div(const kiln_node *n, kiln_value *v) { return run_binary(n, v, B_DIV); }
kiln_status kiln_ref_Pow(const kiln_node *n, kiln_value *v) { return run_binary(n, v, B_POW); }
kiln_status kiln_ref_PRelu(const kiln_node *n, kiln_value *v) { return run_binary(n, v, B_PRELU); }
kiln_status kiln_ref_Equal(const kiln_node *n, kiln_value *v) { return run_binary(n, v, B_EQUAL); }
kiln_status kiln_ref_Greater(const kiln_node *n, kiln_value *v) { return run_binary(n, v, B_GREATER); }
kiln_status kiln_ref_Less(const kiln_node *n, kiln_value *v) { return run_binary(n, v, B_LESS); }
kiln_status kiln_ref_And(const kiln_node *n, kiln_value *v) { return run_binary(n, v, B_AND); }

/* Where copies elements, so one loop per element size serves every dtype. */
#define WHERE_LOOP(T)                                                      \
    do {                                                                   \
        T *po = o;                                                         \
        const T *px = x, *py = y;                                          \
        for (int64_t i = 0; i < n; i++) po[i] = c[i * sc] ? px[i * sx] : py[i * sy]; \
    } while (0)

static void where_row(size_t es, void *o, const uint8_t *c, int64_t sc, const void *x, int64_t sx, const void *y,
                      int64_t sy, int64_t n)
{
    switch (es) {
    case 1: WHERE_LOOP(uint8_t); break;
    case 2: WHERE_LOOP(uint16_t); break;
    case 4: WHERE_LOOP(uint32_t); break;
    case 8: WHERE_LOOP(uint64_t); break;
    default: break;
    }
}
#undef WHERE_LOOP

kiln_status kiln_ref_Where(const kiln_node *n, kiln_value *v)
{
    kiln_value *C = kiln_in(n, v, 0), *X = kiln_in(n, v, 1), *Yv = kiln_in(n, v, 2), *O = kiln_out(n, v, 0);
    if (C->dtype != KILN_BOOL || X->dtype != Yv->dtype)
        return kiln_fail(KILN_ERR_SHAPE, "Where: condition '%s' must be bool and '%s' (%s), '%s' (%s) alike", C->name,
                         X->name, kiln_dtype_name(X->dtype), Yv->name, kiln_dtype_name(Yv->dtype));
    kiln_bcast it;
    const kiln_shape *in[3] = {&C->shape, &X->shape, &Yv->shape};
    kiln_status st = kiln_bcast_init(&it, &O->shape, 3, in);
    if (st != KILN_OK) return kiln_fail_prefix(st, "'%s', '%s' and '%s' into '%s': ", C->name, X->name, Yv->name, O->name);
    size_t es = kiln_dtype_size(X->dtype);
    const uint8_t *c = C->data;
    const char *x = X->data, *y = Yv->data;
    char *o = O->data;
    int64_t oo;
    while (kiln_bcast_next(&it, &oo))
        where_row(es, o + (size_t)oo * es, c + it.off[0], it.inner_stride[0], x + (size_t)it.off[1] * es,
                  it.inner_stride[1], y + (size_t)it.off[2] * es, it.inner_stride[2], it.inner);
    return KILN_OK;
}
