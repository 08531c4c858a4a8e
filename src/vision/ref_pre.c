/* Letterbox pre-processing on the ref backend (host memory): each frame
 * fitted into the network input as Ultralytics' LetterBox does
 * (ultralytics/data/augment.py, the default auto=False, scale_fill=False),
 * resampled by the shared bilinear sampler (ref_sample.h, OpenCV's
 * INTER_LINEAR without its uint8 rounding), normalised into NCHW RGB.
 *
 * The geometry (Ultralytics' LetterBox.get_params, Python's rounding) is
 * letterbox.h's, shared with the cuda kernel so both agree to the bit. */
#include <stdlib.h>

#include "vision/letterbox.h"
#include "vision/ref_sample.h"

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
        kiln_vfit g = kiln_vletterbox_fit(o, f->width, f->height);
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
        if (boxes) kiln_vletterbox_record(&g, f, &boxes[i]);
    }
    free(xt);
    return KILN_OK;
}
