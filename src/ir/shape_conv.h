/* Sliding-window geometry of Conv, ConvTranspose and the pools: output
 * sizes and head pads from the node's parameters (n->params.conv and
 * n->params.pool: strides, dilations, pads, auto_pad, ceil_mode,
 * output_padding, output_shape). One implementation,
 * used by the shape rules (src/ir/shape_conv.c) and by the reference
 * kernels (src/ref/conv.c, src/ref/pool.c), so the two cannot disagree. */
#ifndef KILN_IR_SHAPE_CONV_H
#define KILN_IR_SHAPE_CONV_H

#include "ir/ir.h"

#define KILN_MAX_SPATIAL (KILN_MAX_RANK - 2)

typedef struct kiln_window {
    int nsp;                            /* spatial dims: input rank - 2 */
    int64_t in[KILN_MAX_SPATIAL];       /* input spatial size (may be symbolic) */
    int64_t out[KILN_MAX_SPATIAL];      /* output spatial size; KILN_DIM_UNKNOWN if not computable */
    int64_t kernel[KILN_MAX_SPATIAL];
    int64_t stride[KILN_MAX_SPATIAL];
    int64_t dilation[KILN_MAX_SPATIAL];
    int64_t pad_begin[KILN_MAX_SPATIAL]; /* only meaningful when `out` is known */
    int64_t pad_end[KILN_MAX_SPATIAL];
} kiln_window;

/* Conv: `kernel` holds the nsp kernel sizes (from W or kernel_shape;
 * KILN_DIM_UNKNOWN allowed). x is the input shape, rank >= 3. */
kiln_status kiln_window_conv(const kiln_node *n, const kiln_shape *x, const int64_t *kernel, kiln_window *w);
/* MaxPool / AveragePool: kernel_shape (required), ceil_mode. */
kiln_status kiln_window_pool(const kiln_node *n, const kiln_shape *x, kiln_window *w);
/* ConvTranspose: out is the output size; pad_begin is where output position
 * 0 sits relative to the unpadded full transposed convolution. */
kiln_status kiln_window_convtranspose(const kiln_node *n, const kiln_shape *x, const int64_t *kernel,
                                      kiln_window *w);

#endif
