/* ReID on the ref backend (host memory): the crops a ReID net takes, the
 * L2 normalisation of its embeddings, and matching them by cosine
 * similarity. The oracle the cuda kernels are compared against.
 *
 * Crops. Each detection's box (frame pixels, x1 y1 x2 y2) is clipped to
 * the frame [0, width] x [0, height] and the span it covers is stretched
 * to o->width x o->height by the shared bilinear sampler (ref_sample.h,
 * the letterbox's): output pixel d reads the frame at
 * x1 + (d + 0.5) * (x2 - x1) / o->width - 0.5, blending only pixels the
 * box touches, floor(x1) .. ceil(x2) - 1 (clamped to them as OpenCV clamps
 * to an image's edge). For a box on whole pixels this is exactly
 * cv2.resize(frame[y1:y2, x1:x2], (W, H)) up to OpenCV's uint8 rounding;
 * for a fractional box it is the same sampling of the continuous window,
 * so a box moving by a fraction of a pixel moves its crop smoothly.
 *
 * A degenerate box, one with no area after clipping (x2 <= x1 or y2 <= y1,
 * wholly outside the frame, or a NaN coordinate), is not an error: its
 * crop is filled with pad_value (normalised), the other crops are
 * unaffected. Failing the whole batch for one empty box would make every
 * caller filter first, and the cuda kernel reads the boxes from device
 * memory, where it cannot report one without a synchronisation; the two
 * backends must agree. A caller that must not embed such a crop drops
 * detections with x2 <= x1 or y2 <= y1 (after clipping) itself.
 *
 * Matching takes the rows as given: cosine similarity is their dot product,
 * so queries and gallery are expected L2-normalised (kiln_vision_l2_normalize)
 * and are not normalised again here, as the cuda side's one GEMM would not.
 * A zero row therefore has similarity 0 to everything. */
#include <stdlib.h>

#include "vision/ref_sample.h"

/* v clipped to [0, hi]; a NaN stays NaN so the caller sees it as degenerate
 * (fmin/fmax would quietly replace it by a bound). */
static float clip(float v, float hi)
{
    return v < 0 ? 0 : v > hi ? hi : v;
}

kiln_status kiln_vref_crops(const kiln_preprocess_options *o, const kiln_frame *frame, int n,
                            const kiln_detection *dets, void *out)
{
    int W = o->width, H = o->height;
    kiln_vtap *xt = kiln_xmalloc(((size_t)W + H) * sizeof *xt);
    if (!xt) return kiln_fail_prefix(KILN_ERR_OUT_OF_MEMORY, "kiln_vision_crops: ");
    kiln_vtap *yt = xt + W;
    size_t image = (size_t)3 * W * H;
    float fw = (float)frame->width, fh = (float)frame->height;
    for (int i = 0; i < n; i++) {
        float x1 = clip(dets[i].x1, fw), x2 = clip(dets[i].x2, fw);
        float y1 = clip(dets[i].y1, fh), y2 = clip(dets[i].y2, fh);
        size_t base = (size_t)i * image;
        if (!(x2 > x1 && y2 > y1)) { /* also false for NaN */
            kiln_vfill(o, out, base, W, H, 0, 0, W, H);
            continue;
        }
        /* x1 < x2 <= width: floor(x1) <= ceil(x2) - 1 <= width - 1, so the
         * readable span is never empty and never leaves the frame */
        kiln_vtap_axis(xt, W, x1, (double)x2 - x1, (int)floorf(x1), (int)ceilf(x2) - 1);
        kiln_vtap_axis(yt, H, y1, (double)y2 - y1, (int)floorf(y1), (int)ceilf(y2) - 1);
        kiln_vsample(o, frame, xt, W, yt, H, out, base, W, H, 0, 0);
    }
    free(xt);
    return KILN_OK;
}

kiln_status kiln_vref_l2_normalize(int n, int d, float *emb)
{
    for (int i = 0; i < n; i++) {
        float *row = emb + (size_t)i * d;
        /* squares summed in double: neither a row of float maxima overflows
         * nor one of denormals underflows to a zero norm */
        double ss = 0;
        for (int k = 0; k < d; k++) ss += (double)row[k] * row[k];
        if (ss == 0) continue; /* a zero row stays zero rather than 0/0 */
        double inv = 1.0 / sqrt(ss);
        for (int k = 0; k < d; k++) row[k] = (float)(row[k] * inv);
    }
    return KILN_OK;
}

kiln_status kiln_vref_match(int n, int m, int d, const float *queries, const float *gallery, float *sim, int *best)
{
    for (int i = 0; i < n; i++) {
        const float *q = queries + (size_t)i * d;
        int arg = -1; /* stays -1 for an empty gallery */
        double top = 0;
        for (int j = 0; j < m; j++) {
            const float *g = gallery + (size_t)j * d;
            double dot = 0;
            for (int k = 0; k < d; k++) dot += (double)q[k] * g[k];
            sim[(size_t)i * m + j] = (float)dot;
            /* the float that was stored is what is compared, so best agrees
             * with an argmax over sim; strictly greater keeps the lowest
             * index of a tie; a NaN is never chosen (all
             * NaN: -1, as for no gallery) */
            double s = (float)dot;
            if (s == s && (arg < 0 || s > top)) {
                arg = j;
                top = s;
            }
        }
        if (best) best[i] = arg;
    }
    return KILN_OK;
}
