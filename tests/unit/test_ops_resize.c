/* Resize and Pad: shape rules (exact, symbolic, unknown parameters, errors)
 * and reference kernels.
 *
 * Expected kernel values were computed with ONNX's own reference evaluator
 * (onnx 1.23.2, onnx.reference.ReferenceEvaluator on a one-node model with
 * the same inputs and attributes), printed with %.9g and pasted here; the
 * few it cannot compute (negative pads) were worked out by hand. Where the
 * ONNX test suite has the same case, its expected value agrees (e.g.
 * resize_downsample_scales_linear_align_corners: [1, 3.142857]). */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "ir/ops.h"
#include "opharness.h"

#define D(...) ((const int64_t[]){__VA_ARGS__})
#define F(...) ((const float[]){__VA_ARGS__})
#define NF(...) ((int)(sizeof((const float[]){__VA_ARGS__}) / sizeof(float)))

static void assert_shape(kt_op *t, const char *name, int rank, const int64_t *want)
{
    kiln_value *v = kt_op_value(t, name);
    assert_non_null(v);
    assert_int_equal(v->shape.rank, rank);
    for (int i = 0; i < rank; i++)
        if (v->shape.d[i] != want[i])
            fail_msg("%s dim %d: got %lld want %lld", name, i, (long long)v->shape.d[i], (long long)want[i]);
}

static void assert_close(const float *got, const float *want, int64_t n, float tol)
{
    for (int64_t i = 0; i < n; i++) {
        float err = fabsf(got[i] - want[i]);
        if (!(err <= tol * (1.0f + fabsf(want[i]))))
            fail_msg("element %lld: got %.9g want %.9g", (long long)i, got[i], want[i]);
    }
}

static const float *out_f32(kt_op *t, int64_t numel)
{
    kiln_value *v = kt_op_value(t, "Y");
    assert_non_null(v);
    assert_int_equal(v->dtype, KILN_F32);
    assert_non_null(v->data);
    assert_int_equal(kiln_shape_numel(&v->shape), numel);
    return v->data;
}

/* Resize with X, optional roi, and scales (sizes omitted). */
static kt_op *rz_scales(int opset, kiln_dtype dt, int rank, const int64_t *dims, const void *x, const float *roi,
                        int nroi, const float *scales, int nsc)
{
    kt_op *t = kt_op_new("Resize", opset);
    kt_op_input(t, "X", dt, rank, dims, x);
    if (roi) kt_op_input(t, "roi", KILN_F32, 1, D(nroi), roi);
    else kt_op_input(t, "", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "scales", KILN_F32, 1, D(nsc), scales);
    kt_op_output(t, "Y");
    return t;
}

/* Resize with X, optional roi, no scales, and sizes. */
static kt_op *rz_sizes(int opset, kiln_dtype dt, int rank, const int64_t *dims, const void *x, const float *roi,
                       int nroi, const int64_t *sizes, int nsz)
{
    kt_op *t = kt_op_new("Resize", opset);
    kt_op_input(t, "X", dt, rank, dims, x);
    if (roi) kt_op_input(t, "roi", KILN_F32, 1, D(nroi), roi);
    else kt_op_input(t, "", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "sizes", KILN_I64, 1, D(nsz), sizes);
    kt_op_output(t, "Y");
    return t;
}

static const float X22[] = {1, 2, 3, 4};
static const float X24[] = {1, 2, 3, 4, 5, 6, 7, 8};
static const float X44[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
/* x55[i] = i^1.5, i = 0..24: uneven enough that every tap weight matters */
static float X55[25];

static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < 25; i++) X55[i] = (float)pow((double)i, 1.5);
    return 0;
}

/* ---- Resize shapes */

static void test_resize_shape_scales_symbolic_batch(void **state)
{
    (void)state;
    /* floor(4 * 2) = 8, floor(6 * 0.5) = 3; 5 * 0.6f = 3.00000004 floors to 3;
     * the batch symbol passes through its scale of 1 */
    static const char *const sym[] = {"N", NULL, NULL, NULL, NULL};
    kt_op *t = kt_op_new("Resize", 13);
    kt_op_input_sym(t, "X", KILN_F32, 5, D(-1, 3, 4, 6, 5), sym);
    kt_op_input(t, "", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "scales", KILN_F32, 1, D(5), F(1, 1, 2, 0.5f, 0.6f));
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    int64_t n = kt_op_value(t, "X")->shape.d[0];
    assert_true(n < 0 && n != KILN_DIM_UNKNOWN);
    assert_shape(t, "Y", 5, D(n, 3, 8, 3, 3));
    kt_op_free(t);
}

static void test_resize_shape_symbolic_resized_axis(void **state)
{
    (void)state;
    /* a symbolic dim times 2 is not a known dim */
    static const char *const sym[] = {NULL, NULL, "H", NULL};
    kt_op *t = kt_op_new("Resize", 19);
    kt_op_input_sym(t, "X", KILN_F32, 4, D(1, 3, -1, 6), sym);
    kt_op_input(t, "", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "scales", KILN_F32, 1, D(4), F(1, 1, 2, 2));
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 4, D(1, 3, KILN_DIM_UNKNOWN, 12));
    kt_op_free(t);
}

static void test_resize_shape_unknown_params(void **state)
{
    (void)state;
    static const char *const sym[] = {"N", NULL, NULL, NULL};
    /* scales computed at run time: every axis may change */
    kt_op *t = kt_op_new("Resize", 13);
    kt_op_input_sym(t, "X", KILN_F32, 4, D(-1, 3, 4, 6), sym);
    kt_op_input(t, "", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "scales", KILN_F32, 1, D(4), NULL);
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 4, D(KILN_DIM_UNKNOWN, KILN_DIM_UNKNOWN, KILN_DIM_UNKNOWN, KILN_DIM_UNKNOWN));
    kt_op_free(t);

    /* with axes (Resize-18), the others keep their dims and symbols */
    t = kt_op_new("Resize", 18);
    kt_op_input_sym(t, "X", KILN_F32, 4, D(-1, 3, 4, 6), sym);
    kt_op_input(t, "", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "sizes", KILN_I64, 1, D(2), NULL);
    kt_op_output(t, "Y");
    kt_op_attr_ints(t, "axes", 2, D(2, -1));
    assert_kiln_ok(kt_op_run(t));
    int64_t n = kt_op_value(t, "X")->shape.d[0];
    assert_shape(t, "Y", 4, D(n, 3, KILN_DIM_UNKNOWN, KILN_DIM_UNKNOWN));
    kt_op_free(t);
}

static void test_resize_shape_sizes_and_aspect(void **state)
{
    (void)state;
    /* stretch: sizes as given, even over a symbolic input dim */
    static const char *const sym[] = {NULL, NULL, "H", NULL};
    kt_op *t = kt_op_new("Resize", 18);
    kt_op_input_sym(t, "X", KILN_F32, 4, D(1, 3, -1, 6), sym);
    kt_op_input(t, "", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "sizes", KILN_I64, 1, D(2), D(8, 8));
    kt_op_attr_ints(t, "axes", 2, D(2, 3));
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 4, D(1, 3, 8, 8));
    kt_op_free(t);

    /* not_larger: scale = min(8/4, 8/6) = 4/3, dims round(4 * 4/3) = 5, 8;
     * not_smaller: scale = 2, dims 8, 12 */
    const char *pol[] = {"not_larger", "not_smaller"};
    const int64_t want[2][2] = {{5, 8}, {8, 12}};
    for (int p = 0; p < 2; p++) {
        t = kt_op_new("Resize", 18);
        kt_op_input(t, "X", KILN_F32, 4, D(1, 3, 4, 6), NULL);
        kt_op_input(t, "", KILN_F32, 0, NULL, NULL);
        kt_op_input(t, "", KILN_F32, 0, NULL, NULL);
        kt_op_input(t, "sizes", KILN_I64, 1, D(2), D(8, 8));
        kt_op_attr_ints(t, "axes", 2, D(2, 3));
        kt_op_attr_string(t, "keep_aspect_ratio_policy", pol[p]);
        kt_op_output(t, "Y");
        assert_kiln_ok(kt_op_run(t));
        assert_shape(t, "Y", 4, D(1, 3, want[p][0], want[p][1]));
        kt_op_free(t);
    }
}

static void test_resize_shape_errors(void **state)
{
    (void)state;
    /* both scales and sizes */
    kt_op *t = kt_op_new("Resize", 13);
    kt_op_input(t, "X", KILN_F32, 2, D(2, 2), NULL);
    kt_op_input(t, "", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "scales", KILN_F32, 1, D(2), F(2, 2));
    kt_op_input(t, "sizes", KILN_I64, 1, D(2), D(4, 4));
    kt_op_output(t, "Y");
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    kt_op_free(t);

    /* neither (opset 13's empty scales and no sizes) */
    t = rz_scales(13, KILN_F32, 2, D(2, 2), NULL, NULL, 0, F(0), 0);
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    kt_op_free(t);

    /* wrong count */
    t = rz_scales(13, KILN_F32, 4, D(1, 1, 2, 2), NULL, NULL, 0, F(2, 2), 2);
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    assert_non_null(strstr(kiln_last_error(), "scales"));
    kt_op_free(t);

    /* non-positive scale */
    t = rz_scales(13, KILN_F32, 2, D(2, 2), NULL, NULL, 0, F(1, 0), 2);
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    kt_op_free(t);

    /* unknown mode: unsupported, not a contradiction */
    t = rz_scales(13, KILN_F32, 2, D(2, 2), NULL, NULL, 0, F(2, 2), 2);
    kt_op_attr_string(t, "mode", "bilinear");
    assert_int_equal(kt_op_run(t), KILN_ERR_UNSUPPORTED);
    assert_non_null(strstr(kiln_last_error(), "bilinear"));
    kt_op_free(t);

    /* repeated axis */
    t = kt_op_new("Resize", 18);
    kt_op_input(t, "X", KILN_F32, 2, D(2, 2), NULL);
    kt_op_input(t, "", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "scales", KILN_F32, 1, D(2), F(2, 2));
    kt_op_attr_ints(t, "axes", 2, D(1, -1));
    kt_op_output(t, "Y");
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    kt_op_free(t);
}

/* ---- Resize kernels */

static void test_resize_linear_half_pixel_up(void **state)
{
    (void)state;
    kt_op *t = rz_scales(19, KILN_F32, 4, D(1, 1, 2, 2), X22, NULL, 0, F(1, 1, 2, 2), 4);
    kt_op_attr_string(t, "mode", "linear");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 4, D(1, 1, 4, 4));
    static const float want[] = {1, 1.25f, 1.75f, 2, 1.5f, 1.75f, 2.25f, 2.5f,
                                 2.5f, 2.75f, 3.25f, 3.5f, 3, 3.25f, 3.75f, 4};
    assert_close(out_f32(t, 16), want, 16, 1e-6f);
    kt_op_free(t);
}

static void test_resize_linear_align_corners_fractional_width(void **state)
{
    (void)state;
    /* 4 * 0.6 = 2.4 wide: x = 1 samples 1 * 3 / 1.4 = 2.142857 */
    kt_op *t = rz_scales(13, KILN_F32, 4, D(1, 1, 2, 4), X24, NULL, 0, F(1, 1, 0.6f, 0.6f), 4);
    kt_op_attr_string(t, "mode", "linear");
    kt_op_attr_string(t, "coordinate_transformation_mode", "align_corners");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 4, D(1, 1, 1, 2));
    assert_close(out_f32(t, 2), F(1, 3.14285707f), 2, 1e-6f);
    kt_op_free(t);
}

static void test_resize_cubic(void **state)
{
    (void)state;
    kt_op *t = rz_scales(19, KILN_F32, 4, D(1, 1, 4, 4), X44, NULL, 0, F(1, 1, 2, 2), 4);
    kt_op_attr_string(t, "mode", "cubic");
    assert_kiln_ok(kt_op_run(t));
    static const float want[] = {
        0.47265625f, 0.76953125f, 1.24609375f, 1.875f, 2.28125f, 2.91015625f, 3.38671875f, 3.68359375f,
        1.66015625f, 1.95703125f, 2.43359375f, 3.0625f, 3.46875f, 4.09765625f, 4.57421875f, 4.87109375f,
        3.56640625f, 3.86328125f, 4.33984375f, 4.96875f, 5.375f, 6.00390625f, 6.48046875f, 6.77734375f,
        6.08203125f, 6.37890625f, 6.85546875f, 7.484375f, 7.890625f, 8.51953125f, 8.99609375f, 9.29296875f,
        7.70703125f, 8.00390625f, 8.48046875f, 9.109375f, 9.515625f, 10.1445312f, 10.6210938f, 10.9179688f,
        10.2226562f, 10.5195312f, 10.9960938f, 11.625f, 12.03125f, 12.6601562f, 13.1367188f, 13.4335938f,
        12.1289062f, 12.4257812f, 12.9023438f, 13.53125f, 13.9375f, 14.5664062f, 15.0429688f, 15.3398438f,
        13.3164062f, 13.6132812f, 14.0898438f, 14.71875f, 15.125f, 15.7539062f, 16.2304688f, 16.5273438f};
    assert_close(out_f32(t, 64), want, 64, 1e-6f);
    kt_op_free(t);

    /* A = -0.5, exclude_outside, asymmetric */
    t = rz_scales(19, KILN_F32, 4, D(1, 1, 4, 4), X44, NULL, 0, F(1, 1, 2, 2), 4);
    kt_op_attr_string(t, "mode", "cubic");
    kt_op_attr_float(t, "cubic_coeff_a", -0.5f);
    kt_op_attr_int(t, "exclude_outside", 1);
    kt_op_attr_string(t, "coordinate_transformation_mode", "asymmetric");
    assert_kiln_ok(kt_op_run(t));
    static const float want2[] = {
        1, 1.41176474f, 2, 2.5f, 3, 3.58823538f, 4, 4.125f,
        2.64705873f, 3.05882359f, 3.64705873f, 4.14705896f, 4.64705896f, 5.23529434f, 5.64705896f, 5.77205896f,
        5, 5.41176462f, 6, 6.5f, 7, 7.58823538f, 8, 8.125f,
        7, 7.41176462f, 8, 8.5f, 9, 9.5882349f, 10, 10.125f,
        9, 9.4117651f, 10, 10.5f, 11, 11.5882349f, 12, 12.125f,
        11.3529415f, 11.7647057f, 12.3529415f, 12.8529415f, 13.3529415f, 13.9411764f, 14.3529415f, 14.4779415f,
        13, 13.4117651f, 14, 14.5f, 15, 15.5882349f, 16, 16.125f,
        13.5f, 13.9117651f, 14.5f, 15, 15.5f, 16.0882359f, 16.5f, 16.625f};
    assert_close(out_f32(t, 64), want2, 64, 1e-6f);
    kt_op_free(t);
}

static void test_resize_nearest_modes(void **state)
{
    (void)state;
    kt_op *t = rz_scales(19, KILN_F32, 4, D(1, 1, 2, 2), X22, NULL, 0, F(1, 1, 2, 3), 4);
    assert_kiln_ok(kt_op_run(t)); /* mode defaults to nearest, round_prefer_floor */
    static const float w1[] = {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4};
    assert_close(out_f32(t, 24), w1, 24, 0);
    kt_op_free(t);

    t = rz_sizes(19, KILN_F32, 4, D(1, 1, 4, 4), X44, NULL, 0, D(1, 1, 7, 8), 4);
    kt_op_attr_string(t, "coordinate_transformation_mode", "asymmetric");
    kt_op_attr_string(t, "nearest_mode", "round_prefer_ceil");
    assert_kiln_ok(kt_op_run(t));
    static const float w2[] = {1, 2, 2, 3, 3, 4, 4, 4, 5, 6, 6, 7, 7, 8, 8, 8, 5, 6, 6, 7, 7, 8, 8, 8,
                               9, 10, 10, 11, 11, 12, 12, 12, 9, 10, 10, 11, 11, 12, 12, 12,
                               13, 14, 14, 15, 15, 16, 16, 16, 13, 14, 14, 15, 15, 16, 16, 16};
    assert_close(out_f32(t, 56), w2, 56, 0);
    kt_op_free(t);

    t = rz_sizes(19, KILN_F32, 4, D(1, 1, 4, 4), X44, NULL, 0, D(1, 1, 3, 2), 4);
    kt_op_attr_string(t, "coordinate_transformation_mode", "align_corners");
    kt_op_attr_string(t, "nearest_mode", "floor");
    assert_kiln_ok(kt_op_run(t));
    assert_close(out_f32(t, 6), F(1, 4, 5, 8, 13, 16), 6, 0);
    kt_op_free(t);

    t = rz_sizes(19, KILN_F32, 4, D(1, 1, 2, 2), X22, NULL, 0, D(1, 1, 3, 3), 4);
    kt_op_attr_string(t, "nearest_mode", "ceil");
    assert_kiln_ok(kt_op_run(t));
    assert_close(out_f32(t, 9), F(1, 2, 2, 3, 4, 4, 3, 4, 4), 9, 0);
    kt_op_free(t);
}

static void test_resize_tf_crop_and_resize(void **state)
{
    (void)state;
    static const float roi[] = {0, 0, 0.4f, 0.6f, 1, 1, 1.2f, 1.7f};
    const char *modes[] = {"linear", "nearest"};
    static const float want[2][9] = {{7.60000038f, 10, 10, 12.4000006f, 10, 10, 10, 10, 10},
                                     {7, 10, 10, 11, 10, 10, 10, 10, 10}};
    for (int m = 0; m < 2; m++) {
        kt_op *t = rz_sizes(19, KILN_F32, 4, D(1, 1, 4, 4), X44, roi, 8, D(1, 1, 3, 3), 4);
        kt_op_attr_string(t, "mode", modes[m]);
        kt_op_attr_string(t, "coordinate_transformation_mode", "tf_crop_and_resize");
        kt_op_attr_float(t, "extrapolation_value", 10.0f);
        assert_kiln_ok(kt_op_run(t));
        assert_close(out_f32(t, 9), want[m], 9, 1e-6f);
        kt_op_free(t);
    }
}

static void test_resize_antialias(void **state)
{
    (void)state;
    /* linear, sizes 5x5 -> 3x2: the triangle filter widened by 5/3 and 5/2 */
    kt_op *t = rz_sizes(18, KILN_F32, 4, D(1, 1, 5, 5), X55, NULL, 0, D(1, 1, 3, 2), 4);
    kt_op_attr_string(t, "mode", "linear");
    kt_op_attr_int(t, "antialias", 1);
    assert_kiln_ok(kt_op_run(t));
    static const float w1[] = {6.09802532f, 12.2618628f, 37.2561188f, 48.763855f, 83.4262848f, 98.4662399f};
    assert_close(out_f32(t, 6), w1, 6, 1e-6f);
    kt_op_free(t);

    t = rz_scales(18, KILN_F32, 4, D(1, 1, 5, 5), X55, NULL, 0, F(1, 1, 0.6f, 0.6f), 4);
    kt_op_attr_string(t, "mode", "cubic");
    kt_op_attr_int(t, "antialias", 1);
    assert_kiln_ok(kt_op_run(t));
    /* from op_resize._interpolate_nd called directly with A = -0.75 as a
     * Python float: the evaluator passes the attribute as np.float32, which
     * makes numpy 2 compute the cubic weights in f32 (~5e-6 off); ONNX's
     * test generator and onnxruntime do not */
    static const float w2[] = {2.82605243f, 6.70351076f, 11.9343185f, 32.8688812f, 41.4323425f,
                               50.5764618f, 81.2072372f, 92.5045166f, 104.27005f};
    assert_close(out_f32(t, 9), w2, 9, 1e-6f);
    kt_op_free(t);
}

static void test_resize_coordinate_modes(void **state)
{
    (void)state;
    /* half_pixel_symmetric: 5 * 0.7 = 3.5 -> 3 rows, 5 * 1.3 = 6.5 -> 6 cols */
    kt_op *t = rz_scales(19, KILN_F32, 4, D(1, 1, 5, 5), X55, NULL, 0, F(1, 1, 0.7f, 1.3f), 4);
    kt_op_attr_string(t, "mode", "linear");
    kt_op_attr_string(t, "coordinate_transformation_mode", "half_pixel_symmetric");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 4, D(1, 1, 3, 6));
    static const float w1[] = {6.57630777f, 8.45173645f, 10.6535082f, 13.0881443f, 15.7261467f, 18.572506f,
                               31.9966297f, 35.7351646f, 39.6129341f, 43.6088142f, 47.7200165f, 51.9592743f,
                               72.0130539f, 76.8476868f, 81.7914352f, 86.8288116f, 91.9583893f, 97.191391f};
    assert_close(out_f32(t, 18), w1, 18, 1e-6f);
    kt_op_free(t);

    /* pytorch_half_pixel: an output of 1 samples x = -0.5 */
    t = rz_sizes(13, KILN_F32, 4, D(1, 1, 5, 5), X55, NULL, 0, D(1, 1, 1, 4), 4);
    kt_op_attr_string(t, "mode", "linear");
    kt_op_attr_string(t, "coordinate_transformation_mode", "pytorch_half_pixel");
    assert_kiln_ok(kt_op_run(t));
    assert_close(out_f32(t, 4), F(0.125f, 1.68566012f, 4.30825567f, 7.64951897f), 4, 1e-6f);
    kt_op_free(t);

    /* 3-D, every axis resized, asymmetric */
    float x3[24];
    for (int i = 0; i < 24; i++) x3[i] = (float)i;
    t = rz_scales(13, KILN_F32, 3, D(2, 3, 4), x3, NULL, 0, F(1.5f, 0.7f, 1.5f), 3);
    kt_op_attr_string(t, "mode", "linear");
    kt_op_attr_string(t, "coordinate_transformation_mode", "asymmetric");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 3, D(3, 2, 6));
    static const float w3[] = {0, 0.666666687f, 1.33333337f, 2, 2.66666675f, 3,
                               5.71428585f, 6.38095236f, 7.04761934f, 7.71428585f, 8.38095284f, 8.71428585f,
                               8, 8.66666698f, 9.33333302f, 10, 10.666667f, 11,
                               13.7142859f, 14.3809528f, 15.0476189f, 15.7142859f, 16.3809528f, 16.7142849f,
                               12, 12.666667f, 13.333333f, 14, 14.666667f, 15,
                               17.7142849f, 18.3809528f, 19.0476189f, 19.7142849f, 20.3809528f, 20.7142849f};
    assert_close(out_f32(t, 36), w3, 36, 1e-6f);
    kt_op_free(t);
}

static void test_resize_axes_keep_aspect(void **state)
{
    (void)state;
    /* axes [3, 2], sizes [6, 4]: scales 1.2 and 0.8, not_larger takes 0.8 for both */
    kt_op *t = kt_op_new("Resize", 18);
    kt_op_input(t, "X", KILN_F32, 4, D(1, 1, 5, 5), X55);
    kt_op_input(t, "", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "sizes", KILN_I64, 1, D(2), D(6, 4));
    kt_op_output(t, "Y");
    kt_op_attr_string(t, "mode", "linear");
    kt_op_attr_ints(t, "axes", 2, D(3, 2));
    kt_op_attr_string(t, "keep_aspect_ratio_policy", "not_larger");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 4, D(1, 1, 4, 4));
    static const float want[] = {1.56186438f, 3.49128795f, 6.40562773f, 10.0000076f, 19.3488045f, 24.4780216f,
                                 30.0108566f, 35.9187622f, 48.856926f, 55.8243446f, 63.0904007f, 70.6432648f,
                                 86.3592987f, 94.7725601f, 103.433319f, 112.334839f};
    assert_close(out_f32(t, 16), want, 16, 1e-6f);
    kt_op_free(t);
}

static void test_resize_integer_and_half_types(void **state)
{
    (void)state;
    /* u8 linear and cubic: interpolated in f64, rounded half to even and
     * saturated (cubic overshoots below 0 and above 255 here) */
    static const uint8_t xu[] = {0, 255, 10, 7, 100, 3};
    static const uint8_t lin[] = {0, 64, 191, 194, 71, 10, 2, 55, 163, 164, 60, 8,
                                  5, 39, 105, 105, 38, 5, 7, 30, 77, 76, 27, 3};
    static const uint8_t cub[] = {0, 70, 237, 241, 79, 0, 0, 58, 193, 195, 64, 0,
                                  0, 39, 119, 119, 39, 0, 0, 28, 75, 73, 23, 0};
    const char *modes[] = {"linear", "cubic"};
    const uint8_t *want[] = {lin, cub};
    for (int m = 0; m < 2; m++) {
        kt_op *t = rz_scales(19, KILN_U8, 4, D(1, 1, 2, 3), xu, NULL, 0, F(1, 1, 2, 2), 4);
        kt_op_attr_string(t, "mode", modes[m]);
        assert_kiln_ok(kt_op_run(t));
        kiln_value *y = kt_op_value(t, "Y");
        assert_int_equal(y->dtype, KILN_U8);
        assert_memory_equal(y->data, want[m], 24);
        kt_op_free(t);
    }

    /* i64 nearest is a gather: 2^53 + 1 survives (ONNX's reference passes
     * through f64 and returns 2^53; the nearest pixel's value is the intent) */
    static const int64_t xi[] = {1, -2, 3, 9007199254740993LL, 5, -6};
    kt_op *t = rz_scales(19, KILN_I64, 2, D(2, 3), xi, NULL, 0, F(1.5f, 1.5f), 2);
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 2, D(3, 4));
    static const int64_t wi[] = {1, 1, -2, 3, 1, 1, -2, 3, 9007199254740993LL, 9007199254740993LL, 5, -6};
    assert_memory_equal(kt_op_value(t, "Y")->data, wi, sizeof wi);
    kt_op_free(t);

    /* f16 linear align_corners: values rounded to f16 */
    uint16_t xh[4];
    for (int i = 0; i < 4; i++) xh[i] = kiln_f32_to_f16(X22[i]);
    t = rz_scales(19, KILN_F16, 4, D(1, 1, 2, 2), xh, NULL, 0, F(1, 1, 2, 2), 4);
    kt_op_attr_string(t, "mode", "linear");
    kt_op_attr_string(t, "coordinate_transformation_mode", "align_corners");
    assert_kiln_ok(kt_op_run(t));
    static const float wh[] = {1, 1.3330078125f, 1.6669921875f, 2, 1.6669921875f, 2, 2.333984375f, 2.666015625f,
                               2.333984375f, 2.666015625f, 3, 3.333984375f, 3, 3.333984375f, 3.666015625f, 4};
    const uint16_t *yh = kt_op_value(t, "Y")->data;
    for (int i = 0; i < 16; i++) assert_true(kiln_f16_to_f32(yh[i]) == wh[i]);
    kt_op_free(t);

    /* bool linear is refused at build time */
    static const uint8_t xb[] = {0, 1, 1, 0};
    t = rz_scales(19, KILN_BOOL, 2, D(2, 2), xb, NULL, 0, F(2, 2), 2);
    kt_op_attr_string(t, "mode", "linear");
    assert_int_equal(kt_op_run(t), KILN_ERR_UNSUPPORTED);
    kt_op_free(t);
}

static void test_resize_flops(void **state)
{
    (void)state;
    kt_op *t = rz_scales(19, KILN_F32, 4, D(1, 1, 2, 2), X22, NULL, 0, F(1, 1, 2, 2), 4);
    kt_op_attr_string(t, "mode", "linear");
    assert_kiln_ok(kt_op_run(t));
    /* 16 outputs, 2 resized axes of 2 taps, 2 flops per multiply-add */
    assert_true(kiln_flops_Resize(&t->g->nodes[0], t->g->values) == 16.0 * 2 * 2 * 2);
    kt_op_free(t);
}

/* ---- Pad */

static const float XP[] = {1, 2, 3, 4, 5, 6}; /* 2x3 */

static kt_op *pad_op(int opset, const char *mode, const int64_t *pads, int np, const float *cv, const int64_t *axes,
                     int nax)
{
    kt_op *t = kt_op_new("Pad", opset);
    kt_op_input(t, "x", KILN_F32, 2, D(2, 3), XP);
    kt_op_input(t, "pads", KILN_I64, 1, D(np), pads);
    if (cv) kt_op_input(t, "cv", KILN_F32, 0, NULL, cv);
    else if (axes) kt_op_input(t, "", KILN_F32, 0, NULL, NULL);
    if (axes) kt_op_input(t, "axes", KILN_I64, 1, D(nax), axes);
    if (mode) kt_op_attr_string(t, "mode", mode);
    kt_op_output(t, "Y");
    return t;
}

static void test_pad_modes(void **state)
{
    (void)state;
    kt_op *t = pad_op(13, NULL, D(1, 2, 0, 1), 4, F(9.5f), NULL, 0);
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 2, D(3, 6));
    static const float wc[] = {9.5f, 9.5f, 9.5f, 9.5f, 9.5f, 9.5f, 9.5f, 9.5f, 1, 2, 3, 9.5f, 9.5f, 9.5f, 4, 5, 6, 9.5f};
    assert_close(out_f32(t, 18), wc, 18, 0);
    kt_op_free(t);

    /* reflect past the axis length repeats the mirror (numpy 'reflect') */
    t = pad_op(13, "reflect", D(1, 4, 1, 3), 4, NULL, NULL, 0);
    assert_kiln_ok(kt_op_run(t));
    static const float wr[] = {4, 5, 6, 5, 4, 5, 6, 5, 4, 5, 1, 2, 3, 2, 1, 2, 3, 2, 1, 2,
                               4, 5, 6, 5, 4, 5, 6, 5, 4, 5, 1, 2, 3, 2, 1, 2, 3, 2, 1, 2};
    assert_close(out_f32(t, 40), wr, 40, 0);
    kt_op_free(t);

    t = pad_op(13, "edge", D(2, 1, 0, 2), 4, NULL, NULL, 0);
    assert_kiln_ok(kt_op_run(t));
    static const float we[] = {1, 1, 2, 3, 3, 3, 1, 1, 2, 3, 3, 3, 1, 1, 2, 3, 3, 3, 4, 4, 5, 6, 6, 6};
    assert_close(out_f32(t, 24), we, 24, 0);
    kt_op_free(t);

    t = pad_op(19, "wrap", D(1, 4, 3, 2), 4, NULL, NULL, 0);
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 2, D(6, 9));
    static const float ww[] = {6, 4, 5, 6, 4, 5, 6, 4, 5, 3, 1, 2, 3, 1, 2, 3, 1, 2, 6, 4, 5, 6, 4, 5, 6, 4, 5,
                               3, 1, 2, 3, 1, 2, 3, 1, 2, 6, 4, 5, 6, 4, 5, 6, 4, 5, 3, 1, 2, 3, 1, 2, 3, 1, 2};
    assert_close(out_f32(t, 54), ww, 54, 0);
    kt_op_free(t);

    /* Pad-18 axes input, negative axis */
    t = pad_op(18, NULL, D(2, 1), 2, F(7), D(-1), 1);
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 2, D(2, 6));
    assert_close(out_f32(t, 12), F(7, 7, 1, 2, 3, 7, 7, 7, 4, 5, 6, 7), 12, 0);
    kt_op_free(t);
}

static void test_pad_negative_crops(void **state)
{
    (void)state;
    /* by hand: crop the first column, then constant 0 one column at the end:
     * rows [2 3 0] [5 6 0] */
    kt_op *t = pad_op(13, NULL, D(0, -1, 0, 1), 4, NULL, NULL, 0);
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 2, D(2, 3));
    assert_close(out_f32(t, 6), F(2, 3, 0, 5, 6, 0), 6, 0);
    kt_op_free(t);

    /* crop row 0 and the last column, then edge-pad 2 at the front of the
     * columns from what is left ([4 5]): [4 4 4 5] */
    t = pad_op(13, "edge", D(-1, 2, 0, -1), 4, NULL, NULL, 0);
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 2, D(1, 4));
    assert_close(out_f32(t, 4), F(4, 4, 4, 5), 4, 0);
    kt_op_free(t);

    /* cropping a whole axis leaves only the constant: [c c c c] per row */
    t = pad_op(13, NULL, D(0, -3, 0, 4), 4, F(-1), NULL, 0);
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 2, D(2, 4));
    assert_close(out_f32(t, 8), F(-1, -1, -1, -1, -1, -1, -1, -1), 8, 0);
    kt_op_free(t);
}

static void test_pad_types(void **state)
{
    (void)state;
    /* i64 constant pad keeps values f64 could not hold */
    static const int64_t x[] = {9007199254740993LL, -1};
    static const int64_t cv = -9007199254740993LL;
    kt_op *t = kt_op_new("Pad", 21);
    kt_op_input(t, "x", KILN_I64, 1, D(2), x);
    kt_op_input(t, "pads", KILN_I64, 1, D(2), D(1, 1));
    kt_op_input(t, "cv", KILN_I64, 0, NULL, &cv);
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    static const int64_t want[] = {-9007199254740993LL, 9007199254740993LL, -1, -9007199254740993LL};
    assert_memory_equal(kt_op_value(t, "Y")->data, want, sizeof want);
    kt_op_free(t);

    /* rank 0 with no pads is a copy */
    static const float s = 3.5f;
    t = kt_op_new("Pad", 13);
    kt_op_input(t, "x", KILN_F32, 0, NULL, &s);
    kt_op_input(t, "pads", KILN_I64, 1, D(0), D(0));
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    assert_true(*(const float *)kt_op_value(t, "Y")->data == 3.5f);
    kt_op_free(t);
}

static void test_pad_shapes(void **state)
{
    (void)state;
    /* zero pads keep the symbol; known pads on a symbolic dim lose it */
    static const char *const sym[] = {"N", "T", NULL};
    kt_op *t = kt_op_new("Pad", 18);
    kt_op_input_sym(t, "x", KILN_F32, 3, D(-1, -1, 4), sym);
    kt_op_input(t, "pads", KILN_I64, 1, D(6), D(0, 1, 2, 0, 1, -1));
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    int64_t n = kt_op_value(t, "x")->shape.d[0];
    assert_shape(t, "Y", 3, D(n, KILN_DIM_UNKNOWN, 5));
    kt_op_free(t);

    /* pads unknown, axes known: only those axes change */
    t = kt_op_new("Pad", 18);
    kt_op_input_sym(t, "x", KILN_F32, 3, D(-1, 3, 4), sym);
    kt_op_input(t, "pads", KILN_I64, 1, D(2), NULL);
    kt_op_input(t, "", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "axes", KILN_I64, 1, D(1), D(2));
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    n = kt_op_value(t, "x")->shape.d[0];
    assert_shape(t, "Y", 3, D(n, 3, KILN_DIM_UNKNOWN));
    kt_op_free(t);

    /* errors: wrong pads count, over-crop, constant of another type, mode */
    t = pad_op(13, NULL, D(1, 1), 2, NULL, NULL, 0);
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    assert_non_null(strstr(kiln_last_error(), "pads"));
    kt_op_free(t);

    /* cropping 4 of 3 columns, even with 2 padded back: out of range */
    t = pad_op(13, NULL, D(0, -4, 0, 2), 4, NULL, NULL, 0);
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    kt_op_free(t);

    t = kt_op_new("Pad", 13);
    kt_op_input(t, "x", KILN_F32, 1, D(2), XP);
    kt_op_input(t, "pads", KILN_I64, 1, D(2), D(1, 1));
    kt_op_input(t, "cv", KILN_I64, 0, NULL, D(1));
    kt_op_output(t, "Y");
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    kt_op_free(t);

    t = pad_op(13, "mirror", D(1, 1, 1, 1), 4, NULL, NULL, 0);
    assert_int_equal(kt_op_run(t), KILN_ERR_UNSUPPORTED);
    kt_op_free(t);
}

/* ---- attribute parsers (src/ir/params_resize.c, params_pool.c): the
 * attributes become n->params once, when the node resolves */

static const kiln_node *node0(kt_op *t) { return &t->g->nodes[0]; }

/* A node's unsupported reason names the attribute and its value. */
static void assert_refused(kt_op *t, const char *attr, const char *value)
{
    assert_int_equal(kt_op_run(t), KILN_ERR_UNSUPPORTED);
    const char *why = node0(t)->unsupported;
    assert_non_null(why);
    if (!strstr(why, attr) || (value && !strstr(why, value)))
        fail_msg("'%s' does not name '%s' = '%s'", why, attr, value ? value : "");
}

static void test_params_resize(void **state)
{
    (void)state;
    /* every attribute given */
    kt_op *t = kt_op_new("Resize", 19);
    kt_op_input(t, "X", KILN_F32, 4, D(1, 1, 4, 6), NULL);
    kt_op_input(t, "", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "sizes", KILN_I64, 1, D(2), D(8, 8));
    kt_op_attr_string(t, "mode", "cubic");
    kt_op_attr_string(t, "coordinate_transformation_mode", "align_corners");
    kt_op_attr_string(t, "nearest_mode", "ceil");
    kt_op_attr_string(t, "keep_aspect_ratio_policy", "not_smaller");
    kt_op_attr_float(t, "cubic_coeff_a", -0.5f);
    kt_op_attr_float(t, "extrapolation_value", 2.5f);
    kt_op_attr_int(t, "exclude_outside", 1);
    kt_op_attr_int(t, "antialias", 1);
    kt_op_attr_ints(t, "axes", 2, D(2, -1));
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    const kiln_resize_params *r = &node0(t)->params.resize;
    assert_int_equal(r->mode, KILN_RESIZE_CUBIC);
    assert_int_equal(r->ctm, KILN_RESIZE_ALIGN_CORNERS);
    assert_int_equal(r->nearest_mode, KILN_RESIZE_CEIL);
    assert_int_equal(r->keep_aspect_ratio_policy, KILN_RESIZE_NOT_SMALLER);
    assert_true(r->cubic_coeff_a == -0.5f);
    assert_true(r->extrapolation_value == 2.5f);
    assert_true(r->exclude_outside);
    assert_true(r->antialias);
    assert_int_equal(r->n_axes, 2);
    assert_int_equal(r->axes[0], 2);
    assert_int_equal(r->axes[1], -1);
    /* not_smaller: one scale max(8/4, 8/6) = 2 for both axes */
    assert_shape(t, "Y", 4, D(1, 1, 8, 12));
    kt_op_free(t);

    /* none given: ONNX's defaults */
    t = rz_scales(13, KILN_F32, 2, D(2, 2), NULL, NULL, 0, F(2, 2), 2);
    assert_kiln_ok(kt_op_run(t));
    r = &node0(t)->params.resize;
    assert_int_equal(r->mode, KILN_RESIZE_NEAREST);
    assert_int_equal(r->ctm, KILN_RESIZE_HALF_PIXEL);
    assert_int_equal(r->nearest_mode, KILN_RESIZE_ROUND_PREFER_FLOOR);
    assert_int_equal(r->keep_aspect_ratio_policy, KILN_RESIZE_STRETCH);
    assert_true(r->cubic_coeff_a == -0.75f);
    assert_true(r->extrapolation_value == 0.0f);
    assert_false(r->exclude_outside);
    assert_false(r->antialias);
    assert_int_equal(r->n_axes, 0);
    kt_op_free(t);

    /* an unknown string of each enum attribute is refused, naming it */
    static const char *const attrs[] = {"mode", "coordinate_transformation_mode", "nearest_mode",
                                        "keep_aspect_ratio_policy"};
    for (int i = 0; i < 4; i++) {
        t = rz_scales(19, KILN_F32, 2, D(2, 2), NULL, NULL, 0, F(2, 2), 2);
        kt_op_attr_string(t, attrs[i], "tf_half_pixel_for_nn");
        assert_refused(t, attrs[i], "tf_half_pixel_for_nn");
        kt_op_free(t);
    }
    /* the status of each failure, from the parser itself */
    t = rz_scales(19, KILN_F32, 2, D(2, 2), NULL, NULL, 0, F(2, 2), 2);
    kt_op_attr_string(t, "mode", "bilinear");
    kiln_params p;
    assert_int_equal(kiln_params_Resize(t->node, &p), KILN_ERR_UNSUPPORTED);
    assert_non_null(strstr(kiln_last_error(), "'mode' is 'bilinear'"));
    assert_non_null(strstr(kiln_last_error(), "nearest, linear or cubic"));
    kt_op_free(t);
    /* an attribute of the wrong type is a malformed model */
    t = rz_scales(19, KILN_F32, 2, D(2, 2), NULL, NULL, 0, F(2, 2), 2);
    kt_op_attr_int(t, "mode", 1);
    assert_int_equal(kiln_params_Resize(t->node, &p), KILN_ERR_FORMAT);
    assert_non_null(strstr(kiln_last_error(), "'mode' is an int, expected a string"));
    assert_refused(t, "mode", "an int");
    kt_op_free(t);
    /* more axes than kiln's rank */
    t = rz_scales(19, KILN_F32, 2, D(2, 2), NULL, NULL, 0, F(2, 2), 2);
    kt_op_attr_ints(t, "axes", 9, D(0, 1, 2, 3, 4, 5, 6, 7, 8));
    assert_refused(t, "axes", "9 values");
    kt_op_free(t);
}

static void test_params_pad(void **state)
{
    (void)state;
    static const char *const modes[] = {"constant", "reflect", "edge", "wrap"};
    static const kiln_pad_mode want[] = {KILN_PAD_CONSTANT, KILN_PAD_REFLECT, KILN_PAD_EDGE, KILN_PAD_WRAP};
    for (int i = 0; i < 4; i++) {
        kt_op *t = pad_op(19, modes[i], D(0, 1, 0, 1), 4, NULL, NULL, 0);
        assert_kiln_ok(kt_op_run(t));
        assert_int_equal(node0(t)->params.pad.mode, want[i]);
        assert_string_equal(kiln_pad_mode_name(node0(t)->params.pad.mode), modes[i]);
        kt_op_free(t);
    }
    kt_op *t = pad_op(19, NULL, D(0, 1, 0, 1), 4, NULL, NULL, 0);
    assert_kiln_ok(kt_op_run(t));
    assert_int_equal(node0(t)->params.pad.mode, KILN_PAD_CONSTANT);
    kt_op_free(t);
    t = pad_op(19, "mirror", D(0, 1, 0, 1), 4, NULL, NULL, 0);
    assert_refused(t, "mode", "mirror");
    kt_op_free(t);
}

/* The pools' parser (src/ir/params_pool.c); their kernels are tested in
 * test_ops_conv.c. */
static kt_op *pool_node(const char *op, int64_t in)
{
    kt_op *t = kt_op_new(op, 19);
    kt_op_input(t, "X", KILN_F32, 4, D(1, 1, in, in), NULL);
    kt_op_output(t, "Y");
    return t;
}

static void test_params_pool(void **state)
{
    (void)state;
    kt_op *t = pool_node("AveragePool", 7);
    kt_op_attr_string(t, "auto_pad", "SAME_UPPER");
    kt_op_attr_ints(t, "kernel_shape", 2, D(3, 2));
    kt_op_attr_ints(t, "strides", 2, D(2, 1));
    kt_op_attr_ints(t, "dilations", 2, D(1, 2));
    kt_op_attr_int(t, "count_include_pad", 1);
    kt_op_attr_int(t, "ceil_mode", 1);
    assert_kiln_ok(kt_op_run(t));
    const kiln_pool_params *p = &node0(t)->params.pool;
    assert_int_equal(p->auto_pad, KILN_AUTO_PAD_SAME_UPPER);
    assert_int_equal(p->n_kernel, 2);
    assert_int_equal(p->kernel[0], 3);
    assert_int_equal(p->kernel[1], 2);
    assert_int_equal(p->n_strides, 2);
    assert_int_equal(p->strides[0], 2);
    assert_int_equal(p->strides[1], 1);
    assert_int_equal(p->n_dilations, 2);
    assert_int_equal(p->dilations[1], 2);
    assert_int_equal(p->n_pads, 0);
    assert_true(p->count_include_pad);
    assert_true(p->ceil_mode);
    assert_false(p->column_major);
    assert_shape(t, "Y", 4, D(1, 1, 4, 7)); /* SAME: ceil(in / stride) */
    kt_op_free(t);

    /* explicit pads, storage_order */
    t = pool_node("MaxPool", 5);
    kt_op_attr_ints(t, "kernel_shape", 2, D(2, 2));
    kt_op_attr_ints(t, "pads", 4, D(0, 1, 1, 0));
    kt_op_attr_int(t, "storage_order", 1);
    assert_kiln_ok(kt_op_run(t));
    p = &node0(t)->params.pool;
    assert_int_equal(p->auto_pad, KILN_AUTO_PAD_NOTSET);
    assert_int_equal(p->n_strides, 0);
    assert_int_equal(p->n_pads, 4);
    assert_int_equal(p->pads[1], 1);
    assert_int_equal(p->pads[2], 1);
    assert_true(p->column_major);
    assert_false(p->ceil_mode);
    assert_shape(t, "Y", 4, D(1, 1, 5, 5));
    kt_op_free(t);

    /* VALID is NOTSET without padding or ceil_mode: the same windows */
    t = pool_node("MaxPool", 5);
    kt_op_attr_string(t, "auto_pad", "VALID");
    kt_op_attr_ints(t, "kernel_shape", 2, D(2, 2));
    kt_op_attr_ints(t, "strides", 2, D(2, 2));
    kt_op_attr_int(t, "ceil_mode", 1);
    assert_kiln_ok(kt_op_run(t));
    p = &node0(t)->params.pool;
    assert_int_equal(p->auto_pad, KILN_AUTO_PAD_NOTSET);
    assert_int_equal(p->n_pads, 0);
    assert_false(p->ceil_mode);
    assert_shape(t, "Y", 4, D(1, 1, 2, 2));
    kt_op_free(t);

    /* refused: an unknown auto_pad, a stride of 0, storage_order 2 */
    t = pool_node("MaxPool", 5);
    kt_op_attr_string(t, "auto_pad", "SAME");
    kt_op_attr_ints(t, "kernel_shape", 2, D(2, 2));
    assert_refused(t, "auto_pad", "SAME");
    kt_op_free(t);
    t = pool_node("AveragePool", 5);
    kt_op_attr_ints(t, "kernel_shape", 2, D(2, 2));
    kt_op_attr_ints(t, "strides", 2, D(1, 0));
    assert_refused(t, "strides", "value 0");
    kt_op_free(t);
    t = pool_node("MaxPool", 5);
    kt_op_attr_ints(t, "kernel_shape", 2, D(2, 2));
    kt_op_attr_int(t, "storage_order", 2);
    assert_refused(t, "storage_order", "2");
    kt_op_free(t);
    /* lengths against the input's rank stay the shape rule's */
    t = pool_node("MaxPool", 5);
    kt_op_attr_ints(t, "kernel_shape", 3, D(2, 2, 2));
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    assert_non_null(strstr(kiln_last_error(), "kernel_shape"));
    kt_op_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resize_shape_scales_symbolic_batch),
        cmocka_unit_test(test_resize_shape_symbolic_resized_axis),
        cmocka_unit_test(test_resize_shape_unknown_params),
        cmocka_unit_test(test_resize_shape_sizes_and_aspect),
        cmocka_unit_test(test_resize_shape_errors),
        cmocka_unit_test(test_resize_linear_half_pixel_up),
        cmocka_unit_test(test_resize_linear_align_corners_fractional_width),
        cmocka_unit_test(test_resize_cubic),
        cmocka_unit_test(test_resize_nearest_modes),
        cmocka_unit_test(test_resize_tf_crop_and_resize),
        cmocka_unit_test(test_resize_antialias),
        cmocka_unit_test(test_resize_coordinate_modes),
        cmocka_unit_test(test_resize_axes_keep_aspect),
        cmocka_unit_test(test_resize_integer_and_half_types),
        cmocka_unit_test(test_resize_flops),
        cmocka_unit_test(test_pad_modes),
        cmocka_unit_test(test_pad_negative_crops),
        cmocka_unit_test(test_pad_types),
        cmocka_unit_test(test_pad_shapes),
        cmocka_unit_test(test_params_resize),
        cmocka_unit_test(test_params_pad),
        cmocka_unit_test(test_params_pool),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
