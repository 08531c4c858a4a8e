/* Graph construction, name lookup and topological order. */
#include "ir/ir.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

kiln_graph *kiln_graph_new(const char *path)
{
    kiln_graph *g = kiln_xcalloc(1, sizeof *g);
    if (!g) return NULL;
    g->path = kiln_arena_strdup(&g->arena, path ? path : "<memory>");
    g->name = g->producer = "";
    if (!g->path) {
        kiln_graph_free(g);
        return NULL;
    }
    return g;
}

void kiln_graph_free(kiln_graph *g)
{
    if (!g) return;
    for (kiln_mapping *m = g->mappings; m;) {
        kiln_mapping *next = m->next;
        munmap(m->addr, m->len);
        free(m);
        m = next;
    }
    if (g->proto && g->proto_free) g->proto_free(g->proto);
    free(g->values);
    free(g->nodes);
    free(g->symbols);
    kiln_strmap_free(&g->names);
    kiln_arena_free(&g->arena);
    free(g);
}

void *kiln_graph_alloc(kiln_graph *g, size_t n) { return kiln_arena_alloc(&g->arena, n); }

int kiln_graph_find(const kiln_graph *g, const char *name) { return kiln_strmap_get(&g->names, name); }

int kiln_graph_value(kiln_graph *g, const char *name)
{
    int i = kiln_strmap_get(&g->names, name);
    if (i >= 0) return i;
    if (g->n_values == g->cap_values) {
        int cap = g->cap_values ? g->cap_values * 2 : 256;
        kiln_value *nv = kiln_xrealloc(g->values, (size_t)cap * sizeof *nv);
        if (!nv) return -1;
        g->values = nv;
        g->cap_values = cap;
    }
    kiln_value *v = &g->values[g->n_values];
    memset(v, 0, sizeof *v);
    v->name = kiln_arena_strdup(&g->arena, name);
    if (!v->name) return -1;
    v->shape.rank = -1;
    v->producer = -1;
    if (!kiln_strmap_put(&g->names, v->name, g->n_values)) return -1;
    return g->n_values++;
}

kiln_node *kiln_graph_add_node(kiln_graph *g)
{
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 256;
        kiln_node *nn = kiln_xrealloc(g->nodes, (size_t)cap * sizeof *nn);
        if (!nn) return NULL;
        g->nodes = nn;
        g->cap_nodes = cap;
    }
    kiln_node *n = &g->nodes[g->n_nodes++];
    memset(n, 0, sizeof *n);
    return n;
}

int kiln_graph_symbol(kiln_graph *g, const char *name)
{
    for (int i = 0; i < g->n_symbols; i++)
        if (!strcmp(g->symbols[i], name)) return i;
    if (g->n_symbols == g->cap_symbols) {
        int cap = g->cap_symbols ? g->cap_symbols * 2 : 8;
        const char **ns = kiln_xrealloc(g->symbols, (size_t)cap * sizeof *ns);
        if (!ns) return -1;
        g->symbols = ns;
        g->cap_symbols = cap;
    }
    const char *s = kiln_arena_strdup(&g->arena, name);
    if (!s) return -1;
    g->symbols[g->n_symbols] = s;
    return g->n_symbols++;
}

/* Kahn's algorithm, stable: among ready nodes the one first in the file
 * goes first, so a sorted file keeps its order. */
kiln_status kiln_graph_sort(kiln_graph *g)
{
    kiln_status st = KILN_OK;
    int *producer = NULL, *pending = NULL, *order = NULL, *ready = NULL;
    int *cons_start = NULL, *cons = NULL;
    kiln_node *sorted = NULL;
    int nv = g->n_values, nn = g->n_nodes;

    producer = kiln_xmalloc((size_t)nv * sizeof *producer);
    pending = kiln_xcalloc((size_t)nn + 1, sizeof *pending);
    cons_start = kiln_xcalloc((size_t)nv + 1, sizeof *cons_start);
    if (!producer || !pending || !cons_start) {
        st = KILN_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (int i = 0; i < nv; i++) {
        producer[i] = -1;
        g->values[i].n_consumers = 0;
        g->values[i].producer = -1;
    }
    for (int i = 0; i < nn; i++) {
        kiln_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_outputs; k++) {
            int o = n->outputs[k];
            if (o < 0) continue;
            if (producer[o] >= 0 || (g->values[o].flags & (KILN_V_INPUT | KILN_V_INIT))) {
                st = kiln_fail(KILN_ERR_FORMAT, "%s: node '%s' (%s): output '%s' is already %s", g->path,
                               n->name, n->op_type, g->values[o].name,
                               producer[o] >= 0 ? "produced by another node" : "a graph input or initializer");
                goto done;
            }
            producer[o] = i;
        }
    }
    /* consumers as a CSR list: value -> nodes that read it */
    for (int i = 0; i < nn; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            if (g->nodes[i].inputs[k] >= 0) cons_start[g->nodes[i].inputs[k] + 1]++;
    for (int i = 0; i < nv; i++) cons_start[i + 1] += cons_start[i];
    cons = kiln_xmalloc((size_t)cons_start[nv] * sizeof *cons + 1);
    int *fill = kiln_xcalloc((size_t)nv + 1, sizeof *fill);
    if (!cons || !fill) {
        free(fill);
        st = KILN_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (int i = 0; i < nn; i++) {
        kiln_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++) {
            int in = n->inputs[k];
            if (in < 0) continue;
            cons[cons_start[in] + fill[in]++] = i;
            g->values[in].n_consumers++;
            if (producer[in] >= 0)
                pending[i]++;
            else if (!(g->values[in].flags & (KILN_V_INPUT | KILN_V_INIT))) {
                free(fill);
                st = kiln_fail(KILN_ERR_FORMAT,
                               "%s: node '%s' (%s): input '%s' is neither a graph input, an initializer nor "
                               "the output of any node",
                               g->path, n->name, n->op_type, g->values[in].name);
                goto done;
            }
        }
    }
    free(fill);
    /* ready set as a min-heap would keep file order exactly; a sorted
     * insertion into a small array is enough and simpler */
    order = kiln_xmalloc((size_t)nn * sizeof *order + 1);
    ready = kiln_xmalloc((size_t)nn * sizeof *ready + 1);
    if (!order || !ready) {
        st = KILN_ERR_OUT_OF_MEMORY;
        goto done;
    }
    int n_ready = 0, n_done = 0;
    for (int i = nn - 1; i >= 0; i--)
        if (!pending[i]) ready[n_ready++] = i; /* descending: pop from the end gives the smallest */
    while (n_ready) {
        int i = ready[--n_ready];
        order[n_done++] = i;
        kiln_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_outputs; k++) {
            int o = n->outputs[k];
            if (o < 0) continue;
            for (int c = cons_start[o]; c < cons_start[o + 1]; c++) {
                int j = cons[c];
                if (--pending[j] == 0) {
                    int p = n_ready++;
                    while (p > 0 && ready[p - 1] < j) {
                        ready[p] = ready[p - 1];
                        p--;
                    }
                    ready[p] = j;
                }
            }
        }
    }
    if (n_done != nn) {
        for (int i = 0; i < nn; i++)
            if (pending[i]) {
                st = kiln_fail(KILN_ERR_FORMAT, "%s: node '%s' (%s) is part of a cycle", g->path,
                               g->nodes[i].name, g->nodes[i].op_type);
                goto done;
            }
    }
    sorted = kiln_xmalloc((size_t)nn * sizeof *sorted + 1);
    if (!sorted) {
        st = KILN_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (int i = 0; i < nn; i++) sorted[i] = g->nodes[order[i]];
    free(g->nodes);
    g->nodes = sorted;
    g->cap_nodes = nn;
    for (int i = 0; i < nn; i++)
        for (int k = 0; k < g->nodes[i].n_outputs; k++)
            if (g->nodes[i].outputs[k] >= 0) g->values[g->nodes[i].outputs[k]].producer = i;
    for (int i = 0; i < g->n_outputs; i++) {
        kiln_value *v = &g->values[g->outputs[i]];
        if (v->producer < 0 && !(v->flags & (KILN_V_INPUT | KILN_V_INIT))) {
            st = kiln_fail(KILN_ERR_FORMAT, "%s: graph output '%s' is produced by no node", g->path, v->name);
            goto done;
        }
    }
done:
    free(producer);
    free(pending);
    free(order);
    free(ready);
    free(cons_start);
    free(cons);
    return st;
}
