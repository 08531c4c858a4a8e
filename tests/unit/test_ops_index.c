/* Index family: shape rules (with symbolic dims) and reference kernels of
 * Einsum, GatherND, ScatterND, NonZero, Trilu, DepthToSpace, SpaceToDepth,
 * OneHot, and Where's three-way broadcast. Expected values are worked out
 * by hand from the ONNX spec (the comment next to each says how). */
#include "testutil.h"
#include "opharness.h"
#include "ir/ops.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define D(...) ((int64_t[]){__VA_ARGS__})
#define F(...) ((float[]){__VA_ARGS__})
#define I(...) ((int64_t[]){__VA_ARGS__})

static int64_t sym(kt_op *t, const char *name) { return kiln_dim_sym(kiln_graph_symbol(t->g, name)); }

static void assert_shape(const kiln_value *v, int rank, const int64_t *d)
{
    assert_non_null(v);
    assert_int_equal(v->shape.rank, rank);
    for (int i = 0; i < rank; i++)
        if (v->shape.d[i] != d[i]) fail_msg("dim %d is %lld, expected %lld", i, (long long)v->shape.d[i], (long long)d[i]);
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

static void assert_i64s(const kiln_value *v, int n, const int64_t *want)
{
    assert_non_null(v->data);
    assert_int_equal(v->dtype, KILN_I64);
    assert_int_equal(kiln_shape_numel(&v->shape), n);
    for (int i = 0; i < n; i++)
        if (((const int64_t *)v->data)[i] != want[i])
            fail_msg("element %d is %lld, expected %lld", i, (long long)((const int64_t *)v->data)[i], (long long)want[i]);
}

static void assert_fails(kt_op *t, kiln_status want, const char *needle)
{
    kiln_status st = kt_op_run(t);
    if (st != want) fail_msg("status %s (%s), expected %s", kiln_status_name(st), kiln_last_error(), kiln_status_name(want));
    if (needle && !strstr(kiln_last_error(), needle)) fail_msg("message '%s' lacks '%s'", kiln_last_error(), needle);
}

/* ---------------------------------------------------------------- Einsum */

/* a two-operand f32 Einsum run by the reference kernel */
static kt_op *einsum2(const char *eq, int ra, const int64_t *da, const float *a, int rb, const int64_t *db, const float *b)
{
    kt_op *t = kt_op_new("Einsum", 17);
    kt_op_input(t, "a", KILN_F32, ra, da, a);
    kt_op_input(t, "b", KILN_F32, rb, db, b);
    kt_op_attr_string(t, "equation", eq);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    return t;
}

static kt_op *einsum1(const char *eq, int ra, const int64_t *da, const float *a)
{
    kt_op *t = kt_op_new("Einsum", 17);
    kt_op_input(t, "a", KILN_F32, ra, da, a);
    kt_op_attr_string(t, "equation", eq);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    return t;
}

static void test_einsum_attention(void **state)
{
    (void)state;
    /* scores: out[b,h,i,j] = sum_d Q[b,h,i,d] K[b,h,j,d]. Head 0: K is the
     * identity, so Q itself; head 1: K rows [1,1], [2,-1] against Q rows
     * [5,6] -> 11, 4 and [7,8] -> 15, 6 */
    kt_op *t = einsum2("bhid,bhjd->bhij", 4, D(1, 2, 2, 2), F(1, 2, 3, 4, 5, 6, 7, 8), 4, D(1, 2, 2, 2),
                       F(1, 0, 0, 1, 1, 1, 2, -1));
    assert_shape(kt_op_value(t, "y"), 4, D(1, 2, 2, 2));
    assert_f32s(kt_op_value(t, "y"), 8, F(1, 2, 3, 4, 11, 4, 15, 6));
    kt_op_free(t);

    /* context: [[1,2,3],[4,5,6]] x [[1,0],[0,1],[1,1]] = [[4,5],[10,11]] */
    t = einsum2("bhij,bhjd->bhid", 4, D(1, 1, 2, 3), F(1, 2, 3, 4, 5, 6), 4, D(1, 1, 3, 2), F(1, 0, 0, 1, 1, 1));
    assert_shape(kt_op_value(t, "y"), 4, D(1, 1, 2, 2));
    assert_f32s(kt_op_value(t, "y"), 4, F(4, 5, 10, 11));
    kt_op_free(t);

    /* detection head: out[b,k,h,w] = sum_c X[b,c,h,w] W[b,k,c]; X channels
     * [1,2] and [3,4]; W rows [1,0] -> [1,2], [0,1] -> [3,4], [1,-1] -> [-2,-2] */
    t = einsum2("bchw,bkc->bkhw", 4, D(1, 2, 1, 2), F(1, 2, 3, 4), 3, D(1, 3, 2), F(1, 0, 0, 1, 1, -1));
    assert_shape(kt_op_value(t, "y"), 4, D(1, 3, 1, 2));
    assert_f32s(kt_op_value(t, "y"), 6, F(1, 2, 3, 4, -2, -2));
    kt_op_free(t);

    /* out[n,h,w] = sum_c X[n,c,h,w] C[n,c]: n0 [1,2]+[3,4] = [4,6]; n1 2*[5,6] = [10,12] */
    t = einsum2("nchw,nc->nhw", 4, D(2, 2, 1, 2), F(1, 2, 3, 4, 5, 6, 7, 8), 2, D(2, 2), F(1, 1, 2, 0));
    assert_shape(kt_op_value(t, "y"), 3, D(2, 1, 2));
    assert_f32s(kt_op_value(t, "y"), 4, F(4, 6, 10, 12));
    kt_op_free(t);

    /* FLOPs: two operands, 2 x (i j k) = 2 x 2 x 3 x 4 */
    t = kt_op_new("Einsum", 17);
    kt_op_input(t, "a", KILN_F32, 2, D(2, 3), NULL);
    kt_op_input(t, "b", KILN_F32, 2, D(3, 4), NULL);
    kt_op_attr_string(t, "equation", "ij,jk->ik");
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_true(fabs(kiln_flops_Einsum(&t->g->nodes[0], t->g->values) - 48.0) < 1e-9);
    kt_op_free(t);
}

static void test_einsum_forms(void **state)
{
    (void)state;
    const float m[] = {1, 2, 3, 4};
    /* diagonal [[1,2],[3,4]] -> [1,4]; trace -> 5 (0-D); total -> 10 */
    kt_op *t = einsum1("ii->i", 2, D(2, 2), m);
    assert_f32s(kt_op_value(t, "y"), 2, F(1, 4));
    kt_op_free(t);
    t = einsum1("ii", 2, D(2, 2), m);
    assert_shape(kt_op_value(t, "y"), 0, NULL);
    assert_f32s(kt_op_value(t, "y"), 1, F(5));
    kt_op_free(t);
    t = einsum1("ij->", 2, D(2, 2), m);
    assert_f32s(kt_op_value(t, "y"), 1, F(10));
    kt_op_free(t);

    /* implicit output: letters once each, in ASCII order: 'ba' is the
     * transpose of [[1,2,3],[4,5,6]] */
    t = einsum1("ba", 2, D(2, 3), F(1, 2, 3, 4, 5, 6));
    assert_shape(kt_op_value(t, "y"), 2, D(3, 2));
    assert_f32s(kt_op_value(t, "y"), 6, F(1, 4, 2, 5, 3, 6));
    kt_op_free(t);
    /* implicit matmul, spaces ignored: [[1,2]] x [[3],[4]] = [[11]] */
    t = einsum2(" i j , j k ", 2, D(1, 2), F(1, 2), 2, D(2, 1), F(3, 4));
    assert_shape(kt_op_value(t, "y"), 2, D(1, 1));
    assert_f32s(kt_op_value(t, "y"), 1, F(11));
    kt_op_free(t);

    /* '...' broadcast: batches [1,2] and [3,4] each times [[1],[2]] (no
     * batch) -> 5, 11 */
    t = einsum2("...ij,...jk->...ik", 3, D(2, 1, 2), F(1, 2, 3, 4), 2, D(2, 1), F(1, 2));
    assert_shape(kt_op_value(t, "y"), 3, D(2, 1, 1));
    assert_f32s(kt_op_value(t, "y"), 2, F(5, 11));
    kt_op_free(t);
    /* '...' dims of 1 stretch: rows of [[1,2,3],[4,5,6]] . [1,1,2] = 9, 21 */
    t = einsum2("...i,...i->...", 2, D(2, 3), F(1, 2, 3, 4, 5, 6), 2, D(1, 3), F(1, 1, 2));
    assert_shape(kt_op_value(t, "y"), 1, D(2));
    assert_f32s(kt_op_value(t, "y"), 2, F(9, 21));
    kt_op_free(t);
    /* implicit with '...' first: 'a...' of [2,1,3] -> [1,3,2] */
    t = einsum1("a...", 3, D(2, 1, 3), F(1, 2, 3, 4, 5, 6));
    assert_shape(kt_op_value(t, "y"), 3, D(1, 3, 2));
    assert_f32s(kt_op_value(t, "y"), 6, F(1, 4, 2, 5, 3, 6));
    kt_op_free(t);
    /* batch diagonal '...ii->...i' of two 2x2 blocks [[0,1],[2,3]], [[4,5],[6,7]] */
    t = einsum1("...ii->...i", 3, D(2, 2, 2), F(0, 1, 2, 3, 4, 5, 6, 7));
    assert_f32s(kt_op_value(t, "y"), 4, F(0, 3, 4, 7));
    kt_op_free(t);

    /* int64, three operands: sum_i a_i b_i c_i = 1*4*1 + 2*5*2 + 3*6*(-1) = 6 */
    t = kt_op_new("Einsum", 17);
    kt_op_input(t, "a", KILN_I64, 1, D(3), I(1, 2, 3));
    kt_op_input(t, "b", KILN_I64, 1, D(3), I(4, 5, 6));
    kt_op_input(t, "c", KILN_I64, 1, D(3), I(1, 2, -1));
    kt_op_attr_string(t, "equation", "i,i,i->");
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_i64s(kt_op_value(t, "y"), 1, I(6));
    kt_op_free(t);
}

static void test_einsum_shapes_and_errors(void **state)
{
    (void)state;
    /* symbols carried: [batch,8,S,64] x [batch,8,S,64] -> [batch,8,S,S] */
    kt_op *t = kt_op_new("Einsum", 17);
    const char *s[] = {"batch", NULL, "S", NULL};
    kt_op_input_sym(t, "q", KILN_F16, 4, D(-1, 8, -1, 64), s);
    kt_op_input_sym(t, "k", KILN_F16, 4, D(-1, 8, -1, 64), s);
    kt_op_attr_string(t, "equation", "bhid,bhjd->bhij");
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 4, D(sym(t, "batch"), 8, sym(t, "S"), sym(t, "S")));
    assert_int_equal(kt_op_value(t, "y")->dtype, KILN_F16);
    kt_op_free(t);

    /* a symbol meets a concrete dim: the concrete one; a 1 stretches */
    t = kt_op_new("Einsum", 17);
    const char *s2[] = {"N", NULL};
    kt_op_input_sym(t, "a", KILN_F32, 2, D(-1, 3), s2);
    kt_op_input(t, "b", KILN_F32, 2, D(7, 3), NULL);
    kt_op_attr_string(t, "equation", "ij,ij->ij");
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, D(7, 3));
    kt_op_free(t);

    /* an input of unknown rank: the explicit output still has rank 2 */
    t = kt_op_new("Einsum", 17);
    kt_op_input(t, "a", KILN_F32, -1, NULL, NULL);
    kt_op_input(t, "b", KILN_F32, 2, D(3, 4), NULL);
    kt_op_attr_string(t, "equation", "ij,jk->ik");
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, D(KILN_DIM_UNKNOWN, KILN_DIM_UNKNOWN));
    kt_op_free(t);

    /* a malformed equation is refused by the parser (the node is
     * unsupported, naming the attribute), one that disagrees with the
     * inputs by the shape rule */
    static const struct {
        const char *eq, *needle;
        int64_t da[2], db[2];
        kiln_status want;
    } bad[] = {
        {"ij,jk->ik", "'b'", {2, 3}, {4, 2}, KILN_ERR_SHAPE},                  /* j is 3 and 4 */
        {"ij,jk->ii", "repeats", {2, 3}, {3, 2}, KILN_ERR_UNSUPPORTED},        /* output letter twice */
        {"ijk,jk->ik", "rank 2", {2, 3}, {3, 2}, KILN_ERR_SHAPE},              /* three letters for rank 2 */
        {"ij,jk->iz", "'z'", {2, 3}, {3, 2}, KILN_ERR_SHAPE},                  /* z is in no input */
        {"ij->i", "'equation'", {2, 3}, {3, 2}, KILN_ERR_UNSUPPORTED},         /* one term, two inputs */
        {"i.j,jk->ik", "'.'", {2, 3}, {3, 2}, KILN_ERR_UNSUPPORTED},           /* a lone dot */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = kt_op_new("Einsum", 17);
        kt_op_input(t, "a", KILN_F32, 2, bad[i].da, NULL);
        kt_op_input(t, "b", KILN_F32, 2, bad[i].db, NULL);
        kt_op_attr_string(t, "equation", bad[i].eq);
        kt_op_output(t, "y");
        assert_fails(t, bad[i].want, bad[i].needle);
        kt_op_free(t);
    }
    /* diagonal over unequal dims */
    t = kt_op_new("Einsum", 17);
    kt_op_input(t, "a", KILN_F32, 2, D(2, 3), NULL);
    kt_op_attr_string(t, "equation", "ii->i");
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "repeated");
    kt_op_free(t);
}

/* ---------------------------------------------------------------- GatherND */

static void test_gathernd(void **state)
{
    (void)state;
    /* ONNX example 1: [[0,1],[2,3]] at (0,0), (1,1) -> [0,3] */
    kt_op *t = kt_op_new("GatherND", 13);
    kt_op_input(t, "x", KILN_I64, 2, D(2, 2), I(0, 1, 2, 3));
    kt_op_input(t, "i", KILN_I64, 2, D(2, 2), I(0, 0, 1, 1));
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_i64s(kt_op_value(t, "y"), 2, I(0, 3));
    kt_op_free(t);

    /* example 2: rows [1], [0] -> [[2,3],[0,1]]; negative -1 is row 1 */
    t = kt_op_new("GatherND", 13);
    kt_op_input(t, "x", KILN_F32, 2, D(2, 2), F(0, 1, 2, 3));
    kt_op_input(t, "i", KILN_I64, 2, D(3, 1), I(1, 0, -1));
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, D(3, 2));
    assert_f32s(kt_op_value(t, "y"), 6, F(2, 3, 0, 1, 2, 3));
    kt_op_free(t);

    /* example 5, batch_dims 1: batch 0 takes its row 1 [2,3], batch 1 its row 0 [4,5] */
    const int64_t x3[] = {0, 1, 2, 3, 4, 5, 6, 7};
    t = kt_op_new("GatherND", 13);
    kt_op_input(t, "x", KILN_I64, 3, D(2, 2, 2), x3);
    kt_op_input(t, "i", KILN_I64, 2, D(2, 1), I(1, 0));
    kt_op_attr_int(t, "batch_dims", 1);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, D(2, 2));
    assert_i64s(kt_op_value(t, "y"), 4, I(2, 3, 4, 5));
    kt_op_free(t);

    /* GatherND-11 has no batch_dims: the same node picks whole blocks x[1], x[0] */
    t = kt_op_new("GatherND", 11);
    kt_op_input(t, "x", KILN_I64, 3, D(2, 2, 2), x3);
    kt_op_input(t, "i", KILN_I64, 2, D(2, 1), I(1, 0));
    kt_op_attr_int(t, "batch_dims", 1);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 3, D(2, 2, 2));
    assert_i64s(kt_op_value(t, "y"), 8, I(4, 5, 6, 7, 0, 1, 2, 3));
    kt_op_free(t);

    /* symbols: data [batch,5,6], indices [batch,7,1], batch_dims 1 -> [batch,7,6] */
    t = kt_op_new("GatherND", 13);
    const char *s[] = {"batch", NULL, NULL};
    kt_op_input_sym(t, "x", KILN_F32, 3, D(-1, 5, 6), s);
    kt_op_input_sym(t, "i", KILN_I64, 3, D(-1, 7, 1), s);
    kt_op_attr_int(t, "batch_dims", 1);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 3, D(sym(t, "batch"), 7, 6));
    kt_op_free(t);

    /* index 2 on an axis of 2 */
    t = kt_op_new("GatherND", 13);
    kt_op_input(t, "x", KILN_F32, 2, D(2, 2), F(0, 1, 2, 3));
    kt_op_input(t, "i", KILN_I64, 2, D(1, 2), I(2, 0));
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_INVALID_ARGUMENT, "'i'");
    kt_op_free(t);
    /* last index dim 3 on rank-2 data */
    t = kt_op_new("GatherND", 13);
    kt_op_input(t, "x", KILN_F32, 2, D(2, 2), NULL);
    kt_op_input(t, "i", KILN_I64, 2, D(1, 3), NULL);
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "last dim");
    kt_op_free(t);
}

/* ---------------------------------------------------------------- ScatterND */

static kt_op *scatter(int opset, const char *reduction, const float *upd)
{
    kt_op *t = kt_op_new("ScatterND", opset);
    kt_op_input(t, "x", KILN_F32, 1, D(4), F(1, 2, 3, 4));
    kt_op_input(t, "i", KILN_I64, 2, D(3, 1), I(0, 0, 2));
    kt_op_input(t, "u", KILN_F32, 1, D(3), upd);
    if (reduction) kt_op_attr_string(t, "reduction", reduction);
    kt_op_output(t, "y");
    return t;
}

static void test_scatternd(void **state)
{
    (void)state;
    /* ONNX example: [1..8] with 9,10,11,12 at 4,3,1,7 */
    kt_op *t = kt_op_new("ScatterND", 11);
    kt_op_input(t, "x", KILN_F32, 1, D(8), F(1, 2, 3, 4, 5, 6, 7, 8));
    kt_op_input(t, "i", KILN_I64, 2, D(4, 1), I(4, 3, 1, 7));
    kt_op_input(t, "u", KILN_F32, 1, D(4), F(9, 10, 11, 12));
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_f32s(kt_op_value(t, "y"), 8, F(1, 11, 3, 10, 9, 6, 7, 12));
    kt_op_free(t);

    /* slices: row -2 (= row 0) of [[1,2,3],[4,5,6]] becomes [7,8,9] */
    t = kt_op_new("ScatterND", 13);
    kt_op_input(t, "x", KILN_I64, 2, D(2, 3), I(1, 2, 3, 4, 5, 6));
    kt_op_input(t, "i", KILN_I64, 2, D(1, 1), I(-2));
    kt_op_input(t, "u", KILN_I64, 2, D(1, 3), I(7, 8, 9));
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_i64s(kt_op_value(t, "y"), 6, I(7, 8, 9, 4, 5, 6));
    kt_op_free(t);

    /* reductions, updates 5 and 6 both at 0, 7 at 2 */
    t = scatter(16, "add", F(5, 6, 7)); /* [1+5+6, 2, 3+7, 4] */
    assert_kiln_ok(kt_op_run(t));
    assert_f32s(kt_op_value(t, "y"), 4, F(12, 2, 10, 4));
    kt_op_free(t);
    t = scatter(16, "mul", F(5, 6, 7)); /* [1*5*6, 2, 3*7, 4] */
    assert_kiln_ok(kt_op_run(t));
    assert_f32s(kt_op_value(t, "y"), 4, F(30, 2, 21, 4));
    kt_op_free(t);
    t = scatter(18, "max", F(5, -6, 1)); /* [max(1,5,-6), 2, max(3,1), 4] */
    assert_kiln_ok(kt_op_run(t));
    assert_f32s(kt_op_value(t, "y"), 4, F(5, 2, 3, 4));
    kt_op_free(t);
    t = scatter(18, "min", F(5, -6, 1)); /* [min(1,5,-6), 2, min(3,1), 4] */
    assert_kiln_ok(kt_op_run(t));
    assert_f32s(kt_op_value(t, "y"), 4, F(-6, 2, 1, 4));
    kt_op_free(t);

    /* int8 add wraps: 100 + 100 = -56 */
    t = kt_op_new("ScatterND", 18);
    kt_op_input(t, "x", KILN_I8, 1, D(2), (int8_t[]){100, 1});
    kt_op_input(t, "i", KILN_I64, 2, D(1, 1), I(0));
    kt_op_input(t, "u", KILN_I8, 1, D(1), (int8_t[]){100});
    kt_op_attr_string(t, "reduction", "add");
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_int_equal(((int8_t *)kt_op_value(t, "y")->data)[0], -56);
    assert_int_equal(((int8_t *)kt_op_value(t, "y")->data)[1], 1);
    kt_op_free(t);

    /* max is ScatterND-18's, not 16's; "sum" is no reduction */
    t = scatter(16, "max", F(5, 6, 7));
    assert_fails(t, KILN_ERR_UNSUPPORTED, "ScatterND-18");
    kt_op_free(t);
    t = scatter(18, "sum", F(5, 6, 7));
    assert_fails(t, KILN_ERR_UNSUPPORTED, "'sum'");
    kt_op_free(t);
    /* updates of the wrong shape: [3] indices rows need [3] updates, not [2] */
    t = kt_op_new("ScatterND", 18);
    kt_op_input(t, "x", KILN_F32, 1, D(4), NULL);
    kt_op_input(t, "i", KILN_I64, 2, D(3, 1), NULL);
    kt_op_input(t, "u", KILN_F32, 1, D(2), NULL);
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "'u'");
    kt_op_free(t);
    /* index 4 on an axis of 4 */
    t = kt_op_new("ScatterND", 18);
    kt_op_input(t, "x", KILN_F32, 1, D(4), F(1, 2, 3, 4));
    kt_op_input(t, "i", KILN_I64, 2, D(1, 1), I(4));
    kt_op_input(t, "u", KILN_F32, 1, D(1), F(0));
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_INVALID_ARGUMENT, "'i'");
    kt_op_free(t);
}

/* ---------------------------------------------------------------- NonZero */

static void test_nonzero(void **state)
{
    (void)state;
    /* ONNX example: [[1,0],[1,1]] -> rows [0,1,1] and cols [0,0,1] */
    kt_op *t = kt_op_new("NonZero", 13);
    kt_op_input(t, "x", KILN_BOOL, 2, D(2, 2), (uint8_t[]){1, 0, 1, 1});
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, D(2, 3));
    assert_i64s(kt_op_value(t, "y"), 6, I(0, 1, 1, 0, 0, 1));
    kt_op_free(t);

    /* NaN is nonzero: [0, NaN, 2, 0] -> [[1, 2]] */
    t = kt_op_new("NonZero", 9);
    kt_op_input(t, "x", KILN_F32, 1, D(4), F(0, NAN, 2, 0));
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_i64s(kt_op_value(t, "y"), 2, I(1, 2));
    kt_op_free(t);

    /* data unknown: [rank, ?] */
    t = kt_op_new("NonZero", 13);
    kt_op_input(t, "x", KILN_F32, 3, D(2, 3, 4), NULL);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, D(3, KILN_DIM_UNKNOWN));
    assert_int_equal(kt_op_value(t, "y")->dtype, KILN_I64);
    kt_op_free(t);
}

/* ---------------------------------------------------------------- Trilu */

static kt_op *trilu(int upper, const int64_t *k)
{
    kt_op *t = kt_op_new("Trilu", 14);
    kt_op_input(t, "x", KILN_F32, 2, D(3, 4), F(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12));
    if (k) kt_op_input(t, "k", KILN_I64, 0, NULL, k);
    if (upper >= 0) kt_op_attr_int(t, "upper", upper);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    return t;
}

static void test_trilu(void **state)
{
    (void)state;
    /* x = [[1,2,3,4],[5,6,7,8],[9,10,11,12]]; upper keeps j - i >= k */
    kt_op *t = trilu(-1, NULL);
    assert_f32s(kt_op_value(t, "y"), 12, F(1, 2, 3, 4, 0, 6, 7, 8, 0, 0, 11, 12));
    kt_op_free(t);
    t = trilu(1, I(1));
    assert_f32s(kt_op_value(t, "y"), 12, F(0, 2, 3, 4, 0, 0, 7, 8, 0, 0, 0, 12));
    kt_op_free(t);
    /* lower keeps j - i <= k */
    t = trilu(0, NULL);
    assert_f32s(kt_op_value(t, "y"), 12, F(1, 0, 0, 0, 5, 6, 0, 0, 9, 10, 11, 0));
    kt_op_free(t);
    t = trilu(0, I(-1));
    assert_f32s(kt_op_value(t, "y"), 12, F(0, 0, 0, 0, 5, 0, 0, 0, 9, 10, 0, 0));
    kt_op_free(t);

    /* batched int64 [2,2,2], upper: each block [[a,b],[0,d]] */
    t = kt_op_new("Trilu", 14);
    kt_op_input(t, "x", KILN_I64, 3, D(2, 2, 2), I(1, 2, 3, 4, 5, 6, 7, 8));
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_i64s(kt_op_value(t, "y"), 8, I(1, 2, 0, 4, 5, 6, 0, 8));
    kt_op_free(t);

    /* rank 1 */
    t = kt_op_new("Trilu", 14);
    kt_op_input(t, "x", KILN_F32, 1, D(3), NULL);
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "rank 1");
    kt_op_free(t);
}

/* ---------------------------------------------------------------- DepthToSpace, SpaceToDepth */

static void test_depth_space(void **state)
{
    (void)state;
    /* [1,8,1,1] of 0..7, b=2. DCR: y[c', i, j] = x[(2i + j)*2 + c']:
     * c'=0 -> [[0,2],[4,6]], c'=1 -> [[1,3],[5,7]]. CRD: x[4c' + 2i + j]: 0..7 */
    const float x8[] = {0, 1, 2, 3, 4, 5, 6, 7};
    kt_op *t = kt_op_new("DepthToSpace", 13);
    kt_op_input(t, "x", KILN_F32, 4, D(1, 8, 1, 1), x8);
    kt_op_attr_int(t, "blocksize", 2);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 4, D(1, 2, 2, 2));
    assert_f32s(kt_op_value(t, "y"), 8, F(0, 2, 4, 6, 1, 3, 5, 7));
    kt_op_free(t);
    t = kt_op_new("DepthToSpace", 13);
    kt_op_input(t, "x", KILN_F32, 4, D(1, 8, 1, 1), x8);
    kt_op_attr_int(t, "blocksize", 2);
    kt_op_attr_string(t, "mode", "CRD");
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_f32s(kt_op_value(t, "y"), 8, x8);
    kt_op_free(t);
    /* DepthToSpace-1 has no mode: CRD is not read, DCR it is */
    t = kt_op_new("DepthToSpace", 10);
    kt_op_input(t, "x", KILN_F32, 4, D(1, 8, 1, 1), x8);
    kt_op_attr_int(t, "blocksize", 2);
    kt_op_attr_string(t, "mode", "CRD");
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_f32s(kt_op_value(t, "y"), 8, F(0, 2, 4, 6, 1, 3, 5, 7));
    kt_op_free(t);

    /* spatial: channel c holds [10c, 10c+1] over w; DCR b=2 gives
     * y[2h' + i][2w + j] = x[2i + j][w]: rows [0,10,1,11], [20,30,21,31] */
    const float xs[] = {0, 1, 10, 11, 20, 21, 30, 31};
    const float ys[] = {0, 10, 1, 11, 20, 30, 21, 31};
    t = kt_op_new("DepthToSpace", 13);
    kt_op_input(t, "x", KILN_F32, 4, D(1, 4, 1, 2), xs);
    kt_op_attr_int(t, "blocksize", 2);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 4, D(1, 1, 2, 4));
    assert_f32s(kt_op_value(t, "y"), 8, ys);
    kt_op_free(t);
    /* SpaceToDepth undoes it */
    t = kt_op_new("SpaceToDepth", 13);
    kt_op_input(t, "x", KILN_F32, 4, D(1, 1, 2, 4), ys);
    kt_op_attr_int(t, "blocksize", 2);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 4, D(1, 4, 1, 2));
    assert_f32s(kt_op_value(t, "y"), 8, xs);
    kt_op_free(t);

    /* symbols: [batch,8,H,W] b=2 -> [batch,2,?,?]; b=1 keeps H and W */
    const char *s[] = {"batch", NULL, "H", "W"};
    t = kt_op_new("DepthToSpace", 13);
    kt_op_input_sym(t, "x", KILN_F32, 4, D(-1, 8, -1, -1), s);
    kt_op_attr_int(t, "blocksize", 2);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 4, D(sym(t, "batch"), 2, KILN_DIM_UNKNOWN, KILN_DIM_UNKNOWN));
    kt_op_free(t);
    t = kt_op_new("SpaceToDepth", 13);
    kt_op_input_sym(t, "x", KILN_F32, 4, D(-1, 8, -1, -1), s);
    kt_op_attr_int(t, "blocksize", 1);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 4, D(sym(t, "batch"), 8, sym(t, "H"), sym(t, "W")));
    kt_op_free(t);

    /* 7 channels do not split into 2x2 blocks; H = 3 is not a multiple of 2 */
    t = kt_op_new("DepthToSpace", 13);
    kt_op_input(t, "x", KILN_F32, 4, D(1, 7, 2, 2), NULL);
    kt_op_attr_int(t, "blocksize", 2);
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "multiple");
    kt_op_free(t);
    t = kt_op_new("SpaceToDepth", 13);
    kt_op_input(t, "x", KILN_F32, 4, D(1, 1, 3, 2), NULL);
    kt_op_attr_int(t, "blocksize", 2);
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, "multiple");
    kt_op_free(t);
    t = kt_op_new("DepthToSpace", 13);
    kt_op_input(t, "x", KILN_F32, 4, D(1, 8, 2, 2), NULL);
    kt_op_attr_int(t, "blocksize", 2);
    kt_op_attr_string(t, "mode", "XYZ");
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_UNSUPPORTED, "'XYZ'");
    kt_op_free(t);
}

/* ---------------------------------------------------------------- OneHot */

static kt_op *onehot(int opset, int64_t axis, const float *values)
{
    kt_op *t = kt_op_new("OneHot", opset);
    kt_op_input(t, "i", KILN_I64, 1, D(3), I(0, -1, 5));
    kt_op_input(t, "depth", KILN_I64, 0, NULL, I(3));
    kt_op_input(t, "values", KILN_F32, 1, D(2), values);
    if (axis != -1) kt_op_attr_int(t, "axis", axis);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    return t;
}

static void test_onehot(void **state)
{
    (void)state;
    /* indices [0, -1, 5], depth 3: 0 -> [1,0,0]; -1 is 2 (OneHot-11) -> [0,0,1];
     * 5 is out of range -> all off */
    kt_op *t = onehot(11, -1, F(0, 1));
    assert_shape(kt_op_value(t, "y"), 2, D(3, 3));
    assert_f32s(kt_op_value(t, "y"), 9, F(1, 0, 0, 0, 0, 1, 0, 0, 0));
    kt_op_free(t);
    /* OneHot-9: negative indices are out of range too */
    t = onehot(9, -1, F(0, 1));
    assert_f32s(kt_op_value(t, "y"), 9, F(1, 0, 0, 0, 0, 0, 0, 0, 0));
    kt_op_free(t);
    /* axis 0, off -1, on 5: y[d][i] = on where index i is d */
    t = onehot(11, 0, F(-1, 5));
    assert_f32s(kt_op_value(t, "y"), 9, F(5, -1, -1, -1, -1, -1, -1, 5, -1));
    kt_op_free(t);

    /* float indices truncate, float depth 3.0: [1.7, 2.0] -> [[0,1,0],[0,0,1]], int64 values */
    t = kt_op_new("OneHot", 11);
    kt_op_input(t, "i", KILN_F32, 1, D(2), F(1.7f, 2.0f));
    kt_op_input(t, "depth", KILN_F32, 1, D(1), F(3));
    kt_op_input(t, "values", KILN_I64, 1, D(2), I(0, 7));
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_i64s(kt_op_value(t, "y"), 6, I(0, 7, 0, 0, 0, 7));
    kt_op_free(t);

    /* shape: indices [batch,4], depth 10, axis 1 -> [batch,10,4]; depth unknown -> ? */
    const char *s[] = {"batch", NULL};
    t = kt_op_new("OneHot", 11);
    kt_op_input_sym(t, "i", KILN_I64, 2, D(-1, 4), s);
    kt_op_input(t, "depth", KILN_I64, 0, NULL, I(10));
    kt_op_input(t, "values", KILN_F16, 1, D(2), NULL);
    kt_op_attr_int(t, "axis", 1);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 3, D(sym(t, "batch"), 10, 4));
    assert_int_equal(kt_op_value(t, "y")->dtype, KILN_F16);
    kt_op_free(t);
    t = kt_op_new("OneHot", 11);
    kt_op_input(t, "i", KILN_I64, 1, D(4), NULL);
    kt_op_input(t, "depth", KILN_I64, 0, NULL, NULL);
    kt_op_input(t, "values", KILN_F32, 1, D(2), NULL);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "y"), 2, D(4, KILN_DIM_UNKNOWN));
    kt_op_free(t);
    /* axis 2 on rank-1 indices (range [-2, 1]) */
    t = kt_op_new("OneHot", 11);
    kt_op_input(t, "i", KILN_I64, 1, D(4), NULL);
    kt_op_input(t, "depth", KILN_I64, 0, NULL, I(3));
    kt_op_input(t, "values", KILN_F32, 1, D(2), NULL);
    kt_op_attr_int(t, "axis", 2);
    kt_op_output(t, "y");
    assert_fails(t, KILN_ERR_SHAPE, NULL);
    kt_op_free(t);
}

/* ---------------------------------------------------------------- Where */

static void test_where_broadcasts_three(void **state)
{
    (void)state;
    /* cond [2,1] = [1,0], x [1,3] = [1,2,3], y 0-D = -1 -> [[1,2,3],[-1,-1,-1]] */
    kt_op *t = kt_op_new("Where", 16);
    kt_op_input(t, "c", KILN_BOOL, 2, D(2, 1), (uint8_t[]){1, 0});
    kt_op_input(t, "x", KILN_F32, 2, D(1, 3), F(1, 2, 3));
    kt_op_input(t, "y", KILN_F32, 0, NULL, F(-1));
    kt_op_output(t, "o");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "o"), 2, D(2, 3));
    assert_f32s(kt_op_value(t, "o"), 6, F(1, 2, 3, -1, -1, -1));
    kt_op_free(t);

    /* each input stretches along another dim: cond [1,2,1], x [2,1,1], y [1,1,3] -> [2,2,3] */
    t = kt_op_new("Where", 16);
    const char *s[] = {"batch", NULL, NULL};
    kt_op_input(t, "c", KILN_BOOL, 3, D(1, 2, 1), NULL);
    kt_op_input_sym(t, "x", KILN_F32, 3, D(-1, 1, 1), s);
    kt_op_input(t, "y", KILN_F32, 3, D(1, 1, 3), NULL);
    kt_op_output(t, "o");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(kt_op_value(t, "o"), 3, D(sym(t, "batch"), 2, 3));
    kt_op_free(t);

    /* cond [0,1] at rows, x [2,1] = [10,20], y [1,2] = [7,8]:
     * row 0 takes y [7,8], row 1 takes x [20,20] */
    t = kt_op_new("Where", 16);
    kt_op_input(t, "c", KILN_BOOL, 2, D(2, 1), (uint8_t[]){0, 1});
    kt_op_input(t, "x", KILN_I64, 2, D(2, 1), I(10, 20));
    kt_op_input(t, "y", KILN_I64, 2, D(1, 2), I(7, 8));
    kt_op_output(t, "o");
    assert_kiln_ok(kt_op_run(t));
    assert_i64s(kt_op_value(t, "o"), 4, I(7, 8, 20, 20));
    kt_op_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_einsum_attention),
        cmocka_unit_test(test_einsum_forms),
        cmocka_unit_test(test_einsum_shapes_and_errors),
        cmocka_unit_test(test_gathernd),
        cmocka_unit_test(test_scatternd),
        cmocka_unit_test(test_nonzero),
        cmocka_unit_test(test_trilu),
        cmocka_unit_test(test_depth_space),
        cmocka_unit_test(test_onehot),
        cmocka_unit_test(test_where_broadcasts_three),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
