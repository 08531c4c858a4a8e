/* YOLO detection decoding, NMS and pose keypoints on the host: the ref
 * kernels of kiln_vision_detect and kiln_vision_keypoints, and the oracle
 * the cuda kernels are checked against.
 *
 * The aim is the same detections as Ultralytics' own post-processing
 * (ultralytics.utils.nms.non_max_suppression, then ops.scale_boxes /
 * scale_coords) on the same raw output, so every step below follows its
 * order of filters and its float32 arithmetic:
 *
 *   v8/v11  a candidate's score is its best class score (the first class on
 *           a tie, as torch's max); it must be > conf; single label per box;
 *           the class filter looks at that best class only.
 *   v5      YOLOv5's own rule (current Ultralytics has no objectness path):
 *           objectness > conf first, then score = obj * cls per class, the
 *           best product > conf.
 *   v10     end to end, no NMS: score > conf and the class filter, the first
 *           max_det such rows in the output's order (as Ultralytics' end2end
 *           branch; a v10 head emits them best first), then ordered by score.
 *
 * Ordering: candidates are sorted by score descending with ties kept in
 * candidate order, which is what torchvision.ops.nms's internal sort does
 * on the CPU (it is stable; measured with torchvision 0.29). Ultralytics
 * cuts to max_nms with an unstable argsort, so when more than max_nms
 * candidates pass and equal scores straddle the cut, which of them it keeps
 * is arbitrary; kiln keeps the earlier candidates.
 *
 * NMS is torchvision's greedy rule: boxes offset by class * 7680 (unless
 * agnostic), area (x2-x1)*(y2-y1) with no +1, suppressed when
 * inter / (area_i + area_j - inter) > iou. A candidate is checked only
 * against the boxes already kept: a suppressed box suppresses nothing in
 * greedy NMS, so this is the same result with O(K * max_det) work and no
 * K x K matrix, and it stops as soon as max_det boxes are kept.
 *
 * f16 outputs are widened to f32 as they are read; every later step is f32
 * (Ultralytics on a half tensor would compute in half). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vision/vision.h"

/* ------------------------------------------------------------ reading pred */

typedef struct pred_view {
    const float *f32;
    const uint16_t *f16;
    int64_t rows, n; /* values per candidate, candidates per image */
    int v8;          /* 1: [B, rows, N] (a value's row is the slow index) */
} pred_view;

/* value `r` of candidate `i` of image `b` */
static float pv_at(const pred_view *p, int64_t b, int64_t r, int64_t i)
{
    int64_t k = b * p->rows * p->n + (p->v8 ? r * p->n + i : i * p->rows + r);
    return p->f32 ? p->f32[k] : kiln_f16_to_f32(p->f16[k]);
}

/* ------------------------------------------------------------- candidates */

typedef struct cand {
    float score;
    int index; /* the anchor: position in the output's N */
    int cls;
} cand;

/* score descending, then candidate index ascending: a total order, so
 * qsort gives the same sequence as a stable sort of the candidates by
 * score (scores here are never NaN: they passed `> conf`). */
static int by_score(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return (x->index > y->index) - (x->index < y->index);
}

static int class_wanted(const kiln_detect_options *o, int cls)
{
    if (!o->classes) return 1;
    for (int k = 0; k < o->n_classes; k++)
        if (o->classes[k] == cls) return 1;
    return 0;
}

/* A float class value (v10's column 5) as an int; values that are not a
 * class index (NaN, huge) become -1, which no class filter names. */
static int class_of(float v)
{
    return v >= 0 && v < 2147483520.0f && v == floorf(v) ? (int)v : -1;
}

/* YOLOv8: rows 4.. are class scores. The best class is found row by row
 * (the output is [rows, N]; walking one candidate's column would stride N
 * floats per read). NaN propagates as in torch's amax / max: a candidate
 * with a NaN class score has a NaN best and never passes `> conf`. */
static int gather_v8(const kiln_detect_options *o, const pred_view *p, int64_t b, float *best, int *best_cls,
                     cand *c)
{
    int64_t n = p->n;
    for (int64_t i = 0; i < n; i++) {
        best[i] = pv_at(p, b, 4, i);
        best_cls[i] = 0;
    }
    for (int k = 1; k < o->num_classes; k++)
        for (int64_t i = 0; i < n; i++) {
            float cur = best[i], v = pv_at(p, b, 4 + k, i);
            if (cur != cur) continue;  /* a NaN best stays NaN */
            if (v > cur || v != v) { /* strict: the first class wins a tie */
                best[i] = v;
                best_cls[i] = k;
            }
        }
    int m = 0;
    for (int64_t i = 0; i < n; i++)
        if (best[i] > o->conf && class_wanted(o, best_cls[i])) c[m++] = (cand){best[i], (int)i, best_cls[i]};
    return m;
}

/* YOLOv5 (its repo's non_max_suppression): objectness > conf, then each
 * class's obj * cls; the best product, first class on a tie, > conf. The
 * products are compared, not the class scores, as YOLOv5 multiplies first:
 * two class scores can round to the same product. */
static int gather_v5(const kiln_detect_options *o, const pred_view *p, int64_t b, cand *c)
{
    int m = 0;
    for (int64_t i = 0; i < p->n; i++) {
        float obj = pv_at(p, b, 4, i);
        if (!(obj > o->conf)) continue;
        float best = obj * pv_at(p, b, 5, i);
        int cls = 0;
        for (int k = 1; k < o->num_classes && best == best; k++) {
            float v = obj * pv_at(p, b, 5 + k, i);
            if (v > best || v != v) {
                best = v;
                cls = k;
            }
        }
        if (best > o->conf && class_wanted(o, cls)) c[m++] = (cand){best, (int)i, cls};
    }
    return m;
}

/* YOLOv10: no NMS. Ultralytics' end2end branch keeps the first max_det rows
 * with score > conf (and a wanted class) in the output's order. */
static int gather_v10(const kiln_detect_options *o, const pred_view *p, int64_t b, cand *c)
{
    int m = 0;
    for (int64_t i = 0; i < p->n && m < o->max_det; i++) {
        float s = pv_at(p, b, 4, i);
        if (!(s > o->conf)) continue;
        int cls = class_of(pv_at(p, b, 5, i));
        if (!class_wanted(o, cls)) continue;
        c[m++] = (cand){s, (int)i, cls};
    }
    return m;
}

/* ------------------------------------------------------------------- boxes */

/* Candidate i's box as x1 y1 x2 y2 in network pixels: v8/v5 convert from
 * cx cy w h as Ultralytics' xywh2xyxy (half size first, then center -/+). */
static void box_of(const pred_view *p, kiln_yolo_layout layout, int64_t b, int64_t i, float xy[4])
{
    float a = pv_at(p, b, 0, i), bb = pv_at(p, b, 1, i), c = pv_at(p, b, 2, i), d = pv_at(p, b, 3, i);
    if (layout == KILN_YOLO_V10) {
        xy[0] = a, xy[1] = bb, xy[2] = c, xy[3] = d;
        return;
    }
    float hw = c / 2, hh = d / 2;
    xy[0] = a - hw, xy[1] = bb - hh, xy[2] = a + hw, xy[3] = bb + hh;
}

/* A kept box as NMS sees it: shifted by its class offset, with its area. */
typedef struct nms_box {
    float x1, y1, x2, y2, area;
} nms_box;

static nms_box nms_box_of(const float xy[4], float offset)
{
    nms_box q = {xy[0] + offset, xy[1] + offset, xy[2] + offset, xy[3] + offset, 0};
    float w = q.x2 - q.x1, h = q.y2 - q.y1; /* separate statements: no fused multiply-add */
    q.area = w * h;
    return q;
}

/* torchvision's overlap test, term by term in f32 (its max/min written as
 * std::max/min are, so NaN coordinates behave the same). */
static int overlaps(const nms_box *k, const nms_box *j, float iou)
{
    float xx1 = k->x1 < j->x1 ? j->x1 : k->x1;
    float yy1 = k->y1 < j->y1 ? j->y1 : k->y1;
    float xx2 = j->x2 < k->x2 ? j->x2 : k->x2;
    float yy2 = j->y2 < k->y2 ? j->y2 : k->y2;
    float dw = xx2 - xx1, dh = yy2 - yy1;
    float w = 0 < dw ? dw : 0, h = 0 < dh ? dh : 0;
    float inter = w * h;
    float sum = k->area + j->area;
    float uni = sum - inter;
    return inter / uni > iou;
}

/* Ultralytics' scale_boxes + clip_boxes with the letterbox's own padding
 * and per-axis factors: (v - pad) / factor, then clamped to [0, side]. NaN
 * stays NaN, as torch's clamp leaves it. */
static float to_frame(float v, float pad, float factor, int side)
{
    v = (v - pad) / factor;
    if (v < 0) v = 0;
    if (v > (float)side) v = (float)side;
    return v;
}

/* The factor that maps an axis back: scale_x / scale_y, the frame's real
 * resize per axis (new_w / w, new_h / h, as Ultralytics' scale_boxes
 * recomputes them), or `scale` where a hand-made letterbox left them 0. */
/* the f32 factor Ultralytics divides by (vision.h's rule: scale_x / scale_y,
 * else scale); vision.c checked it is finite and > 0 */
static float axis_factor(const kiln_letterbox *lb, int y)
{
    return (float)(y ? kiln_lb_scale_y(lb) : kiln_lb_scale_x(lb));
}

/* ------------------------------------------------------------------ detect */

kiln_status kiln_vref_detect(const kiln_detect_options *o, const kiln_tensor *pred, const kiln_letterbox *boxes,
                             kiln_detection *out, int *counts, float *extra)
{
    int v8 = o->layout == KILN_YOLO_V8;
    pred_view p = {pred->dtype == KILN_F32 ? (const float *)pred->data : NULL,
                   pred->dtype == KILN_F16 ? (const uint16_t *)pred->data : NULL, v8 ? pred->dims[1] : pred->dims[2],
                   v8 ? pred->dims[2] : pred->dims[1], v8};
    int64_t nb = pred->dims[0];
    int E = o->num_extra;
    int64_t extra_row = o->layout == KILN_YOLO_V8 ? 4 + o->num_classes
                        : o->layout == KILN_YOLO_V5 ? 5 + o->num_classes
                                                    : 6;
    if (nb == 0) return KILN_OK;
    if (p.n == 0) {
        memset(counts, 0, (size_t)nb * sizeof *counts);
        return KILN_OK;
    }

    /* one block for the whole call, reused by every image: O(N + max_det) */
    size_t n = (size_t)p.n;
    size_t kept_cap = (size_t)o->max_det;
    size_t bytes = n * sizeof(cand) + (v8 ? n * (sizeof(float) + sizeof(int)) : 0) + kept_cap * sizeof(nms_box);
    char *mem = kiln_xmalloc(bytes);
    if (!mem) return KILN_ERR_OUT_OF_MEMORY;
    cand *c = (cand *)mem;
    nms_box *kept = (nms_box *)(mem + n * sizeof(cand));
    float *best = v8 ? (float *)((char *)kept + kept_cap * sizeof(nms_box)) : NULL;
    int *best_cls = v8 ? (int *)(best + n) : NULL;
    float offset_per_class = o->agnostic ? 0.0f : KILN_VISION_MAX_WH;

    for (int64_t b = 0; b < nb; b++) {
        int m = o->layout == KILN_YOLO_V8   ? gather_v8(o, &p, b, best, best_cls, c)
                : o->layout == KILN_YOLO_V5 ? gather_v5(o, &p, b, c)
                                            : gather_v10(o, &p, b, c);
        qsort(c, (size_t)m, sizeof *c, by_score);
        if (m > o->max_nms) m = o->max_nms;

        kiln_detection *d = out + b * o->max_det;
        int count = 0;
        for (int i = 0; i < m && count < o->max_det; i++) {
            float xy[4];
            box_of(&p, o->layout, b, c[i].index, xy);
            if (o->layout != KILN_YOLO_V10) {
                /* the class offset is added in f32 as Ultralytics does: far
                 * from 0 it rounds the coordinates, and NMS sees them so */
                nms_box q = nms_box_of(xy, (float)c[i].cls * offset_per_class);
                int drop = 0;
                for (int k = 0; k < count && !drop; k++) drop = overlaps(&kept[k], &q, o->iou);
                if (drop) continue;
                kept[count] = q;
            }
            kiln_detection *r = &d[count];
            if (boxes) {
                const kiln_letterbox *lb = &boxes[b];
                float sx = axis_factor(lb, 0), sy = axis_factor(lb, 1);
                r->x1 = to_frame(xy[0], lb->pad_x, sx, lb->frame_width);
                r->y1 = to_frame(xy[1], lb->pad_y, sy, lb->frame_height);
                r->x2 = to_frame(xy[2], lb->pad_x, sx, lb->frame_width);
                r->y2 = to_frame(xy[3], lb->pad_y, sy, lb->frame_height);
            } else {
                r->x1 = xy[0], r->y1 = xy[1], r->x2 = xy[2], r->y2 = xy[3];
            }
            r->score = c[i].score;
            r->class_id = c[i].cls;
            r->anchor = c[i].index;
            if (extra && E > 0) {
                float *e = extra + ((size_t)b * (size_t)o->max_det + (size_t)count) * (size_t)E;
                for (int k = 0; k < E; k++) e[k] = pv_at(&p, b, extra_row + k, c[i].index);
            }
            count++;
        }
        counts[b] = count;
    }
    free(mem);
    return KILN_OK;
}

/* --------------------------------------------------------------- keypoints */

/* Ultralytics' scale_coords + clip_coords for (n, K, 3) keypoints: x and y
 * through the letterbox (per-axis factors, as boxes) and clamped to the
 * frame; the confidence as given. */
kiln_status kiln_vref_keypoints(int n, int k, const float *extra, const kiln_letterbox *box, float *kp)
{
    size_t total = (size_t)n * (size_t)k;
    if (!box) {
        memmove(kp, extra, total * 3 * sizeof *kp);
        return KILN_OK;
    }
    float sx = axis_factor(box, 0), sy = axis_factor(box, 1);
    for (size_t i = 0; i < total; i++) {
        const float *s = extra + 3 * i;
        float *t = kp + 3 * i;
        float x = to_frame(s[0], box->pad_x, sx, box->frame_width);
        float y = to_frame(s[1], box->pad_y, sy, box->frame_height);
        t[2] = s[2];
        t[0] = x, t[1] = y;
    }
    return KILN_OK;
}
