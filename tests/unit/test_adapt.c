/* Import adapters of old op versions (src/ir/adapt_*.c): a model holding an
 * op version older than kiln implements loads, every node of the rewritten
 * graph resolves to a native version, and it computes what the newer form
 * ONNX gives for it computes. Models come in pairs from tests/models/gen.py
 * (the gen fixture): adapt_<case>.onnx (old form) and adapt_<case>_new.onnx
 * (new form), each with one f32 input "x". */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx.h"

#define MAX_OUT 4

typedef struct outputs {
    int n;
    kiln_tensor t[MAX_OUT];
} outputs;

static char *need_model(const char *name)
{
    char *p = kt_model(name);
    if (!p) fail_msg("generated test model %s is missing: run tests/models/gen.py (the gen fixture)", name);
    return p;
}

static void outputs_free(outputs *o)
{
    for (int i = 0; i < o->n; i++) free(o->t[i].data);
    o->n = 0;
}

/* Imports `name` and checks that no node is left in an old version or
 * unsupported; *n_nodes the nodes of the rewritten graph. */
static void check_rewritten(const char *name, int *n_nodes)
{
    char *p = need_model(name);
    kiln_graph *g = NULL;
    assert_kiln_ok(kiln_onnx_import_file(p, &g));
    free(p);
    for (int i = 0; i < g->n_nodes; i++) {
        const kiln_node *n = &g->nodes[i];
        if (n->unsupported)
            fail_msg("%s: node '%s' (%s) is unsupported: %s", name, n->name, n->op_type, n->unsupported);
        assert_non_null(n->op);
        bool native = false;
        for (int k = 0; k < KILN_OP_MAX_VERSIONS && n->op->versions[k]; k++)
            if (n->op->versions[k] == n->version) native = true;
        if (!native) fail_msg("%s: node '%s' (%s) resolves to version %d, not a native one", name, n->name, n->op_type,
                              n->version);
    }
    if (n_nodes) *n_nodes = g->n_nodes;
    kiln_graph_free(g);
}

/* Runs model `name` on the ref backend with x (f32, dims), copying the outputs. */
static void run(const char *name, const float *x, int rank, const int64_t *dims, outputs *o)
{
    char *p = need_model(name);
    kiln_model *m = NULL;
    kiln_engine *e = kt_build_ref(p, &m);
    free(p);
    assert_int_equal(kiln_model_num_unsupported(m), 0);
    kiln_context *c = NULL;
    assert_kiln_ok(kiln_context_create(e, &c));
    kiln_tensor in = {.name = "x", .dtype = KILN_F32, .rank = rank, .data = (void *)x};
    memcpy(in.dims, dims, (size_t)rank * sizeof *dims);
    int n = 0;
    const kiln_tensor *out = NULL;
    assert_kiln_ok(kiln_context_run(c, 1, &in, &n, &out));
    assert_true(n <= MAX_OUT);
    o->n = n;
    for (int i = 0; i < n; i++) {
        o->t[i] = out[i];
        size_t cnt = 1;
        for (int d = 0; d < out[i].rank; d++) cnt *= (size_t)out[i].dims[d];
        size_t bytes = cnt * kiln_dtype_size(out[i].dtype);
        o->t[i].data = malloc(bytes + 1);
        memcpy(o->t[i].data, out[i].data, bytes);
        o->t[i].name = NULL;
    }
    kiln_context_destroy(c);
    kiln_engine_destroy(e);
    kiln_model_destroy(m);
}

static size_t numel(const kiln_tensor *t)
{
    size_t cnt = 1;
    for (int d = 0; d < t->rank; d++) cnt *= (size_t)t->dims[d];
    return cnt;
}

/* Old form and new form of `kase` on the same random x: same outputs (dtype,
 * shape, values within 1e-6 relative). */
static void compare_case(const char *kase, int rank, const int64_t *dims)
{
    char old_name[128], new_name[128];
    snprintf(old_name, sizeof old_name, "adapt_%s.onnx", kase);
    snprintf(new_name, sizeof new_name, "adapt_%s_new.onnx", kase);
    check_rewritten(old_name, NULL);
    size_t cnt = 1;
    for (int d = 0; d < rank; d++) cnt *= (size_t)dims[d];
    float *x = malloc(cnt * sizeof *x);
    kt_fill_uniform(x, cnt, 42, -1, 1);
    outputs a = {0}, b = {0};
    run(old_name, x, rank, dims, &a);
    run(new_name, x, rank, dims, &b);
    assert_int_equal(a.n, b.n);
    for (int i = 0; i < a.n; i++) {
        const kiln_tensor *ta = &a.t[i], *tb = &b.t[i];
        if (ta->dtype != tb->dtype || ta->rank != tb->rank)
            fail_msg("%s output %d: %s rank %d vs %s rank %d", kase, i, kiln_dtype_name(ta->dtype), ta->rank,
                     kiln_dtype_name(tb->dtype), tb->rank);
        for (int d = 0; d < ta->rank; d++)
            if (ta->dims[d] != tb->dims[d]) fail_msg("%s output %d: dim %d is %lld vs %lld", kase, i, d,
                                                     (long long)ta->dims[d], (long long)tb->dims[d]);
        size_t n = numel(ta);
        for (size_t k = 0; k < n; k++) {
            double va, vb;
            if (ta->dtype == KILN_F32) {
                va = ((const float *)ta->data)[k];
                vb = ((const float *)tb->data)[k];
            } else if (ta->dtype == KILN_I64) {
                va = (double)((const int64_t *)ta->data)[k];
                vb = (double)((const int64_t *)tb->data)[k];
            } else {
                fail_msg("%s output %d: unexpected dtype %s", kase, i, kiln_dtype_name(ta->dtype));
                return;
            }
            if (!(fabs(va - vb) <= 1e-6 * fmax(1.0, fabs(vb))))
                fail_msg("%s output %d element %zu: %.9g (old form) vs %.9g (new form)", kase, i, k, va, vb);
        }
    }
    outputs_free(&a);
    outputs_free(&b);
    free(x);
}

static void test_split2_attribute(void **state)
{
    (void)state;
    compare_case("split2", 2, (int64_t[]){2, 6});
}

static void test_unsqueeze11_axes(void **state)
{
    (void)state;
    compare_case("unsqueeze11", 2, (int64_t[]){3, 4});
}

static void test_squeeze1_axes(void **state)
{
    (void)state;
    compare_case("squeeze1", 4, (int64_t[]){1, 3, 1, 4});
}

static void test_reducesum11_axes(void **state)
{
    (void)state;
    compare_case("reducesum11", 3, (int64_t[]){2, 3, 4});
}

static void test_pad2(void **state)
{
    (void)state;
    compare_case("pad2", 4, (int64_t[]){1, 2, 3, 3});
}

static void test_clip6(void **state)
{
    (void)state;
    compare_case("clip6", 2, (int64_t[]){2, 8});
}

static void test_slice1(void **state)
{
    (void)state;
    compare_case("slice1", 3, (int64_t[]){3, 5, 4});
}

static void test_upsample_to_resize(void **state)
{
    (void)state;
    compare_case("upsample9", 4, (int64_t[]){1, 2, 3, 4});
    compare_case("upsample7", 4, (int64_t[]){1, 2, 3, 4});
    /* the Upsample node became a Resize: no node of the table's adapted-only kind is left */
    char *p = need_model("adapt_upsample9.onnx");
    kiln_graph *g = NULL;
    assert_kiln_ok(kiln_onnx_import_file(p, &g));
    free(p);
    assert_int_equal(g->n_nodes, 1);
    assert_string_equal(g->nodes[0].op_type, "Resize");
    assert_string_equal(g->nodes[0].name, "up");
    assert_int_equal(g->nodes[0].version, 13);
    assert_string_equal(kiln_attr_string(&g->nodes[0], "coordinate_transformation_mode", ""), "asymmetric");
    assert_string_equal(kiln_attr_string(&g->nodes[0], "nearest_mode", ""), "floor");
    kiln_graph_free(g);
}

static void test_resize10(void **state)
{
    (void)state;
    compare_case("resize10", 4, (int64_t[]){1, 1, 4, 6});
}

static void test_softmax11_3d_axis1(void **state)
{
    (void)state;
    const int64_t dims[] = {2, 3, 4};
    compare_case("softmax11", 3, dims);
    /* and by hand: each sample's 12 values are one row */
    float x[24];
    kt_fill_uniform(x, 24, 42, -1, 1);
    outputs o = {0};
    run("adapt_softmax11.onnx", x, 3, dims, &o);
    assert_int_equal(o.n, 2);
    for (int b = 0; b < 2; b++) {
        double mx = -INFINITY, sum = 0;
        for (int k = 0; k < 12; k++) mx = fmax(mx, x[b * 12 + k]);
        for (int k = 0; k < 12; k++) sum += exp(x[b * 12 + k] - mx);
        for (int k = 0; k < 12; k++) {
            double want = exp(x[b * 12 + k] - mx) / sum;
            double got = ((const float *)o.t[0].data)[b * 12 + k];
            double got_log = ((const float *)o.t[1].data)[b * 12 + k];
            if (fabs(got - want) > 1e-6) fail_msg("softmax [%d,%d]: %g, want %g", b, k, got, want);
            if (fabs(got_log - log(want)) > 1e-5) fail_msg("logsoftmax [%d,%d]: %g, want %g", b, k, got_log, log(want));
        }
    }
    outputs_free(&o);
}

static void test_softmax_last_axis_stays_one_node(void **state)
{
    (void)state;
    /* Softmax-1 on a 2-D input (a classifier head after Gemm): axis 1 is the
     * last, so it becomes one Softmax-13 node with no Flatten/Reshape */
    compare_case("softmax1", 2, (int64_t[]){3, 5});
    int n = 0;
    check_rewritten("adapt_softmax1.onnx", &n);
    assert_int_equal(n, 1);
    /* a 3-D input with axis 1: Flatten, Softmax, Shape, Reshape per node */
    check_rewritten("adapt_softmax11.onnx", &n);
    assert_int_equal(n, 2 * 4);
}

static void test_batchnorm7(void **state)
{
    (void)state;
    compare_case("bn7", 4, (int64_t[]){2, 3, 4, 4});
    compare_case("bn7_spatial0", 4, (int64_t[]){2, 3, 2, 2});
}

static void test_dropout7(void **state)
{
    (void)state;
    const int64_t dims[] = {2, 3};
    compare_case("dropout7", 2, dims);
    float x[6];
    kt_fill_uniform(x, 6, 5, -1, 1);
    outputs o = {0};
    run("adapt_dropout7.onnx", x, 2, dims, &o);
    assert_int_equal(o.n, 2);
    assert_int_equal(o.t[1].dtype, KILN_F32); /* Dropout-7's mask has X's type */
    for (int k = 0; k < 6; k++) {
        assert_true(((const float *)o.t[0].data)[k] == x[k]);
        assert_true(((const float *)o.t[1].data)[k] == 1.0f);
    }
    outputs_free(&o);
}

static void test_topk1(void **state)
{
    (void)state;
    compare_case("topk1", 2, (int64_t[]){3, 5});
}

static void test_refused_naming_node_op_version_opset(void **state)
{
    (void)state;
    /* Resize-11's tf_half_pixel_for_nn with round_prefer_ceil has no
     * Resize-13 form: the load fails naming the node, op, version, opset and why */
    char *p = need_model("adapt_refused.onnx");
    kiln_model *m = NULL;
    kiln_status st = kiln_model_load(p, &m);
    free(p);
    assert_int_equal(st, KILN_ERR_UNSUPPORTED);
    assert_null(m);
    const char *err = kiln_last_error();
    const char *want[] = {"adapt_refused.onnx", "'rs_tf'", "Resize", "version 11", "opset 11", "tf_half_pixel_for_nn"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(err, want[i])) fail_msg("message lacks '%s': %s", want[i], err);
}

static void test_every_row_versions(void **state)
{
    (void)state;
    /* the table's invariants the adapters rely on: native versions are
     * ONNX versions; a row with an older version has an adapter; a row of
     * the adapted-only kind has no native version, shape rule or kernel */
    for (int i = 0; i < kiln_op_count(); i++) {
        const kiln_op_def *op = kiln_op_at(i);
        for (int k = 0; k < KILN_OP_MAX_VERSIONS && op->versions[k]; k++) {
            bool in_onnx = false;
            for (int j = 0; j < KILN_OP_MAX_VERSIONS && op->all_versions[j]; j++)
                if (op->all_versions[j] == op->versions[k]) in_onnx = true;
            if (!in_onnx) fail_msg("%s: native version %d is not one of its ONNX versions", op->name, op->versions[k]);
        }
        if (!op->versions[0]) {
            assert_non_null(op->adapt);
            assert_null(op->shape);
            assert_null(op->ref);
        } else {
            assert_non_null(op->shape);
            assert_non_null(op->ref);
        }
    }
    const kiln_op_def *up = kiln_op_find("", "Upsample");
    assert_non_null(up);
    assert_non_null(up->adapt);
    assert_int_equal(up->all_versions[0], 7);
    assert_int_equal(up->all_versions[1], 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split2_attribute),
        cmocka_unit_test(test_unsqueeze11_axes),
        cmocka_unit_test(test_squeeze1_axes),
        cmocka_unit_test(test_reducesum11_axes),
        cmocka_unit_test(test_pad2),
        cmocka_unit_test(test_clip6),
        cmocka_unit_test(test_slice1),
        cmocka_unit_test(test_upsample_to_resize),
        cmocka_unit_test(test_resize10),
        cmocka_unit_test(test_softmax11_3d_axis1),
        cmocka_unit_test(test_softmax_last_axis_stays_one_node),
        cmocka_unit_test(test_batchnorm7),
        cmocka_unit_test(test_dropout7),
        cmocka_unit_test(test_topk1),
        cmocka_unit_test(test_refused_naming_node_op_version_opset),
        cmocka_unit_test(test_every_row_versions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
