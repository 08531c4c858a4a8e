/* Tensor family: shape rules (with symbolic dims) and reference kernels of
 * Flatten, Reshape, Transpose, Concat, Split, Slice, Gather, GatherElements,
 * Squeeze, Unsqueeze, Expand, Tile, Shape, Size, Constant, ConstantOfShape,
 * Range. Expected values are worked out by hand from the ONNX spec (the
 * comment next to each says how); numpy equivalents are noted. */
#include "testutil.h"
#include "opharness.h"

#include <stdint.h>
#include <string.h>

static int64_t sym(kt_op *t, const char *name) { return kiln_dim_sym(kiln_graph_symbol(t->g, name)); }

static void assert_shape(const kiln_value *v, int rank, const int64_t *d)
{
    assert_non_null(v);
    assert_int_equal(v->shape.rank, rank);
    for (int i = 0; i < rank; i++)
        if (v->shape.d[i] != d[i]) fail_msg("dim %d is %lld, expected %lld", i, (long long)v->shape.d[i], (long long)d[i]);
}

static void assert_i64s(const kiln_value *v, int n, const int64_t *want)
{
    assert_non_null(v->data);
    assert_int_equal(v->dtype, KILN_I64);
    assert_int_equal(kiln_shape_numel(&v->shape), n);
    assert_memory_equal(v->data, want, (size_t)n * 8);
}

static void assert_f32s(const kiln_value *v, int n, const float *want)
{
    assert_non_null(v->data);
    assert_int_equal(v->dtype, KILN_F32);
    assert_int_equal(kiln_shape_numel(&v->shape), n);
    for (int i = 0; i < n; i++)
        if (((const float *)v->data)[i] != want[i])
            fail_msg("element %d is %g, expected %g", i, ((const float *)v->data)[i], want[i]);
}

static void assert_fails(kt_op *t, kiln_status want, const char *needle)
{
    kiln_status st = kt_op_run(t);
    if (st != want) fail_msg("status %s (%s), expected %s", kiln_status_name(st), kiln_last_error(), kiln_status_name(want));
    if (needle && !strstr(kiln_last_error(), needle)) fail_msg("message '%s' lacks '%s'", kiln_last_error(), needle);
}

/* ---------------------------------------------------------------- Reshape */

static void test_reshape_keeps_batch_symbol(void **state)
{
    (void)state;
    /* [batch,512,1,1] by [0,-1]: 0 copies batch, -1 = 512*1*1 / 1 */
    kt_op *t = kt_op_new("Reshape", 17);
    const char *s[] = {"batch", NULL, NULL, NULL};
    kt_op_input_sym(t, "x", KILN_F32, 4, (int64_t[]){-1, 512, 1, 1}, s);
    kt_op_input(t, "shape", KILN_I64, 1, (int64_t[]){2}, (int64_t[]){0, -1});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, (int64_t[]){sym(t, "batch"), 512});
    assert_null(kt_op_value(t, "y")->data);
    kt_op_free(t);

    /* [batch,3,4,4] by [-1,48]: the concrete parts cancel, -1 is batch */
    t = kt_op_new("Reshape", 17);
    kt_op_input_sym(t, "x", KILN_F16, 4, (int64_t[]){-1, 3, 4, 4}, s);
    kt_op_input(t, "shape", KILN_I64, 1, (int64_t[]){2}, (int64_t[]){-1, 48});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, (int64_t[]){sym(t, "batch"), 48});
    assert_int_equal(kt_op_value(t, "y")->dtype, KILN_F16);
    kt_op_free(t);

    /* [batch,4] by [-1,2]: 2*batch has no name: unknown */
    t = kt_op_new("Reshape", 17);
    kt_op_input_sym(t, "x", KILN_F32, 2, (int64_t[]){-1, 4}, s);
    kt_op_input(t, "shape", KILN_I64, 1, (int64_t[]){2}, (int64_t[]){-1, 2});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, (int64_t[]){KILN_DIM_UNKNOWN, 2});
    kt_op_free(t);

    /* shape unknown, length 3 known: rank 3 */
    t = kt_op_new("Reshape", 17);
    kt_op_input(t, "x", KILN_F32, 2, (int64_t[]){2, 4}, NULL);
    kt_op_input(t, "shape", KILN_I64, 1, (int64_t[]){3}, NULL);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 3, (int64_t[]){KILN_DIM_UNKNOWN, KILN_DIM_UNKNOWN, KILN_DIM_UNKNOWN});
    kt_op_free(t);
}

static void test_reshape_kernel_and_errors(void **state)
{
    (void)state;
    /* [2,3] i64 by [3,-1] -> [3,2], same bytes */
    const int64_t x[] = {1, 2, 3, 4, 5, 6};
    kt_op *t = kt_op_new("Reshape", 17);
    kt_op_input(t, "x", KILN_I64, 2, (int64_t[]){2, 3}, x);
    kt_op_input(t, "shape", KILN_I64, 1, (int64_t[]){2}, (int64_t[]){3, -1});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, (int64_t[]){3, 2});
    assert_i64s(kt_op_value(t, "y"), 6, x);
    kt_op_free(t);

    /* allowzero=1: 0 is a real 0 ([0,3] -> [3,0]) */
    t = kt_op_new("Reshape", 17);
    kt_op_input(t, "x", KILN_F32, 2, (int64_t[]){0, 3}, (float[]){0});
    kt_op_input(t, "shape", KILN_I64, 1, (int64_t[]){2}, (int64_t[]){3, 0});
    kt_op_attr_int(t, "allowzero", 1);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, (int64_t[]){3, 0});
    kt_op_free(t);

    /* 6 elements cannot be [4,-1] */
    t = kt_op_new("Reshape", 17);
    kt_op_input(t, "x", KILN_F32, 2, (int64_t[]){2, 3}, NULL);
    kt_op_input(t, "shape", KILN_I64, 1, (int64_t[]){2}, (int64_t[]){4, -1});
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "'x'");
    kt_op_free(t);

    /* two -1 */
    t = kt_op_new("Reshape", 17);
    kt_op_input(t, "x", KILN_F32, 2, (int64_t[]){2, 3}, NULL);
    kt_op_input(t, "shape", KILN_I64, 1, (int64_t[]){2}, (int64_t[]){-1, -1});
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "'shape'");
    kt_op_free(t);
}

/* ---------------------------------------------------------------- Flatten */

static void test_flatten(void **state)
{
    (void)state;
    const char *s[] = {"batch", NULL, NULL, NULL};
    kt_op *t = kt_op_new("Flatten", 17);
    kt_op_input_sym(t, "x", KILN_F32, 4, (int64_t[]){-1, 3, 4, 5}, s);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, (int64_t[]){sym(t, "batch"), 60});
    kt_op_free(t);

    /* axis 0: [1, batch*60] is not a name: unknown */
    t = kt_op_new("Flatten", 17);
    kt_op_input_sym(t, "x", KILN_F32, 4, (int64_t[]){-1, 3, 4, 5}, s);
    kt_op_attr_int(t, "axis", 0);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, (int64_t[]){1, KILN_DIM_UNKNOWN});
    kt_op_free(t);

    /* axis -1 on [2,3,2] u8: [6,2], bytes unchanged */
    const uint8_t x[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    t = kt_op_new("Flatten", 17);
    kt_op_input(t, "x", KILN_U8, 3, (int64_t[]){2, 3, 2}, x);
    kt_op_attr_int(t, "axis", -1);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, (int64_t[]){6, 2});
    assert_memory_equal(kt_op_value(t, "y")->data, x, 12);
    kt_op_free(t);

    t = kt_op_new("Flatten", 17);
    kt_op_input(t, "x", KILN_F32, 2, (int64_t[]){2, 3}, NULL);
    kt_op_attr_int(t, "axis", 3);
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "'x'");
    kt_op_free(t);
}

/* -------------------------------------------------------------- Transpose */

static void test_transpose(void **state)
{
    (void)state;
    /* default perm reverses: [2,3] -> [3,2], y[j][i] = x[i][j] (numpy x.T) */
    kt_op *t = kt_op_new("Transpose", 17);
    kt_op_input(t, "x", KILN_I64, 2, (int64_t[]){2, 3}, (int64_t[]){1, 2, 3, 4, 5, 6});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, (int64_t[]){3, 2});
    assert_i64s(kt_op_value(t, "y"), 6, (int64_t[]){1, 4, 2, 5, 3, 6});
    kt_op_free(t);

    /* f16 [1,2,3] perm [2,0,1]: y shape [3,1,2], y[k][0][i] = x[0][i][k];
     * x = 0..5 as f16 bit patterns 0x3c00+n, so y = x at 0,3,1,4,2,5 */
    uint16_t x[6], want[6];
    for (int i = 0; i < 6; i++) x[i] = (uint16_t)(0x3c00 + i);
    const int order[] = {0, 3, 1, 4, 2, 5};
    for (int i = 0; i < 6; i++) want[i] = x[order[i]];
    t = kt_op_new("Transpose", 17);
    kt_op_input(t, "x", KILN_F16, 3, (int64_t[]){1, 2, 3}, x);
    kt_op_attr_ints(t, "perm", 3, (int64_t[]){2, 0, 1});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 3, (int64_t[]){3, 1, 2});
    assert_memory_equal(kt_op_value(t, "y")->data, want, sizeof want);
    kt_op_free(t);

    /* symbols follow their dims */
    const char *s[] = {"batch", NULL, "seq"};
    t = kt_op_new("Transpose", 17);
    kt_op_input_sym(t, "x", KILN_F32, 3, (int64_t[]){-1, 8, -1}, s);
    kt_op_attr_ints(t, "perm", 3, (int64_t[]){0, 2, 1});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 3, (int64_t[]){sym(t, "batch"), sym(t, "seq"), 8});
    kt_op_free(t);

    t = kt_op_new("Transpose", 17);
    kt_op_input(t, "x", KILN_F32, 2, (int64_t[]){2, 3}, NULL);
    kt_op_attr_ints(t, "perm", 2, (int64_t[]){0, 0});
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "perm");
    kt_op_free(t);
}

/* ----------------------------------------------------------- Concat/Split */

static void test_concat(void **state)
{
    (void)state;
    /* axis 1: [[1],[2]] ++ [[3,4],[5,6]] = [[1,3,4],[2,5,6]] */
    kt_op *t = kt_op_new("Concat", 17);
    kt_op_input(t, "a", KILN_F32, 2, (int64_t[]){2, 1}, (float[]){1, 2});
    kt_op_input(t, "b", KILN_F32, 2, (int64_t[]){2, 2}, (float[]){3, 4, 5, 6});
    kt_op_attr_int(t, "axis", -1);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, (int64_t[]){2, 3});
    assert_f32s(kt_op_value(t, "y"), 6, (float[]){1, 3, 4, 2, 5, 6});
    kt_op_free(t);

    /* shape tensors, with an empty one */
    t = kt_op_new("Concat", 17);
    kt_op_input(t, "a", KILN_I64, 1, (int64_t[]){1}, (int64_t[]){7});
    kt_op_input(t, "e", KILN_I64, 1, (int64_t[]){0}, (int64_t[]){0});
    kt_op_input(t, "b", KILN_I64, 1, (int64_t[]){2}, (int64_t[]){-1, 3});
    kt_op_attr_int(t, "axis", 0);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_i64s(kt_op_value(t, "y"), 3, (int64_t[]){7, -1, 3});
    kt_op_free(t);

    /* symbolic: batch passes on the other dims, the axis adds up when known */
    const char *s[] = {"batch", NULL};
    t = kt_op_new("Concat", 17);
    kt_op_input_sym(t, "a", KILN_F32, 2, (int64_t[]){-1, 2}, s);
    kt_op_input(t, "b", KILN_F32, 2, (int64_t[]){-1, 5}, NULL);
    kt_op_attr_int(t, "axis", 1);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, (int64_t[]){sym(t, "batch"), 7});
    kt_op_free(t);

    t = kt_op_new("Concat", 17);
    kt_op_input(t, "a", KILN_F32, 2, (int64_t[]){2, 2}, NULL);
    kt_op_input(t, "b", KILN_F32, 2, (int64_t[]){3, 2}, NULL);
    kt_op_attr_int(t, "axis", 1);
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "'b'");
    kt_op_free(t);
}

static void test_split(void **state)
{
    (void)state;
    /* v13 with split [1,2] on axis 0 of [[1,2],[3,4],[5,6]] */
    kt_op *t = kt_op_new("Split", 13);
    kt_op_input(t, "x", KILN_F32, 2, (int64_t[]){3, 2}, (float[]){1, 2, 3, 4, 5, 6});
    kt_op_input(t, "split", KILN_I64, 1, (int64_t[]){2}, (int64_t[]){1, 2});
    kt_op_output(t, "a");
    kt_op_output(t, "b");
    assert_kiln_ok(kt_op_run(t));
    assert_f32s(kt_op_value(t, "a"), 2, (float[]){1, 2});
    assert_shape(kt_op_value(t, "b"), 2, (int64_t[]){2, 2});
    assert_f32s(kt_op_value(t, "b"), 4, (float[]){3, 4, 5, 6});
    kt_op_free(t);

    /* v18 num_outputs=3 on 7 elements: ceil(7/3)=3 -> [3,3,1] */
    t = kt_op_new("Split", 18);
    kt_op_input(t, "x", KILN_I64, 1, (int64_t[]){7}, (int64_t[]){0, 1, 2, 3, 4, 5, 6});
    kt_op_attr_int(t, "num_outputs", 3);
    kt_op_output(t, "a");
    kt_op_output(t, "b");
    kt_op_output(t, "c");
    assert_kiln_ok(kt_op_run(t));
    assert_i64s(kt_op_value(t, "a"), 3, (int64_t[]){0, 1, 2});
    assert_i64s(kt_op_value(t, "b"), 3, (int64_t[]){3, 4, 5});
    assert_i64s(kt_op_value(t, "c"), 1, (int64_t[]){6});
    kt_op_free(t);

    /* equal parts along axis 1 of [2,4] (bool): [[a b|c d],[e f|g h]] */
    t = kt_op_new("Split", 13);
    kt_op_input(t, "x", KILN_BOOL, 2, (int64_t[]){2, 4}, (uint8_t[]){1, 0, 0, 1, 1, 1, 0, 0});
    kt_op_attr_int(t, "axis", 1);
    kt_op_output(t, "a");
    kt_op_output(t, "b");
    assert_kiln_ok(kt_op_run(t));
    assert_memory_equal(kt_op_value(t, "a")->data, ((uint8_t[]){1, 0, 1, 1}), 4);
    assert_memory_equal(kt_op_value(t, "b")->data, ((uint8_t[]){0, 1, 0, 0}), 4);
    kt_op_free(t);

    /* split that does not add up */
    t = kt_op_new("Split", 13);
    kt_op_input(t, "x", KILN_F32, 1, (int64_t[]){5}, NULL);
    kt_op_input(t, "split", KILN_I64, 1, (int64_t[]){2}, (int64_t[]){1, 2});
    kt_op_output(t, "a");
    kt_op_output(t, "b");
    assert_fails(t, KILN_ERR_SHAPE, "'split'");
    kt_op_free(t);

    /* batch dim kept on the other axes */
    const char *s[] = {"batch", NULL};
    t = kt_op_new("Split", 13);
    kt_op_input_sym(t, "x", KILN_F32, 2, (int64_t[]){-1, 6}, s);
    kt_op_attr_int(t, "axis", 1);
    kt_op_output(t, "a");
    kt_op_output(t, "b");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "b"), 2, (int64_t[]){sym(t, "batch"), 3});
    kt_op_free(t);
}

/* ------------------------------------------------------------------ Slice */

static kt_op *slice_op(int n, const void *x, kiln_dtype dt, int64_t start, int64_t end, int64_t step)
{
    kt_op *t = kt_op_new("Slice", 13);
    kt_op_input(t, "x", dt, 1, (int64_t[]){n}, x);
    kt_op_input(t, "starts", KILN_I64, 1, (int64_t[]){1}, (int64_t[]){start});
    kt_op_input(t, "ends", KILN_I64, 1, (int64_t[]){1}, (int64_t[]){end});
    kt_op_input(t, "", KILN_I64, 0, NULL, NULL);
    kt_op_input(t, "steps", KILN_I64, 1, (int64_t[]){1}, (int64_t[]){step});
    kt_op_output(t, "y");
    return t;
}

static void test_slice_1d(void **state)
{
    (void)state;
    const int64_t x[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    struct {
        int64_t start, end, step;
        int n;
        int64_t want[10];
    } cases[] = {
        {-3, INT64_MAX, 1, 3, {7, 8, 9}},             /* x[-3:] */
        {-1, INT64_MIN, -1, 10, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0}}, /* x[::-1] */
        {20, 1, -3, 3, {9, 6, 3}},                     /* start clamps to 9: x[9:1:-3] */
        {1, 8, 3, 3, {1, 4, 7}},                       /* x[1:8:3] */
        {5, 2, 1, 0, {0}},                             /* empty */
        {-100, 2, 1, 2, {0, 1}},                       /* start -100+10 clamps to 0 */
        {2, -100, -1, 3, {2, 1, 0}},                   /* end clamps to -1: x[2::-1] */
        {0, 10, INT64_MAX, 1, {0}},                    /* huge step */
        {9, 0, INT64_MIN, 1, {9}},                     /* huge negative step */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kt_op *t = slice_op(10, x, KILN_I64, cases[i].start, cases[i].end, cases[i].step);
        assert_kiln_ok(kt_op_run(t));
        kiln_value *y = kt_op_value(t, "y");
        if (y->shape.d[0] != cases[i].n) fail_msg("case %zu: %lld elements", i, (long long)y->shape.d[0]);
        if (cases[i].n) assert_i64s(y, cases[i].n, cases[i].want);
        kt_op_free(t);
    }

    /* step 0 is an error */
    kt_op *t = slice_op(10, x, KILN_I64, 0, 5, 0);
    assert_fails(t, KILN_ERR_SHAPE, "step");
    kt_op_free(t);
}

static void test_slice_2d_and_symbols(void **state)
{
    (void)state;
    /* x = 3x4 f64 0..11; axes [1], starts [1], ends [4], steps [2]: cols 1,3 */
    double x[12], want[] = {1, 3, 5, 7, 9, 11};
    for (int i = 0; i < 12; i++) x[i] = i;
    kt_op *t = kt_op_new("Slice", 13);
    kt_op_input(t, "x", KILN_F64, 2, (int64_t[]){3, 4}, x);
    kt_op_input(t, "starts", KILN_I64, 1, (int64_t[]){1}, (int64_t[]){1});
    kt_op_input(t, "ends", KILN_I64, 1, (int64_t[]){1}, (int64_t[]){4});
    kt_op_input(t, "axes", KILN_I64, 1, (int64_t[]){1}, (int64_t[]){-1});
    kt_op_input(t, "steps", KILN_I64, 1, (int64_t[]){1}, (int64_t[]){2});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, (int64_t[]){3, 2});
    assert_memory_equal(kt_op_value(t, "y")->data, want, sizeof want);
    kt_op_free(t);

    /* both axes, reversed rows: x[2:0:-1, 0:2] = rows 2,1 cols 0,1 */
    double want2[] = {8, 9, 4, 5};
    t = kt_op_new("Slice", 13);
    kt_op_input(t, "x", KILN_F64, 2, (int64_t[]){3, 4}, x);
    kt_op_input(t, "starts", KILN_I64, 1, (int64_t[]){2}, (int64_t[]){2, 0});
    kt_op_input(t, "ends", KILN_I64, 1, (int64_t[]){2}, (int64_t[]){0, 2});
    kt_op_input(t, "axes", KILN_I64, 1, (int64_t[]){2}, (int64_t[]){0, 1});
    kt_op_input(t, "steps", KILN_I64, 1, (int64_t[]){2}, (int64_t[]){-1, 1});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_memory_equal(kt_op_value(t, "y")->data, want2, sizeof want2);
    kt_op_free(t);

    /* [batch, seq, 8]: axis 1 from 0 to INT64_MAX keeps seq; axis 2 1: -> 7;
     * batch untouched */
    const char *s[] = {"batch", "seq", NULL};
    t = kt_op_new("Slice", 13);
    kt_op_input_sym(t, "x", KILN_F32, 3, (int64_t[]){-1, -1, 8}, s);
    kt_op_input(t, "starts", KILN_I64, 1, (int64_t[]){2}, (int64_t[]){0, 1});
    kt_op_input(t, "ends", KILN_I64, 1, (int64_t[]){2}, (int64_t[]){INT64_MAX, INT64_MAX});
    kt_op_input(t, "axes", KILN_I64, 1, (int64_t[]){2}, (int64_t[]){1, 2});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 3, (int64_t[]){sym(t, "batch"), sym(t, "seq"), 7});
    kt_op_free(t);

    /* seq sliced from 1: unknown */
    t = kt_op_new("Slice", 13);
    kt_op_input_sym(t, "x", KILN_F32, 3, (int64_t[]){-1, -1, 8}, s);
    kt_op_input(t, "starts", KILN_I64, 1, (int64_t[]){1}, (int64_t[]){1});
    kt_op_input(t, "ends", KILN_I64, 1, (int64_t[]){1}, (int64_t[]){INT64_MAX});
    kt_op_input(t, "axes", KILN_I64, 1, (int64_t[]){1}, (int64_t[]){1});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 3, (int64_t[]){sym(t, "batch"), KILN_DIM_UNKNOWN, 8});
    kt_op_free(t);

    /* starts unknown but axes known: only axis 2 is unknown */
    t = kt_op_new("Slice", 13);
    kt_op_input_sym(t, "x", KILN_F32, 3, (int64_t[]){-1, -1, 8}, s);
    kt_op_input(t, "starts", KILN_I64, 1, (int64_t[]){1}, NULL);
    kt_op_input(t, "ends", KILN_I64, 1, (int64_t[]){1}, NULL);
    kt_op_input(t, "axes", KILN_I64, 1, (int64_t[]){1}, (int64_t[]){2});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 3, (int64_t[]){sym(t, "batch"), sym(t, "seq"), KILN_DIM_UNKNOWN});
    kt_op_free(t);
}

/* ----------------------------------------------------------------- Gather */

static void test_gather(void **state)
{
    (void)state;
    /* Shape-output style: scalar index -1 of [2,3,4,5] -> 0-D 5 */
    kt_op *t = kt_op_new("Gather", 13);
    kt_op_input(t, "x", KILN_I64, 1, (int64_t[]){4}, (int64_t[]){2, 3, 4, 5});
    kt_op_input(t, "i", KILN_I64, 0, NULL, (int64_t[]){-1});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 0, NULL);
    assert_i64s(kt_op_value(t, "y"), 1, (int64_t[]){5});
    kt_op_free(t);

    /* axis 1 of u8 [2,3] = [[1,2,3],[4,5,6]] with i32 indices [[2,0],[1,1]]:
     * out [2,2,2]; out[r][a][b] = x[r][idx[a][b]] (numpy np.take(x, idx, 1)) */
    t = kt_op_new("Gather", 13);
    kt_op_input(t, "x", KILN_U8, 2, (int64_t[]){2, 3}, (uint8_t[]){1, 2, 3, 4, 5, 6});
    kt_op_input(t, "i", KILN_I32, 2, (int64_t[]){2, 2}, (int32_t[]){2, 0, 1, -2});
    kt_op_attr_int(t, "axis", 1);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 3, (int64_t[]){2, 2, 2});
    assert_memory_equal(kt_op_value(t, "y")->data, ((uint8_t[]){3, 1, 2, 2, 6, 4, 5, 5}), 8);
    kt_op_free(t);

    /* axis 0, rows of f32 (embedding lookup): idx [1,0,1] */
    t = kt_op_new("Gather", 13);
    kt_op_input(t, "x", KILN_F32, 2, (int64_t[]){2, 2}, (float[]){1, 2, 3, 4});
    kt_op_input(t, "i", KILN_I64, 1, (int64_t[]){3}, (int64_t[]){1, 0, 1});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_f32s(kt_op_value(t, "y"), 6, (float[]){3, 4, 1, 2, 3, 4});
    kt_op_free(t);

    /* symbolic: [batch, seq, 64] gather axis 1 with scalar -> [batch, 64] */
    const char *s[] = {"batch", "seq", NULL};
    t = kt_op_new("Gather", 13);
    kt_op_input_sym(t, "x", KILN_F32, 3, (int64_t[]){-1, -1, 64}, s);
    kt_op_input(t, "i", KILN_I64, 0, NULL, (int64_t[]){0});
    kt_op_attr_int(t, "axis", 1);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, (int64_t[]){sym(t, "batch"), 64});
    kt_op_free(t);

    /* out of range names the index tensor */
    t = kt_op_new("Gather", 13);
    kt_op_input(t, "x", KILN_I64, 1, (int64_t[]){4}, (int64_t[]){2, 3, 4, 5});
    kt_op_input(t, "idx", KILN_I64, 1, (int64_t[]){2}, (int64_t[]){0, 4});
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_INVALID_ARGUMENT, "'idx'");
    kt_op_free(t);
    t = kt_op_new("Gather", 13);
    kt_op_input(t, "x", KILN_I64, 1, (int64_t[]){4}, (int64_t[]){2, 3, 4, 5});
    kt_op_input(t, "idx", KILN_I64, 1, (int64_t[]){1}, (int64_t[]){-5});
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_INVALID_ARGUMENT, "'idx'");
    kt_op_free(t);
}

static void test_gather_elements(void **state)
{
    (void)state;
    /* ONNX spec example 1: axis 1, data [[1,2],[3,4]], idx [[0,0],[1,0]] -> [[1,1],[4,3]] */
    kt_op *t = kt_op_new("GatherElements", 13);
    kt_op_input(t, "x", KILN_F32, 2, (int64_t[]){2, 2}, (float[]){1, 2, 3, 4});
    kt_op_input(t, "i", KILN_I64, 2, (int64_t[]){2, 2}, (int64_t[]){0, 0, 1, 0});
    kt_op_attr_int(t, "axis", 1);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_f32s(kt_op_value(t, "y"), 4, (float[]){1, 1, 4, 3});
    kt_op_free(t);

    /* ONNX spec example 2: axis 0, data 3x3 1..9, idx [[1,2,0],[2,0,0]] -> [[4,8,3],[7,2,3]];
     * here with idx -1 for 2 and i64 data */
    t = kt_op_new("GatherElements", 13);
    kt_op_input(t, "x", KILN_I64, 2, (int64_t[]){3, 3}, (int64_t[]){1, 2, 3, 4, 5, 6, 7, 8, 9});
    kt_op_input(t, "i", KILN_I32, 2, (int64_t[]){2, 3}, (int32_t[]){1, -1, 0, 2, 0, 0});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, (int64_t[]){2, 3});
    assert_i64s(kt_op_value(t, "y"), 6, (int64_t[]){4, 8, 3, 7, 2, 3});
    kt_op_free(t);

    t = kt_op_new("GatherElements", 13);
    kt_op_input(t, "x", KILN_F32, 2, (int64_t[]){2, 2}, (float[]){1, 2, 3, 4});
    kt_op_input(t, "ix", KILN_I64, 2, (int64_t[]){2, 2}, (int64_t[]){0, 0, 2, 0});
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_INVALID_ARGUMENT, "'ix'");
    kt_op_free(t);

    t = kt_op_new("GatherElements", 13);
    kt_op_input(t, "x", KILN_F32, 2, (int64_t[]){2, 2}, NULL);
    kt_op_input(t, "ix", KILN_I64, 1, (int64_t[]){2}, NULL);
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "'ix'");
    kt_op_free(t);
}

/* ------------------------------------------------------ Squeeze/Unsqueeze */

static void test_squeeze_unsqueeze(void **state)
{
    (void)state;
    const char *s[] = {"batch", NULL, NULL};
    kt_op *t = kt_op_new("Squeeze", 13);
    kt_op_input_sym(t, "x", KILN_F32, 3, (int64_t[]){-1, 1, 5}, s);
    kt_op_input(t, "axes", KILN_I64, 1, (int64_t[]){1}, (int64_t[]){-2});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, (int64_t[]){sym(t, "batch"), 5});
    kt_op_free(t);

    /* no axes: all 1s go */
    t = kt_op_new("Squeeze", 13);
    kt_op_input(t, "x", KILN_I8, 3, (int64_t[]){1, 3, 1}, (int8_t[]){-1, 0, 1});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 1, (int64_t[]){3});
    assert_memory_equal(kt_op_value(t, "y")->data, ((int8_t[]){-1, 0, 1}), 3);
    kt_op_free(t);

    /* no axes with a symbolic dim: it may be 1, so the rank is unknown */
    t = kt_op_new("Squeeze", 13);
    kt_op_input_sym(t, "x", KILN_F32, 3, (int64_t[]){-1, 1, 5}, s);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_int_equal(kt_op_value(t, "y")->shape.rank, -1);
    kt_op_free(t);

    t = kt_op_new("Squeeze", 13);
    kt_op_input(t, "x", KILN_F32, 2, (int64_t[]){1, 3}, NULL);
    kt_op_input(t, "axes", KILN_I64, 1, (int64_t[]){1}, (int64_t[]){1});
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "'x'");
    kt_op_free(t);

    /* Unsqueeze axes [0,-1] of [3] -> [1,3,1] (negative counts in the output rank) */
    t = kt_op_new("Unsqueeze", 13);
    kt_op_input(t, "x", KILN_BOOL, 1, (int64_t[]){3}, (uint8_t[]){1, 0, 1});
    kt_op_input(t, "axes", KILN_I64, 1, (int64_t[]){2}, (int64_t[]){0, -1});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 3, (int64_t[]){1, 3, 1});
    assert_int_equal(kt_op_value(t, "y")->dtype, KILN_BOOL);
    assert_memory_equal(kt_op_value(t, "y")->data, ((uint8_t[]){1, 0, 1}), 3);
    kt_op_free(t);

    /* scalar -> [1] with batch-preserving case */
    t = kt_op_new("Unsqueeze", 13);
    kt_op_input_sym(t, "x", KILN_F32, 2, (int64_t[]){-1, 4}, s);
    kt_op_input(t, "axes", KILN_I64, 1, (int64_t[]){1}, (int64_t[]){1});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 3, (int64_t[]){sym(t, "batch"), 1, 4});
    kt_op_free(t);

    t = kt_op_new("Unsqueeze", 13);
    kt_op_input(t, "x", KILN_F32, 1, (int64_t[]){3}, NULL);
    kt_op_input(t, "axes", KILN_I64, 1, (int64_t[]){2}, (int64_t[]){1, 1});
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "'axes'");
    kt_op_free(t);
}

/* ------------------------------------------------------------ Expand/Tile */

static void test_expand(void **state)
{
    (void)state;
    /* [3,1] to [2,1,4]: bidirectional -> [2,3,4]; y[b][i][j] = x[i] */
    kt_op *t = kt_op_new("Expand", 13);
    kt_op_input(t, "x", KILN_F32, 2, (int64_t[]){3, 1}, (float[]){1, 2, 3});
    kt_op_input(t, "shape", KILN_I64, 1, (int64_t[]){3}, (int64_t[]){2, 1, 4});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 3, (int64_t[]){2, 3, 4});
    float want[24];
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++) want[b * 12 + i * 4 + j] = (float)(i + 1);
    assert_f32s(kt_op_value(t, "y"), 24, want);
    kt_op_free(t);

    /* shape smaller than the input: [2,2] i64 by [1] stays [2,2] */
    t = kt_op_new("Expand", 13);
    kt_op_input(t, "x", KILN_I64, 2, (int64_t[]){2, 2}, (int64_t[]){1, 2, 3, 4});
    kt_op_input(t, "shape", KILN_I64, 1, (int64_t[]){1}, (int64_t[]){1});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_i64s(kt_op_value(t, "y"), 4, (int64_t[]){1, 2, 3, 4});
    kt_op_free(t);

    /* symbolic batch with shape [1,1,8] -> [batch,?,8]: x [batch,1,1] -> [batch,1,8] */
    const char *s[] = {"batch", NULL, NULL};
    t = kt_op_new("Expand", 13);
    kt_op_input_sym(t, "x", KILN_F32, 3, (int64_t[]){-1, 1, 1}, s);
    kt_op_input(t, "shape", KILN_I64, 1, (int64_t[]){3}, (int64_t[]){1, 1, 8});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 3, (int64_t[]){sym(t, "batch"), 1, 8});
    kt_op_free(t);

    t = kt_op_new("Expand", 13);
    kt_op_input(t, "x", KILN_F32, 1, (int64_t[]){3}, NULL);
    kt_op_input(t, "shape", KILN_I64, 1, (int64_t[]){1}, (int64_t[]){4});
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "'x'");
    kt_op_free(t);
}

static void test_tile(void **state)
{
    (void)state;
    /* [[1,2],[3,4]] by [2,2] -> 4x4 (numpy np.tile) */
    kt_op *t = kt_op_new("Tile", 13);
    kt_op_input(t, "x", KILN_I64, 2, (int64_t[]){2, 2}, (int64_t[]){1, 2, 3, 4});
    kt_op_input(t, "r", KILN_I64, 1, (int64_t[]){2}, (int64_t[]){2, 2});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, (int64_t[]){4, 4});
    assert_i64s(kt_op_value(t, "y"), 16, (int64_t[]){1, 2, 1, 2, 3, 4, 3, 4, 1, 2, 1, 2, 3, 4, 3, 4});
    kt_op_free(t);

    /* u16-sized (bf16 bits) [3] by [3] */
    t = kt_op_new("Tile", 13);
    kt_op_input(t, "x", KILN_BF16, 1, (int64_t[]){3}, (uint16_t[]){7, 8, 9});
    kt_op_input(t, "r", KILN_I64, 1, (int64_t[]){1}, (int64_t[]){3});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_memory_equal(kt_op_value(t, "y")->data, ((uint16_t[]){7, 8, 9, 7, 8, 9, 7, 8, 9}), 18);
    kt_op_free(t);

    const char *s[] = {"batch", NULL};
    t = kt_op_new("Tile", 13);
    kt_op_input_sym(t, "x", KILN_F32, 2, (int64_t[]){-1, 3}, s);
    kt_op_input(t, "r", KILN_I64, 1, (int64_t[]){2}, (int64_t[]){1, 4});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, (int64_t[]){sym(t, "batch"), 12});
    kt_op_free(t);

    t = kt_op_new("Tile", 13);
    kt_op_input(t, "x", KILN_F32, 2, (int64_t[]){2, 3}, NULL);
    kt_op_input(t, "r", KILN_I64, 1, (int64_t[]){1}, (int64_t[]){2});
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "'r'");
    kt_op_free(t);
}

/* ---------------------------------------------------------- Shape, Size */

static void test_shape_size(void **state)
{
    (void)state;
    /* the input has no data: Shape reads only its shape */
    kt_op *t = kt_op_new("Shape", 17);
    kt_op_input(t, "x", KILN_F16, 3, (int64_t[]){2, 3, 4}, NULL);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_i64s(kt_op_value(t, "y"), 3, (int64_t[]){2, 3, 4});
    kt_op_free(t);

    /* v15 start=1, end=-1 -> dims [1,2) */
    t = kt_op_new("Shape", 17);
    kt_op_input(t, "x", KILN_F32, 3, (int64_t[]){2, 3, 4}, NULL);
    kt_op_attr_int(t, "start", 1);
    kt_op_attr_int(t, "end", -1);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_i64s(kt_op_value(t, "y"), 1, (int64_t[]){3});
    kt_op_free(t);

    /* start past the end: clamped, empty */
    t = kt_op_new("Shape", 17);
    kt_op_input(t, "x", KILN_F32, 3, (int64_t[]){2, 3, 4}, NULL);
    kt_op_attr_int(t, "start", 10);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 1, (int64_t[]){0});
    kt_op_free(t);

    /* symbolic input: length known, values not */
    const char *s[] = {"batch", NULL};
    t = kt_op_new("Shape", 17);
    kt_op_input_sym(t, "x", KILN_F32, 2, (int64_t[]){-1, 4}, s);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 1, (int64_t[]){2});
    assert_int_equal(kt_op_value(t, "y")->dtype, KILN_I64);
    assert_null(kt_op_value(t, "y")->data);
    kt_op_free(t);

    t = kt_op_new("Size", 17);
    kt_op_input(t, "x", KILN_BOOL, 3, (int64_t[]){2, 3, 4}, NULL);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 0, NULL);
    assert_i64s(kt_op_value(t, "y"), 1, (int64_t[]){24});
    kt_op_free(t);
}

/* ------------------------------------------- Constant, ConstantOfShape */

static kiln_value *tensor_attr(kt_op *t, const char *name, kiln_dtype dt, int rank, const int64_t *dims,
                               const void *data)
{
    kiln_attr *a = &t->node->attrs[t->node->n_attrs++];
    a->name = kiln_arena_strdup(&t->g->arena, name);
    a->type = KILN_ATTR_TENSOR;
    kiln_value *v = kiln_arena_alloc(&t->g->arena, sizeof *v);
    v->name = "value";
    v->dtype = dt;
    v->shape.rank = rank;
    for (int i = 0; i < rank; i++) v->shape.d[i] = dims[i];
    size_t bytes = kiln_value_bytes(v);
    v->data = kiln_arena_alloc(&t->g->arena, bytes + 1);
    memcpy(v->data, data, bytes);
    a->t = v;
    return v;
}

static void test_constant(void **state)
{
    (void)state;
    kt_op *t = kt_op_new("Constant", 17);
    tensor_attr(t, "value", KILN_F16, 2, (int64_t[]){1, 2}, (uint16_t[]){0x3c00, 0xc000});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, (int64_t[]){1, 2});
    assert_int_equal(kt_op_value(t, "y")->dtype, KILN_F16);
    assert_memory_equal(kt_op_value(t, "y")->data, ((uint16_t[]){0x3c00, 0xc000}), 4);
    kt_op_free(t);

    t = kt_op_new("Constant", 17);
    kt_op_attr_ints(t, "value_ints", 3, (int64_t[]){4, -1, 9});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_i64s(kt_op_value(t, "y"), 3, (int64_t[]){4, -1, 9});
    kt_op_free(t);

    t = kt_op_new("Constant", 17);
    kt_op_attr_float(t, "value_float", 2.5f);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 0, NULL);
    assert_f32s(kt_op_value(t, "y"), 1, (float[]){2.5f});
    kt_op_free(t);

    t = kt_op_new("Constant", 17);
    kt_op_attr_floats(t, "value_floats", 2, (float[]){1.5f, -3});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_f32s(kt_op_value(t, "y"), 2, (float[]){1.5f, -3});
    kt_op_free(t);

    t = kt_op_new("Constant", 17);
    kt_op_attr_int(t, "value_int", 42);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_i64s(kt_op_value(t, "y"), 1, (int64_t[]){42});
    kt_op_free(t);

    t = kt_op_new("Constant", 17);
    kt_op_attr_string(t, "value_string", "hello");
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_UNSUPPORTED, "value_string");
    kt_op_free(t);
}

static void test_constant_of_shape(void **state)
{
    (void)state;
    kt_op *t = kt_op_new("ConstantOfShape", 17);
    kt_op_input(t, "s", KILN_I64, 1, (int64_t[]){2}, (int64_t[]){2, 3});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, (int64_t[]){2, 3});
    assert_f32s(kt_op_value(t, "y"), 6, (float[]){0, 0, 0, 0, 0, 0});
    kt_op_free(t);

    t = kt_op_new("ConstantOfShape", 17);
    kt_op_input(t, "s", KILN_I64, 1, (int64_t[]){1}, (int64_t[]){3});
    tensor_attr(t, "value", KILN_I64, 1, (int64_t[]){1}, (int64_t[]){7});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_i64s(kt_op_value(t, "y"), 3, (int64_t[]){7, 7, 7});
    kt_op_free(t);

    /* empty shape: a scalar */
    t = kt_op_new("ConstantOfShape", 17);
    kt_op_input(t, "s", KILN_I64, 1, (int64_t[]){0}, (int64_t[]){0});
    tensor_attr(t, "value", KILN_BOOL, 1, (int64_t[]){1}, (uint8_t[]){1});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 0, NULL);
    assert_int_equal(*(uint8_t *)kt_op_value(t, "y")->data, 1);
    kt_op_free(t);

    t = kt_op_new("ConstantOfShape", 17);
    kt_op_input(t, "s", KILN_I64, 1, (int64_t[]){2}, (int64_t[]){2, -3});
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "'s'");
    kt_op_free(t);
}

/* ------------------------------------------------------------------ Range */

static kt_op *range_op(kiln_dtype dt, const void *s, const void *l, const void *d)
{
    kt_op *t = kt_op_new("Range", 17);
    kt_op_input(t, "start", dt, 0, NULL, s);
    kt_op_input(t, "limit", dt, 0, NULL, l);
    kt_op_input(t, "delta", dt, 0, NULL, d);
    kt_op_output(t, "y");
    return t;
}

static void test_range(void **state)
{
    (void)state;
    /* np.arange(0, 10, 3) = [0,3,6,9]: ceil(10/3) = 4 */
    kt_op *t = range_op(KILN_I64, (int64_t[]){0}, (int64_t[]){10}, (int64_t[]){3});
    assert_kiln_ok(kt_op_run(t));
    assert_i64s(kt_op_value(t, "y"), 4, (int64_t[]){0, 3, 6, 9});
    kt_op_free(t);

    /* ONNX spec example: float 1..5 step 2 -> [1,3] */
    t = range_op(KILN_F32, (float[]){1}, (float[]){5}, (float[]){2});
    assert_kiln_ok(kt_op_run(t));
    assert_f32s(kt_op_value(t, "y"), 2, (float[]){1, 3});
    kt_op_free(t);

    /* ONNX spec example: int32 10..4 step -3 -> [10,7] */
    t = range_op(KILN_I32, (int32_t[]){10}, (int32_t[]){4}, (int32_t[]){-3});
    assert_kiln_ok(kt_op_run(t));
    assert_memory_equal(kt_op_value(t, "y")->data, ((int32_t[]){10, 7}), 8);
    kt_op_free(t);

    /* limit before start with positive delta: empty */
    t = range_op(KILN_I64, (int64_t[]){5}, (int64_t[]){1}, (int64_t[]){1});
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 1, (int64_t[]){0});
    kt_op_free(t);

    /* f64 with a fractional step: ceil((1 - 0) / 0.25) = 4 */
    t = range_op(KILN_F64, (double[]){0}, (double[]){1}, (double[]){0.25});
    assert_kiln_ok(kt_op_run(t));
    assert_memory_equal(kt_op_value(t, "y")->data, ((double[]){0, 0.25, 0.5, 0.75}), 32);
    kt_op_free(t);

    t = range_op(KILN_I64, (int64_t[]){0}, (int64_t[]){10}, (int64_t[]){0});
    assert_fails(t, KILN_ERR_SHAPE, "'delta'");
    kt_op_free(t);

    /* unknown limit: rank 1, length unknown */
    t = kt_op_new("Range", 17);
    kt_op_input(t, "start", KILN_I64, 0, NULL, (int64_t[]){0});
    kt_op_input(t, "limit", KILN_I64, 0, NULL, NULL);
    kt_op_input(t, "delta", KILN_I64, 0, NULL, (int64_t[]){1});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 1, (int64_t[]){KILN_DIM_UNKNOWN});
    kt_op_free(t);
}

/* ------------------------------------------- folding a torch shape subgraph */

static void add_node(kiln_graph *g, const char *op, int nin, const char *const *ins, const char *out,
                     const char *attr, int64_t attr_val)
{
    kiln_node *n = kiln_graph_add_node(g);
    n->name = kiln_arena_strdup(&g->arena, out);
    n->op_type = op;
    n->domain = "";
    n->opset = 17;
    n->n_inputs = nin;
    n->inputs = kiln_arena_alloc(&g->arena, (size_t)nin * sizeof(int));
    for (int i = 0; i < nin; i++) n->inputs[i] = kiln_graph_value(g, ins[i]);
    n->n_outputs = 1;
    n->outputs = kiln_arena_alloc(&g->arena, sizeof(int));
    n->outputs[0] = kiln_graph_value(g, out);
    if (attr) {
        n->attrs = kiln_arena_alloc(&g->arena, sizeof(kiln_attr));
        n->attrs[0] = (kiln_attr){.name = attr, .type = KILN_ATTR_INT, .i = attr_val};
        n->n_attrs = 1;
    }
}

static void init_i64(kiln_graph *g, const char *name, int rank, int64_t len, const int64_t *data)
{
    kiln_value *v = &g->values[kiln_graph_value(g, name)];
    v->dtype = KILN_I64;
    v->shape.rank = rank;
    v->shape.d[0] = len;
    v->data = kiln_graph_alloc(g, (size_t)(rank ? len : 1) * 8 + 1);
    memcpy(v->data, data, (size_t)(rank ? len : 1) * 8);
    v->flags = KILN_V_INIT;
}

/* x [2,512,1,1] -> Shape -> Gather(0) -> Unsqueeze([0]) -> Concat with [-1]
 * -> Reshape(x) : folds to the constant [2,-1] and gives y [2,512]. */
static void test_fold_shape_subgraph(void **state)
{
    (void)state;
    kiln_graph *g = kiln_graph_new("fold.onnx");
    g->opset = 17;
    int xi = kiln_graph_value(g, "x");
    g->values[xi].dtype = KILN_F32;
    g->values[xi].shape = (kiln_shape){.rank = 4, .d = {2, 512, 1, 1}};
    g->values[xi].flags = KILN_V_INPUT;
    init_i64(g, "zero", 0, 0, (int64_t[]){0});
    init_i64(g, "axes0", 1, 1, (int64_t[]){0});
    init_i64(g, "minus1", 1, 1, (int64_t[]){-1});
    add_node(g, "Shape", 1, (const char *[]){"x"}, "shp", NULL, 0);
    add_node(g, "Gather", 2, (const char *[]){"shp", "zero"}, "n", "axis", 0);
    add_node(g, "Unsqueeze", 2, (const char *[]){"n", "axes0"}, "n1", NULL, 0);
    add_node(g, "Concat", 2, (const char *[]){"n1", "minus1"}, "target", "axis", 0);
    add_node(g, "Reshape", 2, (const char *[]){"x", "target"}, "y", NULL, 0);
    assert_kiln_ok(kiln_graph_sort(g));
    assert_kiln_ok(kiln_graph_infer(g));
    kiln_value *target = &g->values[kiln_graph_find(g, "target")];
    assert_true(target->flags & KILN_V_FOLDED);
    assert_i64s(target, 2, (int64_t[]){2, -1});
    kiln_value *y = &g->values[kiln_graph_find(g, "y")];
    assert_shape(y, 2, (int64_t[]){2, 512});
    assert_null(y->data); /* x has no data: y is not folded */
    kiln_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reshape_keeps_batch_symbol),
        cmocka_unit_test(test_reshape_kernel_and_errors),
        cmocka_unit_test(test_flatten),
        cmocka_unit_test(test_transpose),
        cmocka_unit_test(test_concat),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_slice_1d),
        cmocka_unit_test(test_slice_2d_and_symbols),
        cmocka_unit_test(test_gather),
        cmocka_unit_test(test_gather_elements),
        cmocka_unit_test(test_squeeze_unsqueeze),
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_tile),
        cmocka_unit_test(test_shape_size),
        cmocka_unit_test(test_constant),
        cmocka_unit_test(test_constant_of_shape),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_fold_shape_subgraph),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
