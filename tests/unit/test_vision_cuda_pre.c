/* The cuda vision kernels of src/vision/cuda_pre.cu against the ref ones
 * (kiln_vref_*), on the GPU machine: the same random inputs through both,
 * called directly (the kiln_vision_cuda table keeps these entries NULL
 * until this test has passed on a GPU).
 * - letterbox: frames of odd sizes (1x1, 17x33, 1920x1080, thin ones),
 *   strides beyond width x 3, BGR and RGB, f32 and f16, mean/std, centered
 *   or not, scale_up on and off, and 70 frames in one call (two launches);
 *   the letterboxes must be equal field for field;
 * - crops: whole-pixel, sub-pixel, partly outside and degenerate boxes
 *   (outside, empty, inverted, NaN), on frames of 1920x1080, 17x33 and
 *   1x1, and 65538 crops in one call (two launches);
 * - l2: rows with a zero row, huge values, denormals, short and long rows;
 * - match: ties (equal gallery rows: the lowest index wins), NaN rows,
 *   best NULL, an empty gallery (best -1).
 * f32 outputs within 1e-5 of the ref (sim and l2 within 1e-6), f16 within
 * one f16 ulp, indices equal; every output element written (the output is
 * filled with NaN before) and nothing written past the end. Runs on a
 * stream of its own (l2 also on the NULL stream).
 * Without a GPU (or a CUDA build) it reports "skipped" (exit 77). */
#include "testutil.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef KILN_HAVE_CUDA
#include <cuda_runtime.h>
#endif

#include "vision/vision.h"

#ifdef KILN_HAVE_CUDA

#include "vision_cuda_util.h"

/* f16 bits on a line where neighbouring values are 1 apart (-0 and +0 both 0) */
static int f16_key(uint16_t h) { return h & 0x8000 ? -(int)(h & 0x7fff) : (int)h; }
static bool f16_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }

/* got (cuda) against want (ref): count elements of dtype t, f32 within
 * tol, f16 within one ulp; a NaN only where the ref has one. */
static void compare(const char *what, kiln_dtype t, const void *got, const void *want, size_t count, double tol)
{
    double worst = 0;
    size_t differ = 0, at = 0;
    for (size_t i = 0; i < count; i++) {
        double e;
        if (t == KILN_F16) {
            uint16_t g = ((const uint16_t *)got)[i], w = ((const uint16_t *)want)[i];
            if (f16_nan(g) || f16_nan(w))
                e = f16_nan(g) && f16_nan(w) ? 0 : INFINITY;
            else
                e = abs(f16_key(g) - f16_key(w));
            differ += g != w;
        } else {
            float g = ((const float *)got)[i], w = ((const float *)want)[i];
            if (memcmp(&g, &w, sizeof g) == 0)
                e = 0;
            else if (isnan(g) || isnan(w))
                e = isnan(g) && isnan(w) ? 0 : INFINITY;
            else
                e = fabs((double)g - w);
            differ += memcmp(&g, &w, sizeof g) != 0;
        }
        if (!(e <= worst)) {
            worst = e;
            at = i;
        }
    }
    double limit = t == KILN_F16 ? 1 : tol;
    printf("%-44s %9zu values, %7zu not bit-identical, worst %.3g%s at %zu  %s\n", what, count, differ, worst,
           t == KILN_F16 ? " ulp" : "", at, worst <= limit ? "ok" : "FAIL");
    if (!(worst <= limit)) fail_msg("%s: element %zu differs by %g (limit %g)", what, at, worst, limit);
}

/* ---------------------------------------------------------------- letterbox */

typedef struct frame_spec {
    int w, h, pad; /* pad: stride - w * 3 */
    int bgr;
} frame_spec;

/* Host frames (random pixels, padding bytes too) of specs and their device twins. */
static void make_frames(int n, const frame_spec *spec, uint32_t seed, kiln_frame *hf, kiln_frame *df)
{
    for (int i = 0; i < n; i++) {
        int stride = spec[i].w * 3 + spec[i].pad;
        size_t bytes = (size_t)stride * spec[i].h;
        uint8_t *p = malloc(bytes);
        assert_non_null(p);
        for (size_t k = 0; k < bytes; k++) p[k] = (uint8_t)(rnd(&seed) >> 24);
        hf[i] = (kiln_frame){p, spec[i].w, spec[i].h, spec[i].pad ? stride : 0, spec[i].bgr};
        df[i] = hf[i];
        df[i].data = dev_copy(p, bytes);
    }
}

static void free_frames(int n, kiln_frame *hf, kiln_frame *df)
{
    for (int i = 0; i < n; i++) {
        free((void *)hf[i].data);
        CK(cudaFree((void *)df[i].data));
    }
}

static void check_preprocess(const char *what, const kiln_preprocess_options *o, int n, const kiln_frame *hf,
                             const kiln_frame *df)
{
    size_t count = (size_t)n * 3 * o->width * o->height, bytes = count * kiln_dtype_size(o->dtype);
    void *want = malloc(bytes);
    kiln_letterbox *bw = calloc((size_t)n, sizeof *bw), *bg = calloc((size_t)n, sizeof *bg);
    assert_true(want && bw && bg);
    assert_kiln_ok(kiln_vref_preprocess(o, n, hf, want, bw));
    void *d = dev_out(bytes);
    assert_kiln_ok(kiln_vcuda_preprocess(o, n, df, d, bg, stream));
    void *got = fetch(d, bytes);
    for (int i = 0; i < n; i++) {
        const kiln_letterbox *a = &bg[i], *b = &bw[i];
        if (a->scale != b->scale || a->pad_x != b->pad_x || a->pad_y != b->pad_y || a->scale_x != b->scale_x ||
            a->scale_y != b->scale_y || a->frame_width != b->frame_width || a->frame_height != b->frame_height)
            fail_msg("%s: frame %d's letterbox differs: cuda scale %.9g pad %g,%g axes %.9g,%.9g, ref scale %.9g pad "
                     "%g,%g axes %.9g,%.9g",
                     what, i, a->scale, a->pad_x, a->pad_y, a->scale_x, a->scale_y, b->scale, b->pad_x, b->pad_y,
                     b->scale_x, b->scale_y);
    }
    compare(what, o->dtype, got, want, count, 1e-5);
    CK(cudaFree(d));
    free(got);
    free(want);
    free(bw);
    free(bg);
}

static void test_preprocess(void **state)
{
    (void)state;
    static const frame_spec spec[] = {
        {1, 1, 0, 0},       {17, 33, 0, 1},  {1920, 1080, 13, 1}, {33, 17, 5, 0},
        {7, 500, 5, 1},     {500, 3, 0, 0},  {640, 640, 0, 1},    {1279, 719, 1, 0},
    };
    int n = (int)(sizeof spec / sizeof spec[0]);
    kiln_frame hf[8], df[8];
    make_frames(n, spec, 12345u, hf, df);

    kiln_preprocess_options o;
    kiln_preprocess_options_init(&o); /* 640x640 f32, mean 0, std 1, pad 114, centered, scale_up */
    check_preprocess("letterbox 640x640 f32 centered", &o, n, hf, df);
    o.dtype = KILN_F16;
    check_preprocess("letterbox 640x640 f16 centered", &o, n, hf, df);

    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    memcpy(o.mean, mean, sizeof mean);
    memcpy(o.std, std, sizeof std);
    o.width = 641;
    o.height = 383;
    o.center = 0;
    o.pad_value = 0;
    check_preprocess("letterbox 641x383 f16 mean/std corner", &o, n, hf, df);
    o.dtype = KILN_F32;
    check_preprocess("letterbox 641x383 f32 mean/std corner", &o, n, hf, df);

    o.width = o.height = 320;
    o.center = 1;
    o.scale_up = 0;
    o.pad_value = 255;
    check_preprocess("letterbox 320x320 f32 no scale_up", &o, n, hf, df);
    o.width = 1;
    o.height = 1;
    check_preprocess("letterbox 1x1 f32", &o, n, hf, df);
    free_frames(n, hf, df);
}

/* More frames than one launch's parameters hold. */
static void test_preprocess_many_frames(void **state)
{
    (void)state;
    enum { N = 70 };
    frame_spec spec[N];
    uint32_t s = 99;
    for (int i = 0; i < N; i++)
        spec[i] = (frame_spec){1 + (int)(rnd(&s) % 60), 1 + (int)(rnd(&s) % 60), (int)(rnd(&s) % 3), i & 1};
    kiln_frame hf[N], df[N];
    make_frames(N, spec, 777u, hf, df);
    kiln_preprocess_options o;
    kiln_preprocess_options_init(&o);
    o.width = 48;
    o.height = 40;
    o.dtype = KILN_F16;
    o.mean[1] = 0.5f;
    o.std[2] = 0.25f;
    check_preprocess("letterbox 70 frames 48x40 f16", &o, N, hf, df);
    o.dtype = KILN_F32;
    check_preprocess("letterbox 70 frames 48x40 f32", &o, N, hf, df);
    free_frames(N, hf, df);
}

/* ---------------------------------------------------------------- crops */

static void check_crops(const char *what, const kiln_preprocess_options *o, const kiln_frame *hf, const kiln_frame *df,
                        int n, const kiln_detection *dets)
{
    size_t count = (size_t)n * 3 * o->width * o->height, bytes = count * kiln_dtype_size(o->dtype);
    void *want = malloc(bytes);
    assert_non_null(want);
    assert_kiln_ok(kiln_vref_crops(o, hf, n, dets, want));
    kiln_detection *ddets = dev_copy(dets, (size_t)n * sizeof *dets);
    void *d = dev_out(bytes);
    assert_kiln_ok(kiln_vcuda_crops(o, df, n, ddets, d, stream));
    void *got = fetch(d, bytes);
    compare(what, o->dtype, got, want, count, 1e-5);
    CK(cudaFree(d));
    CK(cudaFree(ddets));
    free(got);
    free(want);
}

static kiln_detection box(float x1, float y1, float x2, float y2)
{
    return (kiln_detection){x1, y1, x2, y2, 0.9f, 0, 0};
}

static void test_crops(void **state)
{
    (void)state;
    static const frame_spec spec[] = {{1920, 1080, 7, 1}, {17, 33, 0, 0}, {1, 1, 2, 1}};
    kiln_frame hf[3], df[3];
    make_frames(3, spec, 4242u, hf, df);
    for (int f = 0; f < 3; f++) {
        float sx = spec[f].w / 1920.0f, sy = spec[f].h / 1080.0f;
        kiln_detection dets[] = {
            box(0, 0, 1920 * sx, 1080 * sy),                               /* the whole frame */
            box(100 * sx, 200 * sy, 164 * sx, 328 * sy),                   /* scaled whole pixels */
            box(100, 200, 164, 328),                                       /* whole pixels (outside small frames) */
            box(10.3f, 20.7f, 50.9f, 99.1f),                               /* sub-pixel */
            box(-20, -30, 40, 50),                                         /* partly outside, top left */
            box(1900.5f * sx, 1070.2f * sy, 1950, 1100),                   /* partly outside, bottom right */
            box(2000, 2000, 2100, 2100),                                   /* wholly outside: degenerate */
            box(0.5f, 0.5f, 0.5f, 0.9f),                                   /* no width: degenerate */
            box(0.9f, 0.2f, 0.3f, 0.8f),                                   /* inverted: degenerate */
            box(NAN, 0, 10, 10),                                           /* NaN: degenerate */
            box(0, 0, 10, INFINITY),                                       /* clipped to the frame */
            box(0.25f, 0.5f, 0.75f, 0.9f),                                 /* inside one pixel */
            box(0, 0, 0.4f, 0.3f),                                         /* a corner of a pixel */
            box(spec[f].w - 0.6f, spec[f].h - 0.2f, spec[f].w, spec[f].h), /* the last pixel's corner */
        };
        int n = (int)(sizeof dets / sizeof dets[0]);
        kiln_preprocess_options o;
        kiln_preprocess_options_init(&o);
        o.width = 64;
        o.height = 128;
        char what[64];
        snprintf(what, sizeof what, "crops %dx%d 64x128 f32", spec[f].w, spec[f].h);
        check_crops(what, &o, &hf[f], &df[f], n, dets);
        const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
        memcpy(o.mean, mean, sizeof mean);
        memcpy(o.std, std, sizeof std);
        o.dtype = KILN_F16;
        o.width = 33;
        o.height = 65;
        snprintf(what, sizeof what, "crops %dx%d 33x65 f16 mean/std", spec[f].w, spec[f].h);
        check_crops(what, &o, &hf[f], &df[f], n, dets);
        o.dtype = KILN_F32;
        snprintf(what, sizeof what, "crops %dx%d 33x65 f32 mean/std", spec[f].w, spec[f].h);
        check_crops(what, &o, &hf[f], &df[f], n, dets);
    }
    free_frames(3, hf, df);
}

/* More crops than gridDim.z reaches in one launch. */
static void test_crops_many(void **state)
{
    (void)state;
    static const frame_spec spec[] = {{97, 61, 3, 1}};
    kiln_frame hf[1], df[1];
    make_frames(1, spec, 31337u, hf, df);
    int n = 65535 + 3;
    kiln_detection *dets = malloc((size_t)n * sizeof *dets);
    assert_non_null(dets);
    uint32_t s = 5;
    for (int i = 0; i < n; i++) {
        float x = rnd_f(&s, -10, 100), y = rnd_f(&s, -10, 70);
        dets[i] = box(x, y, x + rnd_f(&s, -2, 40), y + rnd_f(&s, -2, 30));
    }
    kiln_preprocess_options o;
    kiln_preprocess_options_init(&o);
    o.width = 4;
    o.height = 6;
    check_crops("crops 65538 boxes 4x6 f32", &o, hf, df, n, dets);
    free(dets);
    free_frames(1, hf, df);
}

/* ---------------------------------------------------------------- l2 */

static void check_l2(const char *what, int n, int d, const float *rows, cudaStream_t s)
{
    size_t bytes = (size_t)n * d * sizeof(float);
    float *want = malloc(bytes);
    assert_non_null(want);
    memcpy(want, rows, bytes);
    assert_kiln_ok(kiln_vref_l2_normalize(n, d, want));
    float *dv = dev_out(bytes);
    CK(cudaMemcpy(dv, rows, bytes, cudaMemcpyHostToDevice));
    assert_kiln_ok(kiln_vcuda_l2_normalize(n, d, dv, s));
    CK(cudaStreamSynchronize(s));
    float *got = fetch(dv, bytes);
    compare(what, KILN_F32, got, want, (size_t)n * d, 1e-6);
    CK(cudaFree(dv));
    free(got);
    free(want);
}

static void test_l2(void **state)
{
    (void)state;
    static const int ds[] = {513, 7, 2048, 1};
    for (int t = 0; t < 4; t++) {
        int n = 9, d = ds[t];
        float *x = malloc((size_t)n * d * sizeof *x);
        assert_non_null(x);
        kt_fill_uniform(x, (size_t)n * d, 17u + (unsigned)t, -1, 1);
        for (int k = 0; k < d; k++) {
            x[2 * d + k] = 0;                                   /* a zero row stays zero */
            x[3 * d + k] *= 3e37f;                              /* squares beyond float */
            x[4 * d + k] *= 1e-40f;                             /* denormals */
            x[5 * d + k] = k == d / 2 ? -4.0f : 0;              /* one value */
            x[6 * d + k] = k == d - 1 ? INFINITY : x[6 * d + k]; /* an inf: the ref's 0 and NaN */
        }
        char what[64];
        snprintf(what, sizeof what, "l2 9x%d", d);
        check_l2(what, n, d, x, stream);
        snprintf(what, sizeof what, "l2 9x%d (NULL stream)", d);
        check_l2(what, n, d, x, NULL);
        free(x);
    }
}

/* ---------------------------------------------------------------- match */

static void check_match(const char *what, int n, int m, int d, const float *q, const float *g, bool with_best)
{
    size_t sbytes = (size_t)n * m * sizeof(float), bbytes = (size_t)n * sizeof(int);
    float *sim_w = malloc(sbytes ? sbytes : 1);
    int *best_w = malloc(bbytes);
    assert_true(sim_w && best_w);
    assert_kiln_ok(kiln_vref_match(n, m, d, q, g, sim_w, best_w));
    float *dq = dev_copy(q, (size_t)n * d * sizeof(float)), *dg = dev_copy(g, (size_t)m * d * sizeof(float));
    float *ds = m ? dev_out(sbytes) : NULL;
    int *db = with_best ? dev_out(bbytes) : NULL;
    if (db) CK(cudaMemset(db, 7, bbytes)); /* nothing like -1 or an index */
    assert_kiln_ok(kiln_vcuda_match(n, m, d, dq, dg, ds, db, stream));
    CK(cudaStreamSynchronize(stream));
    if (ds) {
        float *sim = fetch(ds, sbytes);
        compare(what, KILN_F32, sim, sim_w, (size_t)n * m, 1e-6);
        free(sim);
        CK(cudaFree(ds));
    }
    if (db) {
        int *best = fetch(db, bbytes);
        int wrong = 0;
        for (int i = 0; i < n; i++)
            if (best[i] != best_w[i]) {
                if (!wrong) printf("  query %d: cuda best %d, ref best %d\n", i, best[i], best_w[i]);
                wrong++;
            }
        printf("%-44s %9d queries, %d best indices differ  %s\n", what, n, wrong, wrong ? "FAIL" : "ok");
        if (wrong) fail_msg("%s: %d best indices differ from the ref", what, wrong);
        free(best);
        CK(cudaFree(db));
    }
    CK(cudaFree(dq));
    CK(cudaFree(dg));
    free(sim_w);
    free(best_w);
}

static void test_match(void **state)
{
    (void)state;
    int n = 37, m = 101, d = 129;
    float *q = malloc((size_t)n * d * sizeof *q), *g = malloc((size_t)m * d * sizeof *g);
    assert_true(q && g);
    kt_fill_uniform(q, (size_t)n * d, 3, -1, 1);
    kt_fill_uniform(g, (size_t)m * d, 4, -1, 1);
    assert_kiln_ok(kiln_vref_l2_normalize(n, d, q));
    assert_kiln_ok(kiln_vref_l2_normalize(m, d, g));
    /* ties: entries 50 and 77 equal entry 5, and query 3 is entry 5 (best: 5) */
    memcpy(g + 50 * d, g + 5 * d, d * sizeof *g);
    memcpy(g + 77 * d, g + 5 * d, d * sizeof *g);
    memcpy(q + 3 * d, g + 5 * d, d * sizeof *q);
    memcpy(q + 9 * d, g + 77 * d, d * sizeof *q);
    for (int k = 0; k < d; k++) {
        q[4 * d + k] = NAN; /* all NaN: best -1 */
        q[6 * d + k] = 0;   /* all 0 (but NaN entries): best 0 */
    }
    g[90 * d + 17] = NAN; /* never chosen */
    check_match("match 37x101x129 ties NaN", n, m, d, q, g, true);
    check_match("match 37x101x129 best NULL", n, m, d, q, g, false);
    check_match("match 37x0 (best -1)", n, 0, d, q, g, true);
    check_match("match 1x1x1", 1, 1, 1, q, g, true);
    free(q);
    free(g);

    /* a gallery the size of a tracker's, 512-d embeddings */
    n = 300, m = 2000, d = 512;
    q = malloc((size_t)n * d * sizeof *q);
    g = malloc((size_t)m * d * sizeof *g);
    assert_true(q && g);
    kt_fill_uniform(q, (size_t)n * d, 5, -1, 1);
    kt_fill_uniform(g, (size_t)m * d, 6, -1, 1);
    assert_kiln_ok(kiln_vref_l2_normalize(n, d, q));
    assert_kiln_ok(kiln_vref_l2_normalize(m, d, g));
    for (int j = 1000; j < 2000; j += 7) memcpy(g + (size_t)j * d, g + (size_t)(j - 500) * d, d * sizeof *g);
    check_match("match 300x2000x512", n, m, d, q, g, true);
    free(q);
    free(g);
}

static int setup(void **state)
{
    (void)state;
    return cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return cudaStreamDestroy(stream) == cudaSuccess ? 0 : -1;
}

#endif /* KILN_HAVE_CUDA */

int main(void)
{
#ifndef KILN_HAVE_CUDA
    printf("SKIPPED: kiln was built without CUDA\n");
    return 77;
#else
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
        cudaGetLastError();
        printf("SKIPPED: no CUDA device on this machine (the GPU tests run on the GPU machine: scripts/gpu-check)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_preprocess), cmocka_unit_test(test_preprocess_many_frames),
        cmocka_unit_test(test_crops),      cmocka_unit_test(test_crops_many),
        cmocka_unit_test(test_l2),         cmocka_unit_test(test_match),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
#endif
}
