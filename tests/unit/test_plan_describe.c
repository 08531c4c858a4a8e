/* kiln_plan_describe (src/inspect/describe.c), the library side of `kiln
 * inspect PLAN`, checked without a GPU: a cuda plan is made here the way
 * kiln_engine_to_plan makes one (the builder lowers models/tinynet.onnx
 * with a fake kernel table, tactics of each cuDNN/cuBLASLt kind are set as
 * the tuner would, kb_program_serialize writes PROGRAM, the lowered device
 * weights are DWEIGHTS), then described: every step with the kernel words
 * of the build report, the profile, the sizes, valid JSON. Corrupt and
 * truncated plans, resealed or not, are refused naming the file, never
 * read out of bounds (the test runs under ASan in scripts/test). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builder/program.h"
#include "core/sha256.h"
#include "ir/model.h"
#include "inspect/inspect.h"

#define WHAT "described.plan"

/* The kernels a cuda build has, as lowering sees them (as in test_builder.c). */
static unsigned fake_flags(const char *op, bool *exists)
{
    static const char *const strided[] = {"MaxPool", "AveragePool", "GlobalAveragePool", "Resize", "Concat", "Slice"};
    static const char *const dense[] = {"Gemm", "MatMul", "Softmax", "Transpose", "Reshape", "Flatten", "Conv"};
    *exists = true;
    for (size_t i = 0; i < sizeof strided / sizeof strided[0]; i++)
        if (!strcmp(op, strided[i])) return KB_OP_STRIDED;
    for (size_t i = 0; i < sizeof dense / sizeof dense[0]; i++)
        if (!strcmp(op, dense[i])) return 0;
    *exists = false;
    return 0;
}

static void reseal(uint8_t *b, size_t n)
{
    memset(b + KILN_PLAN_OFF_SHA, 0, 32);
    uint8_t d[32];
    kiln_sha256(b, n, d);
    memcpy(b + KILN_PLAN_OFF_SHA, d, 32);
}

/* ---- a JSON checker: the grammar of RFC 8259, enough to refuse what a
 * describer could get wrong (a NaN, a stray comma, an unescaped byte) */
static const char *json_value(const char *s);

static const char *json_ws(const char *s)
{
    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') s++;
    return s;
}

static const char *json_string(const char *s)
{
    if (*s++ != '"') return NULL;
    for (; *s != '"'; s++) {
        if ((unsigned char)*s < 0x20) return NULL;
        if (*s == '\\') {
            s++;
            if (*s == 'u') {
                for (int k = 1; k <= 4; k++)
                    if (!strchr("0123456789abcdefABCDEF", s[k]) || !s[k]) return NULL;
                s += 4;
            } else if (!*s || !strchr("\"\\/bfnrt", *s))
                return NULL;
        }
    }
    return s + 1;
}

static const char *json_list(const char *s, char close, bool object)
{
    s = json_ws(s + 1);
    if (*s == close) return s + 1;
    for (;;) {
        if (object) {
            if (!(s = json_string(s))) return NULL;
            s = json_ws(s);
            if (*s++ != ':') return NULL;
        }
        if (!(s = json_value(s))) return NULL;
        s = json_ws(s);
        if (*s == close) return s + 1;
        if (*s++ != ',') return NULL;
        s = json_ws(s);
    }
}

static const char *json_value(const char *s)
{
    s = json_ws(s);
    if (*s == '{') return json_list(s, '}', true);
    if (*s == '[') return json_list(s, ']', false);
    if (*s == '"') return json_string(s);
    if (!strncmp(s, "true", 4) || !strncmp(s, "null", 4)) return s + 4;
    if (!strncmp(s, "false", 5)) return s + 5;
    const char *start = s;
    if (*s == '-') s++;
    if (*s < '0' || *s > '9') return NULL;
    while ((*s >= '0' && *s <= '9') || *s == '.' || *s == 'e' || *s == 'E' || *s == '+' || *s == '-') s++;
    return s > start ? s : NULL;
}

static bool json_valid(const char *s)
{
    const char *e = json_value(s);
    return e && !*json_ws(e);
}

/* ---- plans */

typedef struct made {
    kiln_model *m;  /* owns the graph */
    kb_program *p;
    uint8_t *bytes;
    size_t size;
} made;

/* A cuda fp16 plan of tinynet, as kiln_engine_to_plan writes one; with
 * program = false, without its PROGRAM and DWEIGHTS sections. */
static void make_cuda_plan(made *out, bool program)
{
    char *path = kt_path("../models/tinynet.onnx");
    assert_kiln_ok(kiln_model_load(path, &out->m));
    free(path);
    const kiln_graph *g = out->m->ref->g;
    kiln_build_options o;
    kiln_build_options_init(&o);
    o.precision = KILN_PRECISION_FP16;
    assert_kiln_ok(kb_lower(g, &o, fake_flags, &out->p));
    kb_program *p = out->p;
    /* what the tuner would have chosen: one conv of each API, then legacy */
    int conv = 0;
    for (int i = 0; i < p->n_steps; i++) {
        kb_step *s = &p->steps[i];
        s->ms = 0.01f * (float)(i + 1);
        if (s->kind != KB_STEP_CONV) continue;
        static const kc_conv_tactic t[] = {{1, 1, 1, 0}, {3, 2, 0x100, 17}, {0, 3, 0, 0}, {6, 0, 3, 0}};
        s->tactic = t[conv < 3 ? conv : 3];
        conv++;
    }
    assert_true(conv >= 4);
    p->cudnn_version = 90100;
    p->cublas_version = 120804;
    p->ws_bytes = 4096;

    kiln_plan_info info;
    memset(&info, 0, sizeof info);
    info.backend = KILN_BACKEND_CUDA;
    info.precision = KILN_PRECISION_FP16;
    info.workspace = 1 << 20;
    snprintf(info.id.model, sizeof info.id.model, "tinynet");
    snprintf(info.id.version, sizeof info.id.version, "83f2bd86");
    snprintf(info.id.precision, sizeof info.id.precision, "fp16");
    snprintf(info.id.arch, sizeof info.id.arch, "sm_90");
    snprintf(info.id.kiln_version, sizeof info.id.kiln_version, "%s", kiln_version_string());
    kiln_bytes gb = {0}, wb = {0}, pb = {0};
    uint8_t *drop = calloc((size_t)g->n_values + 1, 1);
    kb_program_drops(g, p, drop);
    kiln_graph_serialize_dropping(g, drop, &gb, &wb);
    free(drop);
    kb_program_serialize(p, &pb);
    assert_false(gb.failed || wb.failed || pb.failed);
    const kiln_bytes *secs[] = {&gb, &wb, &pb};
    const char *tags[] = {"GRAPH", "WEIGHTS", "PROGRAM", "DWEIGHTS"};
    info.n_sections = program ? 4 : 2;
    for (int i = 0; i < info.n_sections; i++) {
        snprintf(info.sections[i].tag, sizeof info.sections[i].tag, "%s", tags[i]);
        info.sections[i].data = i < 3 ? secs[i]->p : p->weights;
        info.sections[i].size = i < 3 ? secs[i]->len : p->weight_bytes;
    }
    assert_kiln_ok(kiln_plan_assemble(&info, &out->bytes, &out->size));
    free(gb.p);
    free(wb.p);
    free(pb.p);
}

static void made_free(made *m)
{
    free(m->bytes);
    kb_program_free(m->p);
    kiln_model_destroy(m->m);
}

static char *describe(const uint8_t *b, size_t n, unsigned flags)
{
    kiln_sbuf s = {0};
    assert_kiln_ok(kiln_plan_describe(b, n, WHAT, flags, &s));
    assert_non_null(s.data);
    return s.data;
}

static int count_lines_starting(const char *text, const char *prefix)
{
    int n = 0;
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        n += !strncmp(l, prefix, strlen(prefix));
    return n;
}

/* Every step as text and JSON: its kind, ops, nodes, dtype, layout and
 * kernel in the build report's words, the profile and the sizes. */
static void test_cuda_plan_described(void **state)
{
    (void)state;
    made m;
    make_cuda_plan(&m, true);
    const kiln_graph *g = m.m->ref->g;
    const kb_program *p = m.p;
    char *text = describe(m.bytes, m.size, 0);
    assert_non_null(strstr(text, "backend   cuda"));
    assert_non_null(strstr(text, "precision fp16"));
    assert_non_null(strstr(text, "arch      sm_90"));
    assert_non_null(strstr(text, "tinynet_83f2bd86_fp16_sm_90_"));
    assert_non_null(strstr(text, "cuDNN 90100 and cuBLASLt 120804"));
    /* the default profile: batch 1..32 */
    assert_non_null(strstr(text, "profile min 1x3x64x64 opt"));
    assert_non_null(strstr(text, "max 32x3x64x64"));
    char want[256];
    snprintf(want, sizeof want, "layers (%d program steps", p->n_steps);
    assert_non_null(strstr(text, want));
    /* one row per step, numbered */
    for (int i = 0; i < p->n_steps; i++) {
        snprintf(want, sizeof want, "\n  %-4d %-11s", i, (const char *[]){"op", "conv", "elementwise", "copy"}[p->steps[i].kind]);
        assert_non_null(strstr(text, want));
    }
    /* every node the GPU runs is named (those without a step below) */
    for (int n = 0; n < g->n_nodes; n++)
        if (p->node_class[n] == KB_NODE_DEVICE && !strstr(text, g->nodes[n].name))
            fail_msg("node '%s' not named", g->nodes[n].name);
    /* the kernels as kb_program_report words them (its step rows: kernel
     * from column 89 up to two spaces and the step's node) */
    kiln_sbuf r = {0};
    kb_program_report(g, p, false, &r);
    int rows = 0;
    for (char *l = strchr(r.data, '\n') + 1; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        int step;
        if (sscanf(l, "%d", &step) != 1) continue;
        char *end = strchr(l, '\n');
        assert_true(end - l > 89);
        const char *node = p->steps[step].node >= 0 ? g->nodes[p->steps[step].node].name : "";
        size_t klen = (size_t)(end - (l + 89)) - 2 - strlen(node);
        char kern[256];
        assert_true(klen < sizeof kern);
        memcpy(kern, l + 89, klen);
        kern[klen] = '\0';
        assert_true(strlen(kern) > 3);
        if (!strstr(text, kern)) fail_msg("step %d: kernel '%s' of the build report not in:\n%s", step, kern, text);
        rows++;
    }
    assert_int_equal(rows, p->n_steps);
    free(r.data);
    /* the tactics of every API, and the memory plan */
    assert_non_null(strstr(text, "cudnn algo 1 fused bias"));
    assert_non_null(strstr(text, "cudnn graph engine 17 (cfg 3)"));
    assert_non_null(strstr(text, "cublasLt matmul (algo 0)"));
    snprintf(want, sizeof want, "activations  %llu bytes planned", (unsigned long long)p->arena_bytes);
    assert_non_null(strstr(text, want));
    assert_non_null(strstr(text, "workspace    4096 bytes"));
    snprintf(want, sizeof want, "%llu bytes on the device", (unsigned long long)p->weight_bytes);
    assert_non_null(strstr(text, want));
    assert_non_null(strstr(text, "section      PROGRAM"));
    assert_non_null(strstr(text, "section      DWEIGHTS"));
    assert_non_null(strstr(text, "no step of their own (views of their input, concats written in place): "
                                 "neck (Concat), flat (Flatten)"));
    /* a copy runs no node: it is there for one */
    assert_non_null(strstr(text, "copy f32 nchw -> f16 nhwc"));
    assert_non_null(strstr(text, "(for stem.conv)"));
    free(text);

    char *json = describe(m.bytes, m.size, KILN_PLAN_DESCRIBE_JSON);
    if (!json_valid(json)) fail_msg("not JSON:\n%s", json);
    assert_non_null(strstr(json, "\"schema\": \"kiln.inspect-plan/1\""));
    assert_non_null(strstr(json, "\"backend\": \"cuda\""));
    assert_non_null(strstr(json, "\"max\": [32, 3, 64, 64]"));
    assert_non_null(strstr(json, "\"api\": \"cudnn\", \"algo\": 1, \"algo_name\": \"IMPLICIT_PRECOMP_GEMM\""));
    assert_non_null(strstr(json, "\"api\": \"cudnn-graph\", \"engine\": 17, \"config\": 3"));
    assert_non_null(strstr(json, "\"api\": \"cublaslt\", \"algo\": 0"));
    assert_non_null(strstr(json, "\"algo_name\": \"WINOGRAD\""));
    assert_non_null(strstr(json, "\"layout\": \"nhwc\""));
    assert_non_null(strstr(json, "\"into_concat\": \"neck\""));
    assert_non_null(strstr(json, "\"nodes_without_step\": [{\"node\": \"neck\", \"op\": \"Concat\"}, "));
    assert_non_null(strstr(json, "\"cudnn_version\": 90100"));
    snprintf(want, sizeof want, "\"steps\": %d", p->n_steps);
    assert_non_null(strstr(json, want));
    int idx = 0;
    for (const char *q = json; (q = strstr(q, "{\"index\": ")); q++) idx++;
    assert_int_equal(idx, p->n_steps);
    free(json);
    made_free(&m);
}

/* A ref plan: one row per node, each with its ref kernel, in node order. */
static void test_ref_plan_described(void **state)
{
    (void)state;
    char *path = kt_path("../models/tinynet.onnx");
    kiln_model *mod;
    kiln_engine *e = kt_build_ref(path, &mod);
    free(path);
    uint8_t *b;
    size_t n;
    assert_kiln_ok(kiln_engine_to_plan(e, &b, &n));
    const kiln_graph *g = mod->ref->g;
    char *text = describe(b, n, 0);
    assert_non_null(strstr(text, "backend   ref"));
    /* indented: inputs, outputs, the layer table's head and rows, and the
     * sizes (file, 2 sections, weights, activations, workspace) */
    assert_int_equal(count_lines_starting(text, "  "), g->n_inputs + g->n_outputs + 1 + g->n_nodes + 6);
    for (int i = 0; i < g->n_nodes; i++) {
        char want[256];
        snprintf(want, sizeof want, "kiln_ref_%s", g->nodes[i].op_type);
        assert_non_null(strstr(text, want));
        assert_non_null(strstr(text, g->nodes[i].name));
    }
    assert_null(strstr(text, "PROGRAM"));
    free(text);
    char *json = describe(b, n, KILN_PLAN_DESCRIBE_JSON);
    if (!json_valid(json)) fail_msg("not JSON:\n%s", json);
    assert_non_null(strstr(json, "\"profile\": null"));
    free(json);
    /* a node name with a terminal escape (resealed): printed as '?' */
    int hits = 0;
    for (uint8_t *hit = b; (hit = memmem(hit, n - (size_t)(hit - b), "\x09\0\0\0stem.conv", 13)); hit += 13, hits++)
        hit[8] = 0x1b, hit[9] = 0xff; /* the strings of exactly "stem.conv" (u32 length 9, then the bytes) */
    assert_true(hits >= 1);
    reseal(b, n);
    text = describe(b, n, 0);
    assert_null(strchr(text, 0x1b));
    assert_non_null(strstr(text, "stem?\xffonv"));
    free(text);
    /* ... and in JSON escaped, the byte that is not UTF-8 as U+FFFD */
    json = describe(b, n, KILN_PLAN_DESCRIBE_JSON);
    assert_non_null(strstr(json, "\"stem\\u001b\\ufffdonv\""));
    assert_null(strchr(json, 0xff));
    free(json);
    free(b);
    kiln_engine_destroy(e);
    kiln_model_destroy(mod);
}

static void expect_refused(const uint8_t *b, size_t n, const char *words)
{
    kiln_sbuf s = {0};
    kiln_status st = kiln_plan_describe(b, n, WHAT, 0, &s);
    if (st == KILN_OK) fail_msg("described a plan that should be refused (%s)", words);
    assert_true(st == KILN_ERR_FORMAT || st == KILN_ERR_VERSION);
    if (!strstr(kiln_last_error(), WHAT) || !strstr(kiln_last_error(), words))
        fail_msg("message '%s' should name %s and say '%s'", kiln_last_error(), WHAT, words);
    assert_int_equal(s.len, 0); /* nothing half-described */
    free(s.data);
}

/* Truncated, corrupted, resealed after a corruption, without the program:
 * refused naming the file and the fault. */
static void test_malformed_refused(void **state)
{
    (void)state;
    made m;
    make_cuda_plan(&m, true);
    uint8_t *b = malloc(m.size);
    /* cut anywhere */
    for (size_t cut = 0; cut < m.size; cut += cut < 1024 ? 37 : 4099) expect_refused(m.bytes, cut, "plan");
    /* one byte changed: the checksum */
    memcpy(b, m.bytes, m.size);
    b[m.size / 2] ^= 1;
    expect_refused(b, m.size, "checksum mismatch");
    /* the program's step count made huge, resealed */
    kiln_plan_info info;
    assert_kiln_ok(kiln_plan_parse(m.bytes, m.size, WHAT, &info));
    const kiln_plan_section *ps = kiln_plan_find(&info, "PROGRAM");
    size_t poff = (size_t)(ps->data - m.bytes);
    size_t steps_at = poff + 24 + (size_t)m.p->n_inputs * KILN_MAX_RANK * 24 + 4 +
                      (size_t)m.p->n_tensors * (4 * 2 + 8 * 8 + 4 * 8 + 8 * 2 + 4 * 2);
    memcpy(b, m.bytes, m.size);
    assert_int_equal(kiln_le32(b + steps_at), (uint32_t)m.p->n_steps);
    b[steps_at + 3] = 0x7f;
    reseal(b, m.size);
    expect_refused(b, m.size, "corrupt program section");
    /* the program section's magic */
    memcpy(b, m.bytes, m.size);
    b[poff] ^= 0xff;
    reseal(b, m.size);
    expect_refused(b, m.size, "corrupt program section");
    /* a plan of the cuda backend with its graph only */
    made g;
    make_cuda_plan(&g, false);
    expect_refused(g.bytes, g.size, "without its PROGRAM and DWEIGHTS");
    made_free(&g);
    free(b);
    made_free(&m);
}

/* Bytes of GRAPH and PROGRAM changed one at a time, resealed: whatever the
 * readers let through is described as valid JSON, the rest is refused
 * naming the file; nothing is read out of bounds (ASan). */
static void test_resealed_mutations(void **state)
{
    (void)state;
    made m;
    make_cuda_plan(&m, true);
    kiln_plan_info info;
    assert_kiln_ok(kiln_plan_parse(m.bytes, m.size, WHAT, &info));
    uint8_t *b = malloc(m.size);
    int described = 0, refused = 0;
    static const uint8_t values[] = {0xff, 0x80, 0x01, 0x7f};
    for (int sec = 0; sec < 3; sec += 2) { /* GRAPH, PROGRAM */
        size_t off = (size_t)(info.sections[sec].data - m.bytes), len = (size_t)info.sections[sec].size;
        for (size_t i = 0; i < len; i += i < 256 ? 1 : 31) {
            memcpy(b, m.bytes, m.size);
            b[off + i] ^= values[i % 4];
            reseal(b, m.size);
            kiln_sbuf s = {0};
            kiln_status st = kiln_plan_describe(b, m.size, WHAT, KILN_PLAN_DESCRIBE_JSON, &s);
            if (st == KILN_OK) {
                if (!json_valid(s.data)) fail_msg("byte %zu of %s: not JSON:\n%s", i, info.sections[sec].tag, s.data);
                described++;
            } else {
                if (st != KILN_ERR_FORMAT && st != KILN_ERR_VERSION && st != KILN_ERR_SHAPE)
                    fail_msg("byte %zu of %s: %s: %s", i, info.sections[sec].tag, kiln_status_name(st),
                             kiln_last_error());
                if (!strstr(kiln_last_error(), WHAT))
                    fail_msg("byte %zu of %s: message does not name the plan: %s", i, info.sections[sec].tag,
                             kiln_last_error());
                refused++;
            }
            free(s.data);
        }
    }
    assert_true(described > 0 && refused > 0);
    free(b);
    made_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cuda_plan_described),
        cmocka_unit_test(test_ref_plan_described),
        cmocka_unit_test(test_malformed_refused),
        cmocka_unit_test(test_resealed_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
