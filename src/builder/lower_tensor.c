/* Lowering (lower.h): the program's tensors and steps, the weights being
 * written, and each value's variants (the tensors holding it in a layout
 * and dtype), with the copy steps that convert between them. */
#include <stdlib.h>
#include <string.h>

#include "builder/lower.h"

static kiln_status grow(void **arr, int *cap, int need, size_t elem)
{
    if (need <= *cap) return KILN_OK;
    int nc = *cap ? *cap * 2 : 64;
    while (nc < need) nc *= 2;
    void *q = kiln_xrealloc(*arr, (size_t)nc * elem);
    if (!q) return KILN_ERR_OUT_OF_MEMORY;
    memset((char *)q + (size_t)*cap * elem, 0, (size_t)(nc - *cap) * elem);
    *arr = q;
    *cap = nc;
    return KILN_OK;
}

static size_t shape_bytes(const kiln_shape *s, kiln_dtype dt)
{
    int64_t n = kiln_shape_numel(s);
    return n < 0 ? 0 : (size_t)n * kiln_dtype_size(dt);
}

int kbl_new_tensor(lw *L, int value, kiln_dtype dt, int layout, int storage)
{
    kb_program *p = L->p;
    if (grow((void **)&p->tensors, &p->cap_tensors, p->n_tensors + 1, sizeof *p->tensors) != KILN_OK) return -1;
    kb_tensor *t = &p->tensors[p->n_tensors];
    memset(t, 0, sizeof *t);
    t->value = value;
    t->dt = dt;
    t->layout = layout;
    t->storage = storage;
    t->alias = -1;
    if (value >= 0) t->max_bytes = shape_bytes(&L->mx.v[value].shape, dt);
    return p->n_tensors++;
}

kb_step *kbl_new_step(lw *L, int kind, int node, int n_in, int n_out)
{
    kb_program *p = L->p;
    if (grow((void **)&p->steps, &p->cap_steps, p->n_steps + 1, sizeof *p->steps) != KILN_OK) return NULL;
    kb_step *s = &p->steps[p->n_steps];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->node = node;
    s->n_in = n_in;
    s->n_out = n_out;
    s->in = kiln_arena_alloc(&p->arena, ((size_t)n_in + 1) * sizeof(int));
    s->out = kiln_arena_alloc(&p->arena, ((size_t)n_out + 1) * sizeof(int));
    if (!s->in || !s->out) return NULL;
    for (int i = 0; i < n_in; i++) s->in[i] = -1;
    for (int i = 0; i < n_out; i++) s->out[i] = -1;
    if (node >= 0) {
        s->n_nodes = 1;
        s->nodes[0] = node;
    }
    p->n_steps++;
    return s;
}

/* appends bytes to the weights, 256-byte aligned; returns the offset */
static int64_t put_weights(lw *L, const void *data, size_t n)
{
    size_t off = (L->w_len + 255) & ~(size_t)255;
    if (off + n > L->w_cap) {
        size_t nc = L->w_cap ? L->w_cap : (1u << 20);
        while (nc < off + n) nc *= 2;
        uint8_t *q = kiln_xrealloc(L->w, nc);
        if (!q) return -1;
        L->w = q;
        L->w_cap = nc;
    }
    memset(L->w + L->w_len, 0, off - L->w_len);
    if (n) memcpy(L->w + off, data, n);
    L->w_len = off + n;
    return (int64_t)off;
}

/* A weight tensor from doubles: converted to dt, stored in `layout` (NHWC
 * permutes a rank-4 [K,C,R,S] into K,R,S,C order). value -1: fixed dims. */
int kbl_weight_from_f64(lw *L, int value, const kiln_shape *shape, const double *x, kiln_dtype dt, int layout)
{
    int64_t n = kiln_shape_numel(shape);
    size_t es = kiln_dtype_size(dt);
    uint8_t *buf = kiln_xmalloc((size_t)n * es + 1);
    if (!buf) return -1;
    if (layout == KB_NHWC && shape->rank == 4) {
        int64_t K = shape->d[0], C = shape->d[1], R = shape->d[2], S = shape->d[3];
        for (int64_t k = 0; k < K; k++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t r = 0; r < R; r++)
                    for (int64_t s = 0; s < S; s++)
                        kiln_store_f64(dt, buf, ((k * R + r) * S + s) * C + c, x[((k * C + c) * R + r) * S + s]);
    } else
        for (int64_t i = 0; i < n; i++) kiln_store_f64(dt, buf, i, x[i]);
    int64_t off = put_weights(L, buf, (size_t)n * es);
    free(buf);
    if (off < 0) return -1;
    int t = kbl_new_tensor(L, value, dt, layout, KB_WEIGHT);
    if (t < 0) return -1;
    kb_tensor *tt = &L->p->tensors[t];
    tt->offset = (uint64_t)off;
    tt->max_bytes = (uint64_t)n * es;
    if (value < 0) tt->shape = *shape;
    return t;
}

double *kbl_value_f64(const kiln_value *v)
{
    int64_t n = kiln_shape_numel(&v->shape);
    double *d = kiln_xmalloc(((size_t)(n > 0 ? n : 0) + 1) * sizeof *d);
    if (!d) return NULL;
    for (int64_t i = 0; i < n; i++) d[i] = kiln_load_f64(v->dtype, v->data, i);
    return d;
}

variant *kbl_find_variant(lw *L, int x, int layout, kiln_dtype dt)
{
    for (int i = 0; i < L->n_var[x]; i++) {
        variant *v = &L->var[x][i];
        if (v->dt != dt) continue;
        if (layout < 0 || v->layout == layout) return v;
        if (layout == KB_NCHW && v->layout == KB_NHWC && spatial_one(L, x)) return v;
        if (shape_value_rank(L, x) != 4) return v; /* layout means nothing below rank 4 */
    }
    return NULL;
}

int kbl_add_variant(lw *L, int x, int layout, kiln_dtype dt, int tensor)
{
    if (L->n_var[x] < MAX_VARIANTS) {
        L->var[x][L->n_var[x]++] = (variant){layout, dt, tensor};
    }
    return tensor;
}

kb_step *kbl_emit_copy(lw *L, int node, int from, int to)
{
    kb_step *s = kbl_new_step(L, KB_STEP_COPY, node, 1, 1);
    if (!s) return NULL;
    s->in[0] = from;
    s->out[0] = to;
    return s;
}

/* The tensor holding value x in `layout` (-1: any) and dtype dt (0: the
 * internal dtype), converting once with a copy step when needed. */
int kbl_want(lw *L, int x, int layout, kiln_dtype dt, int at_node)
{
    const kiln_value *v = &L->g->values[x];
    if (!dt) dt = internal_dt(L, v->dtype);
    if (v->shape.rank != 4 && layout >= 0) layout = KB_NCHW;
    variant *hit = kbl_find_variant(L, x, layout, dt);
    if (hit) return hit->tensor;
    if (is_const(L, x)) {
        double *d = kbl_value_f64(v);
        if (!d) return -1;
        int t = kbl_weight_from_f64(L, x, &v->shape, d, dt, layout < 0 ? KB_NCHW : layout);
        free(d);
        return t < 0 ? -1 : kbl_add_variant(L, x, layout < 0 ? KB_NCHW : layout, dt, t);
    }
    if (L->n_var[x] == 0) {
        if (L->dev[x]) {
            kiln_fail(KILN_ERR_INTERNAL, "%s: value '%s' is used before it is computed", L->g->path, v->name);
            return -1;
        }
        /* a host value: copied to the device before each run, as it is */
        int t = kbl_new_tensor(L, x, v->dtype, KB_NCHW, KB_HOST);
        if (t < 0) return -1;
        L->p->tensors[t].pinned = 1;
        kbl_add_variant(L, x, KB_NCHW, v->dtype, t);
        hit = kbl_find_variant(L, x, layout, dt);
        if (hit) return hit->tensor;
    }
    const variant *src = &L->var[x][0];
    int lay = layout < 0 ? src->layout : layout;
    int t = kbl_new_tensor(L, x, dt, lay, KB_ARENA);
    if (t < 0 || !kbl_emit_copy(L, at_node, src->tensor, t)) return -1;
    return kbl_add_variant(L, x, lay, dt, t);
}
