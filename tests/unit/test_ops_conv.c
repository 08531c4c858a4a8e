/* Conv family: shape rules, reference kernels and the internal GEMM.
 *
 * Expected values come from three independent sources: the worked examples
 * of the ONNX operator docs (cited per test), onnxruntime 1.32 on the same
 * inputs (pasted as literals, the script's call given in the comment), and
 * naive 7-deep loops written here from the ONNX formulas, which the
 * im2col + GEMM and direct paths are compared against on random data. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "opharness.h"
#include "ref/gemm.h"

/* a dims list: D(1, 3, 224, 224) */
#define D(...) ((const int64_t[]){__VA_ARGS__})

static void assert_shape(kt_op *t, const char *name, int rank, const int64_t *want)
{
    kiln_value *v = kt_op_value(t, name);
    assert_non_null(v);
    assert_int_equal(v->shape.rank, rank);
    for (int i = 0; i < rank; i++)
        if (v->shape.d[i] != want[i]) fail_msg("%s dim %d: got %lld want %lld", name, i, (long long)v->shape.d[i], (long long)want[i]);
}

static void assert_close(const float *got, const float *want, int64_t n, float tol)
{
    for (int64_t i = 0; i < n; i++) {
        float err = fabsf(got[i] - want[i]);
        if (!(err <= tol * (1.0f + fabsf(want[i])))) fail_msg("element %lld: got %.7g want %.7g", (long long)i, got[i], want[i]);
    }
}

static const float *out_f32(kt_op *t, const char *name)
{
    kiln_value *v = kt_op_value(t, name);
    assert_non_null(v);
    assert_int_equal(v->dtype, KILN_F32);
    assert_non_null(v->data);
    return v->data;
}

static float iota25[25];
static void fill_iota(float *x, int n, float first)
{
    for (int i = 0; i < n; i++) x[i] = first + (float)i;
}

/* ---- Conv shapes */

static void test_conv_shape_symbolic_batch(void **state)
{
    (void)state;
    kt_op *t = kt_op_new("Conv", 17);
    static const char *const sym[] = {"batch", NULL, NULL, NULL};
    kt_op_input_sym(t, "X", KILN_F32, 4, D(-1, 3, 224, 224), sym);
    kt_op_input(t, "W", KILN_F32, 4, D(64, 3, 7, 7), NULL);
    kt_op_output(t, "Y");
    kt_op_attr_ints(t, "strides", 2, D(2, 2));
    kt_op_attr_ints(t, "pads", 4, D(3, 3, 3, 3));
    assert_kiln_ok(kt_op_run(t));
    kiln_value *y = kt_op_value(t, "Y");
    assert_int_equal(y->shape.d[0], kt_op_value(t, "X")->shape.d[0]); /* the symbol passes through */
    assert_true(y->shape.d[0] < 0 && y->shape.d[0] != KILN_DIM_UNKNOWN);
    assert_int_equal(y->shape.d[1], 64);
    assert_int_equal(y->shape.d[2], 112);
    assert_int_equal(y->shape.d[3], 112);
    kt_op_free(t);
}

static void test_conv_shape_auto_pad(void **state)
{
    (void)state;
    /* SAME_*: out = ceil(in / stride) = ceil(5 / 2) = 3; VALID: floor((5 - 3) / 2) + 1 = 2 */
    const char *modes[] = {"SAME_UPPER", "SAME_LOWER", "VALID"};
    const int64_t want[] = {3, 3, 2};
    for (int m = 0; m < 3; m++) {
        kt_op *t = kt_op_new("Conv", 17);
        kt_op_input(t, "X", KILN_F32, 4, D(1, 2, 5, 5), NULL);
        kt_op_input(t, "W", KILN_F32, 4, D(4, 2, 3, 3), NULL);
        kt_op_output(t, "Y");
        kt_op_attr_string(t, "auto_pad", modes[m]);
        kt_op_attr_ints(t, "strides", 2, D(2, 2));
        assert_kiln_ok(kt_op_run(t));
        assert_shape(t, "Y", 4, D(1, 4, want[m], want[m]));
        kt_op_free(t);
    }
    /* a symbolic spatial size survives a stride-1 SAME conv, not a stride-2 one */
    kt_op *t = kt_op_new("Conv", 17);
    static const char *const sym[] = {NULL, NULL, "h", "w"};
    kt_op_input_sym(t, "X", KILN_F32, 4, D(1, 2, -1, -1), sym);
    kt_op_input(t, "W", KILN_F32, 4, D(4, 2, 3, 3), NULL);
    kt_op_output(t, "Y");
    kt_op_attr_string(t, "auto_pad", "SAME_UPPER");
    kt_op_attr_ints(t, "strides", 2, D(1, 2));
    assert_kiln_ok(kt_op_run(t));
    kiln_value *y = kt_op_value(t, "Y");
    assert_int_equal(y->shape.d[2], kt_op_value(t, "X")->shape.d[2]);
    assert_true(y->shape.d[3] == KILN_DIM_UNKNOWN);
    kt_op_free(t);
}

static void test_conv_shape_errors(void **state)
{
    (void)state;
    kt_op *t = kt_op_new("Conv", 17); /* 3 channels in, W wants 4 x group 1 */
    kt_op_input(t, "X", KILN_F32, 4, D(1, 3, 8, 8), NULL);
    kt_op_input(t, "W", KILN_F32, 4, D(8, 4, 3, 3), NULL);
    kt_op_output(t, "Y");
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    assert_non_null(strstr(kiln_last_error(), "channels"));
    kt_op_free(t);

    t = kt_op_new("Conv", 17); /* kernel larger than the input */
    kt_op_input(t, "X", KILN_F32, 4, D(1, 1, 2, 2), NULL);
    kt_op_input(t, "W", KILN_F32, 4, D(1, 1, 3, 3), NULL);
    kt_op_output(t, "Y");
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    kt_op_free(t);

    t = kt_op_new("Conv", 17); /* integer conv is ConvInteger's job */
    kt_op_input(t, "X", KILN_I32, 4, D(1, 1, 4, 4), NULL);
    kt_op_input(t, "W", KILN_I32, 4, D(1, 1, 3, 3), NULL);
    kt_op_output(t, "Y");
    assert_int_equal(kt_op_run(t), KILN_ERR_UNSUPPORTED);
    kt_op_free(t);

    t = kt_op_new("Conv", 17); /* pads of the wrong length */
    kt_op_input(t, "X", KILN_F32, 4, D(1, 1, 4, 4), NULL);
    kt_op_input(t, "W", KILN_F32, 4, D(1, 1, 3, 3), NULL);
    kt_op_output(t, "Y");
    kt_op_attr_ints(t, "pads", 2, D(1, 1));
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    kt_op_free(t);
}

/* ---- Conv kernels */

/* ONNX Operators.md, Conv examples: x = 0..24 (5x5), W = ones(3x3). */
static void test_conv_onnx_examples(void **state)
{
    (void)state;
    float x[25], w[9];
    fill_iota(x, 25, 0.0f);
    for (int i = 0; i < 9; i++) w[i] = 1.0f;
    static const float padded[25] = {12, 21, 27, 33, 24, 33, 54, 63, 72, 51, 63, 99, 108, 117, 81,
                                     93, 144, 153, 162, 111, 72, 111, 117, 123, 84};
    static const float strided[9] = {12, 27, 24, 63, 108, 81, 72, 117, 84}; /* conv_with_strides_padding */
    for (int c = 0; c < 2; c++) {
        kt_op *t = kt_op_new("Conv", 17);
        kt_op_input(t, "X", KILN_F32, 4, D(1, 1, 5, 5), x);
        kt_op_input(t, "W", KILN_F32, 4, D(1, 1, 3, 3), w);
        kt_op_output(t, "Y");
        kt_op_attr_ints(t, "kernel_shape", 2, D(3, 3));
        kt_op_attr_ints(t, "pads", 4, D(1, 1, 1, 1));
        if (c) kt_op_attr_ints(t, "strides", 2, D(2, 2));
        assert_kiln_ok(kt_op_run(t));
        assert_close(out_f32(t, "Y"), c ? strided : padded, c ? 9 : 25, 0);
        kt_op_free(t);
    }
}

typedef struct conv_case {
    int64_t n, c, h, w, m, kh, kw, group;
    int64_t sh, sw, dh, dw, pt, pl, pb, pr;
    bool bias;
} conv_case;

/* The ONNX Conv formula, literally: y[n][m][oy][ox] = b[m] + sum over the
 * group's input channels and the kernel of x * w, x = 0 in the padding. */
static void naive_conv(const conv_case *cc, const float *x, const float *w, const float *b, double *y, int64_t oh, int64_t ow)
{
    int64_t cg = cc->c / cc->group, mg = cc->m / cc->group;
    for (int64_t n = 0; n < cc->n; n++)
        for (int64_t m = 0; m < cc->m; m++)
            for (int64_t oy = 0; oy < oh; oy++)
                for (int64_t ox = 0; ox < ow; ox++) {
                    double s = cc->bias ? b[m] : 0.0;
                    for (int64_t ci = 0; ci < cg; ci++)
                        for (int64_t ky = 0; ky < cc->kh; ky++)
                            for (int64_t kx = 0; kx < cc->kw; kx++) {
                                int64_t iy = oy * cc->sh - cc->pt + ky * cc->dh, ix = ox * cc->sw - cc->pl + kx * cc->dw;
                                if (iy < 0 || iy >= cc->h || ix < 0 || ix >= cc->w) continue;
                                int64_t c = m / mg * cg + ci;
                                s += (double)x[((n * cc->c + c) * cc->h + iy) * cc->w + ix] *
                                     w[((m * cg + ci) * cc->kh + ky) * cc->kw + kx];
                            }
                    y[((n * cc->m + m) * oh + oy) * ow + ox] = s;
                }
}

static void run_conv_case(const conv_case *cc, kiln_dtype dt)
{
    int64_t cg = cc->c / cc->group;
    int64_t nx = cc->n * cc->c * cc->h * cc->w, nw = cc->m * cg * cc->kh * cc->kw;
    int64_t oh = (cc->h + cc->pt + cc->pb - (cc->kh - 1) * cc->dh - 1) / cc->sh + 1;
    int64_t ow = (cc->w + cc->pl + cc->pr - (cc->kw - 1) * cc->dw - 1) / cc->sw + 1;
    int64_t ny = cc->n * cc->m * oh * ow;
    float *x = malloc((size_t)nx * 4), *w = malloc((size_t)nw * 4), *b = malloc((size_t)cc->m * 4);
    double *want = malloc((size_t)ny * 8), *xd = malloc((size_t)nx * 8), *wd = malloc((size_t)nw * 8), *bd = malloc((size_t)cc->m * 8);
    kt_fill_uniform(x, (size_t)nx, 1, -1, 1);
    kt_fill_uniform(w, (size_t)nw, 2, -1, 1);
    kt_fill_uniform(b, (size_t)cc->m, 3, -1, 1);
    for (int64_t i = 0; i < nx; i++) xd[i] = x[i];
    for (int64_t i = 0; i < nw; i++) wd[i] = w[i];
    for (int64_t i = 0; i < cc->m; i++) bd[i] = b[i];
    naive_conv(cc, x, w, b, want, oh, ow);

    kt_op *t = kt_op_new("Conv", 17);
    bool f64 = dt == KILN_F64;
    kt_op_input(t, "X", dt, 4, D(cc->n, cc->c, cc->h, cc->w), f64 ? (void *)xd : (void *)x);
    kt_op_input(t, "W", dt, 4, D(cc->m, cg, cc->kh, cc->kw), f64 ? (void *)wd : (void *)w);
    if (cc->bias) kt_op_input(t, "B", dt, 1, D(cc->m), f64 ? (void *)bd : (void *)b);
    kt_op_output(t, "Y");
    kt_op_attr_int(t, "group", cc->group);
    kt_op_attr_ints(t, "strides", 2, D(cc->sh, cc->sw));
    kt_op_attr_ints(t, "dilations", 2, D(cc->dh, cc->dw));
    kt_op_attr_ints(t, "pads", 4, D(cc->pt, cc->pl, cc->pb, cc->pr));
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 4, D(cc->n, cc->m, oh, ow));
    kiln_value *y = kt_op_value(t, "Y");
    assert_non_null(y->data);
    for (int64_t i = 0; i < ny; i++) {
        double got = f64 ? ((double *)y->data)[i] : ((float *)y->data)[i];
        /* f32 sums of cg*kh*kw terms of size ~0.25 carry an absolute rounding
         * error that grows with the term count, whatever the order */
        double tol = f64 ? 1e-12 * (1 + fabs(want[i])) : 1e-5 * (1 + fabs(want[i])) + 1e-7 * (double)(cg * cc->kh * cc->kw);
        if (!(fabs(got - want[i]) <= tol))
            fail_msg("%s element %lld: got %.9g want %.9g", kiln_dtype_name(dt), (long long)i, got, want[i]);
    }
    kt_op_free(t);
    free(x), free(w), free(b), free(want), free(xd), free(wd), free(bd);
}

/* im2col + GEMM (f32) and the direct loops (f64, and f32 depthwise) against
 * the naive formula: groups, depthwise, strides, dilations, asymmetric pads,
 * 1x1, and a size large enough to split the GEMM over threads. */
static void test_conv_against_naive(void **state)
{
    (void)state;
    static const conv_case cases[] = {
        /* n  c  h   w   m  kh kw g   sh sw dh dw pt pl pb pr bias */
        {1, 3, 7, 9, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true},
        {2, 4, 9, 8, 6, 3, 2, 2, 2, 1, 2, 1, 0, 2, 1, 0, true},   /* groups, stride, dilation, asymmetric pads */
        {1, 6, 8, 8, 6, 3, 3, 6, 1, 1, 1, 1, 1, 1, 1, 1, true},   /* depthwise */
        {1, 4, 10, 7, 8, 3, 3, 4, 2, 2, 1, 2, 1, 0, 0, 1, false}, /* depthwise x2 channel multiplier */
        {1, 5, 6, 6, 7, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, true},   /* pointwise: no im2col */
        {1, 64, 20, 20, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true}, /* 16M MACs: threaded GEMM, edge tiles */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_conv_case(&cases[i], KILN_F32);
        run_conv_case(&cases[i], KILN_F64);
    }
}

static void test_conv_1d_3d(void **state)
{
    (void)state;
    /* 1-D: x = 1..6, w = [1, 2], stride 2, pad 1 each side: outputs at
     * positions -1, 1, 3, 5: [2*1, 2+2*3, 4+2*5, 6+0] = [2, 8, 14, 6] */
    float x[6], w[2] = {1, 2};
    fill_iota(x, 6, 1.0f);
    kt_op *t = kt_op_new("Conv", 17);
    kt_op_input(t, "X", KILN_F32, 3, D(1, 1, 6), x);
    kt_op_input(t, "W", KILN_F32, 3, D(1, 1, 2), w);
    kt_op_output(t, "Y");
    kt_op_attr_ints(t, "strides", 1, D(2));
    kt_op_attr_ints(t, "pads", 2, D(1, 1));
    assert_kiln_ok(kt_op_run(t));
    static const float want1[] = {2, 8, 14, 6};
    assert_close(out_f32(t, "Y"), want1, 4, 0);
    kt_op_free(t);

    /* 3-D: x = 0..26 (3x3x3), w = ones(2x2x2), no pad: each output is the sum
     * of a 2x2x2 cube; the cube at origin (d,h,w) sums to 8*(9d+3h+w) + 4*(9+3+1) */
    float x3[27], w3[8];
    fill_iota(x3, 27, 0.0f);
    for (int i = 0; i < 8; i++) w3[i] = 1.0f;
    t = kt_op_new("Conv", 17);
    kt_op_input(t, "X", KILN_F32, 5, D(1, 1, 3, 3, 3), x3);
    kt_op_input(t, "W", KILN_F32, 5, D(1, 1, 2, 2, 2), w3);
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 5, D(1, 1, 2, 2, 2));
    float want3[8];
    for (int d = 0; d < 2; d++)
        for (int h = 0; h < 2; h++)
            for (int ww = 0; ww < 2; ww++) want3[(d * 2 + h) * 2 + ww] = (float)(8 * (9 * d + 3 * h + ww) + 4 * 13);
    assert_close(out_f32(t, "Y"), want3, 8, 0);
    kt_op_free(t);
}

static void test_conv_f16(void **state)
{
    (void)state;
    /* the padded ONNX example in f16: every value is an integer < 2048, exact in f16 */
    uint16_t x[25], w[9];
    for (int i = 0; i < 25; i++) x[i] = kiln_f32_to_f16((float)i);
    for (int i = 0; i < 9; i++) w[i] = kiln_f32_to_f16(1.0f);
    kt_op *t = kt_op_new("Conv", 17);
    kt_op_input(t, "X", KILN_F16, 4, D(1, 1, 5, 5), x);
    kt_op_input(t, "W", KILN_F16, 4, D(1, 1, 3, 3), w);
    kt_op_output(t, "Y");
    kt_op_attr_ints(t, "pads", 4, D(1, 1, 1, 1));
    assert_kiln_ok(kt_op_run(t));
    kiln_value *y = kt_op_value(t, "Y");
    assert_int_equal(y->dtype, KILN_F16);
    assert_true(kiln_f16_to_f32(((uint16_t *)y->data)[12]) == 108.0f);
    assert_true(kiln_f16_to_f32(((uint16_t *)y->data)[0]) == 12.0f);
    kt_op_free(t);
}

/* ---- ConvTranspose */

/* ONNX Operators.md, ConvTranspose example: x = 0..8 (3x3), W = ones(1x2x3x3). */
static void test_convtranspose_onnx_example(void **state)
{
    (void)state;
    float x[9], w[18];
    fill_iota(x, 9, 0.0f);
    for (int i = 0; i < 18; i++) w[i] = 1.0f;
    kt_op *t = kt_op_new("ConvTranspose", 17);
    kt_op_input(t, "X", KILN_F32, 4, D(1, 1, 3, 3), x);
    kt_op_input(t, "W", KILN_F32, 4, D(1, 2, 3, 3), w);
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 4, D(1, 2, 5, 5));
    static const float want[25] = {0, 1, 3, 3, 2, 3, 8, 15, 12, 7, 9, 21, 36, 27, 15, 9, 20, 33, 24, 13, 6, 13, 21, 15, 8};
    assert_close(out_f32(t, "Y"), want, 25, 0);
    assert_close(out_f32(t, "Y") + 25, want, 25, 0);
    kt_op_free(t);
}

/* Scatter form of the ONNX definition: y[o*s - pad + k*d] += x[i] * w. */
static void naive_convtranspose(int64_t c, int64_t h, int64_t wd, int64_t mg, int64_t group, int64_t k, int64_t s, int64_t d,
                                int64_t pad, int64_t oh, int64_t ow, const float *x, const float *w, double *y)
{
    int64_t cg = c / group;
    memset(y, 0, (size_t)(mg * group * oh * ow) * sizeof *y);
    for (int64_t ci = 0; ci < c; ci++)
        for (int64_t m = 0; m < mg; m++)
            for (int64_t iy = 0; iy < h; iy++)
                for (int64_t ix = 0; ix < wd; ix++)
                    for (int64_t ky = 0; ky < k; ky++)
                        for (int64_t kx = 0; kx < k; kx++) {
                            int64_t oy = iy * s - pad + ky * d, ox = ix * s - pad + kx * d;
                            if (oy < 0 || oy >= oh || ox < 0 || ox >= ow) continue;
                            int64_t oc = ci / cg * mg + m;
                            y[(oc * oh + oy) * ow + ox] +=
                                (double)x[(ci * h + iy) * wd + ix] * w[((ci * mg + m) * k + ky) * k + kx];
                        }
}

static void test_convtranspose_against_naive(void **state)
{
    (void)state;
    /* C=4, group 2, M/g=3, 3x3 kernel, stride 2, dilation 2, pads 1, output_padding 1:
     * out = 2*(5-1) + 1 + (3-1)*2+1 - 2 = 12 */
    int64_t c = 4, h = 5, mg = 3, g = 2;
    float x[4 * 25], w[4 * 3 * 9];
    kt_fill_uniform(x, 100, 5, -1, 1);
    kt_fill_uniform(w, 108, 6, -1, 1);
    double want[6 * 12 * 12];
    naive_convtranspose(c, h, h, mg, g, 3, 2, 2, 1, 12, 12, x, w, want);
    kt_op *t = kt_op_new("ConvTranspose", 17);
    kt_op_input(t, "X", KILN_F32, 4, D(1, c, h, h), x);
    kt_op_input(t, "W", KILN_F32, 4, D(c, mg, 3, 3), w);
    kt_op_output(t, "Y");
    kt_op_attr_int(t, "group", g);
    kt_op_attr_ints(t, "strides", 2, D(2, 2));
    kt_op_attr_ints(t, "dilations", 2, D(2, 2));
    kt_op_attr_ints(t, "pads", 4, D(1, 1, 1, 1));
    kt_op_attr_ints(t, "output_padding", 2, D(1, 1));
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 4, D(1, 6, 12, 12));
    const float *y = out_f32(t, "Y");
    for (int i = 0; i < 6 * 144; i++)
        if (fabs(y[i] - want[i]) > 1e-5 * (1 + fabs(want[i]))) fail_msg("element %d: got %g want %g", i, y[i], want[i]);
    kt_op_free(t);

    /* output_shape [10, 8] (ONNX convtranspose_output_shape): the natural size
     * is 9x7 (stride 3x2 on 3x3, kernel 3); total padding -1 puts the extra
     * row and column at the end, where nothing lands (zeros) */
    float x2[9], w2[18];
    fill_iota(x2, 9, 0.0f);
    for (int i = 0; i < 18; i++) w2[i] = 1.0f;
    t = kt_op_new("ConvTranspose", 17);
    kt_op_input(t, "X", KILN_F32, 4, D(1, 1, 3, 3), x2);
    kt_op_input(t, "W", KILN_F32, 4, D(1, 2, 3, 3), w2);
    kt_op_output(t, "Y");
    kt_op_attr_ints(t, "strides", 2, D(3, 2));
    kt_op_attr_ints(t, "output_shape", 2, D(10, 8));
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 4, D(1, 2, 10, 8));
    y = out_f32(t, "Y");
    /* first row of the ONNX test's expected output, then the zero last row */
    static const float row0[8] = {0, 0, 1, 1, 3, 2, 2, 0};
    assert_close(y, row0, 8, 0);
    for (int i = 0; i < 8; i++) assert_true(y[9 * 8 + i] == 0.0f);
    kt_op_free(t);
}

static void test_convtranspose_same(void **state)
{
    (void)state;
    /* SAME_UPPER, stride 2: out = in * stride = 6; shape only */
    kt_op *t = kt_op_new("ConvTranspose", 17);
    kt_op_input(t, "X", KILN_F32, 4, D(1, 1, 3, 3), NULL);
    kt_op_input(t, "W", KILN_F32, 4, D(1, 2, 3, 3), NULL);
    kt_op_output(t, "Y");
    kt_op_attr_string(t, "auto_pad", "SAME_UPPER");
    kt_op_attr_ints(t, "strides", 2, D(2, 2));
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 4, D(1, 2, 6, 6));
    kt_op_free(t);
}

/* ---- pools */

static kt_op *pool_op(const char *op, const float *x, int64_t h, int64_t w, int64_t k, int64_t s)
{
    kt_op *t = kt_op_new(op, 19);
    kt_op_input(t, "X", KILN_F32, 4, D(1, 1, h, w), x);
    kt_op_output(t, "Y");
    kt_op_attr_ints(t, "kernel_shape", 2, D(k, k));
    kt_op_attr_ints(t, "strides", 2, D(s, s));
    return t;
}

static void test_pool_ceil_mode(void **state)
{
    (void)state;
    /* ONNX maxpool_2d_ceil / averagepool_2d_ceil: x = 1..16 (4x4), kernel 3, stride 2 */
    float x[16];
    fill_iota(x, 16, 1.0f);
    static const float wmax[4] = {11, 12, 15, 16}, wavg[4] = {6, 7.5, 12, 13.5};
    for (int a = 0; a < 2; a++) {
        kt_op *t = pool_op(a ? "AveragePool" : "MaxPool", x, 4, 4, 3, 2);
        kt_op_attr_int(t, "ceil_mode", 1);
        assert_kiln_ok(kt_op_run(t));
        assert_shape(t, "Y", 4, D(1, 1, 2, 2));
        assert_close(out_f32(t, "Y"), a ? wavg : wmax, 4, 1e-6f);
        kt_op_free(t);
    }
}

static void test_avgpool_pads(void **state)
{
    (void)state;
    /* onnxruntime 1.32, x = 1..25 (5x5), kernel 3, stride 2, pads 1:
     * AveragePool(count_include_pad=1) and (=0) */
    static const float incl[9] = {1.7777778f, 3.6666667f, 3.1111112f, 7.6666665f, 13.0f, 9.666667f, 8.444445f, 13.666667f, 9.777778f};
    static const float excl[9] = {4.0f, 5.5f, 7.0f, 11.5f, 13.0f, 14.5f, 19.0f, 20.5f, 22.0f};
    fill_iota(iota25, 25, 1.0f);
    for (int c = 0; c < 2; c++) {
        kt_op *t = pool_op("AveragePool", iota25, 5, 5, 3, 2);
        kt_op_attr_ints(t, "pads", 4, D(1, 1, 1, 1));
        kt_op_attr_int(t, "count_include_pad", c == 0);
        assert_kiln_ok(kt_op_run(t));
        assert_close(out_f32(t, "Y"), c == 0 ? incl : excl, 9, 1e-6f);
        kt_op_free(t);
    }
    /* onnxruntime 1.32: kernel 2, dilation 2, stride 1, pads 1, count_include_pad=1 (5x5 out) */
    static const float dil[25] = {1.75, 3.5, 4, 4.5, 2.25, 3.5, 7, 8, 9, 4.5, 6, 12, 13, 14, 7,
                                  8.5, 17, 18, 19, 9.5, 4.25, 8.5, 9, 9.5, 4.75};
    kt_op *t = pool_op("AveragePool", iota25, 5, 5, 2, 1);
    kt_op_attr_ints(t, "pads", 4, D(1, 1, 1, 1));
    kt_op_attr_ints(t, "dilations", 2, D(2, 2));
    kt_op_attr_int(t, "count_include_pad", 1);
    assert_kiln_ok(kt_op_run(t));
    assert_close(out_f32(t, "Y"), dil, 25, 1e-6f);
    kt_op_free(t);
}

static void test_maxpool_auto_pad(void **state)
{
    (void)state;
    /* onnxruntime 1.32, x = 1..25 (5x5), kernel 2, stride 2: 3x3 out; total
     * pad 1 goes first for SAME_LOWER, last for SAME_UPPER */
    static const float lower[9] = {1, 3, 5, 11, 13, 15, 21, 23, 25}, upper[9] = {7, 9, 10, 17, 19, 20, 22, 24, 25};
    fill_iota(iota25, 25, 1.0f);
    for (int u = 0; u < 2; u++) {
        kt_op *t = pool_op("MaxPool", iota25, 5, 5, 2, 2);
        kt_op_attr_string(t, "auto_pad", u ? "SAME_UPPER" : "SAME_LOWER");
        assert_kiln_ok(kt_op_run(t));
        assert_close(out_f32(t, "Y"), u ? upper : lower, 9, 0);
        kt_op_free(t);
    }
}

static void test_maxpool_indices(void **state)
{
    (void)state;
    fill_iota(iota25, 25, 1.0f);
    /* ONNX maxpool_with_argmax_2d_precomputed_pads: kernel 5, pads 2, 5x5 out */
    kt_op *t = pool_op("MaxPool", iota25, 5, 5, 5, 1);
    kt_op_output(t, "I");
    kt_op_attr_ints(t, "pads", 4, D(2, 2, 2, 2));
    assert_kiln_ok(kt_op_run(t));
    static const float y[25] = {13, 14, 15, 15, 15, 18, 19, 20, 20, 20, 23, 24, 25, 25, 25, 23, 24, 25, 25, 25, 23, 24, 25, 25, 25};
    assert_close(out_f32(t, "Y"), y, 25, 0);
    kiln_value *iv = kt_op_value(t, "I");
    assert_int_equal(iv->dtype, KILN_I64);
    for (int i = 0; i < 25; i++) assert_int_equal(((int64_t *)iv->data)[i], (int64_t)y[i] - 1);
    kt_op_free(t);

    /* ONNX maxpool_with_argmax_2d_precomputed_strides: kernel 2, stride 2,
     * storage_order 1 (column-major indices) */
    t = pool_op("MaxPool", iota25, 5, 5, 2, 2);
    kt_op_output(t, "I");
    kt_op_attr_int(t, "storage_order", 1);
    assert_kiln_ok(kt_op_run(t));
    static const float y2[4] = {7, 9, 17, 19};
    static const int64_t i2[4] = {6, 16, 8, 18};
    assert_close(out_f32(t, "Y"), y2, 4, 0);
    iv = kt_op_value(t, "I");
    for (int i = 0; i < 4; i++) assert_int_equal(((int64_t *)iv->data)[i], i2[i]);
    kt_op_free(t);

    /* onnxruntime 1.32: dilation 2, kernel 2, stride 1 */
    t = pool_op("MaxPool", iota25, 5, 5, 2, 1);
    kt_op_output(t, "I");
    kt_op_attr_ints(t, "dilations", 2, D(2, 2));
    assert_kiln_ok(kt_op_run(t));
    static const float y3[9] = {13, 14, 15, 18, 19, 20, 23, 24, 25};
    assert_close(out_f32(t, "Y"), y3, 9, 0);
    kt_op_free(t);
}

static void test_pool_shape_errors(void **state)
{
    (void)state;
    kt_op *t = kt_op_new("MaxPool", 19); /* kernel_shape missing */
    kt_op_input(t, "X", KILN_F32, 4, D(1, 1, 4, 4), NULL);
    kt_op_output(t, "Y");
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    kt_op_free(t);
    t = kt_op_new("AveragePool", 19); /* i8 average is not implemented */
    kt_op_input(t, "X", KILN_I8, 4, D(1, 1, 4, 4), NULL);
    kt_op_output(t, "Y");
    kt_op_attr_ints(t, "kernel_shape", 2, D(2, 2));
    assert_int_equal(kt_op_run(t), KILN_ERR_UNSUPPORTED);
    kt_op_free(t);
    /* MaxPool on u8: max of 1..16 over 2x2 windows, stride 2 */
    uint8_t xu[16];
    for (int i = 0; i < 16; i++) xu[i] = (uint8_t)(i + 1);
    t = kt_op_new("MaxPool", 19);
    kt_op_input(t, "X", KILN_U8, 4, D(1, 1, 4, 4), xu);
    kt_op_output(t, "Y");
    kt_op_attr_ints(t, "kernel_shape", 2, D(2, 2));
    kt_op_attr_ints(t, "strides", 2, D(2, 2));
    assert_kiln_ok(kt_op_run(t));
    const uint8_t *yu = kt_op_value(t, "Y")->data;
    assert_int_equal(yu[0], 6);
    assert_int_equal(yu[3], 16);
    kt_op_free(t);
}

static void test_global_pools(void **state)
{
    (void)state;
    /* 2 channels of 3x2: [1..6] and [-6..-1] -> mean 3.5 / -3.5, max 6 / -1 */
    float x[12];
    fill_iota(x, 12, 1.0f);
    for (int i = 6; i < 12; i++) x[i] = (float)(i - 12);
    static const float avg[2] = {3.5f, -3.5f}, mx[2] = {6, -1};
    for (int m = 0; m < 2; m++) {
        kt_op *t = kt_op_new(m ? "GlobalMaxPool" : "GlobalAveragePool", 19);
        kt_op_input(t, "X", KILN_F32, 4, D(1, 2, 3, 2), x);
        kt_op_output(t, "Y");
        assert_kiln_ok(kt_op_run(t));
        assert_shape(t, "Y", 4, D(1, 2, 1, 1));
        assert_close(out_f32(t, "Y"), m ? mx : avg, 2, 0);
        kt_op_free(t);
    }
}

/* ---- BatchNormalization */

static void test_batchnorm(void **state)
{
    (void)state;
    /* y = (x - mean) / sqrt(var + eps) * scale + B; with var = 4 - eps the
     * divisor is exactly 2: channel 0: (x - 1) / 2 * 3 + 0.5, channel 1: (x + 2) / 2 * -1 + 0 */
    float x[8] = {1, 3, 5, 7, -2, 0, 2, 4};
    float eps = 1e-5f;
    float scale[2] = {3, -1}, b[2] = {0.5f, 0}, mean[2] = {1, -2}, var[2] = {4.0f - eps, 4.0f - eps};
    kt_op *t = kt_op_new("BatchNormalization", 15);
    kt_op_input(t, "X", KILN_F32, 3, D(1, 2, 4), x);
    kt_op_input(t, "scale", KILN_F32, 1, D(2), scale);
    kt_op_input(t, "B", KILN_F32, 1, D(2), b);
    kt_op_input(t, "mean", KILN_F32, 1, D(2), mean);
    kt_op_input(t, "var", KILN_F32, 1, D(2), var);
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    static const float want[8] = {0.5f, 3.5f, 6.5f, 9.5f, 0, -1, -2, -3};
    assert_close(out_f32(t, "Y"), want, 8, 1e-6f);
    kt_op_free(t);

    t = kt_op_new("BatchNormalization", 15);
    kt_op_input(t, "X", KILN_F32, 3, D(1, 2, 4), NULL);
    kt_op_input(t, "scale", KILN_F32, 1, D(2), NULL);
    kt_op_input(t, "B", KILN_F32, 1, D(2), NULL);
    kt_op_input(t, "mean", KILN_F32, 1, D(2), NULL);
    kt_op_input(t, "var", KILN_F32, 1, D(2), NULL);
    kt_op_output(t, "Y");
    kt_op_attr_int(t, "training_mode", 1);
    assert_int_equal(kt_op_run(t), KILN_ERR_UNSUPPORTED);
    kt_op_free(t);

    t = kt_op_new("BatchNormalization", 15); /* 3 scales for 2 channels */
    kt_op_input(t, "X", KILN_F32, 3, D(1, 2, 4), NULL);
    kt_op_input(t, "scale", KILN_F32, 1, D(3), NULL);
    kt_op_input(t, "B", KILN_F32, 1, D(2), NULL);
    kt_op_input(t, "mean", KILN_F32, 1, D(2), NULL);
    kt_op_input(t, "var", KILN_F32, 1, D(2), NULL);
    kt_op_output(t, "Y");
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    kt_op_free(t);
}

/* ---- Gemm */

static void test_gemm(void **state)
{
    (void)state;
    /* A^T where A = [[1,2],[3,4],[5,6]] (3x2 stored, transA -> 2x3), B^T where
     * B = [[1,0,1],[0,1,1]] (2x3 stored, transB -> 3x2):
     * op(A) = [[1,3,5],[2,4,6]], op(B) = [[1,0],[0,1],[1,1]], op(A)op(B) = [[6,8],[8,10]];
     * alpha 2, beta 0.5, C = [10, 20] broadcast over rows:
     * Y = [[12+5, 16+10], [16+5, 20+10]] */
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 1, 0, 1, 1}, c[2] = {10, 20};
    kt_op *t = kt_op_new("Gemm", 17);
    kt_op_input(t, "A", KILN_F32, 2, D(3, 2), a);
    kt_op_input(t, "B", KILN_F32, 2, D(2, 3), b);
    kt_op_input(t, "C", KILN_F32, 1, D(2), c);
    kt_op_output(t, "Y");
    kt_op_attr_int(t, "transA", 1);
    kt_op_attr_int(t, "transB", 1);
    kt_op_attr_float(t, "alpha", 2.0f);
    kt_op_attr_float(t, "beta", 0.5f);
    assert_kiln_ok(kt_op_run(t));
    static const float want[4] = {17, 26, 21, 30};
    assert_close(out_f32(t, "Y"), want, 4, 0);
    kt_op_free(t);

    /* C of shape [M, 1] broadcasts along columns; f64 path */
    double ad[6] = {1, 2, 3, 4, 5, 6}, bd[2] = {1, -1}, cd[3] = {100, 200, 300};
    t = kt_op_new("Gemm", 17);
    kt_op_input(t, "A", KILN_F64, 2, D(3, 2), ad);
    kt_op_input(t, "B", KILN_F64, 2, D(2, 1), bd);
    kt_op_input(t, "C", KILN_F64, 2, D(3, 1), cd);
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    const double *yd = kt_op_value(t, "Y")->data;
    assert_true(yd[0] == 99 && yd[1] == 199 && yd[2] == 299); /* rows 1-2, 3-4, 5-6 = -1 */
    kt_op_free(t);

    t = kt_op_new("Gemm", 17); /* C [2, 3] cannot broadcast to [3, 1] */
    kt_op_input(t, "A", KILN_F32, 2, D(3, 2), NULL);
    kt_op_input(t, "B", KILN_F32, 2, D(2, 1), NULL);
    kt_op_input(t, "C", KILN_F32, 2, D(2, 3), NULL);
    kt_op_output(t, "Y");
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    kt_op_free(t);
}

/* ---- MatMul */

static void matmul_shape(int ra, const int64_t *da, int rb, const int64_t *db, int ry, const int64_t *dy)
{
    int64_t a[KILN_MAX_RANK], b[KILN_MAX_RANK];
    memcpy(a, da, (size_t)ra * 8);
    memcpy(b, db, (size_t)rb * 8);
    kt_op *t = kt_op_new("MatMul", 17);
    kt_op_input(t, "A", KILN_F32, ra, a, NULL);
    kt_op_input(t, "B", KILN_F32, rb, b, NULL);
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", ry, dy);
    kt_op_free(t);
}

static void test_matmul_shapes(void **state)
{
    (void)state;
    matmul_shape(1, D(3), 1, D(3), 0, D(0));                          /* dot product: a scalar */
    matmul_shape(3, D(2, 3, 4), 1, D(4), 2, D(2, 3));                 /* matrix-vector */
    matmul_shape(1, D(4), 3, D(2, 4, 5), 2, D(2, 5));                 /* vector-matrix */
    matmul_shape(4, D(2, 1, 3, 4), 3, D(5, 4, 6), 4, D(2, 5, 3, 6)); /* batch broadcast */

    kt_op *t = kt_op_new("MatMul", 17);
    kt_op_input(t, "A", KILN_F32, 2, D(3, 4), NULL);
    kt_op_input(t, "B", KILN_F32, 2, D(5, 6), NULL);
    kt_op_output(t, "Y");
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    kt_op_free(t);
    t = kt_op_new("MatMul", 17);
    kt_op_input(t, "A", KILN_I32, 2, D(3, 4), NULL);
    kt_op_input(t, "B", KILN_I32, 2, D(4, 6), NULL);
    kt_op_output(t, "Y");
    assert_int_equal(kt_op_run(t), KILN_ERR_UNSUPPORTED);
    assert_non_null(strstr(kiln_last_error(), "i32"));
    kt_op_free(t);
}

static void test_matmul_values(void **state)
{
    (void)state;
    /* A [2,1,2,2] = two 2x2 matrices [[1,2],[3,4]], [[5,6],[7,8]];
     * B [2,2,1] = two columns [1,1], [1,-1]: every A batch times every B batch.
     * [[1,2],[3,4]]·[1,1] = [3,7], ·[1,-1] = [-1,-1];
     * [[5,6],[7,8]]·[1,1] = [11,15], ·[1,-1] = [-1,-1] */
    float a[8] = {1, 2, 3, 4, 5, 6, 7, 8}, b[4] = {1, 1, 1, -1};
    kt_op *t = kt_op_new("MatMul", 17);
    kt_op_input(t, "A", KILN_F32, 4, D(2, 1, 2, 2), a);
    kt_op_input(t, "B", KILN_F32, 3, D(2, 2, 1), b);
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 4, D(2, 2, 2, 1));
    static const float want[8] = {3, 7, -1, -1, 11, 15, -1, -1};
    assert_close(out_f32(t, "Y"), want, 8, 0);
    kt_op_free(t);

    /* 1-D times 1-D in bf16: [1,2,3]·[4,5,6] = 32 */
    uint16_t x[3], y[3];
    for (int i = 0; i < 3; i++) {
        x[i] = kiln_f32_to_bf16((float)(i + 1));
        y[i] = kiln_f32_to_bf16((float)(i + 4));
    }
    t = kt_op_new("MatMul", 17);
    kt_op_input(t, "A", KILN_BF16, 1, D(3), x);
    kt_op_input(t, "B", KILN_BF16, 1, D(3), y);
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    kiln_value *v = kt_op_value(t, "Y");
    assert_int_equal(v->shape.rank, 0);
    assert_true(kiln_bf16_to_f32(*(uint16_t *)v->data) == 32.0f);
    kt_op_free(t);
}

/* ---- the GEMM itself: odd sizes, strided (transposed) operands, alpha/beta */

static void test_sgemm_strides(void **state)
{
    (void)state;
    const int64_t sizes[][3] = {{1, 1, 1}, {7, 19, 5}, {37, 53, 300}, {130, 170, 260}, {6, 16, 0}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int64_t m = sizes[s][0], n = sizes[s][1], k = sizes[s][2];
        float *a = malloc((size_t)(m * k + 1) * 4), *b = malloc((size_t)(k * n + 1) * 4), *c = malloc((size_t)(m * n) * 4);
        kt_fill_uniform(a, (size_t)(m * k), 11, -1, 1);
        kt_fill_uniform(b, (size_t)(k * n), 12, -1, 1);
        kt_fill_uniform(c, (size_t)(m * n), 13, -1, 1);
        float *c0 = malloc((size_t)(m * n) * 4);
        memcpy(c0, c, (size_t)(m * n) * 4);
        /* A stored transposed (k x m), B row-major (k x n): C = 0.5 A B + 2 C */
        assert_kiln_ok(kiln_sgemm(m, n, k, 0.5f, a, 1, m, b, n, 1, 2.0f, c, n));
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double r = 0;
                for (int64_t p = 0; p < k; p++) r += (double)a[p * m + i] * b[p * n + j];
                r = 0.5 * r + 2.0 * c0[i * n + j];
                if (fabs(c[i * n + j] - r) > 1e-5 * (1 + fabs(r)) + 1e-6 * (double)k)
                    fail_msg("%lldx%lldx%lld (%lld,%lld): got %g want %g", (long long)m, (long long)n, (long long)k,
                             (long long)i, (long long)j, c[i * n + j], r);
            }
        free(a), free(b), free(c), free(c0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_shape_symbolic_batch),
        cmocka_unit_test(test_conv_shape_auto_pad),
        cmocka_unit_test(test_conv_shape_errors),
        cmocka_unit_test(test_conv_onnx_examples),
        cmocka_unit_test(test_conv_against_naive),
        cmocka_unit_test(test_conv_1d_3d),
        cmocka_unit_test(test_conv_f16),
        cmocka_unit_test(test_convtranspose_onnx_example),
        cmocka_unit_test(test_convtranspose_against_naive),
        cmocka_unit_test(test_convtranspose_same),
        cmocka_unit_test(test_pool_ceil_mode),
        cmocka_unit_test(test_avgpool_pads),
        cmocka_unit_test(test_maxpool_auto_pad),
        cmocka_unit_test(test_maxpool_indices),
        cmocka_unit_test(test_pool_shape_errors),
        cmocka_unit_test(test_global_pools),
        cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_matmul_shapes),
        cmocka_unit_test(test_matmul_values),
        cmocka_unit_test(test_sgemm_strides),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
