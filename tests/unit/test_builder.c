/* The builder's decisions, checked without a GPU: lowering of the
 * generated zoo blocks (what fuses into what, where layouts change), the
 * memory plan (no two live tensors share bytes; planning saves memory),
 * the profile, and the program's round trip through its plan section,
 * including refusal of a corrupted one. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builder/program.h"
#include "ir/model.h"
#include "plan/plan.h"

/* The kernels a cuda build has, as the lowering sees them (what matters
 * here is which exist and which take any strides). */
static unsigned fake_flags(const char *op, bool *exists)
{
    static const char *const strided[] = {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Resize",
                                          "Concat", "Split", "Slice", "Pad", "Where", "Cast", "Equal"};
    static const char *const dense[] = {"Gemm", "MatMul", "Softmax", "Transpose", "Gather", "Reshape", "Flatten",
                                        "Conv", "ConstantOfShape", "Expand", "Range", "ReduceMean", "TopK",
                                        "LayerNormalization"};
    *exists = true;
    for (size_t i = 0; i < sizeof strided / sizeof strided[0]; i++)
        if (!strcmp(op, strided[i])) return KB_OP_STRIDED;
    for (size_t i = 0; i < sizeof dense / sizeof dense[0]; i++)
        if (!strcmp(op, dense[i])) return 0;
    *exists = false;
    return 0;
}

/* kb_lower of a generated model with the fake kernel table; *keep owns the
 * graph the program points into. */
static kiln_status lower_status(const char *name, kiln_precision prec, const char *profile, kiln_model **keep,
                                kb_program **p)
{
    char *path = kt_model(name);
    assert_non_null(path);
    kiln_model *m;
    assert_kiln_ok(kiln_model_load(path, &m));
    free(path);
    kiln_build_options o;
    kiln_build_options_init(&o);
    o.precision = prec;
    o.profile = profile;
    *p = NULL;
    *keep = m;
    return kb_lower(m->ref->g, &o, fake_flags, p);
}

static kb_program *lower(const char *name, kiln_precision prec, const char *profile, kiln_model **keep)
{
    kb_program *p;
    if (lower_status(name, prec, profile, keep, &p) != KILN_OK) fail_msg("kb_lower(%s): %s", name, kiln_last_error());
    return p;
}

static int count_kind(const kb_program *p, int kind)
{
    int n = 0;
    for (int i = 0; i < p->n_steps; i++) n += p->steps[i].kind == kind;
    return n;
}

static void test_resnet_block_fuses(void **state)
{
    (void)state;
    kiln_model *m;
    kb_program *p = lower("zoo_resnet_bottleneck.onnx", KILN_PRECISION_FP16, NULL, &m);
    const kiln_graph *g = m->ref->g;
    int convs = 0;
    for (int i = 0; i < g->n_nodes; i++) convs += !strcmp(g->nodes[i].op_type, "Conv");
    /* every Conv is one step with its BatchNormalization, residual Add and
     * Relu folded in: no elementwise step is left */
    assert_int_equal(count_kind(p, KB_STEP_CONV), convs);
    assert_int_equal(count_kind(p, KB_STEP_EW), 0);
    int with_residual = 0, relu = 0;
    for (int i = 0; i < p->n_steps; i++) {
        const kb_step *s = &p->steps[i];
        if (s->kind != KB_STEP_CONV) continue;
        with_residual += s->in[3] >= 0;
        relu += s->act == KC_ACT_RELU;
        /* fp16 convs run NHWC in f16 */
        assert_int_equal(p->tensors[s->out[0]].layout, KB_NHWC);
        assert_int_equal(p->tensors[s->out[0]].dt, KILN_F16);
    }
    assert_int_equal(with_residual, 1);
    assert_true(relu >= 3);
    /* layout changes only at the edges: the input in, the output out */
    assert_int_equal(count_kind(p, KB_STEP_COPY), 2);
    assert_int_equal(kb_plan_check(p), 0);
    assert_true(p->arena_bytes < p->naive_bytes);
    /* the default profile: batch 1..32 */
    assert_int_equal(p->prof_min[0], 1);
    assert_int_equal(p->prof_max[0], 32);
    kb_program_free(p);
    kiln_model_destroy(m);
}

static void test_fp32_stays_nchw(void **state)
{
    (void)state;
    kiln_model *m;
    kb_program *p = lower("zoo_resnet_bottleneck.onnx", KILN_PRECISION_FP32, NULL, &m);
    for (int i = 0; i < p->n_tensors; i++) assert_int_equal(p->tensors[i].layout, KB_NCHW);
    /* f32 in, f32 out, same layout: no conversion at all */
    assert_int_equal(count_kind(p, KB_STEP_COPY), 0);
    kb_program_free(p);
    kiln_model_destroy(m);
}

static void test_silu_and_chains(void **state)
{
    (void)state;
    kiln_model *m;
    kb_program *p = lower("zoo_mobilenetv3_block.onnx", KILN_PRECISION_FP16, NULL, &m);
    const kiln_graph *g = m->ref->g;
    /* HardSwish/Relu ride on their convs; the squeeze-excite gate (Mul) and
     * the residual Add stay elementwise programs, fewer steps than nodes */
    int dev = 0;
    for (int i = 0; i < g->n_nodes; i++) dev += p->node_class[i] == KB_NODE_DEVICE;
    assert_true(p->n_steps < dev);
    for (int i = 0; i < p->n_steps; i++)
        if (p->steps[i].kind == KB_STEP_EW) assert_true(p->steps[i].prog.n_ins >= 2);
    assert_int_equal(kb_plan_check(p), 0);
    kb_program_free(p);
    kiln_model_destroy(m);
}

static void test_profile_errors(void **state)
{
    (void)state;
    char *path = kt_model("zoo_resnet_bottleneck.onnx");
    kiln_model *m;
    assert_kiln_ok(kiln_model_load(path, &m));
    free(path);
    kiln_build_options o;
    kiln_build_options_init(&o);
    kb_program *p = NULL;
    o.profile = "min:x:4x16x16x16;max:x:2x16x16x16";
    assert_int_equal(kb_lower(m->ref->g, &o, fake_flags, &p), KILN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(kiln_last_error(), "min <= opt <= max"));
    o.profile = "max:nope:2x16x16x16";
    assert_int_equal(kb_lower(m->ref->g, &o, fake_flags, &p), KILN_ERR_NOT_FOUND);
    assert_non_null(strstr(kiln_last_error(), "'nope'"));
    o.profile = "max:x:2x15x16x16";
    assert_int_equal(kb_lower(m->ref->g, &o, fake_flags, &p), KILN_ERR_SHAPE);
    assert_non_null(strstr(kiln_last_error(), "fixed to 16"));
    o.profile = "min:x:2x16x16x16;max:x:8x16x16x16";
    assert_kiln_ok(kb_lower(m->ref->g, &o, fake_flags, &p));
    assert_int_equal(p->prof_min[0], 2);
    assert_int_equal(p->prof_opt[0], 2);
    assert_int_equal(p->prof_max[0], 8);
    kb_program_free(p);
    kiln_model_destroy(m);
}

/* A tensor of a dtype the device does not hold is refused at lowering, by
 * node and tensor name, as unsupported (not a failure at the first run). */
static void test_device_dtypes(void **state)
{
    (void)state;
    kiln_model *m;
    kb_program *p;
    assert_int_equal(lower_status("cast_f64.onnx", KILN_PRECISION_FP32, NULL, &m, &p), KILN_ERR_UNSUPPORTED);
    assert_null(p);
    assert_non_null(strstr(kiln_last_error(), "node 'to_f32' (Cast): tensor 'x' is f64"));
    assert_non_null(strstr(kiln_last_error(), "not supported by the cuda backend"));
    kiln_model_destroy(m);
}

static void test_program_round_trip(void **state)
{
    (void)state;
    kiln_model *m;
    kb_program *p = lower("zoo_yolov8_detect_head.onnx", KILN_PRECISION_FP16, NULL, &m);
    const kiln_graph *g = m->ref->g;
    kiln_bytes b = {0};
    kb_program_serialize(p, &b);
    assert_false(b.failed);
    kb_program *q = NULL;
    assert_kiln_ok(kb_program_deserialize(g, b.p, b.len, p->weights, p->weight_bytes, "test", &q));
    assert_int_equal(q->n_steps, p->n_steps);
    assert_int_equal(q->n_tensors, p->n_tensors);
    assert_true(q->arena_bytes == p->arena_bytes);
    assert_memory_equal(q->weights, p->weights, p->weight_bytes);
    for (int i = 0; i < p->n_steps; i++) {
        assert_int_equal(q->steps[i].kind, p->steps[i].kind);
        assert_int_equal(q->steps[i].n_in, p->steps[i].n_in);
        assert_memory_equal(&q->steps[i].prog, &p->steps[i].prog, sizeof p->steps[i].prog);
    }
    kb_program_free(q);
    /* cut short, or a tensor index out of range: refused, never read */
    assert_int_equal(kb_program_deserialize(g, b.p, b.len - 7, p->weights, p->weight_bytes, "test", &q),
                     KILN_ERR_FORMAT);
    assert_non_null(strstr(kiln_last_error(), "rebuild the plan"));
    /* the first step's first input index lives after the tensor table */
    uint8_t *bad = malloc(b.len);
    memcpy(bad, b.p, b.len);
    size_t off = 24 + (size_t)p->n_inputs * KILN_MAX_RANK * 24 + 4 + (size_t)p->n_tensors * (4 * 2 + 8 * 8 + 4 * 8 + 8 * 2 + 4 * 2) +
                 4 + 4 * 3;
    bad[off] = 0xff;
    bad[off + 1] = 0xff;
    bad[off + 2] = 0x00;
    bad[off + 3] = 0x70;
    assert_int_equal(kb_program_deserialize(g, bad, b.len, p->weights, p->weight_bytes, "test", &q), KILN_ERR_FORMAT);
    free(bad);
    free(b.p);
    /* the report names steps, kernels and the memory plan */
    kiln_sbuf r = {0};
    kb_program_report(g, p, false, &r);
    assert_non_null(strstr(r.data, "planned into"));
    free(r.data);
    kb_program_free(p);
    kiln_model_destroy(m);
}

static int count_concat_steps(const kiln_graph *g, const kb_program *p)
{
    int n = 0;
    for (int i = 0; i < p->n_steps; i++)
        n += p->steps[i].kind == KB_STEP_OP && !strcmp(g->nodes[p->steps[i].node].op_type, "Concat");
    return n;
}

/* Concat inputs written in place: the producers (convs, Split, pools,
 * Resize) write into the concat's output, the Concat step is gone, and the
 * output is complete before anything reads it. */
static void test_concat_in_place(void **state)
{
    (void)state;
    static const char *const models[] = {"zoo_yolov8_c2f.onnx", "zoo_yolov8_sppf.onnx", "zoo_yolov8_neck.onnx"};
    for (int mi = 0; mi < 3; mi++) {
        for (int prec = 0; prec < 2; prec++) {
            kiln_model *m;
            kb_program *p = lower(models[mi], prec ? KILN_PRECISION_FP32 : KILN_PRECISION_FP16, NULL, &m);
            const kiln_graph *g = m->ref->g;
            int concats = 0;
            for (int i = 0; i < g->n_nodes; i++) concats += !strcmp(g->nodes[i].op_type, "Concat");
            assert_true(concats > 0);
            int slices = 0;
            for (int t = 0; t < p->n_tensors; t++) {
                const kb_tensor *x = &p->tensors[t];
                if (x->storage != KB_SLICE) continue;
                slices++;
                const kb_tensor *y = &p->tensors[x->alias];
                assert_int_equal(y->storage, KB_ARENA);
                assert_int_equal(x->dt, y->dt);
                assert_int_equal(x->layout, y->layout);
                assert_string_equal(g->nodes[x->slice_node].op_type, "Concat");
                assert_int_equal(g->nodes[x->slice_node].inputs[x->slice_input], x->value);
                /* written by exactly one step, before any step reads the output */
                int writer = -1, first_read = p->n_steps;
                for (int s = 0; s < p->n_steps; s++) {
                    const kb_step *st = &p->steps[s];
                    for (int i = 0; i < st->n_out; i++) {
                        if (st->out[i] == t) {
                            assert_int_equal(writer, -1);
                            writer = s;
                        }
                        assert_int_not_equal(st->out[i], x->alias); /* only slices write the output */
                    }
                    for (int i = 0; i < st->n_in; i++)
                        if (st->in[i] == x->alias && s < first_read) first_read = s;
                }
                assert_true(writer >= 0 && writer < first_read);
            }
            /* every concat of these blocks is placed */
            assert_true(slices > 0);
            assert_int_equal(count_concat_steps(g, p), 0);
            assert_int_equal(kb_plan_check(p), 0);
            /* slices round-trip; one naming a node that is not its Concat is refused */
            kiln_bytes b = {0};
            kb_program_serialize(p, &b);
            kb_program *q = NULL;
            assert_kiln_ok(kb_program_deserialize(g, b.p, b.len, p->weights, p->weight_bytes, "test", &q));
            for (int t = 0; t < p->n_tensors; t++) {
                assert_int_equal(q->tensors[t].storage, p->tensors[t].storage);
                assert_int_equal(q->tensors[t].slice_input, p->tensors[t].slice_input);
            }
            kb_program_free(q);
            free(b.p);
            for (int t = 0; t < p->n_tensors; t++)
                if (p->tensors[t].storage == KB_SLICE) {
                    p->tensors[t].slice_input ^= 1;
                    memset(&b, 0, sizeof b);
                    kb_program_serialize(p, &b);
                    assert_int_equal(kb_program_deserialize(g, b.p, b.len, p->weights, p->weight_bytes, "test", &q),
                                     KILN_ERR_FORMAT);
                    assert_non_null(strstr(kiln_last_error(), "concat slice"));
                    free(b.p);
                    p->tensors[t].slice_input ^= 1;
                    break;
                }
            kiln_sbuf r = {0};
            kb_program_report(g, p, false, &r);
            assert_non_null(strstr(r.data, "written in place"));
            if (getenv("KT_SHOW")) printf("%s", r.data);
            free(r.data);
            kb_program_free(p);
            kiln_model_destroy(m);
        }
    }
    /* KILN_CONCAT_PLACE=0 keeps the Concat kernels */
    setenv("KILN_CONCAT_PLACE", "0", 1);
    kiln_model *m;
    kb_program *p = lower("zoo_yolov8_c2f.onnx", KILN_PRECISION_FP16, NULL, &m);
    for (int t = 0; t < p->n_tensors; t++) assert_int_not_equal(p->tensors[t].storage, KB_SLICE);
    assert_true(count_concat_steps(m->ref->g, p) > 0);
    unsetenv("KILN_CONCAT_PLACE");
    kb_program_free(p);
    kiln_model_destroy(m);
}

/* What a cuda plan need not carry as ONNX data: conv weights (their
 * pre-transformed copy is in the device weights), not the weights of op
 * kernels such as MatMul that may read constants on the host. */
static void test_plan_drops(void **state)
{
    (void)state;
    kiln_model *m;
    kb_program *p = lower("zoo_resnet_bottleneck.onnx", KILN_PRECISION_FP16, NULL, &m);
    const kiln_graph *g = m->ref->g;
    uint8_t *drop = calloc((size_t)g->n_values + 1, 1);
    kb_program_drops(g, p, drop);
    int convs = 0;
    for (int n = 0; n < g->n_nodes; n++) {
        if (strcmp(g->nodes[n].op_type, "Conv")) continue;
        const kiln_value *w = &g->values[g->nodes[n].inputs[1]];
        if (kiln_value_bytes(w) <= 256) continue;
        assert_true(drop[g->nodes[n].inputs[1]]);
        convs++;
    }
    assert_true(convs >= 3);
    free(drop);
    kb_program_free(p);
    kiln_model_destroy(m);

    p = lower("zoo_transformer_encoder.onnx", KILN_PRECISION_FP16, NULL, &m);
    g = m->ref->g;
    drop = calloc((size_t)g->n_values + 1, 1);
    kb_program_drops(g, p, drop);
    int matmuls = 0;
    for (int n = 0; n < g->n_nodes; n++) {
        if (strcmp(g->nodes[n].op_type, "MatMul")) continue;
        for (int k = 0; k < 2; k++)
            if (g->values[g->nodes[n].inputs[k]].data) {
                assert_false(drop[g->nodes[n].inputs[k]]);
                matmuls++;
            }
    }
    assert_true(matmuls > 0);
    free(drop);
    kb_program_free(p);
    kiln_model_destroy(m);
}

int main(void)
{
    char *probe = kt_model("zoo_resnet_bottleneck.onnx");
    if (!probe) {
        printf("SKIPPED: the generated test models are missing (tests/models/gen.py)\n");
        return 77;
    }
    free(probe);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resnet_block_fuses), cmocka_unit_test(test_fp32_stays_nchw),
        cmocka_unit_test(test_silu_and_chains), cmocka_unit_test(test_profile_errors),
        cmocka_unit_test(test_program_round_trip),
        cmocka_unit_test(test_device_dtypes),
        cmocka_unit_test(test_concat_in_place),
        cmocka_unit_test(test_plan_drops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
