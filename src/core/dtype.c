/* Element types: names, sizes, and the 16/8-bit float conversions. */
#include "core/core.h"

#include <math.h>
#include <string.h>

const char *kiln_dtype_name(kiln_dtype t)
{
    switch (t) {
    case KILN_F32: return "f32";
    case KILN_U8: return "u8";
    case KILN_I8: return "i8";
    case KILN_I32: return "i32";
    case KILN_I64: return "i64";
    case KILN_BOOL: return "bool";
    case KILN_F16: return "f16";
    case KILN_F64: return "f64";
    case KILN_BF16: return "bf16";
    case KILN_F8E4M3: return "f8e4m3";
    case KILN_DTYPE_UNDEFINED: break;
    }
    return "undefined";
}

size_t kiln_dtype_size(kiln_dtype t)
{
    switch (t) {
    case KILN_F32: case KILN_I32: return 4;
    case KILN_U8: case KILN_I8: case KILN_BOOL: case KILN_F8E4M3: return 1;
    case KILN_I64: case KILN_F64: return 8;
    case KILN_F16: case KILN_BF16: return 2;
    case KILN_DTYPE_UNDEFINED: break;
    }
    return 0;
}

bool kiln_dtype_valid(kiln_dtype t) { return kiln_dtype_size(t) != 0; }

bool kiln_dtype_is_float(kiln_dtype t)
{
    return t == KILN_F32 || t == KILN_F16 || t == KILN_F64 || t == KILN_BF16 || t == KILN_F8E4M3;
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float kiln_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        /* subnormal: value = man * 2^-24 */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t kiln_f32_to_f16(float f)
{
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) return sign | 0x7c00 | (a > 0x7f800000u ? 0x200 : 0);
    if (a >= 0x477ff000u) return sign | 0x7c00; /* rounds to >= 65520: inf */
    if (a < 0x38800000u) {
        /* subnormal or zero in f16: round a * 2^24 to nearest even */
        float v = bits_f32(a) * 16777216.0f;
        return sign | (uint16_t)lrintf(v);
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1); /* round to nearest even */
    return sign | (uint16_t)((r - 0x38000000u) >> 13);
}

float kiln_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t kiln_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

/* E4M3FN: bias 7, no infinities, 0x7f/0xff are NaN, max 448. */
float kiln_f8e4m3_to_f32(uint8_t v)
{
    int sign = v & 0x80, exp = (v >> 3) & 0xf, man = v & 7;
    float r;
    if (exp == 0xf && man == 7) return NAN;
    if (exp == 0)
        r = ldexpf((float)man, -9);
    else
        r = ldexpf(1.0f + (float)man / 8.0f, exp - 7);
    return sign ? -r : r;
}

uint8_t kiln_f32_to_f8e4m3(float f)
{
    if (isnan(f)) return 0x7f;
    uint8_t sign = signbit(f) ? 0x80 : 0;
    float a = fabsf(f);
    if (a >= 448.0f) return sign | 0x7e; /* saturate */
    /* find the nearest representable value by the step of a's binade */
    int e;
    frexpf(a, &e); /* a = m * 2^e, m in [0.5,1) */
    int exp = e - 1 + 7;
    float step = exp <= 0 ? ldexpf(1.0f, -9) : ldexpf(1.0f, e - 1 - 3);
    float q = rintf(a / step) * step;
    if (q == 0.0f) return sign;
    frexpf(q, &e);
    exp = e - 1 + 7;
    if (exp <= 0) return sign | (uint8_t)lrintf(q / ldexpf(1.0f, -9));
    int man = (int)lrintf((q / ldexpf(1.0f, e - 1) - 1.0f) * 8.0f);
    return sign | (uint8_t)(exp << 3) | (uint8_t)man;
}

double kiln_load_f64(kiln_dtype t, const void *data, int64_t i)
{
    switch (t) {
    case KILN_F32: return ((const float *)data)[i];
    case KILN_F64: return ((const double *)data)[i];
    case KILN_F16: return kiln_f16_to_f32(((const uint16_t *)data)[i]);
    case KILN_BF16: return kiln_bf16_to_f32(((const uint16_t *)data)[i]);
    case KILN_F8E4M3: return kiln_f8e4m3_to_f32(((const uint8_t *)data)[i]);
    case KILN_U8: return ((const uint8_t *)data)[i];
    case KILN_I8: return ((const int8_t *)data)[i];
    case KILN_I32: return ((const int32_t *)data)[i];
    case KILN_I64: return (double)((const int64_t *)data)[i];
    case KILN_BOOL: return ((const uint8_t *)data)[i] != 0;
    case KILN_DTYPE_UNDEFINED: break;
    }
    return 0;
}

/* Float to integer conversion is undefined in C when the value does not fit
 * (a fuzzed Clip bound of 3e32 stored into an int64 constant): saturate, and
 * NaN becomes 0, so every converted value is defined (narrower integer types
 * then wrap as they did, like numpy's astype). 2^63 is the first
 * double past INT64_MAX; -2^63 is exact. */
static int64_t sat_i64(double v)
{
    if (v != v) return 0;
    if (v >= 9223372036854775808.0) return INT64_MAX;
    if (v < -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
}

int64_t kiln_load_i64(kiln_dtype t, const void *data, int64_t i)
{
    switch (t) {
    case KILN_I64: return ((const int64_t *)data)[i];
    case KILN_I32: return ((const int32_t *)data)[i];
    case KILN_U8: return ((const uint8_t *)data)[i];
    case KILN_I8: return ((const int8_t *)data)[i];
    case KILN_BOOL: return ((const uint8_t *)data)[i] != 0;
    default: return sat_i64(kiln_load_f64(t, data, i));
    }
}

void kiln_store_f64(kiln_dtype t, void *data, int64_t i, double v)
{
    switch (t) {
    case KILN_F32: ((float *)data)[i] = (float)v; break;
    case KILN_F64: ((double *)data)[i] = v; break;
    case KILN_F16: ((uint16_t *)data)[i] = kiln_f32_to_f16((float)v); break;
    case KILN_BF16: ((uint16_t *)data)[i] = kiln_f32_to_bf16((float)v); break;
    case KILN_F8E4M3: ((uint8_t *)data)[i] = kiln_f32_to_f8e4m3((float)v); break;
    case KILN_U8: ((uint8_t *)data)[i] = (uint8_t)sat_i64(v); break;
    case KILN_I8: ((int8_t *)data)[i] = (int8_t)sat_i64(v); break;
    case KILN_I32: ((int32_t *)data)[i] = (int32_t)sat_i64(v); break;
    case KILN_I64: ((int64_t *)data)[i] = sat_i64(v); break;
    case KILN_BOOL: ((uint8_t *)data)[i] = v != 0; break;
    case KILN_DTYPE_UNDEFINED: break;
    }
}

void kiln_widen_f64(kiln_dtype t, const void *src, double *dst, int64_t n)
{
    switch (t) {
    case KILN_F32: for (int64_t i = 0; i < n; i++) dst[i] = ((const float *)src)[i]; break;
    case KILN_F64: if (n) memcpy(dst, src, (size_t)n * sizeof *dst); break;
    case KILN_F16: for (int64_t i = 0; i < n; i++) dst[i] = kiln_f16_to_f32(((const uint16_t *)src)[i]); break;
    case KILN_BF16: for (int64_t i = 0; i < n; i++) dst[i] = kiln_bf16_to_f32(((const uint16_t *)src)[i]); break;
    case KILN_U8: for (int64_t i = 0; i < n; i++) dst[i] = ((const uint8_t *)src)[i]; break;
    case KILN_I8: for (int64_t i = 0; i < n; i++) dst[i] = ((const int8_t *)src)[i]; break;
    case KILN_I32: for (int64_t i = 0; i < n; i++) dst[i] = ((const int32_t *)src)[i]; break;
    case KILN_I64: for (int64_t i = 0; i < n; i++) dst[i] = (double)((const int64_t *)src)[i]; break;
    default: for (int64_t i = 0; i < n; i++) dst[i] = kiln_load_f64(t, src, i); break;
    }
}

void kiln_narrow_f64(kiln_dtype t, const double *src, void *dst, int64_t n)
{
    switch (t) {
    case KILN_F32: for (int64_t i = 0; i < n; i++) ((float *)dst)[i] = (float)src[i]; break;
    case KILN_F64: if (n) memcpy(dst, src, (size_t)n * sizeof *src); break;
    case KILN_F16: for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = kiln_f32_to_f16((float)src[i]); break;
    case KILN_BF16: for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = kiln_f32_to_bf16((float)src[i]); break;
    default: for (int64_t i = 0; i < n; i++) kiln_store_f64(t, dst, i, src[i]); break;
    }
}
