/* What a backend can do, as a table of function pointers (as ggml-backend
 * keeps it): a third backend is one new folder that fills this in. */
#ifndef KILN_BACKEND_H
#define KILN_BACKEND_H

#include "ir/model.h"

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
     * model (in[i] belongs to g->inputs[i]). */
    kiln_status (*run)(void *ctx, const kiln_tensor *in, int *n_out, const kiln_tensor **out);
} kiln_backend_iface;

extern const kiln_backend_iface kiln_ref_backend;

/* ---- engine internals for plans and the cache (engine.c) */
/* Builds an engine over a graph reference (retained by the engine). */
kiln_status kiln_engine_create(kiln_graph_ref *ref, const kiln_build_options *o, kiln_engine **out);
const kiln_graph *kiln_engine_graph(const kiln_engine *e);
/* The options it was built with (strings cleared: they were the caller's). */
const kiln_build_options *kiln_engine_options(const kiln_engine *e);
/* The identity set by the plan loader or the cache; NULL when unset. */
const kiln_identity *kiln_engine_stored_identity(const kiln_engine *e);
void kiln_engine_set_identity(kiln_engine *e, const kiln_identity *id);

#endif
