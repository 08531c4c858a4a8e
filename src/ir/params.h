/* Typed op parameters: each op's attributes, parsed once at import by its
 * kiln_params_<Op> (src/ir/params_*.c, named in the op table's params
 * column) into a struct of this union, kept in the node (kiln_node.params).
 * Shape rules, ref kernels, the builder and the cuda kernels read these
 * structs; none of them reads an ONNX attribute again for such an op.
 *
 * A parser checks what the attributes alone decide (a known enum string, a
 * value in range, a list no longer than kiln holds) and keeps every value
 * as the model gives it, defaults filled in; what depends on the inputs
 * (an axis against the rank, a list's length against the spatial dims) is
 * the shape rule's to check. Enum strings become the enums below. This
 * header is also read by the cuda backend (C++): keep it plain C. */
#ifndef KILN_IR_PARAMS_H
#define KILN_IR_PARAMS_H

#include "core/core.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- Resize (params_resize.c) */

typedef enum kiln_resize_mode {
    KILN_RESIZE_NEAREST,
    KILN_RESIZE_LINEAR,
    KILN_RESIZE_CUBIC
} kiln_resize_mode;

/* coordinate_transformation_mode */
typedef enum kiln_resize_ctm {
    KILN_RESIZE_HALF_PIXEL,
    KILN_RESIZE_HALF_PIXEL_SYMMETRIC,
    KILN_RESIZE_PYTORCH_HALF_PIXEL,
    KILN_RESIZE_ALIGN_CORNERS,
    KILN_RESIZE_ASYMMETRIC,
    KILN_RESIZE_TF_CROP_AND_RESIZE
} kiln_resize_ctm;

typedef enum kiln_resize_nearest {
    KILN_RESIZE_ROUND_PREFER_FLOOR,
    KILN_RESIZE_ROUND_PREFER_CEIL,
    KILN_RESIZE_FLOOR,
    KILN_RESIZE_CEIL
} kiln_resize_nearest;

/* keep_aspect_ratio_policy */
typedef enum kiln_resize_aspect {
    KILN_RESIZE_STRETCH,
    KILN_RESIZE_NOT_LARGER,
    KILN_RESIZE_NOT_SMALLER
} kiln_resize_aspect;

typedef struct kiln_resize_params {
    kiln_resize_mode mode;                 /* mode, default nearest */
    kiln_resize_ctm ctm;                   /* coordinate_transformation_mode, default half_pixel */
    kiln_resize_nearest nearest_mode;      /* default round_prefer_floor */
    kiln_resize_aspect keep_aspect_ratio_policy; /* default stretch */
    float cubic_coeff_a;                   /* default -0.75 */
    float extrapolation_value;             /* default 0 */
    bool exclude_outside;
    bool antialias;                        /* as given: the spec's nearest ignores it */
    int n_axes;                            /* 0: every axis (attribute absent) */
    int64_t axes[KILN_MAX_RANK];           /* as given, possibly negative */
} kiln_resize_params;

/* ---- Pad (params_resize.c) */

typedef enum kiln_pad_mode {
    KILN_PAD_CONSTANT,
    KILN_PAD_REFLECT,
    KILN_PAD_EDGE,
    KILN_PAD_WRAP
} kiln_pad_mode;

typedef struct kiln_pad_params {
    kiln_pad_mode mode; /* default constant */
} kiln_pad_params;

/* The ONNX spelling of a mode, for messages ("linear", "reflect"). */
const char *kiln_resize_mode_name(kiln_resize_mode m);
const char *kiln_pad_mode_name(kiln_pad_mode m);

/* ---- reduce family (params_reduce.c) */

/* ReduceMean / ReduceSum / ReduceMax / ReduceMin */
typedef struct kiln_reduce_params {
    bool keepdims;              /* default 1 */
    bool noop_with_empty_axes;  /* default 0 */
    /* ReduceSum-13 and every Reduce* since 18 take axes as optional input 1
     * (an `axes` attribute is then ignored); the others the attribute */
    bool axes_from_input;
    int n_axes;                 /* the attribute's axes; 0: absent or empty */
    int64_t axes[KILN_MAX_RANK];
} kiln_reduce_params;

typedef struct kiln_argmax_params {
    int64_t axis;               /* default 0, possibly negative */
    bool keepdims;              /* default 1 */
    bool select_last_index;     /* default 0 */
} kiln_argmax_params;

typedef struct kiln_topk_params {
    int64_t axis;               /* default -1 */
    bool largest;               /* default 1 */
    bool sorted;                /* default 1 */
} kiln_topk_params;

/* Softmax and LogSoftmax */
typedef struct kiln_softmax_params {
    int64_t axis;               /* default -1 */
} kiln_softmax_params;

typedef struct kiln_layernorm_params {
    int64_t axis;               /* default -1 */
    float epsilon;              /* default 1e-5 */
    kiln_dtype stash_type;      /* the Mean / InvStdDev dtype, default f32 */
} kiln_layernorm_params;

/* ---- pools (params_pool.c): MaxPool, AveragePool */

#define KILN_PARAMS_MAX_SPATIAL (KILN_MAX_RANK - 2)

typedef enum kiln_auto_pad {
    KILN_AUTO_PAD_NOTSET,
    KILN_AUTO_PAD_SAME_UPPER,
    KILN_AUTO_PAD_SAME_LOWER,
    KILN_AUTO_PAD_VALID
} kiln_auto_pad;

typedef struct kiln_pool_params {
    /* VALID needs no input shape: it is parsed as NOTSET with pads of 0 and
     * ceil_mode off (the same windows); SAME_* stays, its pads depend on the
     * input sizes. */
    kiln_auto_pad auto_pad;
    /* kernel_shape (required: n_kernel 0 when absent, which the shape rule
     * refuses), strides, dilations (0 values: absent, 1 everywhere) and pads
     * (0 values: absent, 0 everywhere; begins then ends). The lengths are
     * checked against the input's spatial dims by the shape rule. */
    int n_kernel, n_strides, n_dilations, n_pads;
    int64_t kernel[KILN_PARAMS_MAX_SPATIAL];
    int64_t strides[KILN_PARAMS_MAX_SPATIAL];
    int64_t dilations[KILN_PARAMS_MAX_SPATIAL];
    int64_t pads[2 * KILN_PARAMS_MAX_SPATIAL];
    bool ceil_mode;
    bool count_include_pad;     /* AveragePool (MaxPool ignores it) */
    bool column_major;          /* MaxPool storage_order 1 */
} kiln_pool_params;

/* ---- conv family (params_conv.c): Conv, ConvTranspose,
 * BatchNormalization, Gemm */

typedef struct kiln_conv_params {
    kiln_auto_pad auto_pad;     /* as given, VALID included (default NOTSET) */
    int64_t group;              /* default 1, >= 1 */
    /* kernel_shape (>= 1), strides and dilations (>= 1; absent: 1
     * everywhere), pads (>= 0, begins then ends; absent: 0 everywhere) and,
     * ConvTranspose only, output_padding (>= 0; absent: 0) and output_shape
     * (>= 0; the spatial dims, or N, C and the spatial dims). n_* 0: the
     * attribute is absent. The lengths are checked by the shape rule. */
    int n_kernel, n_strides, n_dilations, n_pads, n_output_padding, n_output_shape;
    int64_t kernel[KILN_PARAMS_MAX_SPATIAL];
    int64_t strides[KILN_PARAMS_MAX_SPATIAL];
    int64_t dilations[KILN_PARAMS_MAX_SPATIAL];
    int64_t pads[2 * KILN_PARAMS_MAX_SPATIAL];
    int64_t output_padding[KILN_PARAMS_MAX_SPATIAL];
    int64_t output_shape[KILN_MAX_RANK];
} kiln_conv_params;

typedef struct kiln_batchnorm_params {
    float epsilon;              /* default 1e-5 */
    bool training_mode;         /* default 0; the shape rule refuses 1 */
} kiln_batchnorm_params;

typedef struct kiln_gemm_params {
    float alpha, beta;          /* default 1, 1 */
    bool trans_a, trans_b;      /* transA, transB: default 0 */
} kiln_gemm_params;

/* ---- elementwise (params_elementwise.c) */

/* LeakyRelu (alpha 0.01), HardSigmoid (alpha 0.2, beta 0.5), Elu (alpha 1),
 * Selu (alpha 1.67326319..., gamma 1.05070102...: the f32 roundings),
 * Celu (alpha 1, not 0), ThresholdedRelu (alpha 1); what an op does not
 * have stays 0. */
typedef struct kiln_act_params {
    float alpha, beta, gamma;
} kiln_act_params;

typedef enum kiln_gelu_approx { KILN_GELU_NONE, KILN_GELU_TANH } kiln_gelu_approx;

typedef struct kiln_gelu_params {
    kiln_gelu_approx approximate; /* default none */
} kiln_gelu_params;

typedef struct kiln_cast_params {
    kiln_dtype to;              /* required; the shape rule checks kiln has it */
    bool saturate;              /* default 1 (Cast-19: conversions into float8) */
} kiln_cast_params;

typedef struct kiln_mod_params {
    bool fmod;                  /* default 0; 0 or 1 */
} kiln_mod_params;

typedef struct kiln_dropout_params {
    bool has_seed;              /* seed: read, never used (inference draws nothing) */
    int64_t seed;
} kiln_dropout_params;

/* ---- tensor ops (params_tensor.c) */

/* Flatten (default 1), Concat (required), Gather and GatherElements
 * (default 0), OneHot (default -1): possibly negative, checked against the
 * rank by the shape rule */
typedef struct kiln_axis_params {
    int64_t axis;
} kiln_axis_params;

typedef struct kiln_reshape_params {
    bool allowzero;             /* Reshape-14 on, default 0; false before */
} kiln_reshape_params;

typedef struct kiln_transpose_params {
    bool has_perm;              /* absent: the dims reversed */
    int n_perm;
    int64_t perm[KILN_MAX_RANK]; /* as given: the shape rule checks it is a permutation */
} kiln_transpose_params;

typedef struct kiln_split_params {
    int64_t axis;               /* default 0 */
    int64_t num_outputs;        /* Split-18, >= 1; 0: absent (and before 18) */
} kiln_split_params;

typedef struct kiln_shape_params {
    int64_t start;              /* Shape-15 on: default 0 (0 before) */
    bool has_end;               /* absent (and before 15): the rank */
    int64_t end;
} kiln_shape_params;

/* Constant: which one of its value attributes it has; the pointers are
 * the node's attribute (the graph's memory) */
typedef enum kiln_constant_kind {
    KILN_CONSTANT_TENSOR,       /* value: dtype kiln has, concrete shape */
    KILN_CONSTANT_FLOAT,        /* value_float (an int read as a float) */
    KILN_CONSTANT_INT,          /* value_int */
    KILN_CONSTANT_FLOATS,       /* value_floats */
    KILN_CONSTANT_INTS          /* value_ints */
} kiln_constant_kind;

struct kiln_value;

typedef struct kiln_constant_params {
    kiln_constant_kind kind;
    const struct kiln_value *tensor; /* TENSOR */
    float f;                    /* FLOAT */
    int64_t i;                  /* INT */
    int n;                      /* FLOATS, INTS: their length */
    const float *floats;
    const int64_t *ints;
} kiln_constant_params;

typedef struct kiln_constant_of_shape_params {
    /* value: a one-element tensor of a dtype kiln has; NULL when absent
     * (f32 0) */
    const struct kiln_value *value;
} kiln_constant_of_shape_params;

/* ---- index family (params_index.c) */

typedef struct kiln_einsum_params {
    /* the node's attribute, its syntax and terms (one per input) checked;
     * kiln_einsum_terms (src/ir/shape_index.h) splits it, kiln_einsum_plan
     * resolves it against the inputs' shapes */
    const char *equation;
} kiln_einsum_params;

typedef struct kiln_gathernd_params {
    int64_t batch_dims;         /* GatherND-12 on, default 0 (0 before) */
} kiln_gathernd_params;

/* ScatterND's reduction (16: none, add, mul; 18: also max, min); versions
 * 11 and 13 have no attribute (none). */
typedef enum kiln_scatter_red { KILN_RED_NONE, KILN_RED_ADD, KILN_RED_MUL, KILN_RED_MAX, KILN_RED_MIN } kiln_scatter_red;

typedef struct kiln_scatternd_params {
    kiln_scatter_red reduction;
} kiln_scatternd_params;

typedef struct kiln_trilu_params {
    bool upper;                 /* default 1 */
} kiln_trilu_params;

/* DepthToSpace, SpaceToDepth */
typedef struct kiln_block_params {
    int64_t blocksize;          /* required, 1 .. 2^20 */
    bool crd;                   /* DepthToSpace-11 on: mode CRD (default DCR; DCR before 11) */
} kiln_block_params;

/* ---- normalizations, CumSum (params_norm.c) */

typedef struct kiln_lrn_params {
    int64_t size;               /* required, >= 1 */
    float alpha, beta, bias;    /* default 1e-4, 0.75, 1 */
} kiln_lrn_params;

/* InstanceNormalization (epsilon only), GroupNormalization */
typedef struct kiln_norm_params {
    float epsilon;              /* default 1e-5 */
    int64_t num_groups;         /* GroupNormalization: required, >= 1 */
    kiln_dtype stash_type;      /* GroupNormalization: a float type, default f32 */
} kiln_norm_params;

typedef struct kiln_cumsum_params {
    bool exclusive, reverse;    /* default 0, 0 */
} kiln_cumsum_params;

/* ---- quantization (params_quant.c); QLinearConv and ConvInteger take
 * kiln_conv_params */

/* QuantizeLinear, DequantizeLinear: each attribute read only from the
 * version that has it (absent before: its default) */
typedef struct kiln_quant_params {
    int64_t axis;               /* 13 on, default 1, possibly negative */
    int64_t block_size;         /* 21 on, >= 0; 0: no blocked quantization */
    bool saturate;              /* QuantizeLinear-19 on, default 1: float8 outputs only */
    /* ONNX TensorProto.DataType numbers (kiln_dtype's), 0 when absent;
     * whether kiln has the dtype is the shape rule's to say */
    int output_dtype;           /* QuantizeLinear-21 on, DequantizeLinear-23 on */
    int precision;              /* QuantizeLinear-23 on: the division's dtype */
} kiln_quant_params;

typedef union kiln_params {
    int64_t none; /* ops without typed parameters (PA_N): left zero */
    kiln_resize_params resize;
    kiln_pad_params pad;
    kiln_reduce_params reduce;
    kiln_argmax_params argmax;
    kiln_topk_params topk;
    kiln_softmax_params softmax;
    kiln_layernorm_params layernorm;
    kiln_pool_params pool;
    kiln_conv_params conv;
    kiln_batchnorm_params batchnorm;
    kiln_gemm_params gemm;
    kiln_act_params act;
    kiln_gelu_params gelu;
    kiln_cast_params cast;
    kiln_mod_params mod;
    kiln_dropout_params dropout;
    kiln_axis_params axis;
    kiln_reshape_params reshape;
    kiln_transpose_params transpose;
    kiln_split_params split;
    kiln_shape_params shape;
    kiln_constant_params constant;
    kiln_constant_of_shape_params constant_of_shape;
    kiln_einsum_params einsum;
    kiln_gathernd_params gathernd;
    kiln_scatternd_params scatternd;
    kiln_trilu_params trilu;
    kiln_block_params block;
    kiln_lrn_params lrn;
    kiln_norm_params norm;
    kiln_cumsum_params cumsum;
    kiln_quant_params quant;
} kiln_params;

/* ---- for the parsers (src/ir/params_attr.c): read one attribute of node
 * n, `def` when absent, and fail naming the node's op, the attribute and
 * the value when it is of the wrong type (KILN_ERR_FORMAT) or not one kiln
 * implements (KILN_ERR_UNSUPPORTED). */
struct kiln_node;
/* whether n has the attribute (with a type) */
bool kiln_pa_has(const struct kiln_node *n, const char *name);
kiln_status kiln_pa_int(const struct kiln_node *n, const char *name, int64_t def, int64_t *out);
kiln_status kiln_pa_bool(const struct kiln_node *n, const char *name, bool def, bool *out);
/* a float, or an int read as a float */
kiln_status kiln_pa_float(const struct kiln_node *n, const char *name, float def, float *out);
/* a string, the node's own (NULL def: *out NULL when absent) */
kiln_status kiln_pa_string(const struct kiln_node *n, const char *name, const char *def, const char **out);
/* a string among names[0..count), as its index */
kiln_status kiln_pa_enum(const struct kiln_node *n, const char *name, int def, const char *const *names, int count,
                         int *out);
/* a list of at most max ints into out[max]; *cnt is 0 when absent */
kiln_status kiln_pa_ints(const struct kiln_node *n, const char *name, int max, int64_t *out, int *cnt);
/* the same, every value >= min */
kiln_status kiln_pa_ints_min(const struct kiln_node *n, const char *name, int max, int64_t min, int64_t *out,
                             int *cnt);
/* an int that must be present */
kiln_status kiln_pa_int_required(const struct kiln_node *n, const char *name, int64_t *out);
/* auto_pad of the conv and pool ops ("" is NOTSET) */
kiln_status kiln_pa_auto_pad(const struct kiln_node *n, kiln_auto_pad *out);

#endif
