/* Symbolic shape values (src/ir/shape_sym.c): shape tensors computed from a
 * symbolic batch keep the symbol per element, so torch's Reshape targets
 * (Concat(Shape(x)[0], 144, -1)) still give [batch,144,6400]. The whole
 * pattern through the importer (symbolic_head.onnx from tests/models/gen.py),
 * then single rules through the op harness. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "opharness.h"

static void test_yolo_head_keeps_batch(void **state)
{
    (void)state;
    char *p = kt_model("symbolic_head.onnx");
    if (!p) fail_msg("generated test model symbolic_head.onnx is missing: run tests/models/gen.py");
    kiln_model *m = NULL;
    assert_kiln_ok(kiln_model_load(p, &m));
    free(p);
    /* outputs are declared without dims: everything below is inferred */
    static const struct {
        int rank;
        int64_t dims[4];
    } want[] = {{3, {-1, 84, 84}}, {4, {-1, 144, 8, 8}}, {2, {-1, 2}}};
    for (int i = 0; i < 3; i++) {
        kiln_tensor_desc d;
        assert_kiln_ok(kiln_model_output(m, i, &d));
        assert_int_equal(d.rank, want[i].rank);
        assert_true(d.dims[0] < 0);
        assert_non_null(d.dim_names[0]);
        assert_string_equal(d.dim_names[0], "batch");
        for (int k = 1; k < d.rank; k++) assert_int_equal(d.dims[k], want[i].dims[k]);
    }
    /* fixing the batch makes it all concrete */
    kiln_tensor_desc in;
    for (int i = 0; i < 3; i++) {
        assert_kiln_ok(kiln_model_input(m, i, &in));
        int64_t dims[4] = {2, in.dims[1], in.dims[2], in.dims[3]};
        assert_kiln_ok(kiln_model_set_input_shape(m, in.name, 4, dims));
    }
    kiln_tensor_desc d;
    assert_kiln_ok(kiln_model_output(m, 0, &d));
    assert_int_equal(d.dims[0], 2);
    assert_int_equal(d.dims[1], 84);
    assert_int_equal(d.dims[2], 84);
    kiln_model_destroy(m);
}

/* [-1, 3, '?', '?']: three dims, each its own unknown (none tied to
 * another), so a 48x192 input is accepted and runs. */
static void test_anonymous_dims_are_untied(void **state)
{
    (void)state;
    char *p = kt_model("anonymous_dims.onnx");
    if (!p) fail_msg("generated test model anonymous_dims.onnx is missing: run tests/models/gen.py");
    kiln_model *m = NULL;
    assert_kiln_ok(kiln_model_load(p, &m));
    free(p);
    kiln_tensor_desc in;
    assert_kiln_ok(kiln_model_input(m, 0, &in));
    assert_int_equal(in.rank, 4);
    assert_true(in.dims[0] < 0 && in.dims[2] < 0 && in.dims[3] < 0);
    assert_int_equal(in.dims[1], 3);
    /* distinct symbols: no two of the unknown dims are the same dim */
    assert_non_null(in.dim_names[0]);
    assert_non_null(in.dim_names[2]);
    assert_non_null(in.dim_names[3]);
    assert_true(strcmp(in.dim_names[0], in.dim_names[2]) && strcmp(in.dim_names[2], in.dim_names[3]) &&
                strcmp(in.dim_names[0], in.dim_names[3]));

    kiln_build_options o;
    kiln_build_options_init(&o);
    o.backend = KILN_BACKEND_REF;
    kiln_engine *e = NULL;
    assert_kiln_ok(kiln_engine_build(m, &o, &e));
    kiln_context *c;
    assert_kiln_ok(kiln_context_create(e, &c));
    enum { N = 2, H = 48, W = 192, HW = H * W };
    float *x = malloc(sizeof(float) * N * 3 * HW);
    assert_non_null(x);
    kt_fill_uniform(x, N * 3 * HW, 7, -1, 1);
    kiln_tensor t = {.name = "x", .dtype = KILN_F32, .rank = 4, .dims = {N, 3, H, W}, .data = x};
    int n_out;
    const kiln_tensor *out;
    assert_kiln_ok(kiln_context_run(c, 1, &t, &n_out, &out));
    assert_int_equal(n_out, 1);
    assert_int_equal(out[0].rank, 4);
    assert_int_equal(out[0].dims[0], N);
    assert_int_equal(out[0].dims[1], 2);
    assert_int_equal(out[0].dims[2], H);
    assert_int_equal(out[0].dims[3], W);
    /* the conv by hand: weights and biases as tests/models/gen.py writes them */
    static const float wt[2][3] = {{1, 2, 3}, {-1, 0.5f, 0}}, bias[2] = {0.25f, -0.5f};
    const float *y = out[0].data;
    for (int n = 0; n < N; n++)
        for (int oc = 0; oc < 2; oc++)
            for (int i = 0; i < HW; i++) {
                float s = bias[oc];
                for (int ic = 0; ic < 3; ic++) s += wt[oc][ic] * x[(n * 3 + ic) * HW + i];
                float want = s > 0 ? s : 0;
                float got = y[(n * 2 + oc) * HW + i];
                if (fabsf(got - want) > 1e-5f) fail_msg("y[%d,%d,%d] = %g, want %g", n, oc, i, got, want);
            }
    free(x);
    kiln_context_destroy(c);
    kiln_engine_destroy(e);
    kiln_model_destroy(m);
}

static const char *const BATCH[] = {"batch", NULL, NULL, NULL};

/* A symbolic shape value given as an input: its data unknown, its sym set. */
static void sym_input(kt_op *t, const char *name, int n, const int64_t *symvals)
{
    int64_t dims[1] = {n};
    kt_op_input(t, name, KILN_I64, 1, dims, NULL);
    kiln_value *v = kt_op_value(t, name);
    int64_t *s = kiln_graph_alloc(t->g, (size_t)n * sizeof *s);
    memcpy(s, symvals, (size_t)n * sizeof *s);
    v->sym = s;
}

static int64_t batch_symval(kt_op *t) { return kiln_symval_of_dim(kiln_dim_sym(kiln_graph_symbol(t->g, "batch"))); }
static int64_t batch_dim(kt_op *t) { return kiln_dim_sym(kiln_graph_symbol(t->g, "batch")); }

static void test_shape_op(void **state)
{
    (void)state;
    int64_t dims[4] = {-1, 3, 224, 224};
    /* start=1: every selected dim is known, so it folds to a constant */
    kt_op *t = kt_op_new("Shape", 17);
    kt_op_input_sym(t, "x", KILN_F32, 4, dims, BATCH);
    kt_op_output(t, "s");
    kt_op_attr_int(t, "start", 1);
    assert_kiln_ok(kt_op_run(t));
    kiln_value *s = kt_op_value(t, "s");
    assert_non_null(s->data);
    assert_null(s->sym);
    assert_true(s->flags & KILN_V_FOLDED);
    assert_int_equal(s->shape.d[0], 3);
    const int64_t *d = s->data;
    assert_int_equal(d[0], 3);
    assert_int_equal(d[1], 224);
    assert_int_equal(d[2], 224);
    kt_op_free(t);

    /* the whole shape: symbolic, so no data but a symbol in element 0 */
    t = kt_op_new("Shape", 17);
    kt_op_input_sym(t, "x", KILN_F32, 4, dims, BATCH);
    kt_op_output(t, "s");
    assert_kiln_ok(kt_op_run(t));
    s = kt_op_value(t, "s");
    assert_null(s->data);
    assert_non_null(s->sym);
    assert_true(s->sym[0] == batch_symval(t));
    assert_int_equal(s->sym[1], 3);
    assert_int_equal(s->sym[3], 224);
    kt_op_free(t);
}

static void test_gather_and_arith(void **state)
{
    (void)state;
    int64_t one[1] = {1}, idx = 0;
    kt_op *t = kt_op_new("Gather", 17);
    int64_t sv[2] = {0, 3};
    sv[0] = batch_symval(t);
    sym_input(t, "s", 2, sv);
    kt_op_input(t, "i", KILN_I64, 0, NULL, &idx);
    kt_op_output(t, "b");
    assert_kiln_ok(kt_op_run(t));
    kiln_value *b = kt_op_value(t, "b");
    assert_int_equal(b->shape.rank, 0);
    assert_null(b->data);
    assert_non_null(b->sym);
    assert_true(b->sym[0] == sv[0]);
    kt_op_free(t);

    /* batch * 1 stays batch; batch * 2 is unknown (no sym at all) */
    for (int64_t k = 1; k <= 2; k++) {
        t = kt_op_new("Mul", 17);
        int64_t bs = batch_symval(t);
        sym_input(t, "a", 1, &bs);
        kt_op_input(t, "k", KILN_I64, 1, one, &k);
        kt_op_output(t, "y");
        assert_kiln_ok(kt_op_run(t));
        kiln_value *y = kt_op_value(t, "y");
        assert_null(y->data);
        if (k == 1) {
            assert_non_null(y->sym);
            assert_true(y->sym[0] == bs);
        } else {
            assert_null(y->sym);
        }
        kt_op_free(t);
    }
}

static void test_consumers(void **state)
{
    (void)state;
    /* Reshape [batch,144,80,80] by [batch,144,-1] */
    kt_op *t = kt_op_new("Reshape", 17);
    int64_t dims[4] = {-1, 144, 80, 80};
    kt_op_input_sym(t, "x", KILN_F32, 4, dims, BATCH);
    int64_t sv[3] = {batch_symval(t), 144, -1};
    sym_input(t, "shape", 3, sv);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    kiln_value *y = kt_op_value(t, "y");
    assert_int_equal(y->shape.rank, 3);
    assert_true(y->shape.d[0] == batch_dim(t));
    assert_int_equal(y->shape.d[1], 144);
    assert_int_equal(y->shape.d[2], 6400);
    kt_op_free(t);

    /* Reshape [batch,144,80,80] by [-1, 6400]: the batch is not alone */
    t = kt_op_new("Reshape", 17);
    kt_op_input_sym(t, "x", KILN_F32, 4, dims, BATCH);
    int64_t sv2[2] = {-1, KILN_SYMVAL_UNKNOWN};
    sym_input(t, "shape", 2, sv2);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    y = kt_op_value(t, "y");
    assert_int_equal(y->shape.rank, 2);
    assert_true(y->shape.d[0] == KILN_DIM_UNKNOWN);
    assert_true(y->shape.d[1] == KILN_DIM_UNKNOWN);
    kt_op_free(t);

    /* ConstantOfShape [batch, 2] */
    t = kt_op_new("ConstantOfShape", 17);
    int64_t sv3[2] = {batch_symval(t), 2};
    sym_input(t, "shape", 2, sv3);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    y = kt_op_value(t, "y");
    assert_int_equal(y->shape.rank, 2);
    assert_true(y->shape.d[0] == batch_dim(t));
    assert_int_equal(y->shape.d[1], 2);
    kt_op_free(t);

    /* Expand [1,3] to [batch,3] */
    t = kt_op_new("Expand", 17);
    int64_t xd[2] = {1, 3};
    kt_op_input(t, "x", KILN_F32, 2, xd, NULL);
    int64_t sv4[2] = {batch_symval(t), 3};
    sym_input(t, "shape", 2, sv4);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    y = kt_op_value(t, "y");
    assert_int_equal(y->shape.rank, 2);
    assert_true(y->shape.d[0] == batch_dim(t));
    assert_int_equal(y->shape.d[1], 3);
    kt_op_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yolo_head_keeps_batch),
        cmocka_unit_test(test_anonymous_dims_are_untied),
        cmocka_unit_test(test_shape_op),
        cmocka_unit_test(test_gather_and_arith),
        cmocka_unit_test(test_consumers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
