/* Segmentation masks on the ref backend (kiln_vision_masks): the oracle the
 * cuda kernel is checked against, written to agree with Ultralytics' own
 * mask code (ultralytics/utils/ops.py: process_mask, process_mask_native,
 * scale_masks, crop_mask; read in 8.4) to a mask IoU of 0.98 or better.
 *
 * What a mask is, in both size modes:
 *
 *   logit = coeffs[i] . protos[:, y, x]      at proto resolution (mh x mw)
 *   mask  = bilinear(logit) at each output pixel center, > logit(threshold)
 *           and the pixel inside detection i's box; 1 inside, 0 outside.
 *
 * The logits are resampled, not their sigmoid, and the threshold is applied
 * last: Ultralytics 8.x thresholds the resampled logits at 0 (sigmoid > 0.5).
 * o->threshold is a probability, compared as logit > log(t / (1 - t)), so
 * 0.5 is exactly Ultralytics' `> 0`; t <= 0 keeps every pixel of the box
 * with a finite logit, t >= 1 none.
 *
 * Bilinear is PyTorch's F.interpolate(mode="bilinear", align_corners=False)
 * generalised to an affine map: output pixel x reads the proto at
 * u = a * x + b (pixel centers: proto pixel j is centered at u = j), with u
 * clamped to [lo, hi]; u = i0 + w gives (1 - w) * L[i0] + w * L[i0 + 1],
 * the second index held at the last pixel. Rows the same way.
 *
 * Frame mode (out_width == 0; Ultralytics' retina_masks=True path,
 * process_mask_native): the masks are frame_width x frame_height of `box`.
 * The letterbox resized the frame's W x H pixels to cw x ch network pixels,
 * cw = max(round(W * scale), 1) (Python's round, ties to even) and ch
 * likewise, as Ultralytics' LetterBox and kiln_vision_preprocess do, and
 * put them at (pad_x, pad_y); so each axis has its own factor sx = cw / W,
 * sy = ch / H (scale itself on the axis that fills the input, within
 * 0.5 / W of it on the other). A frame pixel's center x + 0.5 is network
 * pixel (x + 0.5) * sx + pad_x, and network pixels are proto pixels times
 * mw / net_width, so
 *     u = ((x + 0.5) * sx + pad_x) * mw / net_width - 0.5
 * clamped to the content's proto pixels as centers:
 *     lo = pad_x * mw / net_width,  hi = (pad_x + cw) * mw / net_width - 1.
 * That is exactly scale_masks (crop the padding at proto resolution, then
 * F.interpolate the rest to the frame) whenever the padding falls on whole
 * proto pixels; where it does not, Ultralytics first upsamples the logits
 * 2x or 4x so that its crop is whole, the same continuous map up to a
 * second bilinear pass. The boxes are the detections' own (frame pixels,
 * as kiln_vision_detect returns them).
 *
 * Sized mode (out_width x out_height given; Ultralytics' default
 * process_mask(upsample=True)): the masks cover the whole network input,
 * padding included, stretched to out_width x out_height:
 *     u = (x + 0.5) * mw / out_width - 0.5,   clamped to [0, mw - 1]
 * which is F.interpolate(logits, (out_height, out_width)). With out size ==
 * net size these are Ultralytics' default masks; with out size == proto
 * size (mw x mh), its process_mask(upsample=False) masks. The boxes are
 * mapped frame -> network pixels through `box` (x * scale_x + pad_x, the
 * inverse of kiln_vision_detect's (x - pad_x) / scale_x, so its boxes come
 * back to the network pixels they were decoded in), then by
 * out_width / net_width; box NULL: the detections are network pixels
 * already (as kiln_vision_detect returns them without letterboxes).
 *
 * The crop is crop_mask's: pixel column c is inside when x1 <= c < x2
 * (the pixel's index, not its center, against the box), rows likewise.
 *
 * Cost: per detection the logits are computed once at proto resolution,
 * and only over the proto pixels its box can read (at most P x mh x mw
 * multiply-adds), then each output row of the box is blended from two
 * proto rows. The scratch is one mh x mw float plane (plus the protos in
 * f32 when they come as f16) and the per-column/per-row sample tables;
 * nothing of n x H x W floats is ever held. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vision/vision.h"

/* Sizes as vision.c bounds them (KILN_VISION_MAX_SIDE): far from int overflow in
 * every index product below. */

/* One axis of the resampling: output pixel k blends proto pixels i0[k] and
 * i1[k] with weight w[k] on i1. i0 and i1 are non-decreasing in k, so a run
 * of output pixels reads proto pixels i0[first] .. i1[last] only. */
typedef struct axis_map {
    int *i0, *i1;
    float *w;
} axis_map;

/* u = a * k + b clamped to [lo, hi] and to the proto's [0, n_proto - 1];
 * double so that the map of a 32768-pixel side stays exact to far below a
 * pixel. */
static void axis_fill(axis_map *m, int n_out, int n_proto, double a, double b, double lo, double hi)
{
    if (lo < 0) lo = 0;
    if (hi > n_proto - 1) hi = n_proto - 1;
    if (lo > n_proto - 1) lo = n_proto - 1;
    if (hi < lo) hi = lo; /* content thinner than one proto pixel: its one value */
    for (int k = 0; k < n_out; k++) {
        double u = a * k + b;
        if (u < lo) u = lo;
        if (u > hi) u = hi;
        int i0 = (int)floor(u);
        m->i0[k] = i0;
        m->i1[k] = i0 < n_proto - 1 ? i0 + 1 : i0;
        m->w[k] = (float)(u - i0);
    }
}

/* The first pixel index c of [0, n] with c >= v (crop_mask's comparison
 * for the low edge; for the high edge, c < v is c < this value, so the
 * same function gives the exclusive end). */
static int first_index_at_or_after(double v, int n)
{
    if (!(v > 0)) return 0; /* NaN is handled by the caller */
    if (v >= n) return n;
    return (int)ceil(v);
}

/* logits of one detection over proto rows y0..y1 and columns x0..x1
 * (inclusive), written into L (stride mw); the rest of L is left as is. */
static void logits_region(const float *coeff, const float *protos, int p_count, int mh, int mw, int y0, int y1,
                          int x0, int x1, float *L)
{
    int len = x1 - x0 + 1;
    for (int y = y0; y <= y1; y++) memset(L + (size_t)y * mw + x0, 0, (size_t)len * sizeof *L);
    for (int p = 0; p < p_count; p++) {
        const float c = coeff[p];
        const float *plane = protos + (size_t)p * mh * mw;
        for (int y = y0; y <= y1; y++) {
            const float *src = plane + (size_t)y * mw + x0;
            float *dst = L + (size_t)y * mw + x0;
            for (int x = 0; x < len; x++) dst[x] += c * src[x];
        }
    }
}

/* The frame's side in network pixels as LetterBox resizes it:
 * max(round(side * scale), 1) with Python's round (ties to even), which is
 * also what kiln_vision_preprocess does (ref_pre.c). */
static double content_side(int side, float scale)
{
    const double x = side * (double)scale, f = floor(x), d = x - f;
    const double r = d > 0.5 ? f + 1 : d < 0.5 ? f : fmod(f, 2.0) == 0 ? f : f + 1;
    return r < 1 ? 1 : r;
}

/* A box coordinate in output pixels: v * scale + offset. With a letterbox
 * in sized mode the box made a round trip, network -> frame in
 * kiln_vision_detect ((v - pad) / scale, rounded to float) and back here;
 * an edge that was a whole network pixel (common: f16 outputs hold
 * multiples of 1/8 up to 512) comes back a float step or two off and would
 * gain or lose a row or column against crop_mask on the original box. The
 * float rounding moves v by at most 2^-24 of itself, so edges within
 * 2^-21 |x| (8 times that) of a whole pixel are taken as it. Boxes used as
 * given (frame mode, or no letterbox) are not touched. */
static double to_output(float v, double scale, double offset, int snap)
{
    double x = v * scale + offset;
    if (snap) {
        double w = floor(x + 0.5);
        if (fabs(x - w) <= ldexp(fabs(x) > 1 ? fabs(x) : 1, -21)) x = w;
    }
    return x;
}

kiln_status kiln_vref_masks(const kiln_mask_options *o, int n, const float *coeffs, const kiln_detection *dets,
                            const kiln_tensor *protos, const kiln_letterbox *box, int net_width, int net_height,
                            uint8_t *masks)
{
    static const char fn[] = "kiln_vision_masks";
    const int r = protos->rank;
    const int64_t p64 = protos->dims[r - 3], mh64 = protos->dims[r - 2], mw64 = protos->dims[r - 1];
    const int64_t side = KILN_VISION_MAX_SIDE;
    if (p64 <= 0 || mh64 <= 0 || mw64 <= 0 || p64 > side || mh64 > side || mw64 > side ||
        p64 * mh64 * mw64 > ((int64_t)1 << 31))
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "%s: protos [%lld, %lld, %lld] must have P, mh and mw in 1..%d", fn,
                         (long long)p64, (long long)mh64, (long long)mw64, KILN_VISION_MAX_SIDE);
    if (isnan(o->threshold)) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "%s: threshold is NaN", fn);
    const int P = (int)p64, mh = (int)mh64, mw = (int)mw64;
    const int sized = o->out_width > 0;
    if (!sized && (box->frame_width <= 0 || box->frame_height <= 0 || box->frame_width > KILN_VISION_MAX_SIDE ||
                   box->frame_height > KILN_VISION_MAX_SIDE))
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "%s: the letterbox's frame is %dx%d; sides must be 1..%d", fn,
                         box->frame_width, box->frame_height, KILN_VISION_MAX_SIDE);
    const int W = sized ? o->out_width : box->frame_width;
    const int H = sized ? o->out_height : box->frame_height;

    /* A probability threshold as a logit cut: sigmoid is increasing, so
     * sigmoid(v) > t is v > log(t / (1 - t)); 0.5 gives exactly 0. */
    const double t = o->threshold;
    const float cut = t <= 0 ? -INFINITY : t >= 1 ? INFINITY : (float)log(t / (1 - t));

    /* scratch: the logit plane, the sample tables, the protos as f32 */
    const size_t plane = (size_t)mh * mw;
    const size_t f16_floats = protos->dtype == KILN_F16 ? (size_t)P * plane : 0;
    const size_t bytes = (plane + f16_floats + (size_t)W + H) * sizeof(float) + 2 * ((size_t)W + H) * sizeof(int);
    char *scratch = kiln_xmalloc(bytes);
    if (!scratch) return KILN_ERR_OUT_OF_MEMORY;
    float *L = (float *)scratch;
    float *proto32 = L + plane;
    axis_map cols = {0}, rows = {0};
    cols.w = proto32 + f16_floats;
    rows.w = cols.w + W;
    cols.i0 = (int *)(rows.w + H);
    cols.i1 = cols.i0 + W;
    rows.i0 = cols.i1 + W;
    rows.i1 = rows.i0 + H;

    const float *pr = protos->data;
    if (f16_floats) {
        const uint16_t *h = protos->data;
        for (size_t k = 0; k < f16_floats; k++) proto32[k] = kiln_f16_to_f32(h[k]);
        pr = proto32;
    }

    /* The sample maps (see the top of the file) and how a detection's box
     * becomes output pixels: out = det * bs + bo per axis. */
    double bsx = 1, bsy = 1, box_x = 0, box_y = 0;
    if (sized) {
        const double ax = (double)mw / W, ay = (double)mh / H;
        axis_fill(&cols, W, mw, ax, 0.5 * ax - 0.5, 0, mw - 1);
        axis_fill(&rows, H, mh, ay, 0.5 * ay - 0.5, 0, mh - 1);
        const double sx = box ? kiln_lb_scale_x(box) : 1, sy = box ? kiln_lb_scale_y(box) : 1;
        const double px = box ? box->pad_x : 0, py = box ? box->pad_y : 0;
        const double ox = (double)W / net_width, oy = (double)H / net_height;
        bsx = sx * ox, box_x = px * ox;
        bsy = sy * oy, box_y = py * oy;
    } else {
        /* the content as the letterbox resized it: whole network pixels,
         * so each axis has its own factor (see the top of the file) */
        const double kx = (double)mw / net_width, ky = (double)mh / net_height;
        const double cw = content_side(W, box->scale), ch = content_side(H, box->scale);
        const double sx = cw / W, sy = ch / H, px = box->pad_x, py = box->pad_y;
        axis_fill(&cols, W, mw, sx * kx, (0.5 * sx + px) * kx - 0.5, px * kx, (px + cw) * kx - 1);
        axis_fill(&rows, H, mh, sy * ky, (0.5 * sy + py) * ky - 0.5, py * ky, (py + ch) * ky - 1);
    }

    const int snap = sized && box;
    const size_t image = (size_t)W * H;
    for (int i = 0; i < n; i++) {
        uint8_t *m = masks + (size_t)i * image;
        const kiln_detection *d = &dets[i];
        const double x1 = to_output(d->x1, bsx, box_x, snap), x2 = to_output(d->x2, bsx, box_x, snap);
        const double y1 = to_output(d->y1, bsy, box_y, snap), y2 = to_output(d->y2, bsy, box_y, snap);
        int c0 = 0, c1 = 0, r0 = 0, r1 = 0; /* the box as pixel ranges [c0, c1) x [r0, r1) */
        if (!isnan(x1) && !isnan(x2) && !isnan(y1) && !isnan(y2)) {
            c0 = first_index_at_or_after(x1, W), c1 = first_index_at_or_after(x2, W);
            r0 = first_index_at_or_after(y1, H), r1 = first_index_at_or_after(y2, H);
        }
        if (c0 >= c1 || r0 >= r1) {
            memset(m, 0, image);
            continue;
        }
        logits_region(coeffs + (size_t)i * P, pr, P, mh, mw, rows.i0[r0], rows.i1[r1 - 1], cols.i0[c0],
                      cols.i1[c1 - 1], L);
        memset(m, 0, (size_t)r0 * W);
        for (int y = r0; y < r1; y++) {
            uint8_t *row = m + (size_t)y * W;
            const float *a = L + (size_t)rows.i0[y] * mw, *b = L + (size_t)rows.i1[y] * mw;
            const float wy = rows.w[y], vy = 1 - wy;
            memset(row, 0, (size_t)c0);
            for (int x = c0; x < c1; x++) {
                const int j0 = cols.i0[x], j1 = cols.i1[x];
                const float wx = cols.w[x], vx = 1 - wx;
                /* PyTorch's order: blend along x in each row, then the rows */
                const float v = vy * (vx * a[j0] + wx * a[j1]) + wy * (vx * b[j0] + wx * b[j1]);
                row[x] = v > cut;
            }
            memset(row + c1, 0, (size_t)(W - c1));
        }
        memset(m + (size_t)r1 * W, 0, (size_t)(H - r1) * W);
    }
    free(scratch);
    return KILN_OK;
}
