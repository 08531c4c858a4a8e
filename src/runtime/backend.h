/* What a backend can do, as a table of function pointers (as ggml-backend
 * keeps it): a third backend is one new folder that fills this in, and one
 * line in src/runtime/backends.c that registers it (docs/adding-a-backend.md).
 * Nothing outside a backend's folder and backends.c names a backend: the
 * rest of kiln asks the table. */
#ifndef KILN_BACKEND_H
#define KILN_BACKEND_H

#include "ir/model.h"

struct kiln_bytes;
struct kiln_plan_info;

typedef struct kiln_backend_iface {
    const char *name;
    /* NULL when the backend can run n; otherwise why not (static or in g's arena). */
    const char *(*unsupported)(const kiln_graph *g, const kiln_node *n);
    /* Prepares everything needed to run g; *state is the backend's. The graph
     * reference is retained by the caller for the engine's lifetime. */
    kiln_status (*build)(const kiln_graph *g, const kiln_build_options *o, void **state);
    void (*destroy)(void *state);
    kiln_status (*context_create)(void *state, void **ctx);
    void (*context_destroy)(void *ctx);
    /* Inputs are already matched to g->inputs order and checked against the
     * model (in[i] belongs to g->inputs[i]). dst: NULL, or the caller's
     * g->n_outputs output tensors as kiln_outputs_deliver takes them; a
     * backend may write output i straight into dst[i].data when that buffer
     * holds the result (capacity as kiln.h defines it), and then returns
     * out[i].data == dst[i].data, which kiln_outputs_deliver leaves as is. */
    kiln_status (*run)(void *ctx, const kiln_tensor *in, const kiln_tensor *dst, int *n_out,
                       const kiln_tensor **out);

    /* Optional (NULL where a backend has none). */
    /* Runs on device memory, enqueued on `stream` (see kiln_context_enqueue);
     * refuses output buffers too small for these inputs' results before
     * enqueueing anything. */
    kiln_status (*enqueue)(void *ctx, const kiln_tensor *in, int n_out, kiln_tensor *out, void *stream);
    /* Fills the outputs' names, dtypes and dims for inputs of these dims. */
    kiln_status (*output_shapes)(void *ctx, const kiln_tensor *in, int n_out, kiln_tensor *out);
    /* Input i's optimization profile: rank dims each. */
    kiln_status (*input_profile)(void *state, int i, int64_t *min, int64_t *opt, int64_t *max);
    /* The per-step report (kiln_engine_report). */
    kiln_status (*report)(void *state, bool json, kiln_sbuf *b);
    /* The backend's plan sections: PROGRAM and DWEIGHTS. */
    kiln_status (*save)(void *state, struct kiln_bytes *program, struct kiln_bytes *weights);
    /* Sets drop[v] for the graph values whose data the plan's WEIGHTS need
     * not carry: their bytes are in DWEIGHTS, pre-transformed, and nothing
     * that runs on the host reads them. NULL: the plan carries all. */
    void (*plan_drops)(void *state, uint8_t *drop);
    /* Rebuilds the state from a plan's sections instead of building. */
    kiln_status (*load)(const kiln_graph *g, const kiln_build_options *o, const struct kiln_plan_info *info,
                        void **state);
    void (*set_graphs)(void *state, int enabled);
    /* Makes ready what a run of inputs of these dims needs, without running
     * (data unused, may be NULL): cuda creates the shape's instance and
     * captures its graph, so that the first request of a shape costs no
     * more than the next. NULL: nothing to prepare. */
    kiln_status (*prepare)(void *ctx, const kiln_tensor *in);
    /* Asked after a run failed with KILN_ERR_DEVICE: KILN_OK when the
     * engine's device still runs work (the error was that run's alone),
     * KILN_ERR_DEVICE with the reason when the device is lost (an error
     * every later call on it returns). Makes the device current on the
     * calling thread. NULL: every device error counts as a lost device. */
    kiln_status (*device_check)(void *state);
    /* Process-wide, no engine: page-locked host memory for
     * kiln_host_alloc / kiln_host_register (src/runtime/host_memory.c).
     * host_alloc and host_register fail with KILN_ERR_UNSUPPORTED when the
     * backend has no device on this machine: kiln then hands out plain
     * memory, or registers nothing. */
    kiln_status (*host_alloc)(size_t bytes, void **ptr);
    void (*host_free)(void *ptr);
    kiln_status (*host_register)(void *ptr, size_t bytes);
    kiln_status (*host_unregister)(void *ptr);

    /* ---- Devices, and what an engine's identity (src/plan/identity.c)
     * takes from its backend. Each member is optional: one left NULL (0)
     * takes the host default, which is what the ref backend is: it runs on
     * the CPU as device 0 and no other, its plans are for architecture
     * "cpu", it depends on no library, and it computes fp32 in the model's
     * own dtypes. Process-wide, no engine; thread-safe. */
    /* How many devices this machine has for the backend (0: none).
     * NULL: 1, the host. */
    int (*device_count)(void);
    /* KILN_OK when engines can be built on or loaded onto `device`;
     * otherwise the reason (kiln_fail, without a file name: the caller adds
     * it). NULL: device 0 only. */
    kiln_status (*check_device)(int device);
    /* The architecture that plans are built for on `device` ("sm_90"), in
     * static storage; NULL when there is no such device. NULL: "cpu". */
    const char *(*arch)(int device);
    /* The versions of the libraries its plans depend on, as
     * "name=version;name=version" into buf[cap] ("" when none): part of the
     * options hash, so that processes with other libraries keep their own
     * plans. NULL: none. */
    void (*lib_versions)(char *buf, size_t cap);
    /* What KILN_PRECISION_DEFAULT builds. 0 (KILN_PRECISION_DEFAULT): fp32. */
    kiln_precision default_precision;
    /* The precisions it builds, KILN_PRECISION_BIT(p) each, DEFAULT implied.
     * 0: fp32 only, in the model's own dtypes. */
    unsigned precisions;

    /* ---- Device buffers and timing, for callers of enqueue (kiln bench's
     * device time, as trtexec's "GPU compute time"). NULL where the backend
     * has no enqueue. */
    /* `bytes` of memory on `device`; *ptr is the caller's (device_free). */
    kiln_status (*device_alloc)(int device, size_t bytes, void **ptr);
    void (*device_free)(void *ptr);
    /* Copies host bytes to device memory; returns when they are there. */
    kiln_status (*copy_to_device)(void *dst, const void *src, size_t bytes);
    /* On `device`, on a stream of its own: calls run(arg, stream) n times,
     * each between two device timestamps when ms is not NULL, then waits
     * for the device. ms[i]: run i's device time in milliseconds; *wall_s
     * (may be NULL): seconds from the first run's call to the end of the
     * wait. Stops at run's first failure and returns it. */
    kiln_status (*time_runs)(int device, int n, kiln_status (*run)(void *arg, void *stream), void *arg, double *ms,
                             double *wall_s);
} kiln_backend_iface;

#define KILN_PRECISION_BIT(p) (1u << (unsigned)(p))

/* ---- the registered backends (backends.c: the one place that lists them) */
/* Backend b's table, NULL when this build of kiln does not have it. */
const kiln_backend_iface *kiln_backend_find(kiln_backend b);
/* The i-th registered backend (i from 0) and its kiln_backend in *id (may
 * be NULL); NULL past the last. */
const kiln_backend_iface *kiln_backend_at(int i, kiln_backend *id);
/* The name kiln knows b by ("cuda"), whether this build has it or not;
 * NULL for a value no backend has. */
const char *kiln_backend_name(kiln_backend b);
/* The backend of kiln_build_options_init. */
kiln_backend kiln_backend_default(void);
/* Why b has no table: KILN_ERR_UNSUPPORTED when it is not part of this
 * build, KILN_ERR_INVALID_ARGUMENT when kiln knows no such backend. */
kiln_status kiln_backend_missing(kiln_backend b);

/* ---- what kiln asks a backend, its host defaults filled in (backend.c) */
/* KILN_OK when engines of be can run on `device`, else why not (the
 * message without a file name). */
kiln_status kiln_backend_check_device(const kiln_backend_iface *be, int device);
/* The architecture engines of backend b are built for on `device`: "cpu"
 * for ref, that GPU's "sm_90" for cuda; NULL when this build has no
 * backend b or there is no such device. */
const char *kiln_backend_arch_of(kiln_backend b, int device);
/* be's library versions ("" when none) into buf[cap]. */
void kiln_backend_lib_versions(const kiln_backend_iface *be, char *buf, size_t cap);
/* What KILN_PRECISION_DEFAULT means on be. */
kiln_precision kiln_backend_default_precision(const kiln_backend_iface *be);
/* Whether be builds precision p (DEFAULT: always). */
bool kiln_backend_builds(const kiln_backend_iface *be, kiln_precision p);

/* ---- engine internals for plans and the cache (engine.c) */
/* Builds an engine over a graph reference (retained by the engine). */
kiln_status kiln_engine_create(kiln_graph_ref *ref, const kiln_build_options *o, kiln_engine **out);
/* The same from a plan: the backend loads its sections (when it has a
 * `load`) instead of building. */
kiln_status kiln_engine_create_from_plan(kiln_graph_ref *ref, const kiln_build_options *o,
                                         const struct kiln_plan_info *plan, kiln_engine **out);
const kiln_backend_iface *kiln_engine_backend(const kiln_engine *e);
void *kiln_engine_state(const kiln_engine *e);
const kiln_graph *kiln_engine_graph(const kiln_engine *e);
/* The options it was built with (strings cleared: they were the caller's). */
const kiln_build_options *kiln_engine_options(const kiln_engine *e);
/* The identity set by the plan loader or the cache; NULL when unset. */
const kiln_identity *kiln_engine_stored_identity(const kiln_engine *e);
void kiln_engine_set_identity(kiln_engine *e, const kiln_identity *id);
/* What the device check says about an injected fault. */
typedef enum kiln_fault_kind {
    KILN_FAULT_FATAL = 0,      /* the device is lost (as a backend without a check assumes) */
    KILN_FAULT_RECOVERABLE = 1 /* the run failed, the device still works */
} kiln_fault_kind;
/* For tests: the runs of kiln_context_run on e, numbered from 0 in the
 * order they start after the injection, fail with `st` ("injected fault")
 * from number after_runs on: n_runs of them, or every one when n_runs <= 0.
 * While it is set, kiln_engine_device_check answers by `kind` instead of
 * asking the backend. KILN_OK turns it off. Thread-safe. */
void kiln_engine_inject_fault(kiln_engine *e, kiln_status st, int after_runs, int n_runs, kiln_fault_kind kind);
/* After a run on e failed with KILN_ERR_DEVICE: KILN_OK when e's device
 * still works, KILN_ERR_DEVICE (and why) when it is lost. The backend's
 * device_check; a backend without one says lost. */
kiln_status kiln_engine_device_check(kiln_engine *e);
/* For tests: called by kiln_context_prepare on e's contexts with the inputs
 * it prepares (engine order, data NULL) before the backend's prepare, whose
 * place it takes when the backend has none; its failure fails the prepare.
 * NULL removes it. Set it while no scheduler of e is being created. */
typedef kiln_status (*kiln_prepare_hook)(void *user, int n_inputs, const kiln_tensor *inputs);
void kiln_engine_set_prepare_hook(kiln_engine *e, kiln_prepare_hook fn, void *user);
/* Whether kiln_context_prepare does anything on e's contexts. */
bool kiln_engine_can_prepare(const kiln_engine *e);
/* For tests: kiln_engine_input_profile of an engine whose backend has no
 * profile (ref) reports [min, max] for every symbolic dim, as a cuda
 * engine's profile would; max 0 removes it. Runs are not limited by it. */
void kiln_engine_set_test_profile(kiln_engine *e, int64_t min, int64_t max);

#endif
