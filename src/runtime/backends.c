/* The backends of this build of kiln: the one place that lists them. A new
 * backend is one folder that fills in a kiln_backend_iface
 * (src/runtime/backend.h) and one line below (docs/adding-a-backend.md).
 * This file and the backends' own folders are the only ones that know
 * which backends exist; the rest of kiln asks the table. */
#include <stddef.h>

#include "runtime/backend.h"

/* Each defined in its own folder. */
extern const kiln_backend_iface kiln_ref_backend; /* src/ref/executor.c */
#ifdef KILN_HAVE_CUDA
extern const kiln_backend_iface kiln_cuda_backend; /* src/cuda/backend.c */
#define CUDA_TABLE (&kiln_cuda_backend)
#else
#define CUDA_TABLE NULL
#endif

/* Every backend kiln knows, in the order host memory is offered to them
 * (kiln_host_alloc: the first that page-locks it wins). A backend that
 * this build leaves out keeps its line with a NULL table, so that asking
 * for it says "not part of this build" and why, rather than "unknown". */
static const struct {
    kiln_backend id;
    const char *name;
    const kiln_backend_iface *be;
    const char *absent; /* why be is NULL, for the message */
} backends[] = {
    {KILN_BACKEND_CUDA, "cuda", CUDA_TABLE, "built without CUDA"},
    {KILN_BACKEND_REF, "ref", &kiln_ref_backend, NULL},
};
#define N_BACKENDS ((int)(sizeof backends / sizeof backends[0]))

const kiln_backend_iface *kiln_backend_find(kiln_backend b)
{
    for (int i = 0; i < N_BACKENDS; i++)
        if (backends[i].id == b) return backends[i].be;
    return NULL;
}

const kiln_backend_iface *kiln_backend_at(int i, kiln_backend *id)
{
    for (int k = 0; k < N_BACKENDS; k++) {
        if (!backends[k].be || i-- > 0) continue;
        if (id) *id = backends[k].id;
        return backends[k].be;
    }
    return NULL;
}

const char *kiln_backend_name(kiln_backend b)
{
    for (int i = 0; i < N_BACKENDS; i++)
        if (backends[i].id == b) return backends[i].name;
    return NULL;
}

/* The GPU backend, also in a build without it: a default that cannot run
 * fails, naming it, instead of falling back to the CPU in silence. */
kiln_backend kiln_backend_default(void) { return KILN_BACKEND_CUDA; }

kiln_status kiln_backend_missing(kiln_backend b)
{
    const char *name = kiln_backend_name(b);
    if (!name) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "unknown backend %d", (int)b);
    const char *why = "";
    for (int i = 0; i < N_BACKENDS; i++)
        if (backends[i].id == b && backends[i].absent) why = backends[i].absent;
    return kiln_fail(KILN_ERR_UNSUPPORTED,
                     "the %s backend is not part of this build of kiln%s%s%s; use the ref backend explicitly "
                     "(--backend ref)",
                     name, why[0] ? " (" : "", why, why[0] ? ")" : "");
}
