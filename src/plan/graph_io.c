/* Every plan's graph sections: the inferred, folded kiln_graph as it
 * stands after import (GRAPH), and its constant data (WEIGHTS), each tensor
 * 64-byte aligned so a loaded plan points straight into the file buffer.
 * Loading runs no inference: the shapes, dtypes and folded constants are
 * stored. The layout is documented in docs/plan-format.md. */
#include <stdlib.h>
#include <string.h>

#include "plan/plan.h"

#define GRAPH_MAGIC 0x4b475246u /* "FRGK": kiln graph record */

static void put_shape(kiln_bytes *b, const kiln_shape *s)
{
    kiln_bytes_u32(b, (uint32_t)s->rank);
    for (int k = 0; k < s->rank && k < KILN_MAX_RANK; k++) kiln_bytes_u64(b, (uint64_t)s->d[k]);
}

/* dtype, shape, and data as (offset, size) into weights; UINT64_MAX: no data */
static void put_tensor(kiln_bytes *b, kiln_bytes *w, const kiln_value *v, bool drop)
{
    kiln_bytes_u32(b, (uint32_t)v->dtype);
    put_shape(b, &v->shape);
    if (!v->data || drop) {
        kiln_bytes_u64(b, UINT64_MAX);
        kiln_bytes_u64(b, 0);
        return;
    }
    size_t n = kiln_value_bytes(v);
    kiln_bytes_align(w, KILN_PLAN_ALIGN);
    kiln_bytes_u64(b, w->len);
    kiln_bytes_u64(b, n);
    kiln_bytes_put(w, v->data, n);
}

void kiln_graph_serialize(const kiln_graph *g, kiln_bytes *b, kiln_bytes *w)
{
    kiln_graph_serialize_dropping(g, NULL, b, w);
}

void kiln_graph_serialize_dropping(const kiln_graph *g, const uint8_t *drop, kiln_bytes *b, kiln_bytes *w)
{
    kiln_bytes_u32(b, GRAPH_MAGIC);
    kiln_bytes_str(b, g->path);
    kiln_bytes_str(b, g->name);
    kiln_bytes_str(b, g->producer);
    kiln_bytes_u64(b, (uint64_t)g->ir_version);
    kiln_bytes_u32(b, (uint32_t)g->opset);
    kiln_bytes_u32(b, (uint32_t)g->n_symbols);
    for (int i = 0; i < g->n_symbols; i++) kiln_bytes_str(b, g->symbols[i]);
    kiln_bytes_u32(b, (uint32_t)g->n_values);
    for (int i = 0; i < g->n_values; i++) {
        const kiln_value *v = &g->values[i];
        kiln_bytes_str(b, v->name);
        kiln_bytes_u32(b, v->flags);
        put_tensor(b, w, v, drop && drop[i]);
    }
    kiln_bytes_u32(b, (uint32_t)g->n_nodes);
    for (int i = 0; i < g->n_nodes; i++) {
        const kiln_node *n = &g->nodes[i];
        kiln_bytes_str(b, n->name);
        kiln_bytes_str(b, n->op_type);
        kiln_bytes_str(b, n->domain);
        kiln_bytes_u32(b, (uint32_t)n->opset);
        kiln_bytes_u32(b, (uint32_t)n->n_inputs);
        for (int k = 0; k < n->n_inputs; k++) kiln_bytes_u32(b, (uint32_t)n->inputs[k]);
        kiln_bytes_u32(b, (uint32_t)n->n_outputs);
        for (int k = 0; k < n->n_outputs; k++) kiln_bytes_u32(b, (uint32_t)n->outputs[k]);
        kiln_bytes_u32(b, (uint32_t)n->n_attrs);
        for (int k = 0; k < n->n_attrs; k++) {
            const kiln_attr *a = &n->attrs[k];
            uint32_t fbits;
            memcpy(&fbits, &a->f, 4);
            kiln_bytes_str(b, a->name);
            kiln_bytes_u32(b, (uint32_t)a->type);
            kiln_bytes_u32(b, fbits);
            kiln_bytes_u64(b, (uint64_t)a->i);
            kiln_bytes_str(b, a->s);
            int cnt = a->type == KILN_ATTR_FLOATS || a->type == KILN_ATTR_INTS || a->type == KILN_ATTR_STRINGS ? a->n : 0;
            kiln_bytes_u32(b, (uint32_t)cnt);
            for (int j = 0; j < cnt; j++) {
                if (a->type == KILN_ATTR_FLOATS) {
                    memcpy(&fbits, &a->floats[j], 4);
                    kiln_bytes_u32(b, fbits);
                } else if (a->type == KILN_ATTR_INTS)
                    kiln_bytes_u64(b, (uint64_t)a->ints[j]);
                else
                    kiln_bytes_str(b, a->strings[j]);
            }
            kiln_bytes_u32(b, a->t != NULL);
            if (a->t) {
                kiln_bytes_str(b, a->t->name);
                /* a Constant's tensor is its output's data */
                bool dropped = drop && !strcmp(n->op_type, "Constant") && n->n_outputs > 0 && n->outputs[0] >= 0 &&
                               drop[n->outputs[0]];
                put_tensor(b, w, a->t, dropped);
            }
        }
    }
    kiln_bytes_u32(b, (uint32_t)g->n_inputs);
    for (int i = 0; i < g->n_inputs; i++) kiln_bytes_u32(b, (uint32_t)g->inputs[i]);
    kiln_bytes_u32(b, (uint32_t)g->n_outputs);
    for (int i = 0; i < g->n_outputs; i++) {
        kiln_bytes_u32(b, (uint32_t)g->outputs[i]);
        put_shape(b, &g->declared[i]);
        kiln_bytes_u32(b, (uint32_t)g->declared_dtype[i]);
    }
}

/* ------------------------------------------------------------------ reading */

typedef struct loader {
    kiln_reader r;
    const uint8_t *w;
    size_t wsize;
    kiln_graph *g;
    const char *what;
} loader;

static kiln_status bad(loader *l, const char *why)
{
    return kiln_fail(KILN_ERR_FORMAT, "%s: malformed plan graph section: %s", l->what, why);
}

static bool get_shape(loader *l, kiln_shape *s)
{
    int32_t rank = (int32_t)kiln_read_u32(&l->r);
    if (rank < -1 || rank > KILN_MAX_RANK) return false;
    s->rank = rank;
    for (int k = 0; k < rank; k++) s->d[k] = (int64_t)kiln_read_u64(&l->r);
    return !l->r.bad;
}

static kiln_status get_tensor(loader *l, kiln_value *v)
{
    v->dtype = (kiln_dtype)kiln_read_u32(&l->r);
    if (!get_shape(l, &v->shape)) return bad(l, "bad shape");
    uint64_t off = kiln_read_u64(&l->r), n = kiln_read_u64(&l->r);
    if (l->r.bad) return bad(l, "cut short");
    if (off == UINT64_MAX) {
        v->data = NULL;
        return KILN_OK;
    }
    if (!kiln_dtype_valid(v->dtype) || !kiln_shape_known(&v->shape)) return bad(l, "constant data without a known dtype and shape");
    if (n != kiln_value_bytes(v)) return bad(l, "constant data size does not match its shape");
    if (off > l->wsize || n > l->wsize - off) return bad(l, "constant data outside the weights section");
    if (n == 0) {
        v->data = kiln_graph_alloc(l->g, 1);
        return v->data ? KILN_OK : KILN_ERR_OUT_OF_MEMORY;
    }
    const uint8_t *p = l->w + off;
    if ((uintptr_t)p % 16) { /* kernels read typed elements: keep them aligned */
        void *c = kiln_graph_alloc(l->g, (size_t)n);
        if (!c) return KILN_ERR_OUT_OF_MEMORY;
        memcpy(c, p, (size_t)n);
        p = c;
    }
    v->data = (void *)p;
    return KILN_OK;
}

static bool index_ok(loader *l, int32_t x, bool optional) { return (optional && x == -1) || (x >= 0 && x < l->g->n_values); }

static kiln_status load_graph(loader *l)
{
    kiln_graph *g = l->g;
    kiln_reader *r = &l->r;
    kiln_arena *a = &g->arena;
    if (kiln_read_u32(r) != GRAPH_MAGIC) return bad(l, "no graph record");
    const char *path = kiln_read_str(r, a), *name = kiln_read_str(r, a), *producer = kiln_read_str(r, a);
    g->path = path ? path : g->path;
    g->name = name ? name : "";
    g->producer = producer ? producer : "";
    g->ir_version = (int64_t)kiln_read_u64(r);
    g->opset = (int)kiln_read_u32(r);
    uint32_t ns = kiln_read_u32(r);
    if (r->bad || ns > r->len) return bad(l, "bad symbol count");
    for (uint32_t i = 0; i < ns; i++) {
        const char *s = kiln_read_str(r, a);
        if (!s || kiln_graph_symbol(g, s) != (int)i) return bad(l, "bad symbol");
    }
    uint32_t nv = kiln_read_u32(r);
    if (r->bad || nv > r->len) return bad(l, "bad value count");
    for (uint32_t i = 0; i < nv; i++) {
        const char *vn = kiln_read_str(r, a);
        if (!vn) return bad(l, "value without a name");
        int x = kiln_graph_value(g, vn);
        if (x < 0) return KILN_ERR_OUT_OF_MEMORY;
        if (x != (int)i) return bad(l, "two values share a name");
        kiln_value *v = &g->values[x];
        v->flags = kiln_read_u32(r);
        kiln_status st = get_tensor(l, v);
        if (st != KILN_OK) return st;
        v = &g->values[x];
        if (v->dtype && !kiln_dtype_valid(v->dtype)) return bad(l, "unknown dtype");
    }
    uint32_t nn = kiln_read_u32(r);
    if (r->bad || nn > r->len) return bad(l, "bad node count");
    for (uint32_t i = 0; i < nn; i++) {
        kiln_node *n = kiln_graph_add_node(g);
        if (!n) return KILN_ERR_OUT_OF_MEMORY;
        n->name = kiln_read_str(r, a);
        n->op_type = kiln_read_str(r, a);
        n->domain = kiln_read_str(r, a);
        n->opset = (int)kiln_read_u32(r);
        if (!n->name || !n->op_type || !n->domain) return bad(l, "node without name, op or domain");
        n->n_inputs = (int)kiln_read_u32(r);
        if (r->bad || n->n_inputs < 0 || (size_t)n->n_inputs > r->len) return bad(l, "bad input count");
        n->inputs = kiln_arena_alloc(a, ((size_t)n->n_inputs + 1) * sizeof(int));
        if (!n->inputs) return KILN_ERR_OUT_OF_MEMORY;
        for (int k = 0; k < n->n_inputs; k++)
            if (!index_ok(l, n->inputs[k] = (int32_t)kiln_read_u32(r), true)) return bad(l, "node input out of range");
        n->n_outputs = (int)kiln_read_u32(r);
        if (r->bad || n->n_outputs < 0 || (size_t)n->n_outputs > r->len) return bad(l, "bad output count");
        n->outputs = kiln_arena_alloc(a, ((size_t)n->n_outputs + 1) * sizeof(int));
        if (!n->outputs) return KILN_ERR_OUT_OF_MEMORY;
        for (int k = 0; k < n->n_outputs; k++)
            if (!index_ok(l, n->outputs[k] = (int32_t)kiln_read_u32(r), true)) return bad(l, "node output out of range");
        n->n_attrs = (int)kiln_read_u32(r);
        if (r->bad || n->n_attrs < 0 || (size_t)n->n_attrs > r->len) return bad(l, "bad attribute count");
        n->attrs = kiln_arena_alloc(a, ((size_t)n->n_attrs + 1) * sizeof(kiln_attr));
        if (!n->attrs) return KILN_ERR_OUT_OF_MEMORY;
        for (int k = 0; k < n->n_attrs; k++) {
            kiln_attr *at = &n->attrs[k];
            at->name = kiln_read_str(r, a);
            at->type = (kiln_attr_type)kiln_read_u32(r);
            uint32_t fbits = kiln_read_u32(r);
            memcpy(&at->f, &fbits, 4);
            at->i = (int64_t)kiln_read_u64(r);
            at->s = kiln_read_str(r, a);
            uint32_t cnt = kiln_read_u32(r);
            if (r->bad || !at->name || cnt > r->len) return bad(l, "bad attribute");
            at->n = (int)cnt;
            if (at->type == KILN_ATTR_FLOATS) {
                float *f = kiln_arena_alloc(a, (size_t)cnt * sizeof *f + 1);
                if (!f) return KILN_ERR_OUT_OF_MEMORY;
                for (uint32_t j = 0; j < cnt; j++) {
                    fbits = kiln_read_u32(r);
                    memcpy(&f[j], &fbits, 4);
                }
                at->floats = f;
            } else if (at->type == KILN_ATTR_INTS) {
                int64_t *v = kiln_arena_alloc(a, (size_t)cnt * sizeof *v + 1);
                if (!v) return KILN_ERR_OUT_OF_MEMORY;
                for (uint32_t j = 0; j < cnt; j++) v[j] = (int64_t)kiln_read_u64(r);
                at->ints = v;
            } else if (at->type == KILN_ATTR_STRINGS) {
                const char **s = kiln_arena_alloc(a, ((size_t)cnt + 1) * sizeof *s);
                if (!s) return KILN_ERR_OUT_OF_MEMORY;
                for (uint32_t j = 0; j < cnt; j++) s[j] = kiln_read_str(r, a);
                at->strings = s;
            } else if (cnt)
                return bad(l, "list attribute of a scalar type");
            if (kiln_read_u32(r)) {
                kiln_value *t = kiln_arena_alloc(a, sizeof *t);
                if (!t) return KILN_ERR_OUT_OF_MEMORY;
                t->name = kiln_read_str(r, a);
                t->producer = -1;
                kiln_status st = get_tensor(l, t);
                if (st != KILN_OK) return st;
                at->t = t;
            }
            if (r->bad) return bad(l, "cut short in an attribute");
        }
        kiln_op_resolve(n);
        if (n->unsupported)
            return kiln_fail(KILN_ERR_VERSION, "%s: node '%s' (%s): %s; the plan needs a kiln that can run it",
                             l->what, n->name, n->op_type, n->unsupported);
    }
    g->n_inputs = (int)kiln_read_u32(r);
    if (r->bad || g->n_inputs < 0 || g->n_inputs > g->n_values) return bad(l, "bad graph input count");
    g->inputs = kiln_arena_alloc(a, ((size_t)g->n_inputs + 1) * sizeof(int));
    if (!g->inputs) return KILN_ERR_OUT_OF_MEMORY;
    for (int i = 0; i < g->n_inputs; i++)
        if (!index_ok(l, g->inputs[i] = (int32_t)kiln_read_u32(r), false)) return bad(l, "graph input out of range");
    g->n_outputs = (int)kiln_read_u32(r);
    if (r->bad || g->n_outputs < 0 || g->n_outputs > g->n_values) return bad(l, "bad graph output count");
    g->outputs = kiln_arena_alloc(a, ((size_t)g->n_outputs + 1) * sizeof(int));
    g->declared = kiln_arena_alloc(a, ((size_t)g->n_outputs + 1) * sizeof(kiln_shape));
    g->declared_dtype = kiln_arena_alloc(a, ((size_t)g->n_outputs + 1) * sizeof(kiln_dtype));
    if (!g->outputs || !g->declared || !g->declared_dtype) return KILN_ERR_OUT_OF_MEMORY;
    for (int i = 0; i < g->n_outputs; i++) {
        if (!index_ok(l, g->outputs[i] = (int32_t)kiln_read_u32(r), false)) return bad(l, "graph output out of range");
        if (!get_shape(l, &g->declared[i])) return bad(l, "bad declared shape");
        g->declared_dtype[i] = (kiln_dtype)kiln_read_u32(r);
    }
    if (r->bad) return bad(l, "cut short");
    if (r->off != r->len) return bad(l, "trailing bytes");
    /* symbolic dims must name a stored symbol */
    for (int i = 0; i < g->n_values; i++) {
        const kiln_shape *s = &g->values[i].shape;
        for (int k = 0; k < s->rank; k++)
            if (s->d[k] < 0 && s->d[k] != KILN_DIM_UNKNOWN && kiln_dim_sym_id(s->d[k]) >= g->n_symbols)
                return bad(l, "unknown symbolic dim");
    }
    return kiln_graph_sort(g); /* producers and consumer counts; the stored order is kept */
}

kiln_status kiln_graph_deserialize(const uint8_t *graph, size_t graph_size, const uint8_t *weights, size_t weights_size,
                                   void *keep, const char *what, kiln_graph **out)
{
    *out = NULL;
    kiln_graph *g = kiln_graph_new(what);
    if (!g) {
        free(keep);
        return KILN_ERR_OUT_OF_MEMORY;
    }
    if (keep) {
        g->proto = keep; /* the file buffer: constant data points into it */
        g->proto_free = free;
    }
    loader l = {.r = {.p = graph, .len = graph_size}, .w = weights, .wsize = weights_size, .g = g, .what = what};
    kiln_status st = load_graph(&l);
    if (st != KILN_OK) {
        if (st == KILN_ERR_OUT_OF_MEMORY) kiln_fail(st, "%s: out of host memory loading the plan", what);
        kiln_graph_free(g);
        return st;
    }
    *out = g;
    return KILN_OK;
}
