/* The vision layer's public calls (include/kiln_vision.h): arguments
 * checked once, with messages naming the argument, then the kernel of the
 * backend asked for (kernels.c). A backend without a kernel for a step
 * answers KILN_ERR_UNSUPPORTED, never a run on another backend. */
#include <math.h>
#include <string.h>

#include "vision/vision.h"

#define NEED(cond, ...)                                                      \
    do {                                                                     \
        if (!(cond)) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, __VA_ARGS__); \
    } while (0)

/* The kernels of backend `where`, with the error naming what is missing
 * when it has none for `step`. */
static kiln_status kernels_of(const char *fn, kiln_backend where, const kiln_vision_kernels **out)
{
    if (where != KILN_BACKEND_REF && where != KILN_BACKEND_CUDA)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "%s: unknown backend %d", fn, (int)where);
    *out = kiln_vision_kernels_of(where);
    if (!*out)
        return kiln_fail(KILN_ERR_UNSUPPORTED,
                         "%s: this kiln is built without the cuda backend; use KILN_BACKEND_REF (host memory)", fn);
    return KILN_OK;
}

/* Declares k, the backend's kernels, and returns the error when its
 * kernel for `step` is missing. */
#define KERNEL(fn, where, step)                                                                       \
    const kiln_vision_kernels *k;                                                                     \
    do {                                                                                              \
        kiln_status ks_ = kernels_of(fn, where, &k);                                                  \
        if (ks_ != KILN_OK) return ks_;                                                               \
        if (!k->step)                                                                                 \
            return kiln_fail(KILN_ERR_UNSUPPORTED,                                                    \
                             "%s: the %s backend has no kernel for this step yet; use KILN_BACKEND_REF " \
                             "(host memory)",                                                         \
                             fn, k->name);                                                            \
    } while (0)

void kiln_preprocess_options_init(kiln_preprocess_options *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->width = o->height = 640;
    o->dtype = KILN_F32;
    for (int c = 0; c < 3; c++) o->std[c] = 1;
    o->pad_value = 114;
    o->center = 1;
    o->scale_up = 1;
}

void kiln_mask_options_init(kiln_mask_options *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->threshold = 0.5f;
}

void kiln_detect_options_init(kiln_detect_options *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->layout = KILN_YOLO_V8;
    o->num_classes = 80;
    o->conf = 0.25f;
    o->iou = 0.7f;
    o->max_det = 300;
    o->max_nms = 30000;
}


static kiln_status check_pre(const char *fn, const kiln_preprocess_options *o)
{
    NEED(o, "%s: options are NULL", fn);
    NEED(o->width > 0 && o->height > 0 && o->width <= KILN_VISION_MAX_SIDE && o->height <= KILN_VISION_MAX_SIDE,
         "%s: the input size %dx%d is not 1..%d per side", fn, o->width, o->height, KILN_VISION_MAX_SIDE);
    NEED(o->dtype == KILN_F32 || o->dtype == KILN_F16, "%s: dtype %s: only f32 and f16 inputs are written", fn,
         kiln_dtype_name(o->dtype));
    for (int c = 0; c < 3; c++)
        NEED(isfinite(o->mean[c]) && isfinite(o->std[c]) && o->std[c] != 0,
             "%s: mean/std of channel %d must be finite with std != 0", fn, c);
    return KILN_OK;
}

static kiln_status check_frame(const char *fn, const kiln_frame *f, int i)
{
    NEED(f->data, "%s: frame %d has no data", fn, i);
    NEED(f->width > 0 && f->height > 0 && f->width <= KILN_VISION_MAX_SIDE && f->height <= KILN_VISION_MAX_SIDE,
         "%s: frame %d is %dx%d; sides must be 1..%d", fn, i, f->width, f->height, KILN_VISION_MAX_SIDE);
    NEED(f->stride == 0 || f->stride >= f->width * 3, "%s: frame %d: stride %d is less than width x 3 = %d", fn, i,
         f->stride, f->width * 3);
    return KILN_OK;
}

/* A letterbox results are mapped through: finite factors > 0, finite
 * padding, a frame of 1..KILN_VISION_MAX_SIDE a side. */
static kiln_status check_letterbox(const char *fn, const kiln_letterbox *lb, int64_t i)
{
    double sx = kiln_lb_scale_x(lb), sy = kiln_lb_scale_y(lb);
    NEED(isfinite(sx) && sx > 0 && isfinite(sy) && sy > 0 && isfinite(lb->pad_x) && isfinite(lb->pad_y) &&
             lb->frame_width > 0 && lb->frame_height > 0 && lb->frame_width <= KILN_VISION_MAX_SIDE &&
             lb->frame_height <= KILN_VISION_MAX_SIDE,
         "%s: letterbox %lld (scale %g, axes %g,%g, pad %g,%g, frame %dx%d) needs finite factors > 0 (scale_x/"
         "scale_y, or scale where they are 0), finite padding and a frame of 1..%d a side",
         fn, (long long)i, lb->scale, lb->scale_x, lb->scale_y, lb->pad_x, lb->pad_y, lb->frame_width,
         lb->frame_height, KILN_VISION_MAX_SIDE);
    return KILN_OK;
}

kiln_status kiln_vision_preprocess(kiln_backend where, const kiln_preprocess_options *o, int n,
                                   const kiln_frame *frames, void *out, kiln_letterbox *boxes, void *stream)
{
    static const char fn[] = "kiln_vision_preprocess";
    kiln_status st = check_pre(fn, o);
    if (st != KILN_OK) return st;
    NEED(n >= 0 && (n == 0 || (frames && out)), "%s: %d frames, frames or out NULL", fn, n);
    for (int i = 0; i < n; i++)
        if ((st = check_frame(fn, &frames[i], i)) != KILN_OK) return st;
    KERNEL(fn, where, preprocess);
    return n ? k->preprocess(o, n, frames, out, boxes, stream) : KILN_OK;
}

kiln_status kiln_vision_detect(kiln_backend where, const kiln_detect_options *o, const kiln_tensor *pred,
                               const kiln_letterbox *boxes, kiln_detection *out, int *counts, float *extra,
                               void *stream)
{
    static const char fn[] = "kiln_vision_detect";
    NEED(o && pred && out && counts, "%s: options, pred, out and counts must not be NULL", fn);
    NEED(o->layout == KILN_YOLO_V8 || o->layout == KILN_YOLO_V5 || o->layout == KILN_YOLO_V10,
         "%s: unknown layout %d", fn, (int)o->layout);
    NEED(o->layout == KILN_YOLO_V10 || o->num_classes > 0, "%s: num_classes is %d", fn, o->num_classes);
    NEED(o->num_extra >= 0, "%s: num_extra is %d", fn, o->num_extra);
    NEED(o->max_det > 0 && o->max_nms > 0, "%s: max_det %d and max_nms %d must be > 0", fn, o->max_det, o->max_nms);
    NEED(o->conf >= 0 && o->conf <= 1 && o->iou >= 0 && o->iou <= 1, "%s: conf %g and iou %g must be in [0, 1]", fn,
         o->conf, o->iou);
    NEED(o->n_classes >= 0 && (o->n_classes == 0 || o->classes), "%s: n_classes %d without classes", fn,
         o->n_classes);
    NEED(pred->dtype == KILN_F32 || pred->dtype == KILN_F16, "%s: pred is %s; f32 or f16 expected", fn,
         kiln_dtype_name(pred->dtype));
    NEED(pred->rank == 3, "%s: pred has rank %d; [B, rows, candidates] or [B, candidates, rows] expected", fn,
         pred->rank);
    int64_t rows = o->layout == KILN_YOLO_V8   ? 4 + o->num_classes + o->num_extra
                   : o->layout == KILN_YOLO_V5 ? 5 + o->num_classes + o->num_extra
                                               : 6 + o->num_extra;
    int64_t got = o->layout == KILN_YOLO_V8 ? pred->dims[1] : pred->dims[2];
    NEED(got == rows,
         "%s: pred is [%lld, %lld, %lld]: the %s layout with %d classes and %d extra values has %lld values per "
         "candidate (dim %d)",
         fn, (long long)pred->dims[0], (long long)pred->dims[1], (long long)pred->dims[2],
         o->layout == KILN_YOLO_V8 ? "YOLOv8" : o->layout == KILN_YOLO_V5 ? "YOLOv5" : "YOLOv10", o->num_classes,
         o->num_extra, (long long)rows, o->layout == KILN_YOLO_V8 ? 1 : 2);
    NEED(pred->dims[0] >= 0 && pred->dims[0] <= 1 << 20 && pred->dims[1] >= 0 && pred->dims[2] >= 0 &&
             pred->dims[1] * pred->dims[2] <= (int64_t)1 << 31,
         "%s: pred's dims are implausible", fn);
    NEED(pred->data || pred->dims[0] == 0 || pred->dims[1] == 0 || pred->dims[2] == 0, "%s: pred '%s' has no data",
         fn, pred->name ? pred->name : "");
    for (int64_t b = 0; boxes && b < pred->dims[0]; b++) {
        kiln_status st = check_letterbox(fn, &boxes[b], b);
        if (st != KILN_OK) return st;
    }
    KERNEL(fn, where, detect);
    return k->detect(o, pred, boxes, out, counts, extra, stream);
}

kiln_status kiln_vision_keypoints(kiln_backend where, int n, int n_kp, const float *extra, const kiln_letterbox *box,
                                  float *kp, void *stream)
{
    static const char fn[] = "kiln_vision_keypoints";
    NEED(n >= 0 && n_kp > 0 && (n == 0 || (extra && kp)), "%s: n %d, k %d, extra or kp NULL", fn, n, n_kp);
    kiln_status st = box ? check_letterbox(fn, box, 0) : KILN_OK;
    if (st != KILN_OK) return st;
    KERNEL(fn, where, keypoints);
    return n ? k->keypoints(n, n_kp, extra, box, kp, stream) : KILN_OK;
}

kiln_status kiln_vision_masks(kiln_backend where, const kiln_mask_options *o, int n, const float *coeffs,
                              const kiln_detection *dets, const kiln_tensor *protos, const kiln_letterbox *box,
                              int net_width, int net_height, uint8_t *masks, void *stream)
{
    static const char fn[] = "kiln_vision_masks";
    NEED(o && protos && n >= 0, "%s: options or protos NULL, or n %d", fn, n);
    NEED(n == 0 || (coeffs && dets && masks), "%s: coeffs, dets or masks NULL", fn);
    NEED(protos->data && (protos->dtype == KILN_F32 || protos->dtype == KILN_F16),
         "%s: protos must hold f32 or f16 data", fn);
    NEED(protos->rank == 3 || (protos->rank == 4 && protos->dims[0] == 1),
         "%s: protos must be [P, mh, mw] (or [1, P, mh, mw]), rank %d given", fn, protos->rank);
    NEED(net_width > 0 && net_height > 0 && net_width <= KILN_VISION_MAX_SIDE && net_height <= KILN_VISION_MAX_SIDE,
         "%s: network input %dx%d", fn, net_width, net_height);
    const int side = KILN_VISION_MAX_SIDE;
    NEED(o->out_width >= 0 && o->out_height >= 0 && o->out_width <= side && o->out_height <= side &&
             (o->out_width > 0) == (o->out_height > 0),
         "%s: mask size %dx%d", fn, o->out_width, o->out_height);
    NEED(o->out_width > 0 || box, "%s: masks of the frame's size need the letterbox (box)", fn);
    NEED(o->threshold == o->threshold, "%s: threshold is NaN", fn);
    kiln_status st = box ? check_letterbox(fn, box, 0) : KILN_OK;
    if (st != KILN_OK) return st;
    KERNEL(fn, where, masks);
    return n ? k->masks(o, n, coeffs, dets, protos, box, net_width, net_height, masks, stream) : KILN_OK;
}

kiln_status kiln_vision_crops(kiln_backend where, const kiln_preprocess_options *o, const kiln_frame *frame, int n,
                              const kiln_detection *dets, void *out, void *stream)
{
    static const char fn[] = "kiln_vision_crops";
    kiln_status st = check_pre(fn, o);
    if (st != KILN_OK) return st;
    NEED(frame && n >= 0 && (n == 0 || (dets && out)), "%s: frame, dets or out NULL, or n %d", fn, n);
    if ((st = check_frame(fn, frame, 0)) != KILN_OK) return st;
    KERNEL(fn, where, crops);
    return n ? k->crops(o, frame, n, dets, out, stream) : KILN_OK;
}

kiln_status kiln_vision_l2_normalize(kiln_backend where, int n, int d, float *emb, void *stream)
{
    static const char fn[] = "kiln_vision_l2_normalize";
    NEED(n >= 0 && d > 0 && (n == 0 || emb), "%s: n %d, d %d, emb NULL", fn, n, d);
    KERNEL(fn, where, l2_normalize);
    return n ? k->l2_normalize(n, d, emb, stream) : KILN_OK;
}

kiln_status kiln_vision_match(kiln_backend where, int n, int m, int d, const float *queries, const float *gallery,
                              float *sim, int *best, void *stream)
{
    static const char fn[] = "kiln_vision_match";
    NEED(n >= 0 && m >= 0 && d > 0, "%s: n %d, m %d, d %d", fn, n, m, d);
    NEED(n == 0 || queries, "%s: queries NULL", fn);
    NEED(m == 0 || gallery, "%s: gallery NULL", fn);
    NEED(n == 0 || m == 0 || sim, "%s: sim NULL", fn);
    KERNEL(fn, where, match);
    return n ? k->match(n, m, d, queries, gallery, sim, best, stream) : KILN_OK;
}
