/* Internals of the cuda backend, shared by its host C files and its .cu
 * kernels. Never included by the public header.
 *
 * Every op kernel is found by its op name: kiln_cuda_<Op>(const kc_launch *)
 * in src/cuda/<family>.cu, listed in the op table of src/cuda/ops.c. A
 * kernel sees device tensors as kc_view (logical ONNX dims + strides, so an
 * NHWC tensor is its NCHW dims with other strides) and the node's
 * attributes and constant inputs through the ONNX node and the concrete
 * value table of the shape being run. */
#ifndef KILN_CUDA_KC_H
#define KILN_CUDA_KC_H

#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "builder/program.h"
#include "ir/ir.h"

/* A device tensor: element (i0..ir) is at p + sum(ik * s[k]) elements. A
 * broadcast dim has stride 0. p == NULL: the tensor is not on the device
 * (an omitted optional input, or a host-only shape value). */
typedef struct kc_view {
    void *p;
    kiln_dtype dt;
    int rank;
    int64_t d[KILN_MAX_RANK];
    int64_t s[KILN_MAX_RANK];
} kc_view;

/* Library handles of one context (one stream). */
typedef struct kc_handles {
    void *cudnn;     /* cudnnHandle_t */
    void *cublaslt;  /* cublasLtHandle_t */
    int sm;          /* compute capability, 90 for sm_90 */
    int precision;   /* kiln_precision of the engine */
    int allow_rtc;   /* cuDNN engines compiled at run time may be used (KILN_BUILD_RUNTIME_COMPILE) */
    size_t ws_cap;   /* the context's workspace: what a kernel chosen at prepare may use (SIZE_MAX: unknown) */
} kc_handles;

/* `want` bytes of workspace, or the context's whole workspace when it has
 * less: what a kernel re-chosen at prepare may ask for. */
static inline size_t kc_ws_within(const kc_handles *h, size_t want)
{
    return h->ws_cap < want ? h->ws_cap : want;
}

/* One launch of an op kernel, everything concrete.
 * - n: the ONNX node (attributes; op name and node name for messages).
 * - v: the value table of the shape being run: every value's concrete
 *   shape and dtype as ONNX sees it, and host data (v[k].data) for
 *   constants and shape values (Reshape's shape, Resize's scales, Slice's
 *   starts, Pad's pads, TopK's k, Clip's min/max, ...). Read constant
 *   inputs from here, never from the device.
 * - in[i] / out[i]: device view of node input/output i (p == NULL when the
 *   input is omitted or lives on the host only). The dtype of a view may
 *   differ from the ONNX value's (f16 activations in an fp16 engine); the
 *   kernel computes in f32 and stores in the view's dtype.
 * - ws: scratch device memory of ws_bytes (kc_ws_fn said how much). */
typedef struct kc_launch {
    const kiln_node *n;
    const kiln_value *v;
    int n_in, n_out;
    const kc_view *in;
    const kc_view *out;
    cudaStream_t stream;
    void *ws;
    size_t ws_bytes;
    kc_handles *h;
} kc_launch;

typedef kiln_status (*kc_kernel_fn)(const kc_launch *L);
/* Scratch bytes a kernel needs for this launch (views' p are NULL then). */
typedef size_t (*kc_ws_fn)(const kc_launch *L);

/* ---- errors (runtime.c) */
/* Whether e leaves the device's context unusable: every later call on it
 * returns the error again (an illegal address, a kernel fault, an
 * uncorrectable ECC error, ...). */
bool kc_error_sticky(cudaError_t e);
/* Fails with KILN_ERR_DEVICE naming the CUDA call, its error and whether
 * the error is sticky (KILN_ERR_OUT_OF_MEMORY for cudaErrorMemoryAllocation);
 * clears this thread's last CUDA error. */
kiln_status kc_fail_cuda(cudaError_t e, const char *what);
/* After a kernel launch: KILN_OK, or the launch error naming the kernel. */
kiln_status kc_check_launch(const char *kernel);
#define KC_CHECK(call)                                                                                        \
    do {                                                                                                      \
        cudaError_t kc_e_ = (call);                                                                           \
        if (kc_e_ != cudaSuccess) return kc_fail_cuda(kc_e_, #call);                                          \
    } while (0)

/* "sm_90" for the current device; NULL when the runtime sees no GPU (runtime.c). */
const char *kiln_cuda_arch(void);

/* ---- page-locked host memory for kiln_host_alloc / kiln_host_register
 * (host_memory.c); KILN_ERR_UNSUPPORTED when the runtime sees no GPU */
kiln_status kc_host_alloc(size_t bytes, void **ptr);
void kc_host_free(void *ptr);
kiln_status kc_host_register(void *ptr, size_t bytes);
kiln_status kc_host_unregister(void *ptr);
/* Whether p is page-locked host memory (kc_host_alloc, cudaHostAlloc,
 * cudaHostRegister): copies from and to it need no staging. */
bool kc_host_pinned(const void *p);

/* ---- views and strided iteration (view.c) */
int64_t kc_view_numel(const kc_view *v);
/* Dense in NCHW order (channels_last false: N, C, then spatial) or in
 * channels-last order (N, spatial, C); axes of extent 1 may have any
 * stride. Rank 2 and up. (conv_common.c) */
bool kc_view_is_dense(const kc_view *v, bool channels_last);
/* Dense in C order (NCHW for rank 4). */
bool kc_view_contiguous(const kc_view *v);
/* Fills dims from a shape and C-order strides. */
void kc_view_dense(kc_view *v, void *p, kiln_dtype dt, const kiln_shape *s);
/* Same dims, NHWC strides for rank 4 (channels last); C order otherwise. */
void kc_view_nhwc(kc_view *v, void *p, kiln_dtype dt, const kiln_shape *s);
/* The view of `in` broadcast (numpy rules, right-aligned) to out_rank/out_d:
 * dims of 1 that broadcast get stride 0. */
void kc_view_broadcast(const kc_view *in, int out_rank, const int64_t *out_d, kc_view *res);

/* An elementwise walk over the output's elements with up to KC_MAX_OPS
 * operands (operand 0 is the output), in the output's memory order (so
 * that stores coalesce for NCHW and NHWC alike), contiguous runs of dims
 * merged. A kernel does, for linear index i < n:
 *   for k = rank-1 .. 0: c = i % d[k]; i /= d[k]; off[j] += c * s[j][k]; */
#define KC_MAX_OPS 9
typedef struct kc_iter {
    int rank;
    int n_ops;
    int64_t n;
    int64_t d[KILN_MAX_RANK];
    int64_t s[KC_MAX_OPS][KILN_MAX_RANK];
} kc_iter;
/* ops[0] is the output; ops[1..] must have the output's rank and dims
 * (broadcast them first with kc_view_broadcast). */
kiln_status kc_iter_make(int n_ops, const kc_view *const *ops, kc_iter *it);

/* ---- fused elementwise programs (elementwise.cu; kc_ew_prog, kc_act and
 * kc_conv_tactic are defined in builder/program.h, which saves them in plans) */
/* out = program(in[0..n_in)): inputs are broadcast to out's dims (numpy
 * rules); float dtypes only (f32, f16, bf16), any strides. */
kiln_status kc_ew_run(const kc_ew_prog *p, const kc_view *in, const kc_view *out, cudaStream_t s);
/* y = act(y + bias[channel] + z) in place, channel = axis 1, for a y dense
 * in NCHW or NHWC order (a conv's epilogue at memory speed); bias (a dense
 * [K]) and z (y's dims and strides) may be NULL or have p NULL.
 * KILN_ERR_UNSUPPORTED, nothing launched, for any other layout: run the
 * general program then. (elementwise.cu) */
kiln_status kc_bias_act(const kc_view *y, const kc_view *bias, const kc_view *z, int act, float a, float b,
                        cudaStream_t s);

/* out = in converted to out's dtype and strides: the one copy kernel
 * behind layout changes (NCHW <-> NHWC), casts at the graph's edges,
 * Transpose, Slice, Concat, Split, Expand (stride 0). Same logical dims;
 * any dtypes kiln has. (tensor.cu) */
kiln_status kc_copy(const kc_view *in, const kc_view *out, cudaStream_t s);

/* ---- convolution through cuDNN (conv.c)
 * One fused step: y = act(conv(x, w) + bias + z). x, z and y are NCHW or
 * NHWC (their strides say which); w is [K, C/group, kh, kw] with dense
 * KCRS strides (NCHW engines) or KRSC strides (NHWC engines), already in
 * the compute dtype on the device; bias is [K] (p == NULL: none), z has
 * y's shape (p == NULL: no residual). Geometry comes from the Conv node's
 * parameters (n->params.conv, kiln_window_conv). */
typedef struct kc_conv {
    const kiln_node *n; /* the Conv node */
    kc_view x, w, bias, z, y;
    kc_act act;
    float act_a, act_b;
} kc_conv;

/* Build time: times the candidate tactics on the device with the views'
 * buffers (contents are scratch) and picks the fastest whose workspace
 * fits ws_limit. *ms (may be NULL) is its time. */
kiln_status kc_conv_tune(kc_handles *h, const kc_conv *c, void *ws, size_t ws_limit, kc_conv_tactic *best, float *ms);
/* Per shape: descriptors for c's dims and the tactic; *ws_bytes is the
 * workspace kc_conv_run needs. The state is the caller's (kc_conv_release). */
kiln_status kc_conv_prepare(kc_handles *h, const kc_conv *c, const kc_conv_tactic *t, void **state, size_t *ws_bytes);
/* Enqueues the conv (and its epilogue) on s. Views' pointers may differ from
 * those given to prepare; their dims and strides may not. */
kiln_status kc_conv_run(void *state, kc_handles *h, const kc_conv *c, void *ws, size_t ws_bytes, cudaStream_t s);
void kc_conv_release(void *state);

/* ---- cuBLASLt helpers (gemm.c) */
/* KILN_OK, or KILN_ERR_DEVICE naming `what` and the cublasStatus_t's text. */
kiln_status kc_lt_check(int status, const char *what);
/* The cudaDataType_t of a float dtype; false for any other. */
bool kc_lt_dtype(kiln_dtype t, int *out);

/* ---- context library handles (conv.c / gemm.c) */
kiln_status kc_handles_init(kc_handles *h, int precision);
void kc_handles_release(kc_handles *h);

/* ---- the op table (ops.c) */
/* How the cuda backend runs an op: the op table's cuda column
 * (src/ir/ops.def). */
typedef enum kc_op_kind {
    KC_KERNEL = 0,  /* a kernel kiln_cuda_<Op> */
    KC_LOWERED = 1, /* the builder lowers it into other steps (no kernel of its own) */
    KC_HOST = 2,    /* computed on the host from shapes (Shape, Size) */
    KC_NONE = 3     /* not on cuda: `why` says so */
} kc_op_kind;

typedef struct kc_op {
    const char *name;
    kc_op_kind kind;
    kc_kernel_fn run;     /* KC_KERNEL only */
    kc_ws_fn ws;          /* NULL: no scratch */
    unsigned flags;       /* KC_OP_* */
    const char *why;      /* KC_NONE: the reason users see */
} kc_op;

enum {
    KC_OP_ALIAS = 1u << 0,    /* output 0 is input 0's bytes, reinterpreted (Reshape, Flatten, ...) when dense */
    KC_OP_NHWC = 1u << 1,     /* the kernel takes any strides on its 4-D float tensors (layout-agnostic) */
    KC_OP_HOST_ONLY = 1u << 2 /* reads only shapes/constants: computed on the host per shape (Shape, Size) */
};

/* The op's row, NULL when the op is not in the table. */
const kc_op *kc_op_find(const char *op_type);
/* The kernel's row: NULL unless kind is KC_KERNEL. */
const kc_op *kc_kernel_find(const char *op_type);

#ifdef __cplusplus
}
#endif
#endif
