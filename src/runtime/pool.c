/* The engine's context pool: kiln_engine_infer borrows a context, runs, and
 * gives it back, so any number of threads can share one engine. Contexts
 * are created on demand up to a limit; past it, callers wait for one. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/backend.h"
#include "runtime/runtime.h"

#define POOL_DEFAULT_MAX 16

struct kiln_ctx_pool {
    kiln_engine *e;
    pthread_mutex_t mu;
    pthread_cond_t freed;
    kiln_context **idle; /* free contexts, cap entries */
    int n_idle, cap;
    int n_total;         /* created, idle or borrowed */
    int max;
};

uint64_t kiln_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

kiln_ctx_pool *kiln_ctx_pool_create(kiln_engine *e)
{
    kiln_ctx_pool *p = kiln_xcalloc(1, sizeof *p);
    if (!p) return NULL;
    p->e = e;
    p->max = POOL_DEFAULT_MAX;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->freed, NULL);
    return p;
}

void kiln_ctx_pool_destroy(kiln_ctx_pool *p)
{
    if (!p) return;
    if (p->n_idle != p->n_total)
        kiln_log(KILN_LOG_ERROR, "kiln_engine_destroy: %d context(s) still running kiln_engine_infer on other threads",
                 p->n_total - p->n_idle);
    for (int i = 0; i < p->n_idle; i++) kiln_context_destroy(p->idle[i]);
    free(p->idle);
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Makes room for every context the pool may hold; called with mu held. */
static kiln_status reserve(kiln_ctx_pool *p, int n)
{
    if (n <= p->cap) return KILN_OK;
    kiln_context **a = kiln_xrealloc(p->idle, (size_t)n * sizeof *a);
    if (!a) return KILN_ERR_OUT_OF_MEMORY;
    p->idle = a;
    p->cap = n;
    return KILN_OK;
}

kiln_status kiln_engine_set_pool_limits(kiln_engine *e, int min_contexts, int max_contexts)
{
    if (!e) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_set_pool_limits: engine is NULL");
    if (min_contexts < 0 || max_contexts < 1 || min_contexts > max_contexts)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT,
                         "kiln_engine_set_pool_limits: need 0 <= min (%d) <= max (%d) and max >= 1", min_contexts,
                         max_contexts);
    kiln_ctx_pool *p = kiln_engine_pool(e);
    pthread_mutex_lock(&p->mu);
    p->max = max_contexts;
    kiln_status st = reserve(p, max_contexts > p->n_total ? max_contexts : p->n_total);
    while (st == KILN_OK && p->n_total < min_contexts) {
        kiln_context *c;
        st = kiln_context_create(e, &c);
        if (st != KILN_OK) break;
        p->idle[p->n_idle++] = c;
        p->n_total++;
    }
    pthread_cond_broadcast(&p->freed);
    pthread_mutex_unlock(&p->mu);
    return st;
}

static kiln_status acquire(kiln_ctx_pool *p, kiln_context **out)
{
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->n_idle > 0) {
            *out = p->idle[--p->n_idle];
            pthread_mutex_unlock(&p->mu);
            return KILN_OK;
        }
        if (p->n_total < p->max) break;
        pthread_cond_wait(&p->freed, &p->mu);
    }
    /* grow: reserve the slot now, create outside the lock */
    kiln_status st = reserve(p, p->max > p->n_total + 1 ? p->max : p->n_total + 1);
    if (st == KILN_OK) p->n_total++;
    pthread_mutex_unlock(&p->mu);
    if (st != KILN_OK) return st;
    st = kiln_context_create(p->e, out);
    if (st != KILN_OK) {
        pthread_mutex_lock(&p->mu);
        p->n_total--;
        pthread_cond_signal(&p->freed);
        pthread_mutex_unlock(&p->mu);
    }
    return st;
}

static void release(kiln_ctx_pool *p, kiln_context *c)
{
    pthread_mutex_lock(&p->mu);
    p->idle[p->n_idle++] = c; /* cap >= n_total, always */
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->mu);
}

kiln_status kiln_outputs_deliver(int n_res, const kiln_tensor *res, int n_out, kiln_tensor *out)
{
    if (n_out != n_res)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "%d output tensors given, the engine has %d", n_out, n_res);
    /* first every check, so that a failure allocates nothing */
    for (int i = 0; i < n_out; i++) {
        size_t es = kiln_dtype_size(res[i].dtype);
        int64_t need = 1, have = 1;
        for (int k = 0; k < res[i].rank; k++) need *= res[i].dims[k];
        if (!out[i].data) continue;
        if (out[i].rank < 0 || out[i].rank > KILN_MAX_RANK)
            return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "output '%s': the buffer's rank %d is out of range",
                             res[i].name, out[i].rank);
        for (int k = 0; k < out[i].rank; k++) have *= out[i].dims[k] > 0 ? out[i].dims[k] : 0;
        if (have < need)
            return kiln_fail(KILN_ERR_SHAPE,
                             "output '%s': the result has %lld %s elements (%zu bytes) but the buffer given holds "
                             "%lld",
                             res[i].name, (long long)need, kiln_dtype_name(res[i].dtype), (size_t)need * es,
                             (long long)have);
    }
    int n_alloc = 0;
    for (int i = 0; i < n_out; i++) {
        int64_t n = 1;
        for (int k = 0; k < res[i].rank; k++) n *= res[i].dims[k];
        size_t bytes = (size_t)n * kiln_dtype_size(res[i].dtype);
        if (!out[i].data) {
            out[i].data = kiln_xmalloc(bytes ? bytes : 1);
            if (!out[i].data) {
                /* undo what this call allocated: those come first, in order */
                for (int j = 0; j < i && n_alloc; j++)
                    if (out[j].rank == -1) {
                        free(out[j].data);
                        out[j].data = NULL;
                        out[j].rank = 0;
                        n_alloc--;
                    }
                return KILN_ERR_OUT_OF_MEMORY;
            }
            out[i].rank = -1; /* marks "allocated here" until the end */
            n_alloc++;
        }
        if (bytes && out[i].data != res[i].data) memcpy(out[i].data, res[i].data, bytes);
    }
    for (int i = 0; i < n_out; i++) {
        out[i].name = res[i].name;
        out[i].dtype = res[i].dtype;
        out[i].rank = res[i].rank;
        memcpy(out[i].dims, res[i].dims, sizeof out[i].dims);
    }
    return KILN_OK;
}

kiln_status kiln_engine_infer(kiln_engine *e, int n_inputs, const kiln_tensor *inputs, int n_outputs,
                              kiln_tensor *outputs)
{
    if (!e || (n_inputs > 0 && !inputs) || (n_outputs > 0 && !outputs))
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_infer: NULL argument");
    if (n_outputs != kiln_engine_num_outputs(e))
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_infer: %d output tensors given, the engine has %d",
                         n_outputs, kiln_engine_num_outputs(e));
    kiln_ctx_pool *p = kiln_engine_pool(e);
    kiln_context *c;
    kiln_status st = acquire(p, &c);
    if (st != KILN_OK) return st;
    int n_res = 0;
    const kiln_tensor *res = NULL;
    st = kiln_context_run_into(c, n_inputs, inputs, n_outputs, outputs, &n_res, &res);
    if (st == KILN_OK) st = kiln_outputs_deliver(n_res, res, n_outputs, outputs);
    release(p, c);
    return st;
}
