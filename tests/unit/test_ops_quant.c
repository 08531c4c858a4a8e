/* Quantization ops: shape rules and reference kernels of QuantizeLinear,
 * DequantizeLinear, DynamicQuantizeLinear, QLinearConv, ConvInteger,
 * QLinearMatMul and MatMulInteger. Expected values are worked out by hand
 * from the ONNX spec (the comment next to each says how): rounding half to
 * even, saturation at both ends, per-tensor / per-axis / blocked scales,
 * zero points, float8e4m3fn with and without saturate, and the refusals
 * of shapes that do not fit, naming the node and the tensor. */
#include "testutil.h"
#include "opharness.h"
#include "ir/ops.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define D(...) ((int64_t[]){__VA_ARGS__})
#define F(...) ((float[]){__VA_ARGS__})
#define U8(...) ((uint8_t[]){__VA_ARGS__})
#define I8(...) ((int8_t[]){__VA_ARGS__})
#define I32(...) ((int32_t[]){__VA_ARGS__})

static void assert_shape(const kiln_value *v, int rank, const int64_t *d)
{
    assert_non_null(v);
    assert_int_equal(v->shape.rank, rank);
    for (int i = 0; i < rank; i++)
        if (v->shape.d[i] != d[i]) fail_msg("dim %d is %lld, expected %lld", i, (long long)v->shape.d[i], (long long)d[i]);
}

/* n elements of a u8 / i8 / f8 output as bytes (i8 as its two's complement) */
static void assert_bytes(const kiln_value *v, kiln_dtype dt, int n, const void *want)
{
    assert_non_null(v->data);
    assert_int_equal(v->dtype, dt);
    assert_int_equal(kiln_shape_numel(&v->shape), n);
    for (int i = 0; i < n; i++) {
        int got = dt == KILN_I8 ? ((const int8_t *)v->data)[i] : ((const uint8_t *)v->data)[i];
        int exp = dt == KILN_I8 ? ((const int8_t *)want)[i] : ((const uint8_t *)want)[i];
        if (got != exp) fail_msg("element %d is %d (0x%02x), expected %d (0x%02x)", i, got, got & 0xff, exp, exp & 0xff);
    }
}

static void assert_f32s(const kiln_value *v, int n, const float *want)
{
    assert_non_null(v->data);
    assert_int_equal(v->dtype, KILN_F32);
    assert_int_equal(kiln_shape_numel(&v->shape), n);
    for (int i = 0; i < n; i++)
        if (((const float *)v->data)[i] != want[i])
            fail_msg("element %d is %.9g, expected %.9g", i, ((const float *)v->data)[i], want[i]);
}

static void assert_i32s(const kiln_value *v, int n, const int32_t *want)
{
    assert_non_null(v->data);
    assert_int_equal(v->dtype, KILN_I32);
    assert_int_equal(kiln_shape_numel(&v->shape), n);
    for (int i = 0; i < n; i++)
        if (((const int32_t *)v->data)[i] != want[i])
            fail_msg("element %d is %d, expected %d", i, ((const int32_t *)v->data)[i], want[i]);
}

static void assert_fails(kt_op *t, kiln_status want, const char *needle)
{
    kiln_status st = kt_op_run(t);
    if (st != want) fail_msg("status %s (%s), expected %s", kiln_status_name(st), kiln_last_error(), kiln_status_name(want));
    if (needle && !strstr(kiln_last_error(), needle)) fail_msg("message '%s' lacks '%s'", kiln_last_error(), needle);
}

/* ---------------------------------------------------------------- QuantizeLinear */

static void test_quantize_per_tensor(void **state)
{
    (void)state;
    /* u8, scale 2, zero point 128: x / 2 = 0.5 1.5 2.5 -0.5 -1.5 127 500
     * -500 0.49995; half to even gives 0 2 2 0 -2 127 500 -500 0, + 128,
     * saturated to [0, 255]; NaN has no value in the spec: kiln gives the
     * zero point */
    kt_op *t = kt_op_new("QuantizeLinear", 13);
    kt_op_input(t, "x", KILN_F32, 1, D(10), F(1, 3, 5, -1, -3, 254, 1000, -1000, 0.9999f, NAN));
    kt_op_input(t, "s", KILN_F32, 0, NULL, F(2));
    kt_op_input(t, "z", KILN_U8, 0, NULL, U8(128));
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_bytes(kt_op_value(t, "y"), KILN_U8, 10, U8(128, 130, 130, 128, 126, 255, 255, 0, 128, 128));
    kt_op_free(t);

    /* i8, scale 1, zero point 0: -128.5 -127.5 126.5 127.5 -0.5 0.5 1.5
     * round to -128 -128 126 128 0 0 2, then -300 / 300 saturate */
    t = kt_op_new("QuantizeLinear", 10);
    kt_op_input(t, "x", KILN_F32, 1, D(9), F(-128.5f, -127.5f, 126.5f, 127.5f, -0.5f, 0.5f, 1.5f, -300, 300));
    kt_op_input(t, "s", KILN_F32, 1, D(1), F(1));
    kt_op_input(t, "z", KILN_I8, 1, D(1), I8(0));
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_bytes(kt_op_value(t, "y"), KILN_I8, 9, I8(-128, -128, 126, 127, 0, 0, 2, -128, 127));
    kt_op_free(t);

    /* no zero point: uint8 (zero point 0); version 21's output_dtype
     * (INT8 = 3) picks int8 instead: -3.5 -> -4, 2.5 -> 2 */
    t = kt_op_new("QuantizeLinear", 13);
    kt_op_input(t, "x", KILN_F32, 1, D(3), F(-3.5f, 2.5f, 7));
    kt_op_input(t, "s", KILN_F32, 0, NULL, F(1));
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_bytes(kt_op_value(t, "y"), KILN_U8, 3, U8(0, 2, 7));
    kt_op_free(t);
    t = kt_op_new("QuantizeLinear", 21);
    kt_op_input(t, "x", KILN_F32, 1, D(3), F(-3.5f, 2.5f, 7));
    kt_op_input(t, "s", KILN_F32, 0, NULL, F(1));
    kt_op_attr_int(t, "output_dtype", 3);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_bytes(kt_op_value(t, "y"), KILN_I8, 3, I8(-4, 2, 7));
    kt_op_free(t);

    /* int32 x: 7 / 2 = 3.5 -> 4, -5 / 2 = -2.5 -> -2 */
    t = kt_op_new("QuantizeLinear", 13);
    kt_op_input(t, "x", KILN_I32, 1, D(2), I32(7, -5));
    kt_op_input(t, "s", KILN_F32, 0, NULL, F(2));
    kt_op_input(t, "z", KILN_I8, 0, NULL, I8(0));
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_bytes(kt_op_value(t, "y"), KILN_I8, 2, I8(4, -2));
    kt_op_free(t);
}

static void test_quantize_per_axis_and_blocked(void **state)
{
    (void)state;
    /* axis 1 of [2,3], scales 1 2 4, zero points 0 10 20:
     * x / s = [[1,1,1],[-1,1.5,2.5]] -> [[1,1,1],[-1,2,2]] + zp, -1 saturating to 0 */
    for (int neg = 0; neg < 2; neg++) {
        kt_op *t = kt_op_new("QuantizeLinear", 13);
        kt_op_input(t, "x", KILN_F32, 2, D(2, 3), F(1, 2, 4, -1, 3, 10));
        kt_op_input(t, "s", KILN_F32, 1, D(3), F(1, 2, 4));
        kt_op_input(t, "z", KILN_U8, 1, D(3), U8(0, 10, 20));
        kt_op_attr_int(t, "axis", neg ? -1 : 1);
        kt_op_output(t, "y");
        assert_kiln_ok(kt_op_run(t));
        assert_bytes(kt_op_value(t, "y"), KILN_U8, 6, U8(1, 11, 21, 0, 12, 22));
        kt_op_free(t);
    }

    /* per-axis scales with one zero point for all (symmetric per-channel
     * int8): axis 0 of [2,2], scales 0.5 4, zero point -3:
     * [[1,-1],[10,-6]] / s = [[2,-2],[2.5,-1.5]] -> [[2,-2],[2,-2]] - 3 */
    kt_op *t = kt_op_new("QuantizeLinear", 13);
    kt_op_input(t, "x", KILN_F32, 2, D(2, 2), F(1, -1, 10, -6));
    kt_op_input(t, "s", KILN_F32, 1, D(2), F(0.5f, 4));
    kt_op_input(t, "z", KILN_I8, 0, NULL, I8(-3));
    kt_op_attr_int(t, "axis", 0);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_bytes(kt_op_value(t, "y"), KILN_I8, 4, I8(-1, -5, -1, -5));
    kt_op_free(t);

    /* blocked, axis 1, block_size 2: x [2,4], scale [2,2] = [[1,10],[2,0.5]]:
     * row 0: 1 2 | 30/10 40/10 -> 1 2 3 4; row 1: 4/2 5/2=2.5 | 1/0.5 2/0.5 -> 2 2 2 4 */
    t = kt_op_new("QuantizeLinear", 21);
    kt_op_input(t, "x", KILN_F32, 2, D(2, 4), F(1, 2, 30, 40, 4, 5, 1, 2));
    kt_op_input(t, "s", KILN_F32, 2, D(2, 2), F(1, 10, 2, 0.5f));
    kt_op_attr_int(t, "axis", 1);
    kt_op_attr_int(t, "block_size", 2);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_bytes(kt_op_value(t, "y"), KILN_U8, 8, U8(1, 2, 3, 4, 2, 2, 2, 4));
    kt_op_free(t);

    /* a last block shorter than block_size: 5 along the axis in blocks of
     * 2 -> 3 scales 1 2 4, zero points 0 1 2: 1 1 | 4/2 4/2 | 8/4, + zp */
    t = kt_op_new("QuantizeLinear", 21);
    kt_op_input(t, "x", KILN_F32, 2, D(1, 5), F(1, 1, 4, 4, 8));
    kt_op_input(t, "s", KILN_F32, 2, D(1, 3), F(1, 2, 4));
    kt_op_input(t, "z", KILN_U8, 2, D(1, 3), U8(0, 1, 2));
    kt_op_attr_int(t, "axis", -1);
    kt_op_attr_int(t, "block_size", 2);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_bytes(kt_op_value(t, "y"), KILN_U8, 5, U8(1, 1, 3, 3, 4));
    kt_op_free(t);
}

static void test_quantize_float8(void **state)
{
    (void)state;
    /* e4m3fn bytes: 0.5 = 2^-1 -> exponent 6, 0x30; 1.0625 is halfway
     * between 1.0 (mantissa 0) and 1.125: even 1.0 = 0x38; 1.1875 halfway
     * between 1.125 and 1.25 (mantissa 2): 0x3a; 448 = 0x7e, the largest;
     * 464 halfway between 448 and 480 (not finite): 448. With saturate
     * (the default) what is larger, and inf, becomes +-448; without it
     * NaN (0x7f, the sign kept). -0 keeps its sign. */
    const float x[] = {0.5f, 1.0625f, 1.1875f, 448, 464, 465, -1000, INFINITY, -0.0f};
    const uint8_t sat[] = {0x30, 0x38, 0x3a, 0x7e, 0x7e, 0x7e, 0xfe, 0x7e, 0x80};
    const uint8_t nosat[] = {0x30, 0x38, 0x3a, 0x7e, 0x7e, 0x7f, 0xff, 0x7f, 0x80};
    for (int s = 0; s < 2; s++) {
        kt_op *t = kt_op_new("QuantizeLinear", 19);
        kt_op_input(t, "x", KILN_F32, 1, D(9), x);
        kt_op_input(t, "s", KILN_F32, 0, NULL, F(1));
        kt_op_input(t, "z", KILN_F8E4M3, 0, NULL, U8(0));
        if (!s) kt_op_attr_int(t, "saturate", 0);
        kt_op_output(t, "y");
        assert_kiln_ok(kt_op_run(t));
        assert_bytes(kt_op_value(t, "y"), KILN_F8E4M3, 9, s ? sat : nosat);
        kt_op_free(t);
    }
    /* QuantizeLinear-13 has no float8 */
    kt_op *t = kt_op_new("QuantizeLinear", 13);
    kt_op_input(t, "x", KILN_F32, 1, D(1), NULL);
    kt_op_input(t, "s", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "z", KILN_F8E4M3, 0, NULL, NULL);
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_UNSUPPORTED, "float8e4m3fn");
    kt_op_free(t);
}

static void test_quantize_refusals(void **state)
{
    (void)state;
    /* a zero point shaped unlike its scale */
    kt_op *t = kt_op_new("QuantizeLinear", 13);
    kt_op_input(t, "x", KILN_F32, 2, D(2, 3), NULL);
    kt_op_input(t, "s", KILN_F32, 1, D(3), NULL);
    kt_op_input(t, "z", KILN_U8, 1, D(2), NULL);
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "node 'node' (QuantizeLinear): zero point 'z' has shape [2] but its scale 's' has [3]");
    kt_op_free(t);
    /* a per-axis scale of the wrong length */
    t = kt_op_new("QuantizeLinear", 13);
    kt_op_input(t, "x", KILN_F32, 2, D(2, 3), NULL);
    kt_op_input(t, "s", KILN_F32, 1, D(4), NULL);
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "scale 's' has 4 values but axis 1 of 'x' has 3");
    kt_op_free(t);
    /* per axis on an axis x does not have */
    t = kt_op_new("QuantizeLinear", 13);
    kt_op_input(t, "x", KILN_F32, 1, D(3), NULL);
    kt_op_input(t, "s", KILN_F32, 1, D(3), NULL);
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "axis 1 is out of range for rank 1");
    kt_op_free(t);
    /* a 2-D scale without block_size */
    t = kt_op_new("QuantizeLinear", 21);
    kt_op_input(t, "x", KILN_F32, 2, D(2, 4), NULL);
    kt_op_input(t, "s", KILN_F32, 2, D(2, 2), NULL);
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "without block_size");
    kt_op_free(t);
    /* blocks that do not fit: 4 along axis 1 in blocks of 3 is 2 blocks, not 1 */
    t = kt_op_new("QuantizeLinear", 21);
    kt_op_input(t, "x", KILN_F32, 2, D(2, 4), NULL);
    kt_op_input(t, "s", KILN_F32, 2, D(2, 1), NULL);
    kt_op_attr_int(t, "block_size", 3);
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "needs 2 blocks of block_size");
    kt_op_free(t);
    /* output_dtype that disagrees with the zero point, and one kiln lacks */
    t = kt_op_new("QuantizeLinear", 21);
    kt_op_input(t, "x", KILN_F32, 1, D(2), NULL);
    kt_op_input(t, "s", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "z", KILN_U8, 0, NULL, NULL);
    kt_op_attr_int(t, "output_dtype", 3);
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "'output_dtype' is 3 (i8) but zero point 'z' is u8");
    kt_op_free(t);
    t = kt_op_new("QuantizeLinear", 21);
    kt_op_input(t, "x", KILN_F32, 1, D(2), NULL);
    kt_op_input(t, "s", KILN_F32, 0, NULL, NULL);
    kt_op_attr_int(t, "output_dtype", 5);
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_UNSUPPORTED, "ONNX dtype 5 (int16) is not supported");
    kt_op_free(t);
    /* a negative block_size is refused by the parser, naming it */
    t = kt_op_new("QuantizeLinear", 21);
    kt_op_input(t, "x", KILN_F32, 1, D(2), NULL);
    kt_op_input(t, "s", KILN_F32, 0, NULL, NULL);
    kt_op_attr_int(t, "block_size", -2);
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_UNSUPPORTED, "'block_size' is -2");
    kt_op_free(t);
}

/* ---------------------------------------------------------------- DequantizeLinear */

static void test_dequantize(void **state)
{
    (void)state;
    /* i8, scale 0.5, zero point -1: (-128+1)/2 = -63.5, (0+1)/2, (127+1)/2 */
    kt_op *t = kt_op_new("DequantizeLinear", 10);
    kt_op_input(t, "x", KILN_I8, 1, D(3), I8(-128, 0, 127));
    kt_op_input(t, "s", KILN_F32, 0, NULL, F(0.5f));
    kt_op_input(t, "z", KILN_I8, 0, NULL, I8(-1));
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_f32s(kt_op_value(t, "y"), 3, F(-63.5f, 0.5f, 64));
    kt_op_free(t);

    /* per axis 0 of u8 [2,2]: row 0 (x - 10) * 0.5, row 1 (x - 0) * 2 */
    t = kt_op_new("DequantizeLinear", 13);
    kt_op_input(t, "x", KILN_U8, 2, D(2, 2), U8(10, 20, 10, 20));
    kt_op_input(t, "s", KILN_F32, 1, D(2), F(0.5f, 2));
    kt_op_input(t, "z", KILN_U8, 1, D(2), U8(10, 0));
    kt_op_attr_int(t, "axis", 0);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_f32s(kt_op_value(t, "y"), 4, F(0, 5, 20, 40));
    kt_op_free(t);

    /* int32 (no zero point), as a bias is dequantized */
    t = kt_op_new("DequantizeLinear", 13);
    kt_op_input(t, "x", KILN_I32, 1, D(2), I32(100000, -3));
    kt_op_input(t, "s", KILN_F32, 0, NULL, F(0.25f));
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_f32s(kt_op_value(t, "y"), 2, F(25000, -0.75f));
    kt_op_free(t);

    /* blocked, axis 1, block_size 2: [1,2 | 3,4] with scales 1 | 10 and
     * zero points 0 | 1 */
    t = kt_op_new("DequantizeLinear", 21);
    kt_op_input(t, "x", KILN_U8, 2, D(1, 4), U8(1, 2, 3, 4));
    kt_op_input(t, "s", KILN_F32, 2, D(1, 2), F(1, 10));
    kt_op_input(t, "z", KILN_U8, 2, D(1, 2), U8(0, 1));
    kt_op_attr_int(t, "axis", 1);
    kt_op_attr_int(t, "block_size", 2);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_f32s(kt_op_value(t, "y"), 4, F(1, 2, 20, 30));
    kt_op_free(t);

    /* float8e4m3fn: 0x38 = 1, 0xfe = -448, times 2 */
    t = kt_op_new("DequantizeLinear", 19);
    kt_op_input(t, "x", KILN_F8E4M3, 1, D(2), U8(0x38, 0xfe));
    kt_op_input(t, "s", KILN_F32, 0, NULL, F(2));
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_f32s(kt_op_value(t, "y"), 2, F(2, -896));
    kt_op_free(t);

    /* the output is the scale's dtype, or output_dtype from version 23
     * (FLOAT16 = 10) */
    t = kt_op_new("DequantizeLinear", 19);
    kt_op_input(t, "x", KILN_U8, 1, D(1), NULL);
    kt_op_input(t, "s", KILN_BF16, 0, NULL, NULL);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_int_equal(kt_op_value(t, "y")->dtype, KILN_BF16);
    kt_op_free(t);
    t = kt_op_new("DequantizeLinear", 23);
    kt_op_input(t, "x", KILN_U8, 1, D(2), U8(3, 0));
    kt_op_input(t, "s", KILN_F32, 0, NULL, F(0.5f));
    kt_op_attr_int(t, "output_dtype", 10);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_int_equal(kt_op_value(t, "y")->dtype, KILN_F16);
    assert_int_equal(((const uint16_t *)kt_op_value(t, "y")->data)[0], kiln_f32_to_f16(1.5f));
    kt_op_free(t);

    /* a zero point of another dtype than x */
    t = kt_op_new("DequantizeLinear", 13);
    kt_op_input(t, "x", KILN_U8, 1, D(2), NULL);
    kt_op_input(t, "s", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "z", KILN_I8, 0, NULL, NULL);
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "node 'node' (DequantizeLinear): zero point 'z' is i8 but 'x' is u8");
    kt_op_free(t);
}

/* ---------------------------------------------------------------- DynamicQuantizeLinear */

static void test_dynamic_quantize(void **state)
{
    (void)state;
    /* ONNX's example: range [-3, 2] -> scale 5/255 = 0.019607844 (f32),
     * zero point 3/scale = 153; x / scale = 0 102 -153 -127.49999 68.34
     * 25.5 (f32), rounded half to even (25.5 -> 26) + 153, saturated */
    kt_op *t = kt_op_new("DynamicQuantizeLinear", 11);
    kt_op_input(t, "x", KILN_F32, 1, D(6), F(0, 2, -3, -2.5f, 1.34f, 0.5f));
    kt_op_output(t, "y");
    kt_op_output(t, "s");
    kt_op_output(t, "z");
    assert_kiln_ok(kt_op_run(t));
    assert_bytes(kt_op_value(t, "y"), KILN_U8, 6, U8(153, 255, 0, 26, 221, 179));
    assert_shape(kt_op_value(t, "s"), 0, NULL);
    assert_f32s(kt_op_value(t, "s"), 1, F(5.0f / 255.0f));
    assert_bytes(kt_op_value(t, "z"), KILN_U8, 1, U8(153));
    kt_op_free(t);

    /* all zeros: the range is [0, 0], scale 1/255, zero point 0 */
    t = kt_op_new("DynamicQuantizeLinear", 11);
    kt_op_input(t, "x", KILN_F32, 1, D(2), F(0, 0));
    kt_op_output(t, "y");
    kt_op_output(t, "s");
    kt_op_output(t, "z");
    assert_kiln_ok(kt_op_run(t));
    assert_bytes(kt_op_value(t, "y"), KILN_U8, 2, U8(0, 0));
    assert_f32s(kt_op_value(t, "s"), 1, F(1.0f / 255.0f));
    assert_bytes(kt_op_value(t, "z"), KILN_U8, 1, U8(0));
    kt_op_free(t);
}

/* ---------------------------------------------------------------- QLinearConv, ConvInteger */

/* x u8 [1,1,3,3] = 1..9 with zero point 1: x' = 0..8. w u8 [2,1,2,2]:
 * channel 0 = 1 0 0 1 (zero point 0), channel 1 = 4 2 2 2 (zero point 2,
 * so 2 0 0 0). Unpadded 2x2 windows:
 *   acc0 = x'[i][j] + x'[i+1][j+1] = 4 6 10 12, + bias 10 = 14 16 20 22
 *   acc1 = 2 x'[i][j] = 0 2 6 8, + bias 0
 * x_scale 0.5, w_scale 1 | 0.5, y_scale 1: factors 0.5 | 0.25:
 *   y0 = 7 8 10 11, y1 = 0 0.5 1.5 2 -> 0 0 2 2 (ties to even) */
static kt_op *qlinearconv(kiln_dtype ydt, const void *yzp)
{
    kt_op *t = kt_op_new("QLinearConv", 10);
    kt_op_input(t, "x", KILN_U8, 4, D(1, 1, 3, 3), U8(1, 2, 3, 4, 5, 6, 7, 8, 9));
    kt_op_input(t, "xs", KILN_F32, 0, NULL, F(0.5f));
    kt_op_input(t, "xz", KILN_U8, 0, NULL, U8(1));
    kt_op_input(t, "w", KILN_U8, 4, D(2, 1, 2, 2), U8(1, 0, 0, 1, 4, 2, 2, 2));
    kt_op_input(t, "ws", KILN_F32, 1, D(2), F(1, 0.5f));
    kt_op_input(t, "wz", KILN_U8, 1, D(2), U8(0, 2));
    kt_op_input(t, "ys", KILN_F32, 0, NULL, F(1));
    kt_op_input(t, "yz", ydt, 0, NULL, yzp);
    kt_op_input(t, "B", KILN_I32, 1, D(2), I32(10, 0));
    kt_op_output(t, "y");
    return t;
}

static void test_qlinearconv(void **state)
{
    (void)state;
    /* u8 output, zero point 100 */
    kt_op *t = qlinearconv(KILN_U8, U8(100));
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 4, D(1, 2, 2, 2));
    assert_bytes(kt_op_value(t, "y"), KILN_U8, 8, U8(107, 108, 110, 111, 100, 100, 102, 102));
    kt_op_free(t);
    /* i8 output, zero point 120: channel 0 saturates at 127 */
    t = qlinearconv(KILN_I8, I8(120));
    assert_kiln_ok(kt_op_run(t));
    assert_bytes(kt_op_value(t, "y"), KILN_I8, 8, I8(127, 127, 127, 127, 120, 120, 122, 122));
    kt_op_free(t);

    /* per-channel w_scale of the wrong length, naming it */
    t = kt_op_new("QLinearConv", 10);
    kt_op_input(t, "x", KILN_U8, 4, D(1, 1, 3, 3), NULL);
    kt_op_input(t, "xs", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "xz", KILN_U8, 0, NULL, NULL);
    kt_op_input(t, "w", KILN_U8, 4, D(2, 1, 2, 2), NULL);
    kt_op_input(t, "ws", KILN_F32, 1, D(3), NULL);
    kt_op_input(t, "wz", KILN_U8, 1, D(3), NULL);
    kt_op_input(t, "ys", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "yz", KILN_U8, 0, NULL, NULL);
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "node 'node' (QLinearConv): 'ws' (w_scale) has shape [3]");
    kt_op_free(t);
}

static void test_convinteger(void **state)
{
    (void)state;
    /* x u8 [1,1,2,2] = 1 2 3 4, zero point 1: x' = 0 1 2 3; w all 1; pads 1:
     * the padding is the zero point (0 in x'), 2x2 window sums over
     *   0 0 0 0 / 0 0 1 0 / 0 2 3 0 / 0 0 0 0  ->  0 1 1 / 2 6 4 / 2 5 3 */
    kt_op *t = kt_op_new("ConvInteger", 10);
    kt_op_input(t, "x", KILN_U8, 4, D(1, 1, 2, 2), U8(1, 2, 3, 4));
    kt_op_input(t, "w", KILN_U8, 4, D(1, 1, 2, 2), U8(1, 1, 1, 1));
    kt_op_input(t, "xz", KILN_U8, 0, NULL, U8(1));
    kt_op_attr_ints(t, "pads", 4, D(1, 1, 1, 1));
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 4, D(1, 1, 3, 3));
    assert_i32s(kt_op_value(t, "y"), 9, I32(0, 1, 1, 2, 6, 4, 2, 5, 3));
    kt_op_free(t);

    /* group 2, 1-D, i8 x: channel 0 = 1 2 3 with w 1 1; channel 1 = 4 5 6
     * with w 2 0 and per-channel zero point 1 (w' = 1 -1): 3 5 | -1 -1 */
    t = kt_op_new("ConvInteger", 10);
    kt_op_input(t, "x", KILN_I8, 3, D(1, 2, 3), I8(1, 2, 3, 4, 5, 6));
    kt_op_input(t, "w", KILN_U8, 3, D(2, 1, 2), U8(1, 1, 2, 0));
    kt_op_input(t, "", KILN_I8, 0, NULL, NULL);
    kt_op_input(t, "wz", KILN_U8, 1, D(2), U8(0, 1));
    kt_op_attr_int(t, "group", 2);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_i32s(kt_op_value(t, "y"), 4, I32(3, 5, -1, -1));
    kt_op_free(t);

    /* stride 2 and dilation 2 on [1,1,5]: taps x[2o] and x[2o+2]:
     * 1+3, 3+5 (x = 1..5, w 1 1) */
    t = kt_op_new("ConvInteger", 10);
    kt_op_input(t, "x", KILN_U8, 3, D(1, 1, 5), U8(1, 2, 3, 4, 5));
    kt_op_input(t, "w", KILN_U8, 3, D(1, 1, 2), U8(1, 1));
    kt_op_attr_ints(t, "strides", 1, D(2));
    kt_op_attr_ints(t, "dilations", 1, D(2));
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_i32s(kt_op_value(t, "y"), 2, I32(4, 8));
    kt_op_free(t);
}

/* ---------------------------------------------------------------- QLinearMatMul, MatMulInteger */

static void test_qlinearmatmul(void **state)
{
    (void)state;
    /* per row of a: scales 0.5 0.25, zero points 2 6: a' = [[0,2],[0,2]];
     * per column of b: scales 1 2, zero points 0 1: b' = [[1,0],[0,2]];
     * acc = [[0,4],[0,4]]; factors a_s * b_s / 1 = [[0.5,1],[0.25,0.5]];
     * y = [[0,4],[0,2]] + 10 */
    kt_op *t = kt_op_new("QLinearMatMul", 10);
    kt_op_input(t, "a", KILN_U8, 2, D(2, 2), U8(2, 4, 6, 8));
    kt_op_input(t, "as", KILN_F32, 1, D(2), F(0.5f, 0.25f));
    kt_op_input(t, "az", KILN_U8, 1, D(2), U8(2, 6));
    kt_op_input(t, "b", KILN_U8, 2, D(2, 2), U8(1, 1, 0, 3));
    kt_op_input(t, "bs", KILN_F32, 1, D(2), F(1, 2));
    kt_op_input(t, "bz", KILN_U8, 1, D(2), U8(0, 1));
    kt_op_input(t, "ys", KILN_F32, 0, NULL, F(1));
    kt_op_input(t, "yz", KILN_U8, 0, NULL, U8(10));
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_bytes(kt_op_value(t, "y"), KILN_U8, 4, U8(10, 14, 10, 12));
    kt_op_free(t);

    /* batch of 2 against one b, i8: acc = 1+2, 3+4 = 3 7; y_scale 2 (f16
     * scales, version 21): 1.5 3.5 -> 2 4 (ties to even), + zero point -128;
     * with y_scale 0.01: 300 700 saturate at 127 */
    for (int big = 0; big < 2; big++) {
        t = kt_op_new("QLinearMatMul", 21);
        kt_op_input(t, "a", KILN_I8, 3, D(2, 1, 2), I8(1, 2, 3, 4));
        kt_op_input(t, "as", KILN_F16, 0, NULL, (uint16_t[]){kiln_f32_to_f16(1)});
        kt_op_input(t, "az", KILN_I8, 0, NULL, I8(0));
        kt_op_input(t, "b", KILN_I8, 2, D(2, 1), I8(1, 1));
        kt_op_input(t, "bs", KILN_F16, 0, NULL, (uint16_t[]){kiln_f32_to_f16(1)});
        kt_op_input(t, "bz", KILN_I8, 0, NULL, I8(0));
        kt_op_input(t, "ys", KILN_F16, 0, NULL, (uint16_t[]){kiln_f32_to_f16(big ? 0.01f : 2)});
        kt_op_input(t, "yz", KILN_I8, 0, NULL, I8(big ? 0 : -128));
        kt_op_output(t, "y");
        assert_kiln_ok(kt_op_run(t));
        assert_shape(kt_op_value(t, "y"), 3, D(2, 1, 1));
        assert_bytes(kt_op_value(t, "y"), KILN_I8, 2, big ? I8(127, 127) : I8(-126, -124));
        kt_op_free(t);
    }

    /* a per-row scale of the wrong length */
    t = kt_op_new("QLinearMatMul", 10);
    kt_op_input(t, "a", KILN_U8, 2, D(2, 2), NULL);
    kt_op_input(t, "as", KILN_F32, 1, D(3), NULL);
    kt_op_input(t, "az", KILN_U8, 1, D(3), NULL);
    kt_op_input(t, "b", KILN_U8, 2, D(2, 2), NULL);
    kt_op_input(t, "bs", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "bz", KILN_U8, 0, NULL, NULL);
    kt_op_input(t, "ys", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "yz", KILN_U8, 0, NULL, NULL);
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "node 'node' (QLinearMatMul): 'as' has 3 values; one per row of 'a' is 2");
    kt_op_free(t);
}

static void test_matmulinteger(void **state)
{
    (void)state;
    /* per-row a zero points 1 4: A' = [[0,1,2],[0,1,2]]; per-column b zero
     * points 0 -1: B' = [[1,0],[2,-1],[3,-2]]; A' B' = [[8,-5],[8,-5]] */
    kt_op *t = kt_op_new("MatMulInteger", 10);
    kt_op_input(t, "A", KILN_U8, 2, D(2, 3), U8(1, 2, 3, 4, 5, 6));
    kt_op_input(t, "B", KILN_I8, 2, D(3, 2), I8(1, -1, 2, -2, 3, -3));
    kt_op_input(t, "az", KILN_U8, 1, D(2), U8(1, 4));
    kt_op_input(t, "bz", KILN_I8, 1, D(2), I8(0, -1));
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    assert_i32s(kt_op_value(t, "Y"), 4, I32(8, -5, 8, -5));
    kt_op_free(t);

    /* 1-D A: [1,2,3] . columns of B = 14, -14 */
    t = kt_op_new("MatMulInteger", 10);
    kt_op_input(t, "A", KILN_U8, 1, D(3), U8(1, 2, 3));
    kt_op_input(t, "B", KILN_I8, 2, D(3, 2), I8(1, -1, 2, -2, 3, -3));
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "Y"), 1, D(2));
    assert_i32s(kt_op_value(t, "Y"), 2, I32(14, -14));
    kt_op_free(t);

    /* batched per-row zero points [2,1,1] = 5 7: A' = [[[0,1]],[[0,1]]];
     * B = [2,3]^T: 3 3 */
    t = kt_op_new("MatMulInteger", 10);
    kt_op_input(t, "A", KILN_U8, 3, D(2, 1, 2), U8(5, 6, 7, 8));
    kt_op_input(t, "B", KILN_U8, 2, D(2, 1), U8(2, 3));
    kt_op_input(t, "az", KILN_U8, 3, D(2, 1, 1), U8(5, 7));
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    assert_i32s(kt_op_value(t, "Y"), 2, I32(3, 3));
    kt_op_free(t);

    /* a b zero point that varies along K is not per column */
    t = kt_op_new("MatMulInteger", 10);
    kt_op_input(t, "A", KILN_U8, 2, D(2, 3), NULL);
    kt_op_input(t, "B", KILN_U8, 2, D(3, 2), NULL);
    kt_op_input(t, "", KILN_U8, 0, NULL, NULL);
    kt_op_input(t, "bz", KILN_U8, 2, D(3, 2), NULL);
    kt_op_output(t, "Y");
    assert_fails(t, KILN_ERR_SHAPE, "'bz' has shape [3,2]");
    kt_op_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantize_per_tensor),
        cmocka_unit_test(test_quantize_per_axis_and_blocked),
        cmocka_unit_test(test_quantize_float8),
        cmocka_unit_test(test_quantize_refusals),
        cmocka_unit_test(test_dequantize),
        cmocka_unit_test(test_dynamic_quantize),
        cmocka_unit_test(test_qlinearconv),
        cmocka_unit_test(test_convinteger),
        cmocka_unit_test(test_qlinearmatmul),
        cmocka_unit_test(test_matmulinteger),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
