/* The cuda backend's engines, contexts and per-shape instances
 * (src/cuda/backend.c, src/cuda/instance.c). backend.c builds engines and
 * contexts and calls instance.c; instance.c does not call backend.c. */
#ifndef KILN_CUDA_INSTANCE_H
#define KILN_CUDA_INSTANCE_H

#include "cuda/kc.h"

typedef struct cu_engine {
    const kiln_graph *g;
    kb_program *p;
    void *dweights;
    int device;
    int graphs; /* capture CUDA graphs */
    kiln_build_options o;
} cu_engine;

typedef struct cu_instance {
    int64_t *key;        /* every input's dims, n_inputs * KILN_MAX_RANK */
    kb_shapes shapes;
    kc_view *views;      /* per tensor */
    kc_view *io;         /* per step: its input views then its output views */
    int *io_at;          /* per step: index of its first view in io */
    kc_launch *launch;   /* per step (OP steps) */
    const kc_op **ops;   /* per step (OP steps): its kernel, found once here, not at every run */
    kc_conv *conv;       /* per step (CONV steps) */
    void **conv_state;
    size_t ws_need;
    void *host_stage;    /* pinned: the host tensors' bytes, copied in before each run */
    size_t host_bytes;
    cudaGraphExec_t exec;
    int graph_failed;
    struct cu_instance *next;
} cu_instance;

typedef struct cu_context {
    cu_engine *e;
    cudaStream_t stream;
    cudaEvent_t ev_in, ev_out;
    kc_handles h;
    int have_h;
    uint8_t *arena;
    size_t arena_bytes, ws_bytes;
    cu_instance *inst;
    void **host_out;     /* per output: pinned, sized for max */
    kiln_tensor *outs;
} cu_context;

void cu_instance_free(cu_engine *e, cu_instance *I);
/* kiln_fail_prefix with the step's node */
kiln_status cu_step_error(const cu_engine *e, const kb_step *s, kiln_status st);
/* Shapes, views and launch records for inputs of these dims. `prepare`:
 * also the per-shape library state (conv descriptors), which needs the
 * tactics. */
kiln_status cu_instance_new(cu_engine *e, cu_context *c, const int64_t *const *dims, bool prepare, cu_instance **out);
/* every step of I, launched on c's stream */
kiln_status cu_launch_steps(cu_engine *e, cu_context *c, cu_instance *I);
/* Captures I's CUDA graph once, when graphs are on. A kernel that cannot
 * be captured makes the shape run step by step (still on the GPU), said
 * once; only a stream that refuses to capture at all is an error. */
kiln_status cu_capture(cu_engine *e, cu_context *c, cu_instance *I);
/* I's run: its graph, or its steps */
kiln_status cu_run_instance(cu_engine *e, cu_context *c, cu_instance *I);
/* The instance for these input dims, made on first use. */
kiln_status cu_get_instance(cu_engine *e, cu_context *c, const kiln_tensor *in, cu_instance **out);

#endif
