/* The bilinear sampler the ref pre-processing kernels share: the letterbox
 * (ref_pre.c) and the ReID crops (ref_reid.c) both resample a window of a
 * uint8 HWC frame into NCHW planes, normalised, in f32 or f16. Writing it
 * once keeps the two from drifting apart, and gives the cuda kernels one
 * definition to match.
 *
 * Sampling follows OpenCV's INTER_LINEAR (imgproc/src/resize.cpp): output
 * pixel d of n covering a source span [origin, origin + extent) reads the
 * source at s = origin + (d + 0.5) * extent / n - 0.5 (pixel centers at
 * +0.5), between pixels floor(s) and floor(s) + 1 with weight s - floor(s);
 * a position before the first pixel of the span or at/after its last reads
 * that pixel alone, as OpenCV's border handling does (it sets the weight to
 * 0 there). Downscaling does not antialias: like OpenCV, only the two
 * nearest pixels per axis contribute, whatever the ratio.
 *
 * Differences from cv2.resize on uint8: OpenCV quantises the weights to
 * 11 bits and rounds its result to uint8; here the weights and the
 * interpolated value stay in float, so results differ from OpenCV's by at
 * most about one gray level (1/255 before mean/std). */
#ifndef KILN_VISION_REF_SAMPLE_H
#define KILN_VISION_REF_SAMPLE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "vision/vision.h"

/* One output position along one axis: it blends source pixels i0 and i1
 * as (1 - w1) * p[i0] + w1 * p[i1]. i1 == i0 at the borders (w1 is 0
 * there), so a tap never names a pixel outside [lo, hi]. */
typedef struct kiln_vtap {
    int i0, i1;
    float w1;
} kiln_vtap;

/* Fills tap[0..n) for n output positions covering the source span
 * [origin, origin + extent) of an axis whose readable pixels are lo..hi
 * (lo <= hi). The position is computed in double (sizes up to 2^15 keep
 * it exact to far below a pixel), the weight kept as float. */
static inline void kiln_vtap_axis(kiln_vtap *tap, int n, double origin, double extent, int lo, int hi)
{
    double step = extent / n;
    for (int d = 0; d < n; d++) {
        double s = origin + (d + 0.5) * step - 0.5;
        double f = floor(s);
        int i = (int)f;
        float w = (float)(s - f);
        if (i < lo) { /* before the first pixel's center: that pixel alone */
            i = lo;
            w = 0;
        }
        if (i >= hi) { /* at or after the last pixel's center: that pixel alone */
            i = hi;
            w = 0;
        }
        tap[d].i0 = i;
        tap[d].i1 = i < hi ? i + 1 : hi;
        tap[d].w1 = w;
    }
}

/* (level / 255 - mean) / std, the header's normalisation, written as it
 * reads so the numpy reference in the tests is the same formula. */
static inline float kiln_vnorm(const kiln_preprocess_options *o, int c, float level)
{
    return (level / 255.0f - o->mean[c]) / o->std[c];
}

/* Writes element i of an f32 or f16 buffer (vision.c admits only those). */
static inline void kiln_vstore(kiln_dtype t, void *out, size_t i, float v)
{
    if (t == KILN_F16)
        ((uint16_t *)out)[i] = kiln_f32_to_f16(v);
    else
        ((float *)out)[i] = v;
}

/* The source row stride in bytes: 0 in kiln_frame means packed rows. */
static inline size_t kiln_vframe_stride(const kiln_frame *f)
{
    return f->stride ? (size_t)f->stride : (size_t)f->width * 3;
}

/* Fills rows y0..y0+rows and columns x0..x0+cols of the 3 planes of one
 * image (planes of plane_w x plane_h elements starting at element `base`
 * of out) with the pad level, normalised per channel. */
static inline void kiln_vfill(const kiln_preprocess_options *o, void *out, size_t base, int plane_w, int plane_h,
                              int x0, int y0, int cols, int rows)
{
    size_t plane = (size_t)plane_w * plane_h;
    for (int c = 0; c < 3; c++) {
        float v = kiln_vnorm(o, c, (float)o->pad_value);
        for (int y = y0; y < y0 + rows; y++) {
            size_t at = base + c * plane + (size_t)y * plane_w + x0;
            for (int x = 0; x < cols; x++) kiln_vstore(o->dtype, out, at + x, v);
        }
    }
}

/* Resamples frame f through the taps xt (nx columns) and yt (ny rows) into
 * the 3 planes of one image (as kiln_vfill), its top-left output pixel at
 * column x0, row y0: output channel c is R, G, B whatever f's order.
 * Reads only pixels the taps name, so a frame's last row need not be a
 * full stride long. */
static inline void kiln_vsample(const kiln_preprocess_options *o, const kiln_frame *f, const kiln_vtap *xt, int nx,
                                const kiln_vtap *yt, int ny, void *out, size_t base, int plane_w, int plane_h, int x0,
                                int y0)
{
    size_t stride = kiln_vframe_stride(f), plane = (size_t)plane_w * plane_h;
    for (int c = 0; c < 3; c++) {
        int sc = f->bgr ? 2 - c : c; /* the frame's byte holding channel c */
        for (int y = 0; y < ny; y++) {
            const uint8_t *r0 = f->data + (size_t)yt[y].i0 * stride + sc;
            const uint8_t *r1 = f->data + (size_t)yt[y].i1 * stride + sc;
            float wy = yt[y].w1;
            size_t at = base + c * plane + (size_t)(y0 + y) * plane_w + x0;
            for (int x = 0; x < nx; x++) {
                size_t a = (size_t)xt[x].i0 * 3, b = (size_t)xt[x].i1 * 3;
                float wx = xt[x].w1;
                float top = r0[a] + wx * (float)(r0[b] - r0[a]);
                float bot = r1[a] + wx * (float)(r1[b] - r1[a]);
                kiln_vstore(o->dtype, out, at + x, kiln_vnorm(o, c, top + wy * (bot - top)));
            }
        }
    }
}

#endif
