/* Plans: a model saved and loaded gives the same graph and the same outputs
 * as the unserialized engine; a corrupt, truncated, misnamed, or foreign
 * (other kiln version, other architecture) plan is refused with its status
 * and a message that says why. Also SHA-256 against FIPS 180-4 vectors. */
#include "testutil.h"

#include <dirent.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sha256.h"
#include "plan/plan.h"
#include "runtime/backend.h" /* kiln_engine_graph */

static char tmpdir[256];

static char *tiny_path(void) { return kt_path("../models/tinynet.onnx"); }

static char *tmp_file(const char *name)
{
    size_t cap = strlen(tmpdir) + strlen(name) + 2;
    char *p = malloc(cap);
    snprintf(p, cap, "%s/%s", tmpdir, name);
    return p;
}

static kiln_engine *build_ref(kiln_model **m_out)
{
    char *p = tiny_path();
    kiln_engine *e = kt_build_ref(p, m_out);
    free(p);
    return e;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n + 1);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void spit(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* Recomputes the header checksum after a deliberate edit of the header. */
static void reseal(uint8_t *b, size_t n)
{
    memset(b + KILN_PLAN_OFF_SHA, 0, 32);
    uint8_t d[32];
    kiln_sha256(b, n, d);
    memcpy(b + KILN_PLAN_OFF_SHA, d, 32);
}

static void assert_graphs_equal(const kiln_graph *a, const kiln_graph *b)
{
    assert_int_equal(a->n_values, b->n_values);
    assert_int_equal(a->n_nodes, b->n_nodes);
    assert_int_equal(a->n_inputs, b->n_inputs);
    assert_int_equal(a->n_outputs, b->n_outputs);
    assert_int_equal(a->n_symbols, b->n_symbols);
    assert_int_equal(a->opset, b->opset);
    assert_string_equal(a->name, b->name);
    for (int i = 0; i < a->n_symbols; i++) assert_string_equal(a->symbols[i], b->symbols[i]);
    for (int i = 0; i < a->n_values; i++) {
        const kiln_value *x = &a->values[i], *y = &b->values[i];
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->dtype, y->dtype);
        assert_int_equal(x->flags, y->flags);
        assert_int_equal(x->shape.rank, y->shape.rank);
        for (int k = 0; k < x->shape.rank; k++) assert_int_equal(x->shape.d[k], y->shape.d[k]);
        assert_int_equal(x->data != NULL, y->data != NULL);
        if (x->data) assert_memory_equal(x->data, y->data, kiln_value_bytes(x));
        assert_int_equal(x->producer, y->producer);
        assert_int_equal(x->n_consumers, y->n_consumers);
    }
    for (int i = 0; i < a->n_nodes; i++) {
        const kiln_node *x = &a->nodes[i], *y = &b->nodes[i];
        assert_string_equal(x->name, y->name);
        assert_string_equal(x->op_type, y->op_type);
        assert_string_equal(x->domain, y->domain);
        assert_int_equal(x->opset, y->opset);
        assert_int_equal(x->version, y->version);
        assert_ptr_equal(x->op, y->op);
        assert_int_equal(x->n_inputs, y->n_inputs);
        assert_int_equal(x->n_outputs, y->n_outputs);
        assert_memory_equal(x->inputs, y->inputs, (size_t)x->n_inputs * sizeof(int));
        assert_memory_equal(x->outputs, y->outputs, (size_t)x->n_outputs * sizeof(int));
        assert_int_equal(x->n_attrs, y->n_attrs);
        for (int k = 0; k < x->n_attrs; k++) {
            const kiln_attr *p = &x->attrs[k], *q = &y->attrs[k];
            assert_string_equal(p->name, q->name);
            assert_int_equal(p->type, q->type);
            assert_int_equal(p->i, q->i);
            assert_memory_equal(&p->f, &q->f, sizeof p->f);
            assert_int_equal(p->n, q->n);
            if (p->type == KILN_ATTR_INTS) assert_memory_equal(p->ints, q->ints, (size_t)p->n * sizeof(int64_t));
            if (p->type == KILN_ATTR_FLOATS) assert_memory_equal(p->floats, q->floats, (size_t)p->n * sizeof(float));
            if (p->s) assert_string_equal(p->s, q->s);
            assert_int_equal(p->t != NULL, q->t != NULL);
        }
    }
    for (int i = 0; i < a->n_inputs; i++) assert_int_equal(a->inputs[i], b->inputs[i]);
    for (int i = 0; i < a->n_outputs; i++) {
        assert_int_equal(a->outputs[i], b->outputs[i]);
        assert_int_equal(a->declared_dtype[i], b->declared_dtype[i]);
        assert_int_equal(a->declared[i].rank, b->declared[i].rank);
    }
}

/* Runs e on seeded random f32 inputs (symbolic dims = 2) into out[] copies. */
static float *run_once(kiln_engine *e, unsigned seed, size_t *n_out)
{
    kiln_context *c = NULL;
    assert_kiln_ok(kiln_context_create(e, &c));
    int n_in = kiln_engine_num_inputs(e);
    kiln_tensor in[8];
    memset(in, 0, sizeof in);
    assert_true(n_in <= 8);
    for (int i = 0; i < n_in; i++) {
        kiln_tensor_desc d;
        assert_kiln_ok(kiln_engine_input(e, i, &d));
        assert_int_equal(d.dtype, KILN_F32);
        size_t cnt = 1;
        in[i].name = d.name;
        in[i].dtype = d.dtype;
        in[i].rank = d.rank;
        for (int k = 0; k < d.rank; k++) {
            in[i].dims[k] = d.dims[k] >= 0 ? d.dims[k] : 2;
            cnt *= (size_t)in[i].dims[k];
        }
        in[i].data = malloc(cnt * sizeof(float));
        kt_fill_uniform(in[i].data, cnt, seed + (unsigned)i, -1, 1);
    }
    int n = 0;
    const kiln_tensor *out = NULL;
    assert_kiln_ok(kiln_context_run(c, n_in, in, &n, &out));
    assert_true(n >= 1);
    size_t cnt = 1;
    for (int k = 0; k < out[0].rank; k++) cnt *= (size_t)out[0].dims[k];
    float *copy = malloc(cnt * sizeof(float));
    memcpy(copy, out[0].data, cnt * sizeof(float));
    *n_out = cnt;
    for (int i = 0; i < n_in; i++) free(in[i].data);
    kiln_context_destroy(c);
    return copy;
}

static void test_roundtrip(void **state)
{
    (void)state;
    kiln_model *m;
    kiln_engine *e = build_ref(&m);
    char *p = tmp_file("tiny.plan");
    assert_kiln_ok(kiln_engine_save(e, p));
    assert_int_equal(kiln_is_plan_file(p), 1);
    char *onnx = tiny_path();
    assert_int_equal(kiln_is_plan_file(onnx), 0);
    free(onnx);
    kiln_engine *l = NULL;
    assert_kiln_ok(kiln_engine_load(p, &l));
    assert_string_equal(kiln_engine_backend_name(l), "ref");
    assert_graphs_equal(kiln_engine_graph(e), kiln_engine_graph(l));
    kiln_identity a, b;
    assert_kiln_ok(kiln_engine_identity(e, &a));
    assert_kiln_ok(kiln_engine_identity(l, &b));
    assert_memory_equal(&a, &b, sizeof a);
    assert_string_equal(b.arch, "cpu");
    assert_string_equal(b.precision, "fp32");
    assert_string_equal(b.model, "tinynet");
    assert_int_equal(strlen(b.version), 8);
    for (unsigned seed = 1; seed <= 3; seed++) {
        size_t n1, n2;
        float *x = run_once(e, seed, &n1), *y = run_once(l, seed, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(x, y, n1 * sizeof(float)); /* same kernels, same data: bit-exact */
        free(x);
        free(y);
    }
    /* the loaded engine outlives the file and the model */
    kiln_model_destroy(m);
    kiln_engine_destroy(e);
    unlink(p);
    size_t n;
    float *z = run_once(l, 9, &n);
    free(z);
    kiln_engine_destroy(l);
    free(p);
}

static void save_tiny(const char *path)
{
    kiln_model *m;
    kiln_engine *e = build_ref(&m);
    assert_kiln_ok(kiln_engine_save(e, path));
    kiln_engine_destroy(e);
    kiln_model_destroy(m);
}

static void expect_refused(const char *path, kiln_status want, const char *words)
{
    kiln_engine *e = NULL;
    kiln_status st = kiln_engine_load(path, &e);
    if (st != want)
        fail_msg("%s: expected %s, got %s: %s", path, kiln_status_name(want), kiln_status_name(st), kiln_last_error());
    assert_null(e);
    if (!strstr(kiln_last_error(), words)) fail_msg("message lacks '%s': %s", words, kiln_last_error());
}

static void test_corrupt_byte(void **state)
{
    (void)state;
    char *p = tmp_file("corrupt.plan");
    save_tiny(p);
    size_t n;
    uint8_t *b = slurp(p, &n);
    size_t where[] = {n / 2, n - 1, KILN_PLAN_HEADER_SIZE + 3, KILN_PLAN_OFF_MODEL + 1};
    for (size_t i = 0; i < sizeof where / sizeof *where; i++) {
        b[where[i]] ^= 0x10;
        spit(p, b, n);
        expect_refused(p, KILN_ERR_FORMAT, "checksum");
        b[where[i]] ^= 0x10;
    }
    free(b);
    unlink(p);
    free(p);
}

static void test_truncated(void **state)
{
    (void)state;
    char *p = tmp_file("cut.plan");
    save_tiny(p);
    size_t n;
    uint8_t *b = slurp(p, &n);
    size_t cuts[] = {n - 1, n / 2, KILN_PLAN_HEADER_SIZE, 100, 8};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        spit(p, b, cuts[i]);
        expect_refused(p, KILN_ERR_FORMAT, "truncated");
    }
    spit(p, b, 4);
    expect_refused(p, KILN_ERR_FORMAT, "not a kiln plan");
    free(b);
    unlink(p);
    free(p);
}

static void test_name_mismatch(void **state)
{
    (void)state;
    kiln_model *m;
    kiln_engine *e = build_ref(&m);
    kiln_identity id;
    char name[512];
    assert_kiln_ok(kiln_engine_identity(e, &id));
    assert_kiln_ok(kiln_identity_file_name(&id, name, sizeof name));
    char *right = tmp_file(name);
    assert_kiln_ok(kiln_engine_save(e, right));
    kiln_engine *l = NULL;
    assert_kiln_ok(kiln_engine_load(right, &l));
    kiln_engine_destroy(l);
    char *wrong = tmp_file("tinynet_00000000_fp32_cpu_0.1.0.plan");
    assert_kiln_ok(kiln_engine_save(e, wrong));
    expect_refused(wrong, KILN_ERR_FORMAT, "disagree");
    assert_true(kiln_identity_name_shaped("yolo_v8_1234abcd_fp16_sm_90_0.1.0_deadbeef.plan"));
    assert_true(kiln_identity_name_shaped(name));
    assert_false(kiln_identity_name_shaped("tinynet.plan"));
    assert_false(kiln_identity_name_shaped("my_model_fp32.plan"));
    unlink(right);
    unlink(wrong);
    free(right);
    free(wrong);
    kiln_engine_destroy(e);
    kiln_model_destroy(m);
}

static void patch_and_expect(const char *p, const uint8_t *orig, size_t n, size_t off, const char *value,
                             kiln_status want, const char *words)
{
    uint8_t *b = malloc(n);
    memcpy(b, orig, n);
    memset(b + off, 0, 16);
    memcpy(b + off, value, strlen(value));
    reseal(b, n);
    spit(p, b, n);
    expect_refused(p, want, words);
    free(b);
}

/* Overwrites `len` bytes at `off` with value (little-endian), reseals the
 * checksum, and expects the load refused naming `words`. */
static void field_and_expect(const char *p, const uint8_t *orig, size_t n, size_t off, int len, uint64_t value,
                             const char *words)
{
    uint8_t *b = malloc(n);
    memcpy(b, orig, n);
    for (int i = 0; i < len; i++) b[off + (size_t)i] = (uint8_t)(value >> (8 * i));
    reseal(b, n);
    spit(p, b, n);
    expect_refused(p, KILN_ERR_FORMAT, words);
    free(b);
}

/* A header edited and resealed (checksum right) is still checked field by
 * field: every fixed field the format defines. */
static void test_header_fields_validated(void **state)
{
    (void)state;
    char *p = tmp_file("header.plan");
    save_tiny(p);
    size_t n;
    uint8_t *b = slurp(p, &n);
    field_and_expect(p, b, n, KILN_PLAN_OFF_HEADER, 4, 256, "header size 256");
    field_and_expect(p, b, n, KILN_PLAN_OFF_FLAGS, 4, 1, "flags 0x1");
    field_and_expect(p, b, n, KILN_PLAN_OFF_RESERVED + 7, 1, 0xff, "reserved byte 471");
    field_and_expect(p, b, n, KILN_PLAN_OFF_BACKEND, 4, 77, "unknown backend 77");
    field_and_expect(p, b, n, KILN_PLAN_OFF_PRECISION, 4, KILN_PRECISION_FP16, "precision 2 (fp16)");
    field_and_expect(p, b, n, KILN_PLAN_OFF_PRECISION, 4, 99, "precision 99");
    field_and_expect(p, b, n, KILN_PLAN_OFF_WORKSPACE, 8, (uint64_t)1 << 50, "workspace");
    field_and_expect(p, b, n, KILN_PLAN_OFF_SECTIONS + 24 * (KILN_PLAN_MAX_SECTIONS - 1), 1, 'X',
                     "unused section entry 7");
    /* the plan as saved still loads */
    spit(p, b, n);
    kiln_engine *e = NULL;
    assert_kiln_ok(kiln_engine_load(p, &e));
    kiln_engine_destroy(e);
    free(b);
    unlink(p);
    free(p);
}

static void test_foreign_plans(void **state)
{
    (void)state;
    char *p = tmp_file("foreign.plan");
    save_tiny(p);
    size_t n;
    uint8_t *b = slurp(p, &n);
    patch_and_expect(p, b, n, KILN_PLAN_OFF_KILN, "0.0.9", KILN_ERR_VERSION, "kiln 0.0.9");
    patch_and_expect(p, b, n, KILN_PLAN_OFF_ARCH, "sm_90", KILN_ERR_VERSION, "sm_90");
    /* a future container format */
    uint8_t *c = malloc(n);
    memcpy(c, b, n);
    c[KILN_PLAN_OFF_FORMAT] = 2;
    reseal(c, n);
    spit(p, c, n);
    expect_refused(p, KILN_ERR_VERSION, "format 2");
    free(c);
    /* the plan as saved still loads */
    spit(p, b, n);
    kiln_engine *e = NULL;
    assert_kiln_ok(kiln_engine_load(p, &e));
    kiln_engine_destroy(e);
    free(b);
    unlink(p);
    free(p);
}

/* The identity's bytes are those cached plans are named by: the version
 * is SHA-256 over the ONNX file, then "\0name\0" + contents of each
 * external data file; the options hash is SHA-256 over a canonical text.
 * Computed here independently, so that a change that would rename every
 * cached plan fails. */
static void test_identity_bytes(void **state)
{
    (void)state;
    kiln_build_options o;
    kiln_build_options_init(&o);
    o.backend = KILN_BACKEND_REF;
    kiln_identity id;
    char want[17];
    uint8_t d[32];
    size_t n;
    /* a model without external data: the file's own hash */
    char *p = tiny_path();
    uint8_t *b = slurp(p, &n);
    kiln_sha256(b, n, d);
    free(b);
    kiln_hex(d, 4, want);
    assert_kiln_ok(kiln_model_identity(p, &o, &id));
    assert_string_equal(id.version, want);
    assert_string_equal(id.model, "tinynet");
    assert_string_equal(id.precision, "fp32");
    assert_string_equal(id.arch, "cpu");
    assert_string_equal(id.options_hash, "");
    free(p);
    /* external data: each file once, after the model's bytes */
    p = kt_model("external.onnx");
    if (p) {
        char *bin = kt_model("external.bin");
        kiln_sha256_ctx s;
        kiln_sha256_init(&s);
        b = slurp(p, &n);
        kiln_sha256_update(&s, b, n);
        free(b);
        kiln_sha256_update(&s, "\0external.bin", sizeof "\0external.bin");
        b = slurp(bin, &n);
        kiln_sha256_update(&s, b, n);
        free(b);
        kiln_sha256_final(&s, d);
        kiln_hex(d, 4, want);
        assert_kiln_ok(kiln_model_identity(p, &o, &id));
        assert_string_equal(id.version, want);
        free(bin);
        free(p);
    }
    /* the options hash: shapes sorted, then the workspace, profile, flags */
    o.input_shapes = "x:1x3,a:2";
    o.workspace_bytes = 1024;
    o.profile = "max:a:4";
    o.flags = KILN_BUILD_RUNTIME_COMPILE;
    const char *text = "shapes=a:2,x:1x3;workspace=1024;profile=max:a:4;runtime-compile";
    kiln_sha256(text, strlen(text), d);
    kiln_hex(d, 4, want);
    char got[16];
    kiln_options_hash(&o, got);
    assert_string_equal(got, want);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    kiln_engine *e = NULL;
    assert_int_equal(kiln_engine_load(NULL, &e), KILN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kiln_engine_load("/nonexistent/x.plan", &e), KILN_ERR_NOT_FOUND);
    assert_non_null(strstr(kiln_last_error(), "/nonexistent/x.plan"));
    assert_int_equal(kiln_engine_save(NULL, "/tmp/x"), KILN_ERR_INVALID_ARGUMENT);
    kiln_model *m;
    kiln_engine *b = build_ref(&m);
    assert_int_equal(kiln_engine_save(b, "/nonexistent/dir/x.plan"), KILN_ERR_IO);
    assert_non_null(strstr(kiln_last_error(), "/nonexistent/dir/x.plan"));
    kiln_engine_destroy(b);
    kiln_model_destroy(m);
    assert_int_equal(sizeof(kiln_build_options), sizeof(void *) == 8 ? 64 : sizeof(kiln_build_options));
}

static void hex_of(const void *data, size_t n, char *out)
{
    uint8_t d[32];
    kiln_sha256(data, n, d);
    kiln_hex(d, 32, out);
}

static void test_sha256_vectors(void **state)
{
    (void)state;
    char h[65];
    hex_of("", 0, h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_of("abc", 3, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(two, strlen(two), h);
    assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* one million 'a', fed in uneven pieces */
    kiln_sha256_ctx s;
    kiln_sha256_init(&s);
    char a[997];
    memset(a, 'a', sizeof a);
    size_t left = 1000000;
    while (left) {
        size_t k = left < sizeof a ? left : (left % 7) + 900;
        kiln_sha256_update(&s, a, k);
        left -= k;
    }
    uint8_t d[32];
    kiln_sha256_final(&s, d);
    kiln_hex(d, 32, h);
    assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

typedef struct race_arg {
    const char *model, *dir;
    kiln_engine_source src;
    kiln_status st;
} race_arg;

static void *race_one(void *p)
{
    race_arg *a = p;
    kiln_build_options o;
    kiln_build_options_init(&o);
    o.backend = KILN_BACKEND_REF;
    o.cache_dir = a->dir;
    o.flags = KILN_BUILD_NO_REMOTE;
    kiln_engine *e = NULL;
    a->st = kiln_build_or_load(a->model, &o, &e, &a->src);
    kiln_engine_destroy(e);
    return NULL;
}

/* Eight threads ask for one identity at once: one builds, seven load. */
static void test_threads_build_once(void **state)
{
    (void)state;
    char *dir = tmp_file("race");
    char *model = tiny_path();
    race_arg args[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (race_arg){.model = model, .dir = dir};
        assert_int_equal(pthread_create(&th[i], NULL, race_one, &args[i]), 0);
    }
    int built = 0, cached = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].st, KILN_OK);
        built += args[i].src == KILN_SOURCE_BUILT;
        cached += args[i].src == KILN_SOURCE_LOCAL_CACHE;
    }
    assert_int_equal(built, 1);
    assert_int_equal(cached, 7);
    kiln_build_options o;
    kiln_build_options_init(&o);
    o.cache_dir = dir;
    char *report = NULL;
    int bad = -1;
    assert_kiln_ok(kiln_cache_verify(&o, &report, &bad));
    assert_int_equal(bad, 0);
    assert_non_null(strstr(report, "ok tinynet_"));
    kiln_free(report);
    int removed = 0;
    assert_kiln_ok(kiln_cache_remove(&o, NULL, &removed));
    assert_int_equal(removed, 1);
    rmdir(dir);
    free(dir);
    free(model);
}

/* A cached plan this kiln cannot load (sealed, but its sections are not
 * what this kiln reads: a plan of an older program format under the same
 * kiln version) is moved aside and rebuilt, not an error. */
static void test_cache_rebuilds_unloadable(void **state)
{
    (void)state;
    char *dir = tmp_file("stale");
    char *model = tiny_path();
    race_arg a = {.model = model, .dir = dir};
    race_one(&a);
    assert_kiln_ok(a.st);
    assert_int_equal(a.src, KILN_SOURCE_BUILT);
    DIR *d = opendir(dir);
    assert_non_null(d);
    char plan[1024] = "";
    for (struct dirent *de; (de = readdir(d));)
        if (strstr(de->d_name, ".plan") && !strstr(de->d_name, ".lock"))
            snprintf(plan, sizeof plan, "%s/%s", dir, de->d_name);
    closedir(d);
    assert_true(plan[0]);
    size_t n;
    uint8_t *b = slurp(plan, &n);
    memset(b + KILN_PLAN_HEADER_SIZE, 0xff, 8);
    reseal(b, n);
    spit(plan, b, n);
    free(b);
    race_one(&a);
    assert_kiln_ok(a.st);
    assert_int_equal(a.src, KILN_SOURCE_BUILT);
    race_one(&a);
    assert_int_equal(a.src, KILN_SOURCE_LOCAL_CACHE);
    int aside = 0;
    d = opendir(dir);
    for (struct dirent *de; (de = readdir(d));) {
        if (!strstr(de->d_name, ".corrupt-")) continue;
        aside++;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
    }
    closedir(d);
    assert_int_equal(aside, 1);
    unlink(plan);
    rmdir(dir);
    free(dir);
    free(model);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/kiln-test-plan-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    rmdir(tmpdir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors), cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_corrupt_byte),   cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_name_mismatch),  cmocka_unit_test(test_foreign_plans),
        cmocka_unit_test(test_header_fields_validated),
        cmocka_unit_test(test_bad_arguments),  cmocka_unit_test(test_threads_build_once),
        cmocka_unit_test(test_cache_rebuilds_unloadable), cmocka_unit_test(test_identity_bytes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
