/*
 * kiln — an inference engine for ONNX models, in C.
 *
 * The one public header. Every type is opaque behind a pointer; every call
 * returns a kiln_status and, on failure, leaves a message for this thread in
 * kiln_last_error(). No call aborts or exits on bad input.
 *
 * Ownership: a kiln_X_create/load/build returns an object the caller owns and
 * releases with kiln_X_destroy. Strings and arrays returned through `const`
 * pointers stay owned by the object they came from and live as long as it.
 * Buffers returned through `char **` / `void **` belong to the caller and
 * are released with kiln_free().
 */
#ifndef KILN_H
#define KILN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define KILN_API __attribute__((visibility("default")))
#else
#define KILN_API
#endif

/* ---------------------------------------------------------------- status */

typedef enum kiln_status {
    KILN_OK = 0,
    KILN_ERR_INVALID_ARGUMENT = 1, /* the caller passed something wrong */
    KILN_ERR_IO = 2,               /* a file cannot be opened, read or written */
    KILN_ERR_FORMAT = 3,           /* a file is not what it claims: not ONNX, truncated, corrupt */
    KILN_ERR_UNSUPPORTED = 4,      /* an op, opset, dtype or attribute kiln cannot run */
    KILN_ERR_SHAPE = 5,            /* shapes or dtypes contradict each other */
    KILN_ERR_OUT_OF_MEMORY = 6,
    KILN_ERR_DEVICE = 7,           /* the GPU or its libraries failed */
    KILN_ERR_NOT_FOUND = 8,        /* a named tensor, input or entry does not exist */
    KILN_ERR_VERSION = 9,          /* a plan for another kiln version or architecture */
    KILN_ERR_INTERNAL = 10,        /* a bug in kiln: please report it */
    KILN_ERR_CANCELLED = 11        /* a queued request was cancelled (shutdown) before it ran */
} kiln_status;

/* A static name for a status ("KILN_ERR_FORMAT"). Never NULL. */
KILN_API const char *kiln_status_name(kiln_status s);

/* The message of the last failed call on this thread ("" if none). The string
 * is owned by kiln and valid until the next kiln call on this thread. */
KILN_API const char *kiln_last_error(void);

/* --------------------------------------------------------------- version */

#define KILN_VERSION_MAJOR 0
#define KILN_VERSION_MINOR 1
#define KILN_VERSION_PATCH 0

/* MAJOR*10000 + MINOR*100 + PATCH of the library actually loaded. */
KILN_API uint32_t kiln_version(void);
/* "0.1.0"; static string. */
KILN_API const char *kiln_version_string(void);

/* ------------------------------------------------------------------- log */

typedef enum kiln_log_level {
    KILN_LOG_ERROR = 0,
    KILN_LOG_WARN = 1,
    KILN_LOG_INFO = 2,
    KILN_LOG_DEBUG = 3
} kiln_log_level;

/* Called for every message at or below the set level, from the thread that
 * logs it; must be thread-safe. `msg` is valid only during the call. */
typedef void (*kiln_log_fn)(kiln_log_level level, const char *msg, void *user);

/* Replaces the log sink (NULL restores the default: stderr). Process-wide. */
KILN_API void kiln_set_log_callback(kiln_log_fn fn, void *user);
/* Messages above `level` are dropped. Default: KILN_LOG_WARN, or the value of
 * $KILN_LOG_LEVEL (error, warn, info, debug). */
KILN_API void kiln_set_log_level(kiln_log_level level);
/* The level in force (what kiln_set_log_level set, else $KILN_LOG_LEVEL's). */
KILN_API kiln_log_level kiln_get_log_level(void);

/* ---------------------------------------------------------------- dtypes */

/* Values are those of ONNX's TensorProto.DataType. */
typedef enum kiln_dtype {
    KILN_DTYPE_UNDEFINED = 0,
    KILN_F32 = 1,
    KILN_U8 = 2,
    KILN_I8 = 3,
    KILN_I32 = 6,
    KILN_I64 = 7,
    KILN_BOOL = 9,
    KILN_F16 = 10,
    KILN_F64 = 11,
    KILN_BF16 = 16,
    KILN_F8E4M3 = 17
} kiln_dtype;

/* "f32", "i64", ...; "undefined" for anything else. Static string. */
KILN_API const char *kiln_dtype_name(kiln_dtype t);
/* Bytes per element, 0 for an unknown dtype. */
KILN_API size_t kiln_dtype_size(kiln_dtype t);

#define KILN_MAX_RANK 8

/* A tensor's description. A dimension < 0 is symbolic; its name, when the
 * model gave one, is in dim_names (owned by the object that filled it). */
typedef struct kiln_tensor_desc {
    const char *name;
    kiln_dtype dtype;
    int rank;
    int64_t dims[KILN_MAX_RANK];
    const char *dim_names[KILN_MAX_RANK];
} kiln_tensor_desc;

/* A tensor with data, dense and in C order. Who owns `data` is said by the
 * call that takes or returns it. */
typedef struct kiln_tensor {
    const char *name;
    kiln_dtype dtype;
    int rank;
    int64_t dims[KILN_MAX_RANK];
    void *data;
} kiln_tensor;

/* Releases a buffer kiln handed to the caller (NULL is fine). */
KILN_API void kiln_free(void *p);

/* ----------------------------------------------------------------- model */

typedef struct kiln_model kiln_model;

/* Imports an ONNX file: parses it, checks opsets, infers shapes and dtypes
 * and folds shape computations. External data is mapped from the model's
 * folder. On success the caller owns *out. Nodes kiln cannot handle do not
 * fail the load: they are listed by kiln_model_report and refused by
 * kiln_engine_build. A file that is not a readable ONNX model fails. */
KILN_API kiln_status kiln_model_load(const char *path, kiln_model **out);

/* Same, from memory. `bytes` is copied; external data resolves against
 * `base_dir` (NULL: external data refused). `name` is used in messages. */
KILN_API kiln_status kiln_model_load_memory(const void *bytes, size_t size, const char *name,
                                            const char *base_dir, kiln_model **out);

KILN_API void kiln_model_destroy(kiln_model *m);

KILN_API int kiln_model_num_inputs(const kiln_model *m);
KILN_API int kiln_model_num_outputs(const kiln_model *m);
/* Fills *out with input/output i; strings owned by the model. */
KILN_API kiln_status kiln_model_input(const kiln_model *m, int i, kiln_tensor_desc *out);
KILN_API kiln_status kiln_model_output(const kiln_model *m, int i, kiln_tensor_desc *out);

/* Fixes the shape of an input (every symbolic dim becomes concrete) and
 * infers the graph again, folding what becomes constant. A shape that
 * contradicts the model (rank, a fixed dim) fails naming the input. */
KILN_API kiln_status kiln_model_set_input_shape(kiln_model *m, const char *input, int rank,
                                                const int64_t *dims);

typedef enum kiln_report_format {
    KILN_REPORT_TEXT = 0,
    KILN_REPORT_JSON = 1,
    KILN_REPORT_JSON_VALUES = 2 /* JSON plus every tensor's inferred dtype and shape */
} kiln_report_format;

/* The `kiln inspect` summary: inputs/outputs, op histogram, parameters,
 * FLOPs per op type, unsupported nodes. *out is the caller's (kiln_free).
 * The JSON schema is documented in docs/inspect-json.md. */
KILN_API kiln_status kiln_model_report(const kiln_model *m, kiln_report_format fmt, char **out);

/* The model's nodes, in the topological order they run in: their count,
 * and node i's name, op type and numbers of inputs and outputs (any of the
 * pointers may be NULL; strings are owned by the model). */
KILN_API int kiln_model_num_nodes(const kiln_model *m);
KILN_API kiln_status kiln_model_node(const kiln_model *m, int i, const char **name, const char **op, int *n_inputs,
                                     int *n_outputs);
/* Input / output k of node i, as inferred (name, dtype, shape; owned by the
 * model). KILN_ERR_NOT_FOUND for an omitted optional one. */
KILN_API kiln_status kiln_model_node_input(const kiln_model *m, int i, int k, kiln_tensor_desc *out);
KILN_API kiln_status kiln_model_node_output(const kiln_model *m, int i, int k, kiln_tensor_desc *out);
/* Makes the tensor `name`, a value some node computes, an output of the
 * model too, after the declared ones: what a debugger marks to see inside
 * an engine (kiln compare --bisect). Engines built afterwards keep it in
 * memory and may fuse less around it. A tensor that is already an output
 * is left as it is. Fails with KILN_ERR_NOT_FOUND when no node computes
 * it (an input, a weight, a folded constant, or no such name), and while
 * an engine built from the model is alive. Such a model is no longer the
 * file it came from: save its engines under another name than the cache's. */
KILN_API kiln_status kiln_model_mark_output(kiln_model *m, const char *name);

/* Number of nodes kiln cannot handle (0 when the whole model is supported). */
KILN_API int kiln_model_num_unsupported(const kiln_model *m);
/* The i-th unsupported node: its name, op type and the reason, all owned by
 * the model. */
KILN_API kiln_status kiln_model_unsupported(const kiln_model *m, int i, const char **node, const char **op,
                                            const char **reason);

/* ---------------------------------------------------------------- engine */

typedef enum kiln_backend {
    KILN_BACKEND_CUDA = 0, /* the product: kiln's GPU engine */
    KILN_BACKEND_REF = 1   /* plain-C reference executor; only when asked for */
} kiln_backend;

/* The arithmetic an engine is built for; part of its identity (and of its
 * plan file name). The ref backend computes in the model's own dtypes and
 * accepts only DEFAULT and FP32. */
typedef enum kiln_precision {
    KILN_PRECISION_DEFAULT = 0, /* fp32 on ref; the backend's best on cuda */
    KILN_PRECISION_FP32 = 1,
    KILN_PRECISION_FP16 = 2,
    KILN_PRECISION_BF16 = 3,
    KILN_PRECISION_INT8 = 4,
    KILN_PRECISION_FP8 = 5,
    KILN_PRECISION_TF32 = 6  /* cuda: f32 tensors, TF32 tensor-core math in convs and GEMMs */
} kiln_precision;

/* kiln_build_options.flags */
enum {
    KILN_BUILD_FORCE_REBUILD = 1u << 0, /* kiln_build_or_load: skip both caches, build, refresh them */
    KILN_BUILD_NO_REMOTE = 1u << 1,     /* kiln_build_or_load: ignore $KILN_REMOTE_URL */
    KILN_BUILD_NO_UPLOAD = 1u << 2,     /* kiln_build_or_load: download from the remote, never upload */
    KILN_BUILD_NO_CACHE = 1u << 3,      /* kiln_build_or_load: build only, neither read nor write a cache */
    /* cuda: also consider cuDNN engines compiled at run time (NVRTC). They
     * are often the fastest fused convolutions (conv + bias + residual +
     * activation in one kernel), but each costs 0.3-1 s to compile at build
     * and again the first time a process runs a shape. Recorded in the plan. */
    KILN_BUILD_RUNTIME_COMPILE = 1u << 4
};

/* Strings are the caller's and read only during the call that takes the
 * options. The struct keeps its size (64 bytes) across versions. */
typedef struct kiln_build_options {
    kiln_backend backend;
    kiln_precision precision;
    unsigned flags;             /* KILN_BUILD_* */
    int device;                 /* cuda: the GPU ordinal to build on; 0 the first */
    const char *model_name;     /* identity name; NULL: the model file's name without .onnx */
    const char *model_version;  /* identity version; NULL: first 8 hex digits of the model's SHA-256 */
    const char *cache_dir;      /* NULL: $KILN_CACHE_DIR, $XDG_CACHE_HOME/kiln/engines, ~/.cache/kiln/engines */
    const char *input_shapes;   /* "NAME:1x3x224x224,NAME2:..." fixed at build; NULL: as the model says */
    uint64_t workspace_bytes;   /* scratch memory limit for the builder; 0: the backend's default */
    /* The optimization profile of the inputs' symbolic dims (cuda):
     * "min:SHAPES;opt:SHAPES;max:SHAPES", each SHAPES as in input_shapes
     * ("images:1x3x224x224,..."); any part may be left out. Inputs left out
     * get min 1, opt 1, max 32 for a symbolic dim 0, and fail the build for
     * any other symbolic dim. Activation memory is sized for max; the
     * tactics are timed at opt. NULL: the defaults. */
    const char *profile;
} kiln_build_options;

/* Defaults: backend CUDA, everything else zero/NULL. */
KILN_API void kiln_build_options_init(kiln_build_options *o);

typedef struct kiln_engine kiln_engine;
typedef struct kiln_context kiln_context;

/* Builds an engine for `m` on the chosen backend. Fails, naming the node, op
 * and reason, if the backend cannot run every node: there is no silent
 * fallback to another backend. The engine does not keep `m`; the caller owns
 * *out. */
KILN_API kiln_status kiln_engine_build(const kiln_model *m, const kiln_build_options *o,
                                       kiln_engine **out);
KILN_API void kiln_engine_destroy(kiln_engine *e);

KILN_API int kiln_engine_num_inputs(const kiln_engine *e);
KILN_API int kiln_engine_num_outputs(const kiln_engine *e);
/* Strings owned by the engine. */
KILN_API kiln_status kiln_engine_input(const kiln_engine *e, int i, kiln_tensor_desc *out);
KILN_API kiln_status kiln_engine_output(const kiln_engine *e, int i, kiln_tensor_desc *out);
/* "ref" or "cuda"; static string. */
KILN_API const char *kiln_engine_backend_name(const kiln_engine *e);

/* A context holds what one caller at a time needs to run the engine (its
 * own activation memory). The caller owns *out; destroy it before the
 * engine. */
KILN_API kiln_status kiln_context_create(kiln_engine *e, kiln_context **out);
KILN_API void kiln_context_destroy(kiln_context *c);

/* Runs the engine on host tensors. Inputs are matched by name (in any order)
 * and checked against the model: a wrong dtype, rank or dim fails naming the
 * tensor, expected and given. The inputs stay the caller's. On success
 * *outputs points at *n_outputs tensors owned by the context, valid until the
 * next run on it or its destruction. */
KILN_API kiln_status kiln_context_run(kiln_context *c, int n_inputs, const kiln_tensor *inputs,
                                      int *n_outputs, const kiln_tensor **outputs);

/* The profile of input i (its dims at min, opt and max, each
 * kiln_tensor_desc.rank long; fixed dims are the same in all three). On the
 * ref backend every symbolic dim is reported as 1..INT32_MAX, opt 1. */
KILN_API kiln_status kiln_engine_input_profile(const kiln_engine *e, int i, int64_t *min, int64_t *opt,
                                               int64_t *max);

/* The outputs' dtypes and shapes for inputs of these shapes (data unused,
 * may be NULL), without running: fills outputs[i] (name, dtype, rank,
 * dims; data untouched). n_outputs must equal kiln_engine_num_outputs. */
KILN_API kiln_status kiln_context_output_shapes(kiln_context *c, int n_inputs, const kiln_tensor *inputs,
                                                int n_outputs, kiln_tensor *outputs);

/* cuda backend: runs the engine on device memory, enqueued on `stream`
 * (a cudaStream_t; NULL: the context's own stream), and returns without
 * waiting. inputs[i].data and outputs[i].data are device pointers of the
 * engine's dtypes (kiln_engine_input/_output); each output buffer must
 * hold the output's shape (kiln_context_output_shapes), which kiln writes
 * into outputs[i]. The buffers must stay valid until the stream reaches
 * this point. The first run of a new input shape on a context captures a
 * CUDA graph (unless disabled), later runs replay it. */
KILN_API kiln_status kiln_context_enqueue(kiln_context *c, int n_inputs, const kiln_tensor *inputs, int n_outputs,
                                          kiln_tensor *outputs, void *stream);

/* Whether contexts capture and replay CUDA graphs (cuda; default 1, or 0
 * when $KILN_NO_GRAPH is set). Set before creating contexts. */
KILN_API kiln_status kiln_engine_set_graphs(kiln_engine *e, int enabled);

/* The per-layer report of a built engine: for each step, the nodes it
 * runs, the kernel or tactic, its precision and layout, and the planned
 * activation memory against the sum of all activations. *out is the
 * caller's (kiln_free). JSON when `json`, else text. */
KILN_API kiln_status kiln_engine_report(const kiln_engine *e, int json, char **out);

/* ====================================================================
 * Plans and the engine cache (docs/plan-format.md, docs/cache.md)
 *
 * A plan is an engine saved to a file: for every backend, one container
 * with a header (magic, format version, identity, build options, sizes,
 * SHA-256) and the backend's sections. kiln_build_or_load builds an engine
 * once per identity and then loads it from the local cache folder or from
 * an S3-compatible store ($KILN_REMOTE_URL).
 * ==================================================================== */

/* Who an engine is: all that must match for a plan to be reused. Every
 * field is a NUL-terminated string in the struct itself (the caller's). */
typedef struct kiln_identity {
    char model[64];        /* model name ("resnet50") */
    char version[32];      /* model version: the user's, or 8 hex digits of its SHA-256 */
    char precision[16];    /* "fp32", "fp16", "bf16", "int8", "fp8" */
    char arch[16];         /* "sm_90"; "cpu" for the ref backend */
    char kiln_version[16]; /* "0.1.0" */
    char options_hash[16]; /* 8 hex digits of the plan-changing options; "" when all are default */
} kiln_identity;

/* "{model}_{version}_{precision}_{arch}_{kilnversion}[_{optionshash}].plan"
 * into buf[cap]; KILN_ERR_INVALID_ARGUMENT when it does not fit. */
KILN_API kiln_status kiln_identity_file_name(const kiln_identity *id, char *buf, size_t cap);

/* The identity of an engine built with these options from the ONNX file at
 * model_path (hashes the file and its external data unless
 * o->model_version is set). Fills the caller's *out. */
KILN_API kiln_status kiln_model_identity(const char *model_path, const kiln_build_options *o, kiln_identity *out);

/* The identity an engine was built or loaded with; fills the caller's *out. */
KILN_API kiln_status kiln_engine_identity(const kiln_engine *e, kiln_identity *out);

/* Writes the engine as a plan file. The file appears complete under `path`
 * or not at all (temporary file in the same folder, fsync, rename). */
KILN_API kiln_status kiln_engine_save(const kiln_engine *e, const char *path);

/* Loads a plan file; the backend comes from the plan. Refused: a corrupt or
 * truncated file (KILN_ERR_FORMAT, "checksum"), a plan for another kiln
 * version or architecture (KILN_ERR_VERSION), a file whose identity-shaped
 * name disagrees with its header (KILN_ERR_FORMAT). A cuda plan loads onto
 * GPU 0. The caller owns *out. */
KILN_API kiln_status kiln_engine_load(const char *path, kiln_engine **out);

/* kiln_engine_load onto GPU `device` (0 the first): a cuda plan's
 * architecture must be that GPU's (else KILN_ERR_VERSION, naming both); a
 * GPU the machine does not have fails with KILN_ERR_INVALID_ARGUMENT. A ref
 * plan accepts only device 0. One plan loaded once per GPU gives the
 * engines of kiln_scheduler_create_multi. The caller owns *out. */
KILN_API kiln_status kiln_engine_load_device(const char *path, int device, kiln_engine **out);

/* 1 when the file starts with the plan magic, 0 otherwise (also when it
 * cannot be read). */
KILN_API int kiln_is_plan_file(const char *path);

typedef enum kiln_engine_source {
    KILN_SOURCE_BUILT = 0,       /* built from the model now */
    KILN_SOURCE_LOCAL_CACHE = 1, /* loaded from the local cache folder */
    KILN_SOURCE_REMOTE = 2       /* downloaded from the remote store, then loaded */
} kiln_engine_source;

/* "built", "local_cache", "remote"; static string. */
KILN_API const char *kiln_engine_source_name(kiln_engine_source s);

/* The engine for (model, options): from the local cache, else from the
 * remote store, else built (and then stored locally, and uploaded when
 * credentials are present). Concurrent callers for one identity, threads or
 * processes, build once; the others wait and load. A corrupt cache entry is
 * moved aside and rebuilt. A failing remote only logs a warning. The caller
 * owns *out; *source (may be NULL) says where it came from. */
KILN_API kiln_status kiln_build_or_load(const char *model_path, const kiln_build_options *o, kiln_engine **out,
                                        kiln_engine_source *source);

/* The cache folder for these options (created if missing). *out is the
 * caller's (kiln_free). */
KILN_API kiln_status kiln_cache_dir(const kiln_build_options *o, char **out);

/* The cache entries, one per line: "NAME\tBYTES\n" (local folder, or the
 * remote store when `remote`). *out is the caller's (kiln_free). */
KILN_API kiln_status kiln_cache_list(const kiln_build_options *o, int remote, char **out);

/* Removes local entries whose name matches the shell pattern (NULL: all).
 * *n_removed (may be NULL) counts them. */
KILN_API kiln_status kiln_cache_remove(const kiln_build_options *o, const char *pattern, int *n_removed);

/* Checks every local entry's header and checksum. *report (caller's,
 * kiln_free) has one line per entry, "ok NAME" or "BAD NAME: why"; *n_bad
 * counts the bad ones. Nothing is changed. */
KILN_API kiln_status kiln_cache_verify(const kiln_build_options *o, char **report, int *n_bad);

/* Copies entries matching `pattern` (NULL: all) from the local folder to the
 * remote store (push) or back (pull, checksum verified before an entry
 * enters the folder). *n (may be NULL) counts the entries copied. */
KILN_API kiln_status kiln_cache_push(const kiln_build_options *o, const char *pattern, int *n);
KILN_API kiln_status kiln_cache_pull(const kiln_build_options *o, const char *pattern, int *n);

/* ====================================================================
 * Concurrent runtime (docs/runtime.md)
 *
 * One engine is shared by any number of threads. Three ways to run it:
 *   - kiln_context_run: one context per thread, pinned by the caller;
 *   - kiln_engine_infer: synchronous, from any thread; borrows a context
 *     from a pool inside the engine and gives it back;
 *   - a kiln_scheduler: a queue in front of N workers (one context each;
 *     one CUDA stream each on the cuda backend), optionally a dynamic
 *     batcher; kiln_infer_async returns a kiln_future. One scheduler may
 *     serve several engines (one per GPU) from one queue.
 *
 * Outputs of kiln_engine_infer and kiln_infer_async go into tensors the
 * caller provides (outputs[i] is the engine's output i):
 *   - data != NULL: the caller's buffer; its capacity is the product of
 *     the tensor's dims times the size of the output's dtype (describe the
 *     buffer as the output shape you expect, or as a flat element count).
 *     A result that does not fit fails the request with KILN_ERR_SHAPE.
 *     Nothing is allocated: the zero-allocation path.
 *   - data == NULL: kiln allocates the buffer; it is the caller's, released
 *     with kiln_free().
 * On success kiln sets each tensor's name (engine-owned), dtype, rank and
 * dims to the result's. On failure the caller's buffers may hold partial
 * results and nothing kiln allocated is left behind (data stays NULL).
 * Inputs are read in place, never copied ahead of the run: they stay the
 * caller's and must stay unchanged until the call (or the future) is done.
 * ==================================================================== */

/* Limits of the engine's context pool. `min_contexts` are created now;
 * more are created on demand up to `max_contexts`, after which callers of
 * kiln_engine_infer wait for a free one. Default: 0 and 16. Lowering the
 * limit below the contexts already created keeps them. Thread-safe. */
KILN_API kiln_status kiln_engine_set_pool_limits(kiln_engine *e, int min_contexts, int max_contexts);

/* Runs the engine once, synchronously, from any thread (see above for the
 * outputs). Inputs are matched by name as in kiln_context_run; n_outputs
 * must equal kiln_engine_num_outputs. A failed run leaves the engine and
 * its pool usable. */
KILN_API kiln_status kiln_engine_infer(kiln_engine *e, int n_inputs, const kiln_tensor *inputs, int n_outputs,
                                       kiln_tensor *outputs);

/* Page-locked ("pinned") host memory for inputs and outputs. The GPU
 * copies to and from it by DMA, asynchronously, so copies overlap the
 * work of other contexts; and the cuda backend writes an output straight
 * into such a buffer given to kiln_engine_infer or kiln_infer_async
 * (outputs[i].data), skipping the copy through its own staging memory
 * (not for requests the dynamic batcher ran together: those get their
 * rows copied from the batch's result). With a CUDA build of kiln on a
 * machine with a GPU, kiln_host_alloc returns cudaHostAlloc memory
 * (portable: every GPU of the process sees it as pinned); otherwise plain
 * page-aligned host memory, so the same code runs everywhere. Page-locked
 * memory comes out of RAM the system cannot swap: allocate buffers once
 * and reuse them. Thread-safe.
 *
 * kiln_host_alloc: bytes > 0; on success *ptr is the caller's, released
 * with kiln_host_free (not kiln_free, not free); on failure *ptr is NULL
 * (KILN_ERR_OUT_OF_MEMORY when that much cannot be page-locked). */
KILN_API kiln_status kiln_host_alloc(size_t bytes, void **ptr);
/* Releases a buffer of kiln_host_alloc (NULL is fine). Another pointer, or
 * one freed already, fails with KILN_ERR_INVALID_ARGUMENT. */
KILN_API kiln_status kiln_host_free(void *ptr);
/* Page-locks the caller's own buffer [ptr, ptr + bytes) (cudaHostRegister,
 * portable); the memory stays the caller's: kiln_host_unregister it
 * before freeing it. Without CUDA or a GPU nothing needs locking and this
 * succeeds. Fails with KILN_ERR_INVALID_ARGUMENT for NULL, 0 bytes, a
 * range that overlaps one registered already or a buffer of
 * kiln_host_alloc. Registering is slow (every page is locked in the OS):
 * do it once per buffer, not per request. CUDA locks whole pages, so two registered
 * buffers should not share a page (page-aligned buffers never do). */
KILN_API kiln_status kiln_host_register(void *ptr, size_t bytes);
/* Undoes kiln_host_register(ptr, ...); any other pointer fails with
 * KILN_ERR_INVALID_ARGUMENT. */
KILN_API kiln_status kiln_host_unregister(void *ptr);

typedef struct kiln_scheduler kiln_scheduler;
typedef struct kiln_future kiln_future;

#define KILN_MAX_PREFERRED_BATCH 8

/* The struct keeps its size (128 bytes) across versions; zero means default. */
typedef struct kiln_scheduler_options {
    int n_workers;     /* workers, each with its own context (cuda: its own stream); 0: 1 */
    int max_batch;     /* 0 or 1: no batching; > 1: the dynamic batcher gathers requests
                          along dim 0 of every input up to this many rows */
    int max_delay_us;  /* how long the batcher waits for more requests after the first
                          one of a batch arrived; 0: no wait (batch what is queued) */
    int n_preferred;   /* preferred batch sizes (<= max_batch): a batch that reaches one
                          while nothing fitting is queued is run before max_delay_us */
    int preferred[KILN_MAX_PREFERRED_BATCH];
    int device;        /* 0, or the GPU of the one cuda engine (checked): workers run on
                          their engine's GPU (kiln_build_options.device) */
    int reserved[19];
} kiln_scheduler_options;

/* Defaults: one worker, no batching. */
KILN_API void kiln_scheduler_options_init(kiln_scheduler_options *o);

/* Starts the workers of a scheduler for `e` (the engine must outlive the
 * scheduler). Batching needs every input's dim 0 to be symbolic: an engine
 * with a fixed dim 0 is refused (KILN_ERR_INVALID_ARGUMENT), naming the
 * input. Before returning, every worker prepares its context (cuda: the
 * per-shape state and the CUDA graph) for each batch size the batcher can
 * form, 1..max_batch, or for one shape without batching (symbolic dims
 * other than the batch at the profile's opt), so the first requests pay
 * no set-up; a size the engine cannot run (beyond its profile) fails the
 * call with that error. The caller owns *out. */
KILN_API kiln_status kiln_scheduler_create(kiln_engine *e, const kiln_scheduler_options *o, kiln_scheduler **out);

/* A scheduler over several engines of one model, typically one per GPU
 * (kiln_engine_load_device of one plan, or a build per GPU): one queue,
 * o->n_workers workers per engine, each with a context of its engine. A
 * free worker takes the next request, so work goes to the least-loaded
 * device. The engines must agree on every input and output (name, dtype,
 * rank, dims); a mismatch is refused (KILN_ERR_INVALID_ARGUMENT), naming
 * the engine and the tensor. At most 64 engines. kiln_scheduler_create is
 * the case n_engines == 1 (and says what is prepared before returning).
 *
 * A run that fails with KILN_ERR_DEVICE makes kiln check the engine's
 * device. When it still works (cuda: the error was not a sticky one), the
 * request(s) of that run fail with the error, a batch's requests all and
 * no others, one warning is logged, and the engine keeps serving. When it
 * is lost (a sticky error such as an illegal address, a kernel fault, an
 * uncorrectable ECC error; or any device error on a backend that cannot
 * check), the engine is taken out of service: one error is logged
 * ("device D (engine K) taken out of service: ..."), its workers stop, and
 * the request(s) of that run go back to the head of the queue for the
 * other engines (each is tried at most once per engine, then fails with
 * the device's error). Once no engine is left, queued and new requests
 * fail with KILN_ERR_DEVICE ("no device left"). Any other error fails only
 * its request. The engines array is read during the call; the engines
 * must outlive the scheduler. The caller owns *out. */
KILN_API kiln_status kiln_scheduler_create_multi(kiln_engine *const *engines, int n_engines,
                                                 const kiln_scheduler_options *o, kiln_scheduler **out);

/* Stops taking requests. cancel = 0: the queued requests still run
 * (drain); cancel != 0: queued requests complete at once with
 * KILN_ERR_CANCELLED. Requests already running finish either way. Returns
 * at once; later kiln_infer_async calls fail with KILN_ERR_CANCELLED.
 * Idempotent, thread-safe. */
KILN_API void kiln_scheduler_shutdown(kiln_scheduler *s, int cancel);

/* kiln_scheduler_shutdown(s, 0) if not yet shut down, waits for the
 * workers to finish, and frees the scheduler. Every request submitted to
 * it is complete (done, failed or cancelled) when this returns. Futures
 * stay valid: they are the caller's. NULL is fine. */
KILN_API void kiln_scheduler_destroy(kiln_scheduler *s);

typedef struct kiln_scheduler_stats {
    uint64_t submitted; /* requests accepted by kiln_infer_async */
    uint64_t completed; /* requests finished with KILN_OK */
    uint64_t failed;    /* requests finished with an error other than cancellation */
    uint64_t cancelled; /* requests cancelled by shutdown */
    uint64_t runs;      /* engine runs (one per batch) */
    uint64_t rows;      /* rows (dim 0) run, summed over the runs */
    uint64_t reserved[2];
} kiln_scheduler_stats;

/* A snapshot of the counters; fills the caller's *out. */
KILN_API kiln_status kiln_scheduler_stats_get(kiln_scheduler *s, kiln_scheduler_stats *out);

/* Engine `engine_index` of the scheduler (its position in
 * kiln_scheduler_create_multi's array; 0 for kiln_scheduler_create): the
 * engine runs it made so far into *runs, and into *alive 1 while it is in
 * service, 0 once a device fault took it out. Either pointer may be NULL. */
KILN_API kiln_status kiln_scheduler_device_stats(kiln_scheduler *s, int engine_index, uint64_t *runs, int *alive);

/* Called once per request, on a worker thread, after its outputs are
 * written and before the future is ready. `outputs` are the caller's
 * tensors given to kiln_infer_async; on failure kiln_last_error() on this
 * thread has the message. Must not call kiln_future_destroy on its own
 * future, nor block for long (it holds a worker). */
typedef void (*kiln_infer_done_fn)(kiln_status status, int n_outputs, kiln_tensor *outputs, void *user);

/* Queues one request and returns at once. Inputs are checked against the
 * engine now (name, dtype, rank, fixed dims; with batching, dim 0 must be
 * 1..max_batch): a bad request fails here, and nothing is queued. The
 * `inputs` array may be reused at once (it is copied); the data it points
 * to, and the `outputs` array with its buffers, must stay valid until the
 * request is complete. `done` (may be NULL) is called on completion.
 * `*out` (the caller's; kiln_future_destroy) is the request's future;
 * out == NULL submits fire-and-forget: kiln frees the request after
 * `done`. Thread-safe. */
KILN_API kiln_status kiln_infer_async(kiln_scheduler *s, int n_inputs, const kiln_tensor *inputs, int n_outputs,
                                      kiln_tensor *outputs, kiln_infer_done_fn done, void *user,
                                      kiln_future **out);

/* Waits until the request is complete; returns its status (and on failure
 * sets this thread's kiln_last_error to the request's message). */
KILN_API kiln_status kiln_future_wait(kiln_future *f);
/* Waits at most timeout_us microseconds: 1 when complete, 0 when not yet. */
KILN_API int kiln_future_wait_for(kiln_future *f, int64_t timeout_us);
/* 1 when complete, 0 when not yet; never blocks. */
KILN_API int kiln_future_is_ready(const kiln_future *f);
/* The message of a failed request ("" when it succeeded or is pending);
 * owned by the future. */
KILN_API const char *kiln_future_error(const kiln_future *f);
/* Waits for the request if it is still pending, then frees the future.
 * NULL is fine. */
KILN_API void kiln_future_destroy(kiln_future *f);

#ifdef __cplusplus
}
#endif
#endif /* KILN_H */
