/* The vision layer's internals (include/kiln_vision.h is the public side):
 * vision.c checks every call's arguments once and sends it to the backend
 * asked for; the ref kernels (ref_<step>.c) run on host memory and are the
 * oracle the cuda kernels are compared against. A kernel here may assume
 * what vision.c checked: non-NULL buffers, positive sizes, a known layout
 * and dtype. */
#ifndef KILN_VISION_INTERNAL_H
#define KILN_VISION_INTERNAL_H

#ifdef __cplusplus
extern "C" { /* the cuda kernels (cuda_*.cu) include this header too, and core.h has no guard of its own */
#endif

#include "core/core.h"
#include "kiln_vision.h"

/* Ultralytics' class offset for class-aware NMS: boxes of different classes
 * are moved this far apart so one NMS over all never compares them. */
#define KILN_VISION_MAX_WH 7680.0f

/* Frame, input and mask sides up to 2^15 keep every index product far
 * from overflow; vision.c refuses larger ones. */
#define KILN_VISION_MAX_SIDE 32768

/* A letterbox's factor per axis: scale_x / scale_y where the letterbox
 * recorded them, else the one scale (a letterbox made by hand). */
static inline double kiln_lb_scale_x(const kiln_letterbox *b) { return b->scale_x > 0 ? b->scale_x : b->scale; }
static inline double kiln_lb_scale_y(const kiln_letterbox *b) { return b->scale_y > 0 ? b->scale_y : b->scale; }

/* ref_pre.c */
kiln_status kiln_vref_preprocess(const kiln_preprocess_options *o, int n, const kiln_frame *frames, void *out,
                                 kiln_letterbox *boxes);
/* ref_detect.c */
kiln_status kiln_vref_detect(const kiln_detect_options *o, const kiln_tensor *pred, const kiln_letterbox *boxes,
                             kiln_detection *out, int *counts, float *extra);
kiln_status kiln_vref_keypoints(int n, int k, const float *extra, const kiln_letterbox *box, float *kp);
/* ref_mask.c */
kiln_status kiln_vref_masks(const kiln_mask_options *o, int n, const float *coeffs, const kiln_detection *dets,
                            const kiln_tensor *protos, const kiln_letterbox *box, int net_width, int net_height,
                            uint8_t *masks);
/* ref_reid.c */
kiln_status kiln_vref_crops(const kiln_preprocess_options *o, const kiln_frame *frame, int n,
                            const kiln_detection *dets, void *out);
kiln_status kiln_vref_l2_normalize(int n, int d, float *emb);
kiln_status kiln_vref_match(int n, int m, int d, const float *queries, const float *gallery, float *sim, int *best);

/* One backend's kernels for the vision steps, with vision.c's arguments
 * (checked) and the stream (cudaStream_t on cuda, unused on ref). A NULL
 * entry: the backend has no kernel for that step yet, which vision.c
 * reports as KILN_ERR_UNSUPPORTED, never running another backend's. */
typedef struct kiln_vision_kernels {
    const char *name;
    kiln_status (*preprocess)(const kiln_preprocess_options *o, int n, const kiln_frame *frames, void *out,
                              kiln_letterbox *boxes, void *stream);
    kiln_status (*detect)(const kiln_detect_options *o, const kiln_tensor *pred, const kiln_letterbox *boxes,
                          kiln_detection *out, int *counts, float *extra, void *stream);
    kiln_status (*keypoints)(int n, int k, const float *extra, const kiln_letterbox *box, float *kp, void *stream);
    kiln_status (*masks)(const kiln_mask_options *o, int n, const float *coeffs, const kiln_detection *dets,
                         const kiln_tensor *protos, const kiln_letterbox *box, int net_width, int net_height,
                         uint8_t *masks, void *stream);
    kiln_status (*crops)(const kiln_preprocess_options *o, const kiln_frame *frame, int n,
                         const kiln_detection *dets, void *out, void *stream);
    kiln_status (*l2_normalize)(int n, int d, float *emb, void *stream);
    kiln_status (*match)(int n, int m, int d, const float *queries, const float *gallery, float *sim, int *best,
                         void *stream);
} kiln_vision_kernels;

/* The kernels of a backend in this build (kernels.c, the one place that
 * knows which exist); NULL when the build has none for it. */
const kiln_vision_kernels *kiln_vision_kernels_of(kiln_backend b);

/* cuda_*.cu: the cuda kernels, on device memory and `stream`
 * (cudaStream_t); what each is missing is NULL in kiln_vision_cuda
 * (cuda_kernels.cu). */
kiln_status kiln_vcuda_preprocess(const kiln_preprocess_options *o, int n, const kiln_frame *frames, void *out,
                                  kiln_letterbox *boxes, void *stream);
kiln_status kiln_vcuda_crops(const kiln_preprocess_options *o, const kiln_frame *frame, int n,
                             const kiln_detection *dets, void *out, void *stream);
kiln_status kiln_vcuda_l2_normalize(int n, int d, float *emb, void *stream);
kiln_status kiln_vcuda_match(int n, int m, int d, const float *queries, const float *gallery, float *sim, int *best,
                             void *stream);
kiln_status kiln_vcuda_detect(const kiln_detect_options *o, const kiln_tensor *pred, const kiln_letterbox *boxes,
                              kiln_detection *out, int *counts, float *extra, void *stream);
kiln_status kiln_vcuda_keypoints(int n, int k, const float *extra, const kiln_letterbox *box, float *kp,
                                 void *stream);
kiln_status kiln_vcuda_masks(const kiln_mask_options *o, int n, const float *coeffs, const kiln_detection *dets,
                             const kiln_tensor *protos, const kiln_letterbox *box, int net_width, int net_height,
                             uint8_t *masks, void *stream);

#ifdef __cplusplus
}
#endif

#endif
