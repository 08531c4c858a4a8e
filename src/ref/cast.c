/* Conversions between kiln's dtypes, and the kernels that are (almost) only
 * a conversion or a copy: Cast, Identity, Dropout (inference).
 *
 * Every conversion goes through one of two intermediates chosen by the
 * source: f64 for float sources (holds f32/f16/bf16/f8 exactly) and i64 for
 * integer and bool sources (holds all of them exactly). Rules (ONNX Cast):
 *  - float -> narrower float: round to nearest even, +-inf when out of range
 *    (f8e4m3fn: Cast-19's saturate table). f64 sources reach f16/bf16/f8
 *    through f32 rounded to odd, which makes the second rounding exact
 *    (a single correct rounding, as numpy's astype).
 *  - float -> integer: truncation toward zero. Out of range (and NaN) is
 *    undefined in ONNX; kiln gives what x86's cvtt* gives onnxruntime and
 *    numpy: the "integer indefinite" INT_MIN of 32 or 64 bits, narrowed to
 *    8 bits by dropping the high bits.
 *  - integer -> narrower integer: the high bits are dropped (two's complement).
 *  - anything -> bool: nonzero (NaN included) is true; bool -> number: 0 / 1. */
#include "ref/elementwise.h"
#include "ref/ref.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

uint8_t kiln_ref_f32_to_f8e4m3(float f, bool saturate)
{
    uint8_t sign = signbit(f) ? 0x80 : 0;
    if (isnan(f)) return sign | 0x7f;           /* E4M3FN keeps the sign of NaN */
    uint8_t over = sign | (saturate ? 0x7e : 0x7f); /* +-448, or NaN */
    float a = fabsf(f);
    if (isinf(a)) return over;
    if (a < 0.015625f) /* below 2^-6, the smallest normal: subnormal steps of 2^-9 */
        return sign | (uint8_t)rintf(a * 512.0f); /* 8 is exactly the smallest normal's encoding */
    int e;
    float fr = frexpf(a, &e); /* a = fr * 2^e, fr in [0.5, 1) */
    int q = (int)rintf(fr * 16.0f); /* 1.mmm scaled by 8: 8..16 after rounding */
    if (q == 16) {
        q = 8;
        e++;
    }
    int ex = e - 1 + 7; /* biased exponent, >= 1 here */
    /* exponent 15 with mantissa 7 is NaN: the largest finite value is 448 */
    if (ex > 15 || (ex == 15 && q == 15)) return over;
    return sign | (uint8_t)(ex << 3) | (uint8_t)(q - 8);
}

/* d rounded to f32 toward odd: a later round-to-nearest-even into a format
 * of at most 11 significant bits is then the correct rounding of d. */
static float f32_round_odd(double d)
{
    float f = (float)d;
    if ((double)f == d || isnan(d)) return f;
    uint32_t u;
    memcpy(&u, &f, 4);
    if (u & 1) return f;
    /* nearest-even picked the even neighbour; the odd one is across d */
    return nextafterf(f, (double)f > d ? -INFINITY : INFINITY);
}

static int32_t f64_to_i32(double d)
{
    return d > -2147483649.0 && d < 2147483648.0 ? (int32_t)d : INT32_MIN;
}

static int64_t f64_to_i64(double d)
{
    return d >= -9223372036854775808.0 && d < 9223372036854775808.0 ? (int64_t)d : INT64_MIN;
}

static void load_f64(kiln_dtype t, const void *src, double *d, int64_t n)
{
    switch (t) {
    case KILN_F32: {
        const float *s = src;
        for (int64_t i = 0; i < n; i++) d[i] = s[i];
        break;
    }
    case KILN_F64: memcpy(d, src, (size_t)n * sizeof *d); break;
    case KILN_F16: {
        const uint16_t *s = src;
        for (int64_t i = 0; i < n; i++) d[i] = kiln_f16_to_f32(s[i]);
        break;
    }
    case KILN_BF16: {
        const uint16_t *s = src;
        for (int64_t i = 0; i < n; i++) d[i] = kiln_bf16_to_f32(s[i]);
        break;
    }
    case KILN_F8E4M3: {
        const uint8_t *s = src;
        for (int64_t i = 0; i < n; i++) d[i] = kiln_f8e4m3_to_f32(s[i]);
        break;
    }
    default: break; /* not a float: callers route integers through load_i64 */
    }
}

static void load_i64(kiln_dtype t, const void *src, int64_t *d, int64_t n)
{
    switch (t) {
    case KILN_I64: memcpy(d, src, (size_t)n * sizeof *d); break;
    case KILN_I32: {
        const int32_t *s = src;
        for (int64_t i = 0; i < n; i++) d[i] = s[i];
        break;
    }
    case KILN_I8: {
        const int8_t *s = src;
        for (int64_t i = 0; i < n; i++) d[i] = s[i];
        break;
    }
    case KILN_U8: {
        const uint8_t *s = src;
        for (int64_t i = 0; i < n; i++) d[i] = s[i];
        break;
    }
    case KILN_BOOL: {
        const uint8_t *s = src;
        for (int64_t i = 0; i < n; i++) d[i] = s[i] != 0;
        break;
    }
    default: break; /* floats go through load_f64 */
    }
}

static void store_from_f64(kiln_dtype t, void *dst, const double *s, int64_t n, bool sat)
{
    switch (t) {
    case KILN_F32: {
        float *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = (float)s[i];
        break;
    }
    case KILN_F64: memcpy(dst, s, (size_t)n * sizeof *s); break;
    case KILN_F16: {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = kiln_f32_to_f16(f32_round_odd(s[i]));
        break;
    }
    case KILN_BF16: {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = kiln_f32_to_bf16(f32_round_odd(s[i]));
        break;
    }
    case KILN_F8E4M3: {
        uint8_t *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = kiln_ref_f32_to_f8e4m3(f32_round_odd(s[i]), sat);
        break;
    }
    case KILN_I64: {
        int64_t *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = f64_to_i64(s[i]);
        break;
    }
    case KILN_I32: {
        int32_t *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = f64_to_i32(s[i]);
        break;
    }
    case KILN_I8: {
        int8_t *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = (int8_t)(uint8_t)(uint32_t)f64_to_i32(s[i]);
        break;
    }
    case KILN_U8: {
        uint8_t *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = (uint8_t)(uint32_t)f64_to_i32(s[i]);
        break;
    }
    case KILN_BOOL: {
        uint8_t *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = s[i] != 0; /* NaN != 0 is true */
        break;
    }
    case KILN_DTYPE_UNDEFINED: break;
    }
}

static void store_from_i64(kiln_dtype t, void *dst, const int64_t *s, int64_t n, bool sat)
{
    switch (t) {
    case KILN_F32: {
        float *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = (float)s[i];
        break;
    }
    case KILN_F64: {
        double *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = (double)s[i];
        break;
    }
    case KILN_F16: case KILN_BF16: case KILN_F8E4M3: {
        /* exact through f64 up to 2^53, beyond any f16/f8 range; bf16 of
         * larger integers may see a double rounding */
        double buf[KILN_EW_CHUNK];
        size_t es = kiln_dtype_size(t);
        for (int64_t k = 0; k < n; k += KILN_EW_CHUNK) {
            int64_t m = n - k < KILN_EW_CHUNK ? n - k : KILN_EW_CHUNK;
            for (int64_t i = 0; i < m; i++) buf[i] = (double)s[k + i];
            store_from_f64(t, (char *)dst + (size_t)k * es, buf, m, sat);
        }
        break;
    }
    case KILN_I64: memcpy(dst, s, (size_t)n * sizeof *s); break;
    case KILN_I32: {
        int32_t *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = (int32_t)(uint32_t)(uint64_t)s[i];
        break;
    }
    case KILN_I8: {
        int8_t *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = (int8_t)(uint8_t)(uint64_t)s[i];
        break;
    }
    case KILN_U8: {
        uint8_t *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = (uint8_t)(uint64_t)s[i];
        break;
    }
    case KILN_BOOL: {
        uint8_t *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = s[i] != 0;
        break;
    }
    case KILN_DTYPE_UNDEFINED: break;
    }
}

/* The widenings the kernels use most, without the f64 detour. */
static bool convert_direct(kiln_dtype dt, void *dst, kiln_dtype st, const void *src, int64_t n)
{
    if (dt == KILN_F32 && (st == KILN_F16 || st == KILN_BF16)) {
        const uint16_t *s = src;
        float *d = dst;
        if (st == KILN_F16)
            for (int64_t i = 0; i < n; i++) d[i] = kiln_f16_to_f32(s[i]);
        else
            for (int64_t i = 0; i < n; i++) d[i] = kiln_bf16_to_f32(s[i]);
        return true;
    }
    if (st == KILN_F32 && (dt == KILN_F16 || dt == KILN_BF16)) {
        const float *s = src;
        uint16_t *d = dst;
        if (dt == KILN_F16)
            for (int64_t i = 0; i < n; i++) d[i] = kiln_f32_to_f16(s[i]);
        else
            for (int64_t i = 0; i < n; i++) d[i] = kiln_f32_to_bf16(s[i]);
        return true;
    }
    return false;
}

void kiln_ref_convert(kiln_dtype dt, void *dst, kiln_dtype st, const void *src, int64_t n, bool saturate)
{
    if (n <= 0) return;
    if (dt == st) {
        if (dst != src) memmove(dst, src, (size_t)n * kiln_dtype_size(st));
        return;
    }
    if (convert_direct(dt, dst, st, src, n)) return;
    bool from_float = kiln_dtype_is_float(st);
    if (from_float && st == KILN_F64) {
        store_from_f64(dt, dst, src, n, saturate);
        return;
    }
    if (from_float && dt == KILN_F64) {
        load_f64(st, src, dst, n);
        return;
    }
    if (!from_float && st == KILN_I64) {
        store_from_i64(dt, dst, src, n, saturate);
        return;
    }
    if (!from_float && dt == KILN_I64) {
        load_i64(st, src, dst, n);
        return;
    }
    size_t ss = kiln_dtype_size(st), ds = kiln_dtype_size(dt);
    for (int64_t k = 0; k < n; k += KILN_EW_CHUNK) {
        int64_t m = n - k < KILN_EW_CHUNK ? n - k : KILN_EW_CHUNK;
        const char *s = (const char *)src + (size_t)k * ss;
        char *d = (char *)dst + (size_t)k * ds;
        if (from_float) {
            double buf[KILN_EW_CHUNK];
            load_f64(st, s, buf, m);
            store_from_f64(dt, d, buf, m, saturate);
        } else {
            int64_t buf[KILN_EW_CHUNK];
            load_i64(st, s, buf, m);
            store_from_i64(dt, d, buf, m, saturate);
        }
    }
}

kiln_status kiln_ref_Cast(const kiln_node *n, kiln_value *v)
{
    kiln_value *x = kiln_in(n, v, 0), *y = kiln_out(n, v, 0);
    /* saturate (Cast-19) only changes conversions into float8 types */
    bool sat = n->params.cast.saturate;
    kiln_ref_convert(y->dtype, y->data, x->dtype, x->data, kiln_shape_numel(&x->shape), sat);
    return KILN_OK;
}

kiln_status kiln_ref_Identity(const kiln_node *n, kiln_value *v)
{
    kiln_value *x = kiln_in(n, v, 0), *y = kiln_out(n, v, 0);
    if (y->data != x->data) memcpy(y->data, x->data, kiln_value_bytes(x));
    return KILN_OK;
}

/* Dropout in inference: Y = X, mask all true (ONNX Dropout-13: when
 * training_mode is false or absent, or ratio is 0, the op is the identity).
 * The shape rule refuses training with a nonzero ratio; this re-checks the
 * run-time values. */
kiln_status kiln_ref_Dropout(const kiln_node *n, kiln_value *v)
{
    kiln_value *x = kiln_in(n, v, 0), *ratio = kiln_in(n, v, 1), *train = kiln_in(n, v, 2);
    if (train && train->data && kiln_load_i64(train->dtype, train->data, 0)) {
        double r = ratio && ratio->data ? kiln_load_f64(ratio->dtype, ratio->data, 0) : 0.5;
        if (r != 0) return kiln_fail(KILN_ERR_UNSUPPORTED, "Dropout with training_mode true (ratio %g) is not supported", r);
    }
    kiln_value *y = kiln_out(n, v, 0), *mask = kiln_out(n, v, 1);
    if (y && y->data != x->data) memcpy(y->data, x->data, kiln_value_bytes(x));
    if (mask) memset(mask->data, 1, kiln_value_bytes(mask));
    return KILN_OK;
}
