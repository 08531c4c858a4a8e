/* The builder: what a GPU engine runs, decided once at build time and
 * saved in the plan. A graph is lowered into a program: device tensors
 * (dtype, layout, where their bytes live) and steps (a fused convolution,
 * a fused elementwise program, an op kernel found by name, a layout or
 * dtype change). Plain C: no CUDA here, so lowering, fusion and the memory
 * planner are tested on machines without a GPU.
 *
 * The program refers to the graph's values for shapes: each run's concrete
 * shapes come from shape inference over the graph (kb_shapes_infer), so one
 * program serves every shape of the optimization profile. */
#ifndef KILN_BUILDER_PROGRAM_H
#define KILN_BUILDER_PROGRAM_H

#include "ir/ir.h"

/* ---- activations shared by fused epilogues and elementwise programs */
typedef enum kc_act {
    KC_ACT_NONE = 0,
    KC_ACT_RELU,
    KC_ACT_SIGMOID,
    KC_ACT_SILU,        /* x * sigmoid(x) */
    KC_ACT_TANH,
    KC_ACT_HARDSIGMOID, /* max(0, min(1, a*x + b)) */
    KC_ACT_HARDSWISH,   /* x * max(0, min(1, x/6 + 1/2)) */
    KC_ACT_LEAKY,       /* x >= 0 ? x : a*x */
    KC_ACT_CLIP,        /* min(max(x, a), b) */
    KC_ACT_GELU,        /* 0.5 x (1 + erf(x / sqrt 2)) */
    KC_ACT_GELU_TANH    /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
} kc_act;

/* ---- fused elementwise programs (run by src/cuda/elementwise.cu)
 * A chain of float elementwise ops run as one kernel: every element loads
 * its inputs (broadcast to the output, any strides, f32/f16/bf16), runs the
 * instructions on f32 registers and stores register `result` once. The
 * builder fuses chains into one program; a single op (Relu, Add, ...) is a
 * program of one or two instructions; a conv epilogue (bias, residual,
 * activation) is one too. */
#define KC_EW_MAX_IN 8
#define KC_EW_MAX_INS 32
#define KC_EW_MAX_REGS 32

typedef enum kc_ew_opcode {
    KC_EW_LOAD = 0, /* r[dst] = input[a] */
    KC_EW_IMM,      /* r[dst] = p0 */
    KC_EW_ADD,      /* r[dst] = r[a] + r[b] */
    KC_EW_SUB,
    KC_EW_MUL,
    KC_EW_DIV,
    KC_EW_POW,      /* powf(r[a], r[b]) */
    KC_EW_MAX,
    KC_EW_MIN,
    KC_EW_NEG,      /* r[dst] = -r[a] */
    KC_EW_ABS,
    KC_EW_SQRT,
    KC_EW_EXP,
    KC_EW_LOG,
    KC_EW_RECIP,
    KC_EW_FLOOR,
    KC_EW_CEIL,
    KC_EW_ERF,
    KC_EW_ACT,      /* r[dst] = kc_act_apply(r[a], act, p0, p1) */
    KC_EW_PRELU,    /* r[dst] = r[a] < 0 ? r[a] * r[b] : r[a] */
    KC_EW_ROUND     /* rintf: halves to even (Round); last, so older plans keep their numbers */
} kc_ew_opcode;

typedef struct kc_ew_ins {
    uint8_t op, dst, a, b;
    uint8_t act; /* kc_act, for KC_EW_ACT */
    uint8_t pad[3];
    float p0, p1;
} kc_ew_ins;

typedef struct kc_ew_prog {
    int n_in;   /* inputs the program loads */
    int n_ins;  /* instructions */
    int result; /* the register stored to the output */
    int reserved;
    kc_ew_ins ins[KC_EW_MAX_INS];
} kc_ew_prog;

/* What the builder chose for a conv, saved in the plan. */
typedef struct kc_conv_tactic {
    int32_t algo;  /* cudnnConvolutionFwdAlgo_t */
    int32_t fused; /* 1: cudnnConvolutionBiasActivationForward does bias (+z) (+relu); 0: conv, then an epilogue program */
    int32_t math;  /* cudnnMathType_t */
    int32_t reserved;
} kc_conv_tactic;

/* ---- the program */
typedef enum kb_layout { KB_NCHW = 0, KB_NHWC = 1 } kb_layout;

typedef enum kb_storage {
    KB_ARENA = 0, /* activation memory of a context, planned (offset) */
    KB_WEIGHT,    /* the engine's device weights (offset into them) */
    KB_ALIAS,     /* the bytes of tensor `alias`, read with other dims */
    KB_HOST,      /* computed on the host per shape, copied into the arena before each run */
    KB_SLICE      /* a concat input written in place: the part of tensor `alias` (a Concat's output)
                   * that input `slice_input` of node `slice_node` occupies along `slice_axis` */
} kb_storage;

enum {
    KB_PROG_RUNTIME_COMPILE = 1u << 0 /* tactics may use cuDNN engines compiled at run time */
};

enum {
    KB_NODE_SKIP = 0,   /* folded at import: its outputs are constants */
    KB_NODE_HOST = 1,   /* computed on the host per shape (shape subgraphs) */
    KB_NODE_DEVICE = 2  /* computed on the GPU by some step; shapes inferred per run */
};

typedef struct kb_tensor {
    int value;          /* the graph value whose (concrete) dims it has; -1: `shape` */
    kiln_shape shape;   /* value == -1: fixed dims (pre-transformed weights) */
    kiln_dtype dt;      /* storage dtype on the device */
    int layout;         /* kb_layout; NHWC only for rank 4 */
    int storage;        /* kb_storage */
    int alias;          /* KB_ALIAS: the tensor whose bytes these are; KB_SLICE: the concat's output */
    int slice_node, slice_input, slice_axis; /* KB_SLICE: the Concat, which of its inputs, its axis (>= 0) */
    int pinned;         /* 1: graph input or output slot, or host value: lives the whole run */
    uint64_t offset;    /* KB_ARENA / KB_HOST: in the arena; KB_WEIGHT: in the weights */
    uint64_t max_bytes; /* bytes at the profile's max shape */
    int first, last;    /* steps that write it first and read it last (planner) */
} kb_tensor;

typedef enum kb_step_kind {
    KB_STEP_OP = 0, /* one node through its kernel kiln_cuda_<Op> */
    KB_STEP_CONV,   /* a Conv with bias, residual and activation fused */
    KB_STEP_EW,     /* a fused elementwise program */
    KB_STEP_COPY    /* a layout or dtype change: in[0] -> out[0] */
} kb_step_kind;

#define KB_MAX_FUSED 16

typedef struct kb_step {
    int kind;
    int node;       /* OP: the node; CONV: the Conv node; EW: the last node; COPY: the node that needed it, or -1 */
    int n_in, n_out;
    int *in, *out;  /* tensor indices; OP: parallel to the node's inputs/outputs (-1: none) */
    /* CONV: in = {x, w, bias or -1, z or -1}, out = {y} */
    int act;        /* kc_act */
    float act_a, act_b;
    kc_conv_tactic tactic;
    /* EW: in = the program's inputs, out = {y} */
    kc_ew_prog prog;
    int n_nodes;    /* the graph nodes this step runs (report) */
    int nodes[KB_MAX_FUSED];
    float ms;       /* the tuned time at opt, 0 when not timed */
} kb_step;

typedef struct kb_program {
    kiln_arena arena;     /* owns the arrays below */
    int precision;        /* kiln_precision */
    kiln_dtype compute;   /* f32, f16 or bf16: the dtype of float activations */
    int n_tensors, cap_tensors;
    kb_tensor *tensors;
    int n_steps, cap_steps;
    kb_step *steps;
    int *value_tensor;    /* per graph value: its main device tensor, -1 none */
    int n_inputs, n_outputs; /* the graph's */
    int *input_tensor;    /* per graph input: the staging slot (user dtype, dense) */
    int *output_tensor;   /* per graph output: the slot read back (user dtype, dense) */
    int n_nodes_total;    /* the graph's node and value counts */
    int n_values_total;
    uint8_t *node_class;  /* per graph node: KB_NODE_* */
    /* profile per graph input: rank dims each */
    int64_t *prof_min, *prof_opt, *prof_max;
    uint64_t arena_bytes;   /* planned activation memory (without workspace) */
    uint64_t naive_bytes;   /* sum of all activations at max: what planning saved */
    uint64_t ws_bytes;      /* workspace shared by the steps, after the arena */
    uint64_t weight_bytes;  /* the device weights */
    uint32_t flags;         /* KB_PROG_* */
    uint32_t cudnn_version; /* the libraries the tactics were chosen with (cudnnGetVersion, */
    uint32_t cublas_version; /* cublasLtGetVersion); a plan needs the same to load */
    uint8_t *weights;       /* host copy of the device weights (weight_bytes), malloc'd */
} kb_program;

/* ---- concrete shapes (shapes.c) */
/* Per-shape state: the value table with every value's concrete shape, host
 * data for the host nodes' outputs. */
typedef struct kb_shapes {
    kiln_value *v;
    void **host; /* per value: malloc'd data computed on the host, or NULL */
    int n_values;
} kb_shapes;

/* Infers every value's shape for inputs of these dims (in graph input
 * order, dims[i] has the input's rank), running the host nodes' reference
 * kernels. Fails naming the node. */
kiln_status kb_shapes_infer(const kiln_graph *g, const kb_program *p, const int64_t *const *dims, kb_shapes *out);
void kb_shapes_free(kb_shapes *s);

/* ---- lowering (lower.c) */
/* What the backend's kernel table says about an op, for lowering: its
 * KB_OP_* flags, and in *exists whether the backend has a kernel for it.
 * The backend passes its own to kb_lower; NULL: no kernels. */
typedef unsigned (*kb_op_flags_fn)(const char *op_type, bool *exists);
/* Lowers g for `precision` into *out (the caller's, kb_program_free):
 * profile from `profile` (kiln_build_options.profile syntax) and
 * input_shapes, host/device split, fusion, layouts, weights, memory plan.
 * The kernels are those op_flags says the backend has. Fails naming the
 * node that the cuda backend cannot run. */
kiln_status kb_lower(const kiln_graph *g, const kiln_build_options *o, kb_op_flags_fn op_flags, kb_program **out);
void kb_program_free(kb_program *p);
enum {
    KB_OP_ALIAS = 1u << 0,  /* output 0 is input 0's bytes reinterpreted when dense (Reshape, ...) */
    KB_OP_STRIDED = 1u << 1 /* takes any strides on its tensors: NHWC in, NHWC out for 4-D */
};

/* ---- concat in place (concat.c) */
/* Makes the inputs of Concat steps slices of the output where every step
 * that writes or reads them takes strided tensors: their producers then
 * write into the concat's output and the copy is gone. The other inputs
 * are copied into their slices; a Concat none of whose inputs can be
 * placed stays one kernel. Runs after lowering, before the memory plan. */
kiln_status kb_place_concats(const kiln_graph *g, kb_program *p, kb_op_flags_fn op_flags);
/* The start of slice tensor t along its axis at these shapes: the sum of
 * the earlier concat inputs' extents. */
int64_t kb_slice_start(const kiln_graph *g, const kb_tensor *t, const kiln_value *v);

/* ---- memory planning (memplan.c) */
/* Offsets for every KB_ARENA/KB_HOST tensor from lifetimes (first..last
 * step), best fit, 256-byte aligned; sets arena_bytes and naive_bytes. */
void kb_plan_memory(kb_program *p);
/* 1 when two planned tensors with overlapping lifetimes overlap in memory
 * (a planner bug); used by the tests. */
int kb_plan_check(const kb_program *p);

/* ---- plans and reports (program_io.c) */
typedef struct kiln_bytes kiln_bytes;
void kb_program_serialize(const kb_program *p, kiln_bytes *prog);
kiln_status kb_program_deserialize(const kiln_graph *g, const uint8_t *prog, size_t size, const uint8_t *weights,
                                   size_t weight_bytes, const char *what, kb_program **out);
/* drop[v] = 1 for the constants a plan of p need not keep as ONNX data:
 * every node that reads them is folded, or runs inside a conv step or an
 * elementwise program (whose constants are device weights or immediates),
 * so only their pre-transformed device copy is used. Small ones (256 bytes
 * or less) are kept: a shape rule may read them. */
void kb_program_drops(const kiln_graph *g, const kb_program *p, uint8_t *drop);
/* The per-step report (kiln_engine_report). */
void kb_program_report(const kiln_graph *g, const kb_program *p, bool json, kiln_sbuf *b);
/* The words of that report, for kiln inspect PLAN too (inspect/describe.c):
 * a step's kind ("conv"), an activation's name ("silu"), and the kernel or
 * tactic a step runs ("cudnn algo 1 fused bias+silu tensor-op"); safe on a
 * deserialized program's indexes. */
const char *kb_step_kind_name(int kind);
const char *kb_act_name(int act);
void kb_step_kernel_text(const kiln_graph *g, const kb_program *p, const kb_step *s, char *buf, size_t cap);

#endif
