/*
 * kiln vision — what goes around a YOLO/ReID engine: pre-processing
 * (letterbox, normalisation), detection decoding and NMS, segmentation
 * masks, pose keypoints, ReID crops and embeddings.
 *
 * Every call names where it runs with a kiln_backend: KILN_BACKEND_CUDA
 * runs on the GPU and takes device pointers (and a cudaStream_t as
 * `stream`, NULL: the default stream), never copying results to the host:
 * pixels, tensors, detections, counts, extra values, keypoints, masks and
 * embeddings are device memory there, while the small descriptions (option
 * structs, the kiln_frame array itself, letterboxes) are host memory on
 * every backend;
 * KILN_BACKEND_REF is the plain-C reference on host pointers, the oracle
 * the GPU kernels are checked against. No call falls back from one to the
 * other: a step without a kernel on the backend asked for is
 * KILN_ERR_UNSUPPORTED.
 *
 * Conventions follow Ultralytics (YOLOv5/v8/11, YOLOv10) so that results
 * match its own post-processing: pixels are (x, y) with x to the right,
 * boxes are corners x1 y1 x2 y2 in the frame's pixels, the network input is
 * NCHW RGB in [0, 1] unless mean/std say otherwise. Errors and ownership as
 * in kiln.h: buffers are the caller's, every call returns a kiln_status
 * with kiln_last_error() set on failure.
 */
#ifndef KILN_VISION_H
#define KILN_VISION_H

#include "kiln.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------- pre-processing */

/* One frame: 8-bit, interleaved (HWC), 3 channels. */
typedef struct kiln_frame {
    const uint8_t *data; /* host memory on ref, device memory on cuda */
    int width, height;
    int stride;          /* bytes from one row to the next; 0: width * 3 */
    int bgr;             /* 1: B, G, R order (OpenCV's); 0: R, G, B */
} kiln_frame;

/* How a frame was fitted into the network input: network pixel x =
 * frame pixel x * scale_x + pad_x (y likewise). The frame is resized by one
 * factor, `scale`, to round(w * scale) x round(h * scale) pixels, so each
 * axis's real factor (scale_x = new_w / w, scale_y = new_h / h) differs
 * from `scale` by the rounding; mapping results back uses scale_x/scale_y
 * as Ultralytics' scale_boxes does. A letterbox made by hand may leave
 * scale_x/scale_y 0: both are then `scale`. */
typedef struct kiln_letterbox {
    float scale;
    float pad_x, pad_y;      /* left and top padding, network pixels */
    int frame_width, frame_height;
    float scale_x, scale_y;
} kiln_letterbox;

typedef struct kiln_preprocess_options {
    int width, height;       /* the network input's W and H */
    kiln_dtype dtype;        /* KILN_F32 or KILN_F16 */
    float mean[3], std[3];   /* per RGB channel: (pixel / 255 - mean) / std */
    uint8_t pad_value;       /* the border's gray level (114) */
    int center;              /* 1: pad both sides equally (Ultralytics); 0: right and bottom only */
    int scale_up;            /* 1: frames smaller than the input are enlarged */
} kiln_preprocess_options;

/* Ultralytics' defaults: 640x640 f32, mean 0, std 1, pad 114, centered,
 * scale_up 1. */
KILN_API void kiln_preprocess_options_init(kiln_preprocess_options *o);

/* Letterboxes n frames (each its own size) into `out`, an NCHW tensor of
 * n x 3 x height x width in o->dtype, channels R, G, B: each frame resized
 * by one factor (bilinear, pixel centers at +0.5, as OpenCV's INTER_LINEAR)
 * to fit, the rest filled with pad_value, then normalised. boxes[i] (may be
 * NULL) receives how frame i was fitted. */
KILN_API kiln_status kiln_vision_preprocess(kiln_backend where, const kiln_preprocess_options *o, int n,
                                            const kiln_frame *frames, void *out, kiln_letterbox *boxes,
                                            void *stream);

/* ----------------------------------------------------------------- detection */

typedef enum kiln_yolo_layout {
    /* YOLOv8 / YOLO11 (and v9): [B, 4 + C + E, N], rows cx cy w h, C class
     * scores, E extra values (32 mask coefficients, K x 3 keypoints) */
    KILN_YOLO_V8 = 0,
    /* YOLOv5: [B, N, 5 + C + E], cx cy w h, objectness, C class scores, E extra */
    KILN_YOLO_V5 = 1,
    /* YOLOv10 end to end: [B, N, 6 + E], x1 y1 x2 y2 score class, E extra; no NMS */
    KILN_YOLO_V10 = 2
} kiln_yolo_layout;

typedef struct kiln_detect_options {
    kiln_yolo_layout layout;
    int num_classes;        /* C (V10: ignored) */
    int num_extra;          /* E: values kept per detection (mask coefficients or keypoints) */
    float conf;             /* keep candidates scoring above (0.25) */
    float iou;              /* NMS IoU threshold (0.7 as Ultralytics' predict) */
    int max_det;            /* detections per image at most (300) */
    int max_nms;            /* candidates into NMS at most, the best first (30000) */
    int agnostic;           /* 1: NMS across classes */
    const int *classes;     /* keep only these classes (host memory); NULL: all */
    int n_classes;
} kiln_detect_options;

/* conf 0.25, iou 0.7, max_det 300, max_nms 30000, class-aware. */
KILN_API void kiln_detect_options_init(kiln_detect_options *o);

typedef struct kiln_detection {
    float x1, y1, x2, y2; /* frame pixels, clipped to the frame */
    float score;
    int class_id;
    int anchor;           /* the candidate's index in the network output */
} kiln_detection;

/* Decodes the network output `pred` (f32 or f16, dims as the layout says;
 * data on the backend's side) of B images: confidence filter, class-aware
 * (or agnostic) NMS as Ultralytics' non_max_suppression, boxes mapped back
 * through boxes[b] (may be NULL: network pixels). out holds B x max_det
 * detections (image b's from out[b * max_det]), sorted by score; counts[b]
 * how many; extra (may be NULL) B x max_det x E floats, each detection's
 * extra values as the network gave them. out, counts and extra are in the
 * backend's memory. */
KILN_API kiln_status kiln_vision_detect(kiln_backend where, const kiln_detect_options *o, const kiln_tensor *pred,
                                        const kiln_letterbox *boxes, kiln_detection *out, int *counts, float *extra,
                                        void *stream);

/* -------------------------------------------------------------------- pose */

/* Keypoints of n detections: extra (n x K*3: x, y, visibility in network
 * pixels, as the pose head gives them) mapped through `box` into frame
 * pixels, into kp (n x K x 3: x, y, confidence). */
KILN_API kiln_status kiln_vision_keypoints(kiln_backend where, int n, int k, const float *extra,
                                           const kiln_letterbox *box, float *kp, void *stream);

/* ------------------------------------------------------------ segmentation */

typedef struct kiln_mask_options {
    /* 0 x 0: masks of the frame's size; else the network input (padding
     * included) resampled to out_width x out_height */
    int out_width, out_height;
    float threshold;           /* a pixel is in when sigmoid(logit) > threshold (0.5) */
} kiln_mask_options;

/* Frame-sized masks, threshold 0.5. */
KILN_API void kiln_mask_options_init(kiln_mask_options *o);

/* Masks of n detections of one image: coefficients (n x P, the extra
 * values of kiln_vision_detect) times the prototypes `protos` (P x mh x mw
 * or 1 x P x mh x mw, the segmentation head's second output for this
 * image, f32 or f16), resampled bilinearly (PyTorch's align_corners=False)
 * and thresholded as sigmoid > o->threshold; each mask is cropped as
 * Ultralytics' crop_mask does (x1 <= column < x2, y1 <= row < y2). masks is
 * n x H x W bytes, 1 inside.
 * - out_width == 0: masks of the frame (box->frame_width x frame_height),
 *   as Ultralytics' retina_masks (process_mask_native): the letterbox
 *   padding removed, dets used as given, in frame pixels.
 * - otherwise: the whole network input (net_width x net_height, padding
 *   included) stretched to out_width x out_height; at the network's size
 *   this is Ultralytics' default (process_mask, upsample=True), at the
 *   prototypes' size upsample=False. dets are mapped to network pixels
 *   through box (x * scale_x + pad_x), or taken as network pixels when box
 *   is NULL. */
KILN_API kiln_status kiln_vision_masks(kiln_backend where, const kiln_mask_options *o, int n, const float *coeffs,
                                       const kiln_detection *dets, const kiln_tensor *protos,
                                       const kiln_letterbox *box, int net_width, int net_height, uint8_t *masks,
                                       void *stream);

/* -------------------------------------------------------------------- ReID */

/* Crops n boxes (frame pixels) out of one frame and resizes each to
 * width x height (bilinear, as kiln_vision_preprocess, over the box's
 * continuous window: sub-pixel corners are honoured; no letterbox, ReID
 * nets take the stretched crop), normalised by mean/std of o, into out
 * (n x 3 x height x width, o->dtype). Boxes are clipped to the frame; a box
 * with no area left (outside the frame, empty, NaN) is no error, since a
 * GPU reads boxes it cannot check without a sync: its crop is filled with
 * the normalised pad_value, and the others are unaffected. */
KILN_API kiln_status kiln_vision_crops(kiln_backend where, const kiln_preprocess_options *o, const kiln_frame *frame,
                                       int n, const kiln_detection *dets, void *out, void *stream);

/* L2-normalises n embeddings of d floats in place. */
KILN_API kiln_status kiln_vision_l2_normalize(kiln_backend where, int n, int d, float *emb, void *stream);

/* Cosine similarity of n (normalised) queries against m gallery entries:
 * sim is n x m; best[i] (may be NULL) the index of query i's most similar
 * entry (-1 when m is 0). */
KILN_API kiln_status kiln_vision_match(kiln_backend where, int n, int m, int d, const float *queries,
                                       const float *gallery, float *sim, int *best, void *stream);

#ifdef __cplusplus
}
#endif

#endif
