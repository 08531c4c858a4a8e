/* The op parameter parsers (src/ir/params_conv.c, params_elementwise.c,
 * params_tensor.c, params_index.c, params_norm.c): the typed struct holds
 * the attributes as given, ONNX's defaults where absent, and a value kiln
 * cannot take makes the node unsupported with a message naming the
 * attribute. Each node is resolved alone (kiln_op_resolve), so what is
 * checked is the parser, not the shape rule. The Resize, Pad, pool and
 * reduce parsers are tested in test_ops_resize.c and test_ops_reduce.c. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#include "ir/ops.h"
#include "ir/shape_index.h"
#include "opharness.h"

#define D(...) ((const int64_t[]){__VA_ARGS__})

/* A node of `op` with n_in f32 inputs [1] and n_out outputs. */
static kt_op *node(const char *op, int opset, int n_in, int n_out)
{
    kt_op *t = kt_op_new(op, opset);
    for (int i = 0; i < n_in; i++) {
        char name[16];
        snprintf(name, sizeof name, "x%d", i);
        kt_op_input(t, name, KILN_F32, 1, D(1), NULL);
    }
    for (int i = 0; i < n_out; i++) {
        char name[16];
        snprintf(name, sizeof name, "y%d", i);
        kt_op_output(t, name);
    }
    return t;
}

/* Resolves the node; its parameters, which must have parsed. */
static const kiln_params *parsed(kt_op *t)
{
    kiln_op_resolve(t->node);
    if (t->node->unsupported) fail_msg("%s: %s", t->node->op_type, t->node->unsupported);
    assert_non_null(t->node->op);
    return &t->node->params;
}

/* Resolves the node, which must be refused naming attr and value; frees t. */
static void refused(kt_op *t, const char *attr, const char *value)
{
    kiln_op_resolve(t->node);
    const char *why = t->node->unsupported;
    if (!why) fail_msg("%s with a bad '%s' was accepted", t->node->op_type, attr);
    if (!strstr(why, attr) || (value && !strstr(why, value)))
        fail_msg("'%s' does not name '%s' = '%s'", why, attr, value ? value : "");
    kt_op_free(t);
}

/* A tensor attribute holding `data` (count elements of dtype dt, dims). */
static void attr_tensor(kt_op *t, const char *name, kiln_dtype dt, int rank, const int64_t *dims, const void *data)
{
    kiln_value *v = kiln_arena_alloc(&t->g->arena, sizeof *v);
    memset(v, 0, sizeof *v);
    v->name = name;
    v->dtype = dt;
    v->shape.rank = rank;
    for (int i = 0; i < rank; i++) v->shape.d[i] = dims[i];
    size_t bytes = kiln_value_bytes(v);
    v->data = kiln_arena_alloc(&t->g->arena, bytes + 1);
    memcpy(v->data, data, bytes);
    kiln_attr *a = &t->node->attrs[t->node->n_attrs++];
    memset(a, 0, sizeof *a);
    a->name = name;
    a->type = KILN_ATTR_TENSOR;
    a->t = v;
}

static void assert_ints(const int64_t *got, int n, const int64_t *want)
{
    for (int i = 0; i < n; i++)
        if (got[i] != want[i]) fail_msg("value %d is %lld, expected %lld", i, (long long)got[i], (long long)want[i]);
}

/* ---------------------------------------------------------------- conv family */

static void test_params_conv(void **state)
{
    (void)state;
    kt_op *t = node("Conv", 22, 2, 1);
    kt_op_attr_string(t, "auto_pad", "SAME_LOWER");
    kt_op_attr_int(t, "group", 4);
    kt_op_attr_ints(t, "kernel_shape", 2, D(3, 5));
    kt_op_attr_ints(t, "strides", 2, D(2, 1));
    kt_op_attr_ints(t, "dilations", 2, D(1, 3));
    kt_op_attr_ints(t, "pads", 4, D(0, 1, 2, 3));
    const kiln_conv_params *c = &parsed(t)->conv;
    assert_int_equal(c->auto_pad, KILN_AUTO_PAD_SAME_LOWER);
    assert_int_equal(c->group, 4);
    assert_int_equal(c->n_kernel, 2);
    assert_ints(c->kernel, 2, D(3, 5));
    assert_int_equal(c->n_strides, 2);
    assert_ints(c->strides, 2, D(2, 1));
    assert_int_equal(c->n_dilations, 2);
    assert_ints(c->dilations, 2, D(1, 3));
    assert_int_equal(c->n_pads, 4);
    assert_ints(c->pads, 4, D(0, 1, 2, 3));
    assert_int_equal(c->n_output_padding, 0);
    assert_int_equal(c->n_output_shape, 0);
    kt_op_free(t);

    /* defaults; "" is NOTSET; Conv has no output_padding to read */
    t = node("Conv", 11, 2, 1);
    kt_op_attr_string(t, "auto_pad", "");
    kt_op_attr_ints(t, "output_padding", 2, D(1, 1));
    c = &parsed(t)->conv;
    assert_int_equal(c->auto_pad, KILN_AUTO_PAD_NOTSET);
    assert_int_equal(c->group, 1);
    assert_int_equal(c->n_kernel + c->n_strides + c->n_dilations + c->n_pads + c->n_output_padding, 0);
    kt_op_free(t);

    t = node("ConvTranspose", 22, 2, 1);
    kt_op_attr_string(t, "auto_pad", "VALID");
    kt_op_attr_ints(t, "output_padding", 2, D(1, 0));
    kt_op_attr_ints(t, "output_shape", 4, D(1, 8, 10, 12));
    c = &parsed(t)->conv;
    assert_int_equal(c->auto_pad, KILN_AUTO_PAD_VALID); /* kept: ConvTranspose's VALID pads nothing either */
    assert_int_equal(c->n_output_padding, 2);
    assert_ints(c->output_padding, 2, D(1, 0));
    assert_int_equal(c->n_output_shape, 4);
    assert_ints(c->output_shape, 4, D(1, 8, 10, 12));
    kt_op_free(t);

    t = node("Conv", 22, 2, 1);
    kt_op_attr_int(t, "group", 0);
    refused(t, "group", "0");
    t = node("Conv", 22, 2, 1);
    kt_op_attr_ints(t, "strides", 2, D(1, 0));
    refused(t, "strides", "0");
    t = node("Conv", 22, 2, 1);
    kt_op_attr_ints(t, "pads", 4, D(0, -1, 0, 0));
    refused(t, "pads", "-1");
    t = node("Conv", 22, 2, 1);
    kt_op_attr_string(t, "auto_pad", "SAME");
    refused(t, "auto_pad", "SAME");
    t = node("Conv", 22, 2, 1);
    kt_op_attr_string(t, "kernel_shape", "3x3");
    refused(t, "kernel_shape", "a string");
    t = node("ConvTranspose", 22, 2, 1);
    kt_op_attr_ints(t, "output_padding", 2, D(-1, 0));
    refused(t, "output_padding", "-1");
    t = node("ConvTranspose", 22, 2, 1);
    kt_op_attr_ints(t, "output_shape", 2, D(-4, 4));
    refused(t, "output_shape", "-4");
    t = node("ConvTranspose", 22, 2, 1);
    kt_op_attr_ints(t, "dilations", 7, D(1, 1, 1, 1, 1, 1, 1));
    refused(t, "dilations", "7");
}

static void test_params_batchnorm_gemm(void **state)
{
    (void)state;
    kt_op *t = node("BatchNormalization", 15, 5, 1);
    const kiln_batchnorm_params *b = &parsed(t)->batchnorm;
    assert_true(b->epsilon == 1e-5f);
    assert_false(b->training_mode);
    kt_op_free(t);
    t = node("BatchNormalization", 15, 5, 1);
    kt_op_attr_float(t, "epsilon", 1e-3f);
    kt_op_attr_int(t, "training_mode", 1);
    b = &parsed(t)->batchnorm;
    assert_true(b->epsilon == 1e-3f);
    assert_true(b->training_mode); /* parsed as given: the shape rule refuses it */
    kt_op_free(t);
    t = node("BatchNormalization", 15, 5, 1);
    kt_op_attr_string(t, "epsilon", "small");
    refused(t, "epsilon", "a string");

    t = node("Gemm", 13, 2, 1);
    const kiln_gemm_params *g = &parsed(t)->gemm;
    assert_true(g->alpha == 1.0f && g->beta == 1.0f);
    assert_false(g->trans_a);
    assert_false(g->trans_b);
    kt_op_free(t);
    t = node("Gemm", 13, 2, 1);
    kt_op_attr_float(t, "alpha", 0.5f);
    kt_op_attr_int(t, "beta", 2); /* an int read as a float */
    kt_op_attr_int(t, "transA", 1);
    kt_op_attr_int(t, "transB", 1);
    g = &parsed(t)->gemm;
    assert_true(g->alpha == 0.5f && g->beta == 2.0f);
    assert_true(g->trans_a);
    assert_true(g->trans_b);
    kt_op_free(t);
    t = node("Gemm", 13, 2, 1);
    kt_op_attr_float(t, "transB", 1.0f);
    refused(t, "transB", "a float");
}

/* ---------------------------------------------------------------- elementwise */

static void test_params_activations(void **state)
{
    (void)state;
    static const struct {
        const char *op;
        int opset;
        float alpha, beta, gamma; /* the defaults */
    } dflt[] = {
        {"LeakyRelu", 16, 0.01f, 0, 0},
        {"HardSigmoid", 22, 0.2f, 0.5f, 0},
        {"Elu", 22, 1.0f, 0, 0},
        {"Selu", 22, 1.67326319217681884765625f, 0, 1.05070102214813232421875f},
        {"Celu", 12, 1.0f, 0, 0},
        {"ThresholdedRelu", 22, 1.0f, 0, 0},
    };
    for (size_t i = 0; i < sizeof dflt / sizeof dflt[0]; i++) {
        kt_op *t = node(dflt[i].op, dflt[i].opset, 1, 1);
        const kiln_act_params *a = &parsed(t)->act;
        if (a->alpha != dflt[i].alpha || a->beta != dflt[i].beta || a->gamma != dflt[i].gamma)
            fail_msg("%s: %g %g %g", dflt[i].op, a->alpha, a->beta, a->gamma);
        kt_op_free(t);
    }
    kt_op *t = node("HardSigmoid", 22, 1, 1);
    kt_op_attr_float(t, "alpha", 0.25f);
    kt_op_attr_float(t, "beta", 0.125f);
    const kiln_act_params *a = &parsed(t)->act;
    assert_true(a->alpha == 0.25f && a->beta == 0.125f);
    kt_op_free(t);
    t = node("Selu", 22, 1, 1);
    kt_op_attr_float(t, "alpha", 2.0f);
    kt_op_attr_float(t, "gamma", 3.0f);
    a = &parsed(t)->act;
    assert_true(a->alpha == 2.0f && a->gamma == 3.0f);
    kt_op_free(t);
    t = node("LeakyRelu", 16, 1, 1);
    kt_op_attr_float(t, "alpha", 0.1f);
    assert_true(parsed(t)->act.alpha == 0.1f);
    kt_op_free(t);

    t = node("Celu", 12, 1, 1);
    kt_op_attr_float(t, "alpha", 0.0f);
    refused(t, "alpha", "0");
    t = node("Elu", 22, 1, 1);
    kt_op_attr_ints(t, "alpha", 1, D(1));
    refused(t, "alpha", "a list of ints");

    t = node("Gelu", 20, 1, 1);
    assert_int_equal(parsed(t)->gelu.approximate, KILN_GELU_NONE);
    kt_op_free(t);
    t = node("Gelu", 20, 1, 1);
    kt_op_attr_string(t, "approximate", "tanh");
    assert_int_equal(parsed(t)->gelu.approximate, KILN_GELU_TANH);
    kt_op_free(t);
    t = node("Gelu", 20, 1, 1);
    kt_op_attr_string(t, "approximate", "sigmoid");
    refused(t, "approximate", "sigmoid");
}

static void test_params_cast_mod_dropout(void **state)
{
    (void)state;
    kt_op *t = node("Cast", 19, 1, 1);
    kt_op_attr_int(t, "to", KILN_F16);
    const kiln_cast_params *c = &parsed(t)->cast;
    assert_int_equal(c->to, KILN_F16);
    assert_true(c->saturate);
    kt_op_free(t);
    t = node("Cast", 19, 1, 1);
    kt_op_attr_int(t, "to", KILN_F8E4M3);
    kt_op_attr_int(t, "saturate", 0);
    c = &parsed(t)->cast;
    assert_int_equal(c->to, KILN_F8E4M3);
    assert_false(c->saturate);
    kt_op_free(t);
    refused(node("Cast", 19, 1, 1), "'to'", "required");
    t = node("Cast", 19, 1, 1);
    kt_op_attr_int(t, "to", 40);
    refused(t, "'to'", "40");
    t = node("Cast", 19, 1, 1);
    kt_op_attr_string(t, "to", "float");
    refused(t, "'to'", "a string");

    t = node("Mod", 13, 2, 1);
    assert_false(parsed(t)->mod.fmod);
    kt_op_free(t);
    t = node("Mod", 13, 2, 1);
    kt_op_attr_int(t, "fmod", 1);
    assert_true(parsed(t)->mod.fmod);
    kt_op_free(t);
    t = node("Mod", 13, 2, 1);
    kt_op_attr_int(t, "fmod", 2);
    refused(t, "fmod", "2");

    t = node("Dropout", 13, 1, 1);
    assert_false(parsed(t)->dropout.has_seed);
    kt_op_free(t);
    t = node("Dropout", 13, 1, 1);
    kt_op_attr_int(t, "seed", 42);
    const kiln_dropout_params *d = &parsed(t)->dropout;
    assert_true(d->has_seed);
    assert_int_equal(d->seed, 42);
    kt_op_free(t);
    t = node("Dropout", 13, 1, 1);
    kt_op_attr_float(t, "seed", 4.5f);
    refused(t, "seed", "a float");
}

/* ---------------------------------------------------------------- tensor ops */

static void test_params_axis_ops(void **state)
{
    (void)state;
    static const struct {
        const char *op;
        int opset, n_in;
        int64_t dflt;
    } ops[] = {
        {"Flatten", 13, 1, 1}, {"Gather", 13, 2, 0}, {"GatherElements", 13, 2, 0}, {"OneHot", 11, 3, -1},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        kt_op *t = node(ops[i].op, ops[i].opset, ops[i].n_in, 1);
        assert_int_equal(parsed(t)->axis.axis, ops[i].dflt);
        kt_op_free(t);
        t = node(ops[i].op, ops[i].opset, ops[i].n_in, 1);
        kt_op_attr_int(t, "axis", -2);
        assert_int_equal(parsed(t)->axis.axis, -2);
        kt_op_free(t);
        t = node(ops[i].op, ops[i].opset, ops[i].n_in, 1);
        kt_op_attr_string(t, "axis", "last");
        refused(t, "axis", "a string");
    }

    /* Concat's axis is required */
    kt_op *t = node("Concat", 13, 2, 1);
    kt_op_attr_int(t, "axis", 3);
    assert_int_equal(parsed(t)->axis.axis, 3);
    kt_op_free(t);
    refused(node("Concat", 13, 2, 1), "axis", "required");

    t = node("Split", 18, 1, 2);
    kt_op_attr_int(t, "axis", 1);
    kt_op_attr_int(t, "num_outputs", 2);
    const kiln_split_params *s = &parsed(t)->split;
    assert_int_equal(s->axis, 1);
    assert_int_equal(s->num_outputs, 2);
    kt_op_free(t);
    t = node("Split", 13, 1, 2); /* Split-13 has no num_outputs */
    kt_op_attr_int(t, "num_outputs", 2);
    s = &parsed(t)->split;
    assert_int_equal(s->axis, 0);
    assert_int_equal(s->num_outputs, 0);
    kt_op_free(t);
    t = node("Split", 18, 1, 2);
    kt_op_attr_int(t, "num_outputs", 0);
    refused(t, "num_outputs", "0");
}

static void test_params_tensor(void **state)
{
    (void)state;
    kt_op *t = node("Reshape", 14, 2, 1);
    kt_op_attr_int(t, "allowzero", 1);
    assert_true(parsed(t)->reshape.allowzero);
    kt_op_free(t);
    t = node("Reshape", 13, 2, 1); /* before 14: no allowzero */
    kt_op_attr_int(t, "allowzero", 1);
    assert_false(parsed(t)->reshape.allowzero);
    kt_op_free(t);

    t = node("Transpose", 13, 1, 1);
    kt_op_attr_ints(t, "perm", 3, D(2, 0, 1));
    const kiln_transpose_params *p = &parsed(t)->transpose;
    assert_true(p->has_perm);
    assert_int_equal(p->n_perm, 3);
    assert_ints(p->perm, 3, D(2, 0, 1));
    kt_op_free(t);
    t = node("Transpose", 13, 1, 1);
    p = &parsed(t)->transpose;
    assert_false(p->has_perm);
    assert_int_equal(p->n_perm, 0);
    kt_op_free(t);
    t = node("Transpose", 13, 1, 1);
    kt_op_attr_ints(t, "perm", 9, D(0, 1, 2, 3, 4, 5, 6, 7, 8));
    refused(t, "perm", "9");

    t = node("Shape", 15, 1, 1);
    kt_op_attr_int(t, "start", 1);
    kt_op_attr_int(t, "end", -1);
    const kiln_shape_params *sh = &parsed(t)->shape;
    assert_int_equal(sh->start, 1);
    assert_true(sh->has_end);
    assert_int_equal(sh->end, -1);
    kt_op_free(t);
    t = node("Shape", 13, 1, 1); /* before 15: start and end are not read */
    kt_op_attr_int(t, "start", 1);
    sh = &parsed(t)->shape;
    assert_int_equal(sh->start, 0);
    assert_false(sh->has_end);
    kt_op_free(t);
    t = node("Shape", 15, 1, 1);
    kt_op_attr_float(t, "end", 2.0f);
    refused(t, "end", "a float");
}

static void test_params_constant(void **state)
{
    (void)state;
    kt_op *t = node("Constant", 13, 0, 1);
    const float f4[] = {1, 2, 3, 4};
    attr_tensor(t, "value", KILN_F32, 2, D(2, 2), f4);
    const kiln_constant_params *c = &parsed(t)->constant;
    assert_int_equal(c->kind, KILN_CONSTANT_TENSOR);
    assert_ptr_equal(c->tensor, t->node->attrs[0].t);
    kt_op_free(t);

    t = node("Constant", 13, 0, 1);
    kt_op_attr_float(t, "value_float", 2.5f);
    c = &parsed(t)->constant;
    assert_int_equal(c->kind, KILN_CONSTANT_FLOAT);
    assert_true(c->f == 2.5f);
    kt_op_free(t);
    t = node("Constant", 13, 0, 1);
    kt_op_attr_int(t, "value_int", -7);
    c = &parsed(t)->constant;
    assert_int_equal(c->kind, KILN_CONSTANT_INT);
    assert_int_equal(c->i, -7);
    kt_op_free(t);
    t = node("Constant", 13, 0, 1);
    kt_op_attr_ints(t, "value_ints", 3, D(4, 5, 6));
    c = &parsed(t)->constant;
    assert_int_equal(c->kind, KILN_CONSTANT_INTS);
    assert_int_equal(c->n, 3);
    assert_ints(c->ints, 3, D(4, 5, 6));
    kt_op_free(t);
    t = node("Constant", 13, 0, 1);
    kt_op_attr_floats(t, "value_floats", 2, (const float[]){0.5f, -1.0f});
    c = &parsed(t)->constant;
    assert_int_equal(c->kind, KILN_CONSTANT_FLOATS);
    assert_int_equal(c->n, 2);
    assert_true(c->floats[0] == 0.5f && c->floats[1] == -1.0f);
    kt_op_free(t);

    t = node("Constant", 13, 0, 1);
    kt_op_attr_string(t, "value_string", "hello");
    refused(t, "value_string", NULL);
    t = node("Constant", 13, 0, 1);
    kt_op_attr_int(t, "value", 3);
    refused(t, "'value'", "not a tensor");
    t = node("Constant", 13, 0, 1);
    kt_op_attr_ints(t, "value_floats", 1, D(1));
    refused(t, "value_floats", "floats");
    refused(node("Constant", 13, 0, 1), "value", NULL);

    t = node("ConstantOfShape", 20, 1, 1);
    assert_null(parsed(t)->constant_of_shape.value);
    kt_op_free(t);
    t = node("ConstantOfShape", 20, 1, 1);
    const int32_t one[] = {7};
    attr_tensor(t, "value", KILN_I32, 1, D(1), one);
    const kiln_value *v = parsed(t)->constant_of_shape.value;
    assert_non_null(v);
    assert_int_equal(v->dtype, KILN_I32);
    assert_int_equal(*(const int32_t *)v->data, 7);
    kt_op_free(t);
    t = node("ConstantOfShape", 20, 1, 1);
    attr_tensor(t, "value", KILN_F32, 1, D(4), f4);
    refused(t, "value", "one-element");
}

/* ---------------------------------------------------------------- index family */

static void test_params_index(void **state)
{
    (void)state;
    kt_op *t = node("Einsum", 12, 2, 1);
    kt_op_attr_string(t, "equation", "ij, jk -> ik");
    const char *eq = parsed(t)->einsum.equation;
    assert_string_equal(eq, "ij, jk -> ik");
    kiln_einsum_term in[KILN_EINSUM_MAX_IN], out;
    bool explicit_out;
    assert_kiln_ok(kiln_einsum_terms(eq, 2, in, &out, &explicit_out));
    assert_true(explicit_out);
    assert_int_equal(in[0].n, 2);
    assert_int_equal(in[1].lab[1], 'k');
    assert_int_equal(out.n, 2);
    assert_int_equal(out.lab[0], 'i');
    assert_int_equal(out.lab[1], 'k');
    kt_op_free(t);
    refused(node("Einsum", 12, 2, 1), "equation", "required");
    t = node("Einsum", 12, 2, 1);
    kt_op_attr_string(t, "equation", "ij,jk,kl->il"); /* three terms, two inputs */
    refused(t, "equation", "more terms");
    t = node("Einsum", 12, 1, 1);
    kt_op_attr_string(t, "equation", "i#->i");
    refused(t, "equation", "'#'");

    t = node("GatherND", 12, 2, 1);
    kt_op_attr_int(t, "batch_dims", 1);
    assert_int_equal(parsed(t)->gathernd.batch_dims, 1);
    kt_op_free(t);
    t = node("GatherND", 11, 2, 1); /* GatherND-11 has no batch_dims */
    kt_op_attr_int(t, "batch_dims", 1);
    assert_int_equal(parsed(t)->gathernd.batch_dims, 0);
    kt_op_free(t);

    t = node("ScatterND", 18, 3, 1);
    kt_op_attr_string(t, "reduction", "min");
    assert_int_equal(parsed(t)->scatternd.reduction, KILN_RED_MIN);
    kt_op_free(t);
    t = node("ScatterND", 16, 3, 1);
    assert_int_equal(parsed(t)->scatternd.reduction, KILN_RED_NONE);
    kt_op_free(t);
    t = node("ScatterND", 13, 3, 1); /* no reduction before 16 */
    kt_op_attr_string(t, "reduction", "add");
    assert_int_equal(parsed(t)->scatternd.reduction, KILN_RED_NONE);
    kt_op_free(t);
    t = node("ScatterND", 16, 3, 1);
    kt_op_attr_string(t, "reduction", "max");
    refused(t, "reduction", "ScatterND-18");
    t = node("ScatterND", 18, 3, 1);
    kt_op_attr_string(t, "reduction", "sum");
    refused(t, "reduction", "'sum'");

    t = node("Trilu", 14, 1, 1);
    assert_true(parsed(t)->trilu.upper);
    kt_op_free(t);
    t = node("Trilu", 14, 1, 1);
    kt_op_attr_int(t, "upper", 0);
    assert_false(parsed(t)->trilu.upper);
    kt_op_free(t);

    t = node("DepthToSpace", 13, 1, 1);
    kt_op_attr_int(t, "blocksize", 2);
    kt_op_attr_string(t, "mode", "CRD");
    const kiln_block_params *b = &parsed(t)->block;
    assert_int_equal(b->blocksize, 2);
    assert_true(b->crd);
    kt_op_free(t);
    t = node("DepthToSpace", 13, 1, 1);
    kt_op_attr_int(t, "blocksize", 3);
    b = &parsed(t)->block;
    assert_int_equal(b->blocksize, 3);
    assert_false(b->crd); /* DCR by default */
    kt_op_free(t);
    t = node("DepthToSpace", 9, 1, 1); /* DepthToSpace-1 is DCR only */
    kt_op_attr_int(t, "blocksize", 2);
    kt_op_attr_string(t, "mode", "CRD");
    assert_false(parsed(t)->block.crd);
    kt_op_free(t);
    t = node("SpaceToDepth", 13, 1, 1);
    kt_op_attr_int(t, "blocksize", 4);
    assert_int_equal(parsed(t)->block.blocksize, 4);
    kt_op_free(t);
    refused(node("SpaceToDepth", 13, 1, 1), "blocksize", "required");
    t = node("SpaceToDepth", 13, 1, 1);
    kt_op_attr_int(t, "blocksize", 0);
    refused(t, "blocksize", "0");
    t = node("DepthToSpace", 13, 1, 1);
    kt_op_attr_int(t, "blocksize", 2);
    kt_op_attr_string(t, "mode", "DRC");
    refused(t, "mode", "DRC");
}

/* ---------------------------------------------------------------- normalizations, CumSum */

static void test_params_norm(void **state)
{
    (void)state;
    kt_op *t = node("LRN", 13, 1, 1);
    kt_op_attr_int(t, "size", 3);
    const kiln_lrn_params *l = &parsed(t)->lrn;
    assert_int_equal(l->size, 3);
    assert_true(l->alpha == 0.0001f && l->beta == 0.75f && l->bias == 1.0f);
    kt_op_free(t);
    t = node("LRN", 13, 1, 1);
    kt_op_attr_int(t, "size", 5);
    kt_op_attr_float(t, "alpha", 0.5f);
    kt_op_attr_float(t, "beta", 2.0f);
    kt_op_attr_float(t, "bias", 3.0f);
    l = &parsed(t)->lrn;
    assert_true(l->alpha == 0.5f && l->beta == 2.0f && l->bias == 3.0f);
    kt_op_free(t);
    refused(node("LRN", 13, 1, 1), "size", "required");
    t = node("LRN", 13, 1, 1);
    kt_op_attr_int(t, "size", 0);
    refused(t, "size", "0");

    t = node("InstanceNormalization", 22, 3, 1);
    assert_true(parsed(t)->norm.epsilon == 1e-5f);
    kt_op_free(t);
    t = node("InstanceNormalization", 22, 3, 1);
    kt_op_attr_float(t, "epsilon", 0.25f);
    assert_true(parsed(t)->norm.epsilon == 0.25f);
    kt_op_free(t);

    t = node("GroupNormalization", 21, 3, 1);
    kt_op_attr_int(t, "num_groups", 2);
    kt_op_attr_float(t, "epsilon", 0.5f);
    kt_op_attr_int(t, "stash_type", KILN_F64);
    const kiln_norm_params *g = &parsed(t)->norm;
    assert_int_equal(g->num_groups, 2);
    assert_true(g->epsilon == 0.5f);
    assert_int_equal(g->stash_type, KILN_F64);
    kt_op_free(t);
    t = node("GroupNormalization", 21, 3, 1);
    kt_op_attr_int(t, "num_groups", 4);
    g = &parsed(t)->norm;
    assert_true(g->epsilon == 1e-5f);
    assert_int_equal(g->stash_type, KILN_F32);
    kt_op_free(t);
    refused(node("GroupNormalization", 21, 3, 1), "num_groups", "required");
    t = node("GroupNormalization", 21, 3, 1);
    kt_op_attr_int(t, "num_groups", 0);
    refused(t, "num_groups", "0");
    t = node("GroupNormalization", 21, 3, 1);
    kt_op_attr_int(t, "num_groups", 2);
    kt_op_attr_int(t, "stash_type", 7);
    refused(t, "stash_type", "7");

    t = node("CumSum", 14, 2, 1);
    const kiln_cumsum_params *c = &parsed(t)->cumsum;
    assert_false(c->exclusive);
    assert_false(c->reverse);
    kt_op_free(t);
    t = node("CumSum", 14, 2, 1);
    kt_op_attr_int(t, "exclusive", 1);
    kt_op_attr_int(t, "reverse", 1);
    c = &parsed(t)->cumsum;
    assert_true(c->exclusive);
    assert_true(c->reverse);
    kt_op_free(t);
    t = node("CumSum", 14, 2, 1);
    kt_op_attr_string(t, "reverse", "yes");
    refused(t, "reverse", "a string");
}

/* Every op that has attributes kiln reads parses them: no row of the op
 * table with attributes is left PA_N by mistake. */
static void test_params_table(void **state)
{
    (void)state;
    static const char *const with_params[] = {
        "Conv", "ConvTranspose", "BatchNormalization", "Gemm", "MaxPool", "AveragePool", "LeakyRelu", "HardSigmoid",
        "Gelu", "Cast", "Dropout", "Softmax", "LogSoftmax", "LayerNormalization", "ReduceMean", "ReduceSum",
        "ReduceMax", "ReduceMin", "ArgMax", "TopK", "Flatten", "Reshape", "Transpose", "Concat", "Split", "Gather",
        "GatherElements", "Pad", "Resize", "Shape", "Constant", "ConstantOfShape", "Einsum", "GatherND", "ScatterND",
        "Trilu", "DepthToSpace", "SpaceToDepth", "OneHot", "Mod", "Elu", "Selu", "Celu", "ThresholdedRelu", "LRN",
        "InstanceNormalization", "GroupNormalization", "CumSum",
    };
    for (size_t i = 0; i < sizeof with_params / sizeof with_params[0]; i++) {
        const kiln_op_def *op = kiln_op_find("", with_params[i]);
        assert_non_null(op);
        if (!op->params) fail_msg("%s has no parameter parser", with_params[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_conv),
        cmocka_unit_test(test_params_batchnorm_gemm),
        cmocka_unit_test(test_params_activations),
        cmocka_unit_test(test_params_cast_mod_dropout),
        cmocka_unit_test(test_params_axis_ops),
        cmocka_unit_test(test_params_tensor),
        cmocka_unit_test(test_params_constant),
        cmocka_unit_test(test_params_index),
        cmocka_unit_test(test_params_norm),
        cmocka_unit_test(test_params_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
