/* The cuda post-processing kernels (src/vision/cuda_nms.cu, cuda_mask.cu)
 * against the ref ones (kiln_vref_*), on the GPU machine: the same random
 * network outputs through both, called directly (the kiln_vision_cuda
 * table keeps these entries NULL until this test has passed on a GPU).
 * - detect: YOLOv8-like outputs [B, 4 + C + E, N] with clustered
 *   high-scoring candidates (so NMS suppresses), in f32 and f16 (f16 makes
 *   exact score ties; some f32 cases round scores to 1/64 for the same),
 *   class-aware and agnostic, class filters (duplicates, classes outside
 *   0..C-1, an empty filter), max_det and max_nms cuts, conf 0.001 (nearly
 *   every candidate into NMS), iou 0 and 1, NaN in scores and boxes,
 *   YOLOv5 (objectness) and YOLOv10 (end to end, odd class values)
 *   layouts, E = 32 (seg) and 51 (pose) extra values, letterboxes with
 *   per-axis factors and hand-made ones, none; many images (two passes of
 *   the scratch) and one image of 2^21 + 5 candidates. Counts equal, and
 *   detections (boxes, scores, classes, anchors, in order) and extra
 *   values equal bit for bit (a NaN where the ref has one); the outputs
 *   past each image's count untouched.
 * - keypoints: with and without a letterbox, in place; equal bit for bit.
 * - masks: smooth random prototypes (f32, f16) and boxes (whole network
 *   pixels round-tripped through the letterbox, sub-pixel, partly outside,
 *   empty, NaN), frame-sized masks and sized ones (network size, proto
 *   size, no letterbox), thresholds 0.5, 0.3, 0 and 1, 700 detections in
 *   one call (two passes); pixel agreement >= 99.99 % and every instance's
 *   IoU >= 0.999 (the kernel follows the ref's arithmetic, so 100 % is
 *   expected; the bound leaves room for nothing but exact float ties).
 * Every device output is guarded: GUARD bytes after it must stay
 * untouched. Runs on a stream of its own.
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

/* Host buffer of `bytes`, all 0xff, as dev_out fills the device ones. */
static void *host_out(size_t bytes)
{
    void *h = malloc(bytes ? bytes : 1);
    assert_non_null(h);
    memset(h, 0xff, bytes);
    return h;
}

/* equal bits, or both NaN (the GPU's NaN arithmetic gives a canonical NaN) */
static bool same_f32(float a, float b) { return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b)); }

/* Python's round(): ties to even */
static double round_even(double x)
{
    double f = floor(x), d = x - f;
    if (d > 0.5) return f + 1;
    if (d < 0.5) return f;
    return fmod(f, 2.0) == 0 ? f : f + 1;
}

/* How Ultralytics' LetterBox fits a fw x fh frame into W x H (centered,
 * scale_up on); hand: scale_x/scale_y left 0, as a letterbox made by hand */
static kiln_letterbox make_lb(int fw, int fh, int W, int H, int hand)
{
    double r = fmin((double)H / fh, (double)W / fw);
    double nw = fmax(round_even(fw * r), 1), nh = fmax(round_even(fh * r), 1);
    kiln_letterbox lb;
    memset(&lb, 0, sizeof lb);
    lb.scale = (float)r;
    lb.pad_x = (float)round_even((W - nw) / 2 - 0.1);
    lb.pad_y = (float)round_even((H - nh) / 2 - 0.1);
    lb.frame_width = fw;
    lb.frame_height = fh;
    if (!hand) {
        lb.scale_x = (float)(nw / fw);
        lb.scale_y = (float)(nh / fh);
    }
    return lb;
}

/* ------------------------------------------------------------------ detect */

typedef struct dcase {
    const char *name;
    kiln_yolo_layout layout;
    kiln_dtype dtype;
    int B, C, E, N;
    int agnostic;
    const int *classes;
    int n_classes;
    float conf, iou;
    int max_det, max_nms;
    int boxes;   /* 0: none; 1: letterboxes (per-axis factors, one hand-made) */
    int quant;   /* f32 scores rounded to 1/64: exact ties */
    int nan;     /* NaN in some scores and boxes */
    int want_cut; /* some image must reach max_det */
    uint32_t seed;
} dcase;

/* One candidate's values before a layout places them. */
typedef struct cvals {
    float box[4]; /* cx cy w h (v10: x1 y1 x2 y2) */
    float obj;    /* v5 */
    float *cls;   /* C scores (v10: cls[0] the score, cls[1] the class value) */
    float *extra; /* E */
} cvals;

/* Candidate values of one image: a few objects, each with many candidates
 * around it (jittered boxes, its class scoring high), and background
 * candidates scoring low; pose extras look like keypoints. */
static void gen_image(const dcase *c, uint32_t *s, cvals *v)
{
    enum { K = 12 };
    float ox[K], oy[K], ow[K], oh[K];
    int oc[K];
    const int C = c->layout == KILN_YOLO_V10 ? 80 : c->C;
    for (int k = 0; k < K; k++) {
        ow[k] = rnd_f(s, 8, 300), oh[k] = rnd_f(s, 8, 300);
        ox[k] = rnd_f(s, 0, 640), oy[k] = rnd_f(s, 0, 640);
        oc[k] = (int)(rnd(s) % (uint32_t)C);
    }
    for (int i = 0; i < c->N; i++) {
        cvals *q = &v[i];
        int k = (int)(rnd(s) % K);
        bool member = rnd(s) % 100 < 35;
        float cx, cy, w, h, top;
        if (member) {
            w = ow[k] * rnd_f(s, 0.85f, 1.15f), h = oh[k] * rnd_f(s, 0.85f, 1.15f);
            cx = ox[k] + rnd_f(s, -0.1f, 0.1f) * w, cy = oy[k] + rnd_f(s, -0.1f, 0.1f) * h;
            top = rnd_f(s, 0.2f, 0.95f);
        } else {
            w = rnd_f(s, 4, 200), h = rnd_f(s, 4, 200);
            cx = rnd_f(s, -20, 660), cy = rnd_f(s, -20, 660);
            top = rnd_f(s, 0, 0.35f);
        }
        if (c->layout == KILN_YOLO_V10) {
            q->box[0] = cx - w / 2, q->box[1] = cy - h / 2, q->box[2] = cx + w / 2, q->box[3] = cy + h / 2;
            q->cls[0] = c->quant ? roundf(top * 64) / 64 : top;
            /* class values: mostly indices, some not (2.5, -1, huge) */
            uint32_t r = rnd(s) % 50;
            q->cls[1] = r == 0 ? 2.5f : r == 1 ? -1.0f : r == 2 ? 3e9f : (float)(member ? oc[k] : (int)(rnd(s) % 80));
        } else {
            q->box[0] = cx, q->box[1] = cy, q->box[2] = w, q->box[3] = h;
            for (int j = 0; j < c->C; j++) q->cls[j] = rnd_f(s, 0, 0.05f);
            int best = member ? oc[k] : (int)(rnd(s) % (uint32_t)c->C);
            q->cls[best] = top;
            if (c->C > 1 && rnd(s) % 20 == 0) q->cls[(best + 1) % c->C] = top; /* a class tie: the first wins */
            if (c->quant)
                for (int j = 0; j < c->C; j++) q->cls[j] = roundf(q->cls[j] * 64) / 64;
            q->obj = member ? rnd_f(s, 0.3f, 1.0f) : rnd_f(s, 0, 0.5f);
            if (c->quant) q->obj = roundf(q->obj * 16) / 16;
        }
        if (c->nan && rnd(s) % 97 == 0) q->cls[rnd(s) % (uint32_t)(c->layout == KILN_YOLO_V10 ? 1 : c->C)] = NAN;
        if (c->nan && rnd(s) % 89 == 0) q->box[rnd(s) % 4] = NAN;
        for (int e = 0; e < c->E; e++)
            q->extra[e] = c->E == 51 ? (e % 3 == 2 ? rnd_f(s, 0, 1) : rnd_f(s, -30, 680)) : rnd_f(s, -3, 3);
    }
}

static int64_t rows_of(const dcase *c)
{
    return c->layout == KILN_YOLO_V8 ? 4 + c->C + c->E : c->layout == KILN_YOLO_V5 ? 5 + c->C + c->E : 6 + c->E;
}

/* The network output of case c in its layout and dtype (malloc'd). */
static void *gen_pred(const dcase *c, size_t *bytes)
{
    const int64_t R = rows_of(c), N = c->N;
    const size_t count = (size_t)c->B * (size_t)R * (size_t)N;
    float *f = malloc(count * sizeof *f);
    cvals *v = malloc((size_t)N * sizeof *v);
    float *cls = malloc((size_t)N * (size_t)(c->C + 2) * sizeof *cls);
    float *ext = malloc((size_t)N * (size_t)(c->E + 1) * sizeof *ext);
    assert_true(f && v && cls && ext);
    for (int64_t i = 0; i < N; i++) {
        v[i].cls = cls + i * (c->C + 2);
        v[i].extra = ext + i * (c->E + 1);
    }
    uint32_t s = c->seed;
    for (int b = 0; b < c->B; b++) {
        gen_image(c, &s, v);
        float *img = f + (size_t)b * (size_t)R * (size_t)N;
        for (int64_t i = 0; i < N; i++) {
            const cvals *q = &v[i];
            float row[4 + 1 + 2 + 80 + 51 + 64];
            int r = 0;
            for (int k = 0; k < 4; k++) row[r++] = q->box[k];
            if (c->layout == KILN_YOLO_V5) row[r++] = q->obj;
            if (c->layout == KILN_YOLO_V10) {
                row[r++] = q->cls[0];
                row[r++] = q->cls[1];
            } else {
                for (int k = 0; k < c->C; k++) row[r++] = q->cls[k];
            }
            for (int e = 0; e < c->E; e++) row[r++] = q->extra[e];
            assert_int_equal(r, R);
            for (int k = 0; k < R; k++) {
                if (c->layout == KILN_YOLO_V8)
                    img[(size_t)k * (size_t)N + (size_t)i] = row[k];
                else
                    img[(size_t)i * (size_t)R + (size_t)k] = row[k];
            }
        }
    }
    free(v);
    free(cls);
    free(ext);
    if (c->dtype == KILN_F32) {
        *bytes = count * sizeof(float);
        return f;
    }
    uint16_t *h = malloc(count * sizeof *h);
    assert_non_null(h);
    for (size_t i = 0; i < count; i++) h[i] = kiln_f32_to_f16(f[i]);
    free(f);
    *bytes = count * sizeof(uint16_t);
    return h;
}

static void run_detect(const dcase *c)
{
    kiln_detect_options o;
    kiln_detect_options_init(&o);
    o.layout = c->layout;
    o.num_classes = c->C;
    o.num_extra = c->E;
    o.conf = c->conf;
    o.iou = c->iou;
    o.max_det = c->max_det;
    o.max_nms = c->max_nms;
    o.agnostic = c->agnostic;
    o.classes = c->classes;
    o.n_classes = c->n_classes;

    size_t pbytes = 0;
    void *hp = gen_pred(c, &pbytes);
    kiln_tensor t;
    memset(&t, 0, sizeof t);
    t.name = "pred";
    t.dtype = c->dtype;
    t.rank = 3;
    t.dims[0] = c->B;
    t.dims[1] = c->layout == KILN_YOLO_V8 ? rows_of(c) : c->N;
    t.dims[2] = c->layout == KILN_YOLO_V8 ? c->N : rows_of(c);
    t.data = hp;

    kiln_letterbox *lbs = NULL;
    if (c->boxes) {
        static const int sizes[][2] = {{1280, 720}, {1000, 563}, {640, 640}, {333, 777}, {1920, 1080}, {17, 33}};
        lbs = malloc((size_t)c->B * sizeof *lbs);
        for (int b = 0; b < c->B; b++) lbs[b] = make_lb(sizes[b % 6][0], sizes[b % 6][1], 640, 640, b % 6 == 4);
    }

    const size_t n_out = (size_t)c->B * (size_t)c->max_det;
    const size_t ob = n_out * sizeof(kiln_detection), cb = (size_t)c->B * sizeof(int);
    const size_t eb = n_out * (size_t)c->E * sizeof(float);
    kiln_detection *ro = host_out(ob);
    int *rc = host_out(cb);
    float *re = c->E ? host_out(eb) : NULL;
    assert_kiln_ok(kiln_vref_detect(&o, &t, lbs, ro, rc, re));

    kiln_tensor td = t;
    td.data = dev_copy(hp, pbytes);
    void *dout = dev_out(ob), *dcnt = dev_out(cb), *dext = c->E ? dev_out(eb) : NULL;
    assert_kiln_ok(kiln_vcuda_detect(&o, &td, lbs, dout, dcnt, dext, stream));
    kiln_detection *go = fetch(dout, ob);
    int *gc = fetch(dcnt, cb);
    float *ge = c->E ? fetch(dext, eb) : NULL;

    long total = 0;
    int most = 0, bad = 0;
    for (int b = 0; b < c->B; b++) {
        if (gc[b] != rc[b]) {
            if (bad++ < 5) print_message("  %s: image %d: %d detections, the ref %d\n", c->name, b, gc[b], rc[b]);
            continue;
        }
        total += rc[b];
        if (rc[b] > most) most = rc[b];
    }
    /* every slot, kept or not: the untouched ones are 0xff on both sides */
    for (size_t k = 0; k < n_out && !bad; k++) {
        const kiln_detection *g = &go[k], *r = &ro[k];
        bool same = same_f32(g->x1, r->x1) && same_f32(g->y1, r->y1) && same_f32(g->x2, r->x2) &&
                    same_f32(g->y2, r->y2) && same_f32(g->score, r->score) && g->class_id == r->class_id &&
                    g->anchor == r->anchor;
        if (!same && bad++ < 5)
            print_message("  %s: image %zu slot %zu: cuda (%.9g %.9g %.9g %.9g) %.9g class %d anchor %d, ref (%.9g "
                          "%.9g %.9g %.9g) %.9g class %d anchor %d\n",
                          c->name, k / (size_t)c->max_det, k % (size_t)c->max_det, g->x1, g->y1, g->x2, g->y2,
                          g->score, g->class_id, g->anchor, r->x1, r->y1, r->x2, r->y2, r->score, r->class_id,
                          r->anchor);
    }
    for (size_t k = 0; c->E && k < n_out * (size_t)c->E && !bad; k++)
        if (!same_f32(ge[k], re[k]) && bad++ < 5)
            print_message("  %s: extra %zu: cuda %.9g, ref %.9g\n", c->name, k, ge[k], re[k]);
    printf("detect    %-34s B %4d N %7d  %6ld detections (at most %4d/image)  %s\n", c->name, c->B, c->N, total,
           most, bad ? "FAIL" : "ok");
    if (bad) fail_msg("%s: cuda differs from ref", c->name);
    assert_true(total > 0 || (c->classes && c->n_classes == 0));
    if (c->want_cut) assert_int_equal(most, c->max_det);

    CK(cudaFree(td.data));
    CK(cudaFree(dout));
    CK(cudaFree(dcnt));
    if (dext) CK(cudaFree(dext));
    free(hp);
    free(lbs);
    free(ro);
    free(rc);
    free(re);
    free(go);
    free(gc);
    free(ge);
}

static const int FILTER[] = {7, 0, 2, 5, 7, 79, 1000, -3, 5};
static const int FILTER_V10[] = {3, -1, 17, 2, 40};

static void test_detect_v8(void **state)
{
    (void)state;
    const dcase cases[] = {
        {"v8 f32 class-aware", KILN_YOLO_V8, KILN_F32, 2, 80, 0, 8400, 0, NULL, 0, 0.25f, 0.7f, 300, 30000, 1, 0, 0,
         0, 11},
        {"v8 f16 class-aware", KILN_YOLO_V8, KILN_F16, 2, 80, 0, 8400, 0, NULL, 0, 0.25f, 0.7f, 300, 30000, 1, 0, 0,
         0, 12},
        {"v8 f32 agnostic, ties", KILN_YOLO_V8, KILN_F32, 2, 80, 0, 8400, 1, NULL, 0, 0.25f, 0.7f, 300, 30000, 1, 1,
         0, 0, 13},
        {"v8 f16 agnostic", KILN_YOLO_V8, KILN_F16, 3, 80, 0, 8400, 1, NULL, 0, 0.25f, 0.45f, 300, 30000, 0, 0, 0, 0,
         14},
        {"v8 f16 class filter", KILN_YOLO_V8, KILN_F16, 2, 80, 0, 8400, 0, FILTER, 9, 0.2f, 0.7f, 300, 30000, 1, 0,
         0, 0, 15},
        {"v8 f32 empty class filter", KILN_YOLO_V8, KILN_F32, 2, 80, 0, 8400, 0, FILTER, 0, 0.2f, 0.7f, 300, 30000,
         1, 0, 0, 0, 16},
        {"v8 f32 max_det 7", KILN_YOLO_V8, KILN_F32, 2, 80, 0, 8400, 0, NULL, 0, 0.25f, 0.7f, 7, 30000, 1, 0, 0, 1,
         17},
        {"v8 f16 max_nms 40 (ties at the cut)", KILN_YOLO_V8, KILN_F16, 2, 80, 0, 8400, 1, NULL, 0, 0.25f, 0.7f, 300,
         40, 1, 0, 0, 0, 18},
        {"v8 f16 conf 0.001 iou 0.5", KILN_YOLO_V8, KILN_F16, 2, 80, 0, 8400, 0, NULL, 0, 0.001f, 0.5f, 300, 30000,
         1, 0, 0, 1, 19},
        {"v8 f32 conf 0.001 max_det 1000", KILN_YOLO_V8, KILN_F32, 1, 80, 0, 8400, 1, NULL, 0, 0.001f, 0.7f, 1000,
         30000, 1, 1, 0, 0, 20},
        {"v8 f32 iou 0", KILN_YOLO_V8, KILN_F32, 2, 80, 0, 8400, 0, NULL, 0, 0.1f, 0.0f, 300, 30000, 1, 0, 0, 0, 21},
        {"v8 f32 iou 1", KILN_YOLO_V8, KILN_F32, 2, 80, 0, 8400, 0, NULL, 0, 0.3f, 1.0f, 300, 30000, 0, 0, 0, 1, 22},
        {"v8 f32 NaN scores and boxes", KILN_YOLO_V8, KILN_F32, 2, 80, 0, 8400, 0, NULL, 0, 0.1f, 0.7f, 300, 30000,
         1, 0, 1, 0, 23},
        {"v8 f16 NaN agnostic", KILN_YOLO_V8, KILN_F16, 2, 80, 0, 8400, 1, NULL, 0, 0.1f, 0.7f, 300, 30000, 1, 0, 1,
         0, 24},
        {"v8 f32 seg E 32", KILN_YOLO_V8, KILN_F32, 3, 80, 32, 8400, 0, NULL, 0, 0.25f, 0.7f, 300, 30000, 1, 0, 0, 0,
         25},
        {"v8 f16 seg E 32", KILN_YOLO_V8, KILN_F16, 3, 80, 32, 8400, 0, NULL, 0, 0.25f, 0.7f, 300, 30000, 1, 0, 0, 0,
         26},
        {"v8 f32 pose C 1 E 51", KILN_YOLO_V8, KILN_F32, 2, 1, 51, 8400, 0, NULL, 0, 0.25f, 0.7f, 300, 30000, 1, 0,
         0, 0, 27},
        {"v8 f16 pose C 1 E 51", KILN_YOLO_V8, KILN_F16, 2, 1, 51, 8400, 0, NULL, 0, 0.25f, 0.7f, 300, 30000, 1, 0,
         0, 0, 28},
        {"v8 f32 N 1000 (not a tile multiple)", KILN_YOLO_V8, KILN_F32, 5, 3, 0, 1000, 0, NULL, 0, 0.05f, 0.6f, 300,
         30000, 1, 0, 0, 0, 29},
        {"v8 f32 N 1", KILN_YOLO_V8, KILN_F32, 3, 2, 0, 1, 0, NULL, 0, 0.0f, 0.7f, 300, 30000, 1, 0, 0, 0, 30},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) run_detect(&cases[k]);
}

static void test_detect_v5_v10(void **state)
{
    (void)state;
    const dcase cases[] = {
        {"v5 f32", KILN_YOLO_V5, KILN_F32, 2, 80, 0, 25200, 0, NULL, 0, 0.25f, 0.45f, 300, 30000, 1, 0, 0, 0, 41},
        {"v5 f16 seg E 32", KILN_YOLO_V5, KILN_F16, 2, 80, 32, 25200, 0, NULL, 0, 0.25f, 0.45f, 300, 30000, 1, 0, 0,
         0, 42},
        {"v5 f32 ties agnostic filter", KILN_YOLO_V5, KILN_F32, 2, 80, 0, 25200, 1, FILTER, 9, 0.2f, 0.6f, 100,
         30000, 1, 1, 0, 0, 43},
        {"v5 f32 NaN max_nms 100", KILN_YOLO_V5, KILN_F32, 2, 80, 0, 25200, 0, NULL, 0, 0.1f, 0.7f, 300, 100, 1, 0, 1,
         0, 44},
        {"v10 f32", KILN_YOLO_V10, KILN_F32, 2, 80, 0, 300, 0, NULL, 0, 0.25f, 0.7f, 300, 30000, 1, 0, 0, 0, 51},
        {"v10 f16 max_det 50", KILN_YOLO_V10, KILN_F16, 3, 80, 0, 300, 0, NULL, 0, 0.1f, 0.7f, 50, 30000, 1, 0, 0, 1,
         52},
        {"v10 f32 filter E 32 ties", KILN_YOLO_V10, KILN_F32, 2, 80, 32, 300, 0, FILTER_V10, 5, 0.05f, 0.7f, 300,
         30000, 1, 1, 0, 0, 53},
        {"v10 f16 pose E 51 max_nms 20", KILN_YOLO_V10, KILN_F16, 2, 1, 51, 300, 0, NULL, 0, 0.1f, 0.7f, 30, 20, 1, 0,
         1, 0, 54},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) run_detect(&cases[k]);
}

/* Sizes that need more than one pass of the scratch (2^21 candidates), or
 * one image beyond it. */
static void test_detect_large(void **state)
{
    (void)state;
    const dcase cases[] = {
        {"v8 f16 300 images (two passes)", KILN_YOLO_V8, KILN_F16, 300, 4, 0, 8400, 0, NULL, 0, 0.25f, 0.7f, 300,
         30000, 1, 0, 0, 0, 61},
        {"v8 f32 one image of 2^21 + 5", KILN_YOLO_V8, KILN_F32, 1, 2, 0, (1 << 21) + 5, 0, NULL, 0, 0.9f, 0.7f, 300,
         30000, 1, 0, 0, 0, 62},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) run_detect(&cases[k]);
}

/* --------------------------------------------------------------- keypoints */

static void test_keypoints(void **state)
{
    (void)state;
    const int n = 37, k = 17;
    const size_t count = (size_t)n * k * 3, bytes = count * sizeof(float);
    float *ex = malloc(bytes);
    uint32_t s = 99;
    for (size_t i = 0; i < count; i++) ex[i] = i % 3 == 2 ? rnd_f(&s, 0, 1) : rnd_f(&s, -40, 690);
    ex[4] = NAN;
    const kiln_letterbox lbs[] = {make_lb(1000, 563, 640, 640, 0), make_lb(1920, 1080, 640, 640, 1)};
    for (int v = 0; v < 4; v++) {
        const kiln_letterbox *box = v < 2 ? &lbs[v] : v == 2 ? NULL : &lbs[0];
        const bool in_place = v == 3;
        float *want = host_out(bytes);
        assert_kiln_ok(kiln_vref_keypoints(n, k, ex, box, want));
        float *dex = dev_copy(ex, bytes);
        float *dkp = in_place ? dex : dev_out(bytes);
        assert_kiln_ok(kiln_vcuda_keypoints(n, k, dex, box, dkp, stream));
        float *got = in_place ? NULL : fetch(dkp, bytes);
        if (in_place) {
            CK(cudaStreamSynchronize(stream));
            got = malloc(bytes);
            CK(cudaMemcpy(got, dkp, bytes, cudaMemcpyDeviceToHost));
        }
        int bad = 0;
        for (size_t i = 0; i < count; i++)
            if (!same_f32(got[i], want[i]) && bad++ < 5)
                print_message("  keypoints %d: value %zu: cuda %.9g, ref %.9g\n", v, i, got[i], want[i]);
        static const char *const names[] = {"per-axis letterbox", "hand-made letterbox", "none", "in place"};
        printf("keypoints %-34s %s\n", names[v], bad ? "FAIL" : "ok");
        assert_int_equal(bad, 0);
        CK(cudaFree(dex));
        if (!in_place) CK(cudaFree(dkp));
        free(want);
        free(got);
    }
    free(ex);
}

/* ------------------------------------------------------------------- masks */

typedef struct mcase {
    const char *name;
    kiln_dtype dtype;
    int P, mh, mw;
    int n;
    int lb;             /* index into the letterboxes; -1: none */
    int out_w, out_h;   /* 0 x 0: frame-sized */
    float threshold;
    uint32_t seed;
} mcase;

static const kiln_letterbox *mask_lb(int i)
{
    static kiln_letterbox lbs[3];
    lbs[0] = make_lb(1280, 720, 640, 640, 0);
    lbs[1] = make_lb(1000, 563, 640, 640, 0);
    lbs[2] = make_lb(500, 375, 640, 640, 0); /* enlarged: scale 1.28 */
    return i < 0 ? NULL : &lbs[i];
}

/* Detection boxes in the frame's pixels (network pixels without a
 * letterbox), as kiln_vision_detect returns them: many from whole network
 * pixels mapped through the letterbox, some sub-pixel, partly outside,
 * empty and NaN ones. */
static void gen_dets(const mcase *c, const kiln_letterbox *lb, uint32_t *s, kiln_detection *d)
{
    const float fw = lb ? (float)lb->frame_width : 640, fh = lb ? (float)lb->frame_height : 640;
    const float sx = lb ? (lb->scale_x > 0 ? lb->scale_x : lb->scale) : 1;
    const float sy = lb ? (lb->scale_y > 0 ? lb->scale_y : lb->scale) : 1;
    const float px = lb ? lb->pad_x : 0, py = lb ? lb->pad_y : 0;
    for (int i = 0; i < c->n; i++) {
        float x1 = rnd_f(s, -20, 620), y1 = rnd_f(s, -20, 620);
        float x2 = x1 + rnd_f(s, 2, 300), y2 = y1 + rnd_f(s, 2, 300);
        if (i % 3 == 0) x1 = floorf(x1), y1 = floorf(y1), x2 = floorf(x2), y2 = floorf(y2);
        /* network -> frame as kiln_vision_detect maps (and clips) them */
        float v[4] = {(x1 - px) / sx, (y1 - py) / sy, (x2 - px) / sx, (y2 - py) / sy};
        const float side[4] = {fw, fh, fw, fh};
        for (int k = 0; k < 4; k++) v[k] = v[k] < 0 ? 0 : v[k] > side[k] ? side[k] : v[k];
        memset(&d[i], 0, sizeof d[i]);
        d[i].x1 = v[0], d[i].y1 = v[1], d[i].x2 = v[2], d[i].y2 = v[3];
        d[i].score = 0.5f;
        if (i % 17 == 5) d[i].x2 = d[i].x1;    /* empty */
        if (i % 19 == 7) d[i].y1 = NAN;        /* NaN: an empty mask */
        if (i % 23 == 11) d[i].x1 = -50, d[i].y1 = -50, d[i].x2 = fw + 50, d[i].y2 = fh + 50; /* all of it */
    }
}

static void run_masks(const mcase *c)
{
    const kiln_letterbox *lb = mask_lb(c->lb);
    uint32_t s = c->seed;
    /* smooth prototypes: a few waves per plane, so masks are blobs */
    const size_t pc = (size_t)c->P * c->mh * c->mw;
    float *pf = malloc(pc * sizeof *pf);
    assert_non_null(pf);
    for (int p = 0; p < c->P; p++) {
        float ax = rnd_f(&s, 0.02f, 0.2f), ay = rnd_f(&s, 0.02f, 0.2f), ph = rnd_f(&s, 0, 6.3f);
        float bx = rnd_f(&s, -0.1f, 0.1f), by = rnd_f(&s, -0.1f, 0.1f);
        for (int y = 0; y < c->mh; y++)
            for (int x = 0; x < c->mw; x++)
                pf[((size_t)p * c->mh + y) * c->mw + x] = sinf(ax * x + ay * y + ph) + 0.5f * cosf(bx * x - by * y);
    }
    void *hp = pf;
    size_t pbytes = pc * sizeof(float);
    if (c->dtype == KILN_F16) {
        uint16_t *h = malloc(pc * sizeof *h);
        for (size_t i = 0; i < pc; i++) h[i] = kiln_f32_to_f16(pf[i]);
        hp = h;
        pbytes = pc * sizeof *h;
    }
    float *coeffs = malloc((size_t)c->n * c->P * sizeof *coeffs);
    for (size_t i = 0; i < (size_t)c->n * c->P; i++) coeffs[i] = rnd_f(&s, -1, 1);
    kiln_detection *dets = malloc((size_t)c->n * sizeof *dets);
    gen_dets(c, lb, &s, dets);

    kiln_mask_options o;
    kiln_mask_options_init(&o);
    o.out_width = c->out_w;
    o.out_height = c->out_h;
    o.threshold = c->threshold;
    kiln_tensor t;
    memset(&t, 0, sizeof t);
    t.name = "protos";
    t.dtype = c->dtype;
    t.rank = 4;
    t.dims[0] = 1, t.dims[1] = c->P, t.dims[2] = c->mh, t.dims[3] = c->mw;
    t.data = hp;
    const int W = c->out_w ? c->out_w : lb->frame_width, H = c->out_w ? c->out_h : lb->frame_height;
    const size_t image = (size_t)W * H, mb = (size_t)c->n * image;
    uint8_t *want = host_out(mb);
    assert_kiln_ok(kiln_vref_masks(&o, c->n, coeffs, dets, &t, lb, 640, 640, want));

    kiln_tensor td = t;
    td.data = dev_copy(hp, pbytes);
    float *dco = dev_copy(coeffs, (size_t)c->n * c->P * sizeof *coeffs);
    kiln_detection *dd = dev_copy(dets, (size_t)c->n * sizeof *dets);
    uint8_t *dm = dev_out(mb);
    assert_kiln_ok(kiln_vcuda_masks(&o, c->n, dco, dd, &td, lb, 640, 640, dm, stream));
    uint8_t *got = fetch(dm, mb);

    size_t differ = 0, on = 0;
    double worst_iou = 1;
    int worst_at = -1;
    for (int i = 0; i < c->n; i++) {
        size_t inter = 0, uni = 0;
        const uint8_t *g = got + (size_t)i * image, *w = want + (size_t)i * image;
        for (size_t k = 0; k < image; k++) {
            assert_true(g[k] <= 1);
            differ += g[k] != w[k];
            inter += g[k] && w[k];
            uni += g[k] || w[k];
            on += w[k];
        }
        double iou = uni ? (double)inter / (double)uni : 1;
        if (iou < worst_iou) worst_iou = iou, worst_at = i;
    }
    double agree = 1 - (double)differ / (double)mb;
    printf("masks     %-34s n %3d %5dx%-5d %9zu px on, %zu differ (%.6f%% agree), worst IoU %.6f%s\n", c->name, c->n,
           W, H, on, differ, 100 * agree, worst_iou, agree >= 0.9999 && worst_iou >= 0.999 ? "  ok" : "  FAIL");
    if (!(agree >= 0.9999 && worst_iou >= 0.999))
        fail_msg("%s: %zu pixels differ, instance %d IoU %.6f", c->name, differ, worst_at, worst_iou);
    if (c->threshold < 1) assert_true(on > 0);

    CK(cudaFree(td.data));
    CK(cudaFree(dco));
    CK(cudaFree(dd));
    CK(cudaFree(dm));
    free(pf);
    if (hp != pf) free(hp);
    free(coeffs);
    free(dets);
    free(want);
    free(got);
}

static void test_masks(void **state)
{
    (void)state;
    const mcase cases[] = {
        {"frame 1280x720 f32", KILN_F32, 32, 160, 160, 24, 0, 0, 0, 0.5f, 71},
        {"frame 1280x720 f16", KILN_F16, 32, 160, 160, 24, 0, 0, 0, 0.5f, 72},
        {"frame 1000x563 (per-axis) f32", KILN_F32, 32, 160, 160, 24, 1, 0, 0, 0.5f, 73},
        {"frame 500x375 (enlarged) f16 t 0.3", KILN_F16, 32, 160, 160, 24, 2, 0, 0, 0.3f, 74},
        {"net 640x640 f32", KILN_F32, 32, 160, 160, 24, 0, 640, 640, 0.5f, 75},
        {"net 640x640 f16 per-axis", KILN_F16, 32, 160, 160, 24, 1, 640, 640, 0.5f, 76},
        {"proto 160x160 f32", KILN_F32, 32, 160, 160, 24, 0, 160, 160, 0.5f, 77},
        {"net 640x640 no letterbox", KILN_F32, 32, 160, 160, 24, -1, 640, 640, 0.5f, 78},
        {"odd 333x201, protos 40x52, P 70", KILN_F32, 70, 40, 52, 9, 1, 333, 201, 0.5f, 79},
        {"frame, threshold 0", KILN_F32, 32, 160, 160, 8, 1, 0, 0, 0.0f, 80},
        {"frame, threshold 1", KILN_F16, 32, 160, 160, 8, 1, 0, 0, 1.0f, 81},
        {"700 detections (two passes)", KILN_F16, 32, 160, 160, 700, 0, 160, 160, 0.5f, 82},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) run_masks(&cases[k]);
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
        cmocka_unit_test(test_detect_v8), cmocka_unit_test(test_detect_v5_v10), cmocka_unit_test(test_detect_large),
        cmocka_unit_test(test_keypoints), cmocka_unit_test(test_masks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
#endif
}
