/* Letterbox pre-processing on the ref backend (host memory): each frame
 * fitted into the network input as Ultralytics' LetterBox does
 * (ultralytics/data/augment.py, the default auto=False, scale_fill=False),
 * resampled by the shared bilinear sampler (ref_sample.h, OpenCV's
 * INTER_LINEAR without its uint8 rounding), normalised into NCHW RGB.
 *
 * The geometry is computed in double with Python's rounding, so the sizes
 * and paddings are LetterBox's to the pixel:
 *   r      = min(H / h, W / w), and min(r, 1) without scale_up
 *   new_w  = max(round(w * r), 1), new_h likewise (thin frames keep a pixel)
 *   left   = round((W - new_w) / 2 - 0.1), top likewise, when centered;
 *            0 otherwise (the padding all on the right and bottom)
 * where round() is Python's, ties to even: round(12.5) is 12, which C's
 * round() would make 13. The resize itself stretches w to new_w and h to
 * new_h (as cv2.resize to the size new_unpad does), so each axis has its
 * own exact factor new_w / w and new_h / h; they equal r on the axis that
 * fills the input and differ from it by at most 0.5 / w (0.5 / h) on the
 * other.
 *
 * kiln_letterbox receives scale = r, the per-axis factors scale_x =
 * new_w / w and scale_y = new_h / h, and the actual padding (left, top).
 * Ultralytics' scale_boxes (8.4) maps a box back with pad_x =
 * round((W - new_w) / 2 - 0.1), the same left as here, and those per-axis
 * gains, so (p - pad_x) / scale_x reproduces it on both axes; with r alone
 * the axis that does not fill the input would be off by up to 0.5 / r
 * frame pixels at its far edge. */
#include <stdlib.h>

#include "vision/ref_sample.h"

/* Python 3's round(): to nearest, ties to even, whatever the current
 * floating-point rounding mode (rint() would depend on it). x - floor(x)
 * is exact for the magnitudes here. */
static double round_half_even(double x)
{
    double f = floor(x), d = x - f;
    if (d > 0.5) return f + 1;
    if (d < 0.5) return f;
    return fmod(f, 2.0) == 0 ? f : f + 1;
}

/* How one frame fits: LetterBox.get_params. */
typedef struct fit {
    double r;
    int new_w, new_h; /* the resized frame, network pixels */
    int left, top;    /* its top-left corner in the input */
} fit;

static fit letterbox_fit(const kiln_preprocess_options *o, int w, int h)
{
    fit g;
    /* H / h before W / w as Python's min() compares them; equal values are
     * the same double either way */
    g.r = fmin((double)o->height / h, (double)o->width / w);
    if (!o->scale_up) g.r = fmin(g.r, 1.0);
    g.new_w = (int)round_half_even(w * g.r);
    g.new_h = (int)round_half_even(h * g.r);
    if (g.new_w < 1) g.new_w = 1;
    if (g.new_h < 1) g.new_h = 1;
    /* r <= W / w keeps round(w * r) <= W; the clamp only guards that */
    if (g.new_w > o->width) g.new_w = o->width;
    if (g.new_h > o->height) g.new_h = o->height;
    g.left = g.top = 0;
    if (o->center) {
        /* dw / 2 is a whole or half number: minus 0.1 it is never a tie, so
         * an odd padding puts its extra pixel on the right (bottom) */
        g.left = (int)round_half_even((o->width - g.new_w) / 2.0 - 0.1);
        g.top = (int)round_half_even((o->height - g.new_h) / 2.0 - 0.1);
    }
    return g;
}

kiln_status kiln_vref_preprocess(const kiln_preprocess_options *o, int n, const kiln_frame *frames, void *out,
                                 kiln_letterbox *boxes)
{
    int W = o->width, H = o->height;
    /* new_w <= W and new_h <= H: one table of taps serves every frame */
    kiln_vtap *xt = kiln_xmalloc(((size_t)W + H) * sizeof *xt);
    if (!xt) return kiln_fail_prefix(KILN_ERR_OUT_OF_MEMORY, "kiln_vision_preprocess: ");
    kiln_vtap *yt = xt + W;
    size_t image = (size_t)3 * W * H;
    for (int i = 0; i < n; i++) {
        const kiln_frame *f = &frames[i];
        fit g = letterbox_fit(o, f->width, f->height);
        /* each axis stretched to its own new size, as cv2.resize(img, new_unpad) */
        kiln_vtap_axis(xt, g.new_w, 0, f->width, 0, f->width - 1);
        kiln_vtap_axis(yt, g.new_h, 0, f->height, 0, f->height - 1);
        size_t base = (size_t)i * image;
        int right = g.left + g.new_w, bottom = g.top + g.new_h;
        /* the border: rows above and below, then the columns left and right of the frame */
        kiln_vfill(o, out, base, W, H, 0, 0, W, g.top);
        kiln_vfill(o, out, base, W, H, 0, bottom, W, H - bottom);
        kiln_vfill(o, out, base, W, H, 0, g.top, g.left, g.new_h);
        kiln_vfill(o, out, base, W, H, right, g.top, W - right, g.new_h);
        kiln_vsample(o, f, xt, g.new_w, yt, g.new_h, out, base, W, H, g.left, g.top);
        if (boxes) {
            boxes[i].scale = (float)g.r;
            boxes[i].pad_x = (float)g.left;
            boxes[i].pad_y = (float)g.top;
            boxes[i].scale_x = (float)((double)g.new_w / f->width);
            boxes[i].scale_y = (float)((double)g.new_h / f->height);
            boxes[i].frame_width = f->width;
            boxes[i].frame_height = f->height;
        }
    }
    free(xt);
    return KILN_OK;
}
