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
    KILN_ERR_INTERNAL = 10         /* a bug in kiln: please report it */
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

typedef struct kiln_build_options {
    kiln_backend backend;
    int reserved[15];
} kiln_build_options;

/* Defaults: backend CUDA. */
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

#ifdef __cplusplus
}
#endif
#endif /* KILN_H */
