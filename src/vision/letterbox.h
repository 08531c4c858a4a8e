/* The letterbox geometry, shared by the ref kernel (ref_pre.c) and the
 * cuda one (cuda_pre.cu): both compute it on the host from the frame's
 * size, with this one definition, so their sizes and paddings agree to the
 * pixel and their kiln_letterbox results to the bit.
 *
 * Ultralytics' LetterBox.get_params (ultralytics/data/augment.py, the
 * default auto=False, scale_fill=False), in double with Python's rounding:
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
 * frame pixels at its far edge.
 *
 * Plain C that C++ (the .cu files' host side) compiles as well. */
#ifndef KILN_VISION_LETTERBOX_H
#define KILN_VISION_LETTERBOX_H

#include <math.h>

#include "vision/vision.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Python 3's round(): to nearest, ties to even, whatever the current
 * floating-point rounding mode (rint() would depend on it). x - floor(x)
 * is exact for the magnitudes here. */
static inline double kiln_vround_half_even(double x)
{
    double f = floor(x), d = x - f;
    if (d > 0.5) return f + 1;
    if (d < 0.5) return f;
    return fmod(f, 2.0) == 0 ? f : f + 1;
}

/* How one frame fits: LetterBox.get_params. */
typedef struct kiln_vfit {
    double r;
    int new_w, new_h; /* the resized frame, network pixels */
    int left, top;    /* its top-left corner in the input */
} kiln_vfit;

static inline kiln_vfit kiln_vletterbox_fit(const kiln_preprocess_options *o, int w, int h)
{
    kiln_vfit g;
    /* H / h before W / w as Python's min() compares them; equal values are
     * the same double either way */
    g.r = fmin((double)o->height / h, (double)o->width / w);
    if (!o->scale_up) g.r = fmin(g.r, 1.0);
    g.new_w = (int)kiln_vround_half_even(w * g.r);
    g.new_h = (int)kiln_vround_half_even(h * g.r);
    if (g.new_w < 1) g.new_w = 1;
    if (g.new_h < 1) g.new_h = 1;
    /* r <= W / w keeps round(w * r) <= W; the clamp only guards that */
    if (g.new_w > o->width) g.new_w = o->width;
    if (g.new_h > o->height) g.new_h = o->height;
    g.left = g.top = 0;
    if (o->center) {
        /* dw / 2 is a whole or half number: minus 0.1 it is never a tie, so
         * an odd padding puts its extra pixel on the right (bottom) */
        g.left = (int)kiln_vround_half_even((o->width - g.new_w) / 2.0 - 0.1);
        g.top = (int)kiln_vround_half_even((o->height - g.new_h) / 2.0 - 0.1);
    }
    return g;
}

/* What kiln_letterbox records of fit g of frame f. */
static inline void kiln_vletterbox_record(const kiln_vfit *g, const kiln_frame *f, kiln_letterbox *b)
{
    b->scale = (float)g->r;
    b->pad_x = (float)g->left;
    b->pad_y = (float)g->top;
    b->scale_x = (float)((double)g->new_w / f->width);
    b->scale_y = (float)((double)g->new_h / f->height);
    b->frame_width = f->width;
    b->frame_height = f->height;
}

#ifdef __cplusplus
}
#endif

#endif
