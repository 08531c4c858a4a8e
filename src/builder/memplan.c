/* The memory planner: every activation of a context lives in one arena.
 * A tensor occupies its bytes from the step that first writes it to the
 * step that last reads it (through aliases and concat slices too); tensors whose lifetimes
 * do not overlap share memory. Placement is largest first, each into the
 * smallest gap that fits among the already placed tensors it overlaps
 * with in time (best fit), as ggml-alloc and TFLite's arena planner do. */
#include <stdlib.h>
#include <string.h>

#include "builder/program.h"

#define ALIGN 256

static uint64_t aligned(uint64_t n) { return (n + ALIGN - 1) & ~(uint64_t)(ALIGN - 1); }

static bool planned(const kb_tensor *t) { return t->storage == KB_ARENA || t->storage == KB_HOST; }

static int base_of(const kb_program *p, int t)
{
    while (t >= 0 && (p->tensors[t].storage == KB_ALIAS || p->tensors[t].storage == KB_SLICE)) t = p->tensors[t].alias;
    return t;
}

static void lifetimes(kb_program *p, int n_inputs, int n_outputs)
{
    for (int t = 0; t < p->n_tensors; t++) {
        p->tensors[t].first = p->n_steps + 1;
        p->tensors[t].last = -2;
    }
    for (int s = 0; s < p->n_steps; s++) {
        const kb_step *st = &p->steps[s];
        for (int i = 0; i < st->n_in; i++) {
            int b = base_of(p, st->in[i]);
            if (b < 0) continue;
            if (p->tensors[b].last < s) p->tensors[b].last = s;
            if (p->tensors[b].first > s) p->tensors[b].first = s;
        }
        for (int i = 0; i < st->n_out; i++) {
            int b = base_of(p, st->out[i]);
            if (b < 0) continue;
            if (p->tensors[b].first > s) p->tensors[b].first = s;
            if (p->tensors[b].last < s) p->tensors[b].last = s;
        }
    }
    for (int i = 0; i < n_inputs; i++) {
        int b = base_of(p, p->input_tensor[i]);
        if (b >= 0) {
            p->tensors[b].first = -1;
            if (p->tensors[b].last < -1) p->tensors[b].last = -1;
        }
    }
    for (int t = 0; t < p->n_tensors; t++)
        if (p->tensors[t].storage == KB_HOST) {
            p->tensors[t].first = -1;
            if (p->tensors[t].last < -1) p->tensors[t].last = -1;
        }
    for (int i = 0; i < n_outputs; i++) {
        int b = base_of(p, p->output_tensor[i]);
        if (b < 0) continue;
        if (p->tensors[b].first > p->n_steps) p->tensors[b].first = -1; /* an input passed through */
        p->tensors[b].last = p->n_steps;
    }
}

static const kb_program *sort_p;

static int by_size_desc(const void *a, const void *b)
{
    const kb_tensor *x = &sort_p->tensors[*(const int *)a], *y = &sort_p->tensors[*(const int *)b];
    if (x->max_bytes != y->max_bytes) return x->max_bytes < y->max_bytes ? 1 : -1;
    return *(const int *)a - *(const int *)b;
}

static int by_offset(const void *a, const void *b)
{
    const kb_tensor *x = &sort_p->tensors[*(const int *)a], *y = &sort_p->tensors[*(const int *)b];
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return 0;
}

static bool overlap_time(const kb_tensor *a, const kb_tensor *b) { return a->first <= b->last && b->first <= a->last; }

void kb_plan_memory(kb_program *p)
{
    lifetimes(p, p->n_inputs, p->n_outputs);
    int *order = kiln_xmalloc(((size_t)p->n_tensors + 1) * sizeof *order);
    int *placed = kiln_xmalloc(((size_t)p->n_tensors + 1) * sizeof *placed);
    int *near = kiln_xmalloc(((size_t)p->n_tensors + 1) * sizeof *near);
    p->arena_bytes = p->naive_bytes = 0;
    if (!order || !placed || !near) {
        /* no memory to plan: give every tensor its own bytes */
        for (int t = 0; t < p->n_tensors; t++)
            if (planned(&p->tensors[t])) {
                p->tensors[t].offset = p->arena_bytes;
                p->arena_bytes += aligned(p->tensors[t].max_bytes);
            }
        p->naive_bytes = p->arena_bytes;
        free(order);
        free(placed);
        free(near);
        return;
    }
    int n = 0, n_placed = 0;
    for (int t = 0; t < p->n_tensors; t++)
        if (planned(&p->tensors[t]) && p->tensors[t].last >= p->tensors[t].first) {
            order[n++] = t;
            p->naive_bytes += aligned(p->tensors[t].max_bytes);
        }
    sort_p = p;
    qsort(order, (size_t)n, sizeof *order, by_size_desc);
    for (int i = 0; i < n; i++) {
        kb_tensor *t = &p->tensors[order[i]];
        uint64_t need = aligned(t->max_bytes ? t->max_bytes : 1);
        int m = 0;
        for (int j = 0; j < n_placed; j++)
            if (overlap_time(t, &p->tensors[placed[j]])) near[m++] = placed[j];
        qsort(near, (size_t)m, sizeof *near, by_offset);
        uint64_t best = UINT64_MAX, best_gap = UINT64_MAX, cur = 0;
        for (int j = 0; j < m; j++) {
            const kb_tensor *o = &p->tensors[near[j]];
            if (o->offset > cur) {
                uint64_t gap = o->offset - cur;
                if (gap >= need && gap < best_gap) {
                    best = cur;
                    best_gap = gap;
                }
            }
            uint64_t end = o->offset + aligned(o->max_bytes ? o->max_bytes : 1);
            if (end > cur) cur = end;
        }
        t->offset = best != UINT64_MAX ? best : cur;
        if (t->offset + need > p->arena_bytes) p->arena_bytes = t->offset + need;
        placed[n_placed++] = order[i];
    }
    free(order);
    free(placed);
    free(near);
}

int kb_plan_check(const kb_program *p)
{
    for (int a = 0; a < p->n_tensors; a++) {
        const kb_tensor *x = &p->tensors[a];
        if (!planned(x) || x->last < x->first) continue;
        if (x->offset + x->max_bytes > p->arena_bytes) return 1;
        for (int b = a + 1; b < p->n_tensors; b++) {
            const kb_tensor *y = &p->tensors[b];
            if (!planned(y) || y->last < y->first || !overlap_time(x, y)) continue;
            if (x->offset < y->offset + y->max_bytes && y->offset < x->offset + x->max_bytes) return 1;
        }
    }
    return 0;
}
