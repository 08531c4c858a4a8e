/* Which vision kernels this build has: the ref ones always (adapted to the
 * table's stream argument, which the host ignores), the cuda ones when kiln
 * is built with CUDA (src/vision/cuda_*.cu fill kiln_vision_cuda). The one
 * place in src/vision that knows whether CUDA is in the build. */
#include "vision/vision.h"

static kiln_status ref_preprocess(const kiln_preprocess_options *o, int n, const kiln_frame *frames, void *out,
                                  kiln_letterbox *boxes, void *stream)
{
    (void)stream;
    return kiln_vref_preprocess(o, n, frames, out, boxes);
}

static kiln_status ref_detect(const kiln_detect_options *o, const kiln_tensor *pred, const kiln_letterbox *boxes,
                              kiln_detection *out, int *counts, float *extra, void *stream)
{
    (void)stream;
    return kiln_vref_detect(o, pred, boxes, out, counts, extra);
}

static kiln_status ref_keypoints(int n, int k, const float *extra, const kiln_letterbox *box, float *kp, void *stream)
{
    (void)stream;
    return kiln_vref_keypoints(n, k, extra, box, kp);
}

static kiln_status ref_masks(const kiln_mask_options *o, int n, const float *coeffs, const kiln_detection *dets,
                             const kiln_tensor *protos, const kiln_letterbox *box, int net_width, int net_height,
                             uint8_t *masks, void *stream)
{
    (void)stream;
    return kiln_vref_masks(o, n, coeffs, dets, protos, box, net_width, net_height, masks);
}

static kiln_status ref_crops(const kiln_preprocess_options *o, const kiln_frame *frame, int n,
                             const kiln_detection *dets, void *out, void *stream)
{
    (void)stream;
    return kiln_vref_crops(o, frame, n, dets, out);
}

static kiln_status ref_l2(int n, int d, float *emb, void *stream)
{
    (void)stream;
    return kiln_vref_l2_normalize(n, d, emb);
}

static kiln_status ref_match(int n, int m, int d, const float *queries, const float *gallery, float *sim, int *best,
                             void *stream)
{
    (void)stream;
    return kiln_vref_match(n, m, d, queries, gallery, sim, best);
}

static const kiln_vision_kernels ref_kernels = {
    "ref", ref_preprocess, ref_detect, ref_keypoints, ref_masks, ref_crops, ref_l2, ref_match,
};

#ifdef KILN_HAVE_CUDA
extern const kiln_vision_kernels kiln_vision_cuda;
#endif

const kiln_vision_kernels *kiln_vision_kernels_of(kiln_backend b)
{
    if (b == KILN_BACKEND_REF) return &ref_kernels;
#ifdef KILN_HAVE_CUDA
    if (b == KILN_BACKEND_CUDA) return &kiln_vision_cuda;
#endif
    return NULL;
}
