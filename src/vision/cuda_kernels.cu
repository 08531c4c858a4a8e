/* The cuda backend's vision kernels, as kernels.c finds them. An entry is
 * NULL until its kernel has been run against the ref kernel on a GPU
 * (tests/unit/test_vision_cuda.c); vision.c answers a NULL entry with
 * KILN_ERR_UNSUPPORTED. */
#include "vision/vision.h"

extern "C" const kiln_vision_kernels kiln_vision_cuda = {
    "cuda",
    NULL, /* preprocess */
    NULL, /* detect */
    NULL, /* keypoints */
    NULL, /* masks */
    NULL, /* crops */
    NULL, /* l2_normalize */
    NULL, /* match */
};
