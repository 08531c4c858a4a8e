/* Symbolic shape values: torch exports compute Reshape targets through
 * Shape -> Gather -> Unsqueeze -> Concat. With a symbolic batch nothing there
 * is constant, so folding alone loses every dim. These rules carry, per
 * element, a concrete integer or the symbol it equals (kiln_value.sym), so
 * that Reshape(x, Concat(Shape(x)[0], 144, -1)) on [batch,144,80,80] still
 * gives [batch,144,6400].
 *
 * A rule runs after the op's shape rule, at build time only, when the node
 * was not folded; it reads its inputs' symvals (data or sym) and fills one
 * per output element. It returns false when it has nothing to say. The
 * consumers (Reshape, Expand, ConstantOfShape, Tile) are the shape rules in
 * shape_tensor.c, which read kiln_value_symvals of their shape input. */
#include "ir/shape_tensor.h"

#include <string.h>

typedef bool (*sym_fn)(const kiln_node *n, kiln_value *v, int64_t *out, int cnt);

bool kiln_value_symvals(const kiln_value *v, int64_t *out, int max, int *n)
{
    if (!v || (v->dtype != KILN_I64 && v->dtype != KILN_I32) || v->shape.rank < 0 || v->shape.rank > 1) return false;
    if (!v->data && !v->sym) return false;
    int64_t cnt = kiln_shape_numel(&v->shape);
    if (cnt < 0 || cnt > max) return false;
    for (int64_t i = 0; i < cnt; i++)
        out[i] = v->data ? kiln_symval_of_int(kiln_load_i64(v->dtype, v->data, i)) : v->sym[i];
    *n = (int)cnt;
    return true;
}

/* Symvals of input i, exactly cnt of them. */
static bool in_symvals(const kiln_node *n, kiln_value *v, int i, int64_t *out, int cnt)
{
    int k;
    return kiln_value_symvals(kiln_in(n, v, i), out, KILN_SYM_MAX, &k) && k == cnt;
}

/* ---- Shape: the input's dims [start, end) */

static bool sym_Shape(const kiln_node *n, kiln_value *v, int64_t *out, int cnt)
{
    const kiln_value *x = kiln_in(n, v, 0);
    if (x->shape.rank < 0) return false;
    int s, e;
    kiln_shape_op_range(n, x->shape.rank, &s, &e);
    if (e - s != cnt) return false;
    for (int i = 0; i < cnt; i++) out[i] = kiln_symval_of_dim(x->shape.d[s + i]);
    return true;
}

/* ---- ops that keep the elements in order: Identity, Unsqueeze, Squeeze,
 * Reshape (of the shape value itself), Cast between integer types */

static bool sym_same(const kiln_node *n, kiln_value *v, int64_t *out, int cnt)
{
    return in_symvals(n, v, 0, out, cnt);
}

static bool sym_Cast(const kiln_node *n, kiln_value *v, int64_t *out, int cnt)
{
    const kiln_value *o = kiln_out(n, v, 0);
    if (!in_symvals(n, v, 0, out, cnt)) return false;
    if (o->dtype == KILN_I32) /* a value int32 cannot hold would wrap: say unknown */
        for (int i = 0; i < cnt; i++)
            if (kiln_symval_known(out[i]) && (out[i] < INT32_MIN || out[i] > INT32_MAX)) out[i] = KILN_SYMVAL_UNKNOWN;
    return true;
}

/* ---- Gather along axis 0 of a 1-D value, constant indices */

static bool sym_Gather(const kiln_node *n, kiln_value *v, int64_t *out, int cnt)
{
    const kiln_value *x = kiln_in(n, v, 0), *ix = kiln_in(n, v, 1);
    int64_t in[KILN_SYM_MAX];
    int k;
    if (x->shape.rank != 1 || !ix->data || !kiln_value_symvals(x, in, KILN_SYM_MAX, &k)) return false;
    if (kiln_shape_numel(&ix->shape) != cnt) return false;
    for (int i = 0; i < cnt; i++) {
        int64_t j = kiln_load_i64(ix->dtype, ix->data, i);
        if (j < 0) j += k;
        if (j < 0 || j >= k) return false; /* the kernel refuses it at run time */
        out[i] = in[j];
    }
    return true;
}

/* ---- Concat of 1-D values; an input without symvals gives unknowns */

static bool sym_Concat(const kiln_node *n, kiln_value *v, int64_t *out, int cnt)
{
    int p = 0;
    for (int i = 0; i < n->n_inputs; i++) {
        const kiln_value *x = kiln_in(n, v, i);
        if (!x) continue;
        if (x->shape.rank != 1 || !kiln_dim_known(x->shape.d[0]) || x->shape.d[0] > cnt - p) return false;
        int k = (int)x->shape.d[0];
        if (!kiln_value_symvals(x, out + p, k, &k))
            for (int j = 0; j < k; j++) out[p + j] = KILN_SYMVAL_UNKNOWN;
        p += k;
    }
    return p == cnt;
}

/* ---- Slice of a 1-D value with constant parameters */

static bool sym_Slice(const kiln_node *n, kiln_value *v, int64_t *out, int cnt)
{
    const kiln_value *x = kiln_in(n, v, 0);
    int64_t in[KILN_SYM_MAX], start[KILN_MAX_RANK], step[KILN_MAX_RANK], count[KILN_MAX_RANK];
    int k;
    if (x->shape.rank != 1 || !kiln_value_symvals(x, in, KILN_SYM_MAX, &k)) return false;
    for (int i = 1; i < 5; i++) {
        const kiln_value *p = kiln_in(n, v, i);
        if (i < 3 && !p) return false;
        if (p && !p->data) return false;
    }
    if (kiln_slice_resolve(n, v, start, step, count) != KILN_OK || count[0] != cnt) return false;
    for (int i = 0; i < cnt; i++) {
        int64_t j = start[0] + (int64_t)i * step[0];
        if (j < 0 || j >= k) return false;
        out[i] = in[j];
    }
    return true;
}

/* ---- Add, Sub, Mul, Div: exact where both sides are concrete, and the
 * identities that keep a symbol (b + 0, b * 1, b / 1, b * 0 = 0) */

static int64_t arith(const char *op, int64_t a, int64_t b)
{
    bool ka = kiln_symval_known(a), kb = kiln_symval_known(b);
    int64_t r;
    switch (op[0]) {
    case 'A':
        if (ka && kb) return __builtin_add_overflow(a, b, &r) ? KILN_SYMVAL_UNKNOWN : kiln_symval_of_int(r);
        if (kb && b == 0) return a;
        if (ka && a == 0) return b;
        break;
    case 'S':
        if (ka && kb) return __builtin_sub_overflow(a, b, &r) ? KILN_SYMVAL_UNKNOWN : kiln_symval_of_int(r);
        if (kb && b == 0) return a;
        break;
    case 'M':
        if (ka && kb) return __builtin_mul_overflow(a, b, &r) ? KILN_SYMVAL_UNKNOWN : kiln_symval_of_int(r);
        if ((ka && a == 0) || (kb && b == 0)) return 0;
        if (kb && b == 1) return a;
        if (ka && a == 1) return b;
        break;
    case 'D': /* integer Div truncates (ONNX Div on integers, as C) */
        if (ka && kb) return b == 0 || (b == -1 && a == INT64_MIN) ? KILN_SYMVAL_UNKNOWN : kiln_symval_of_int(a / b);
        if (kb && b == 1) return a;
        break;
    }
    return KILN_SYMVAL_UNKNOWN;
}

static bool sym_arith(const kiln_node *n, kiln_value *v, int64_t *out, int cnt)
{
    int64_t a[KILN_SYM_MAX], b[KILN_SYM_MAX];
    int ka, kb;
    const kiln_value *x = kiln_in(n, v, 0), *y = kiln_in(n, v, 1);
    if (!kiln_value_symvals(x, a, KILN_SYM_MAX, &ka) || !kiln_value_symvals(y, b, KILN_SYM_MAX, &kb)) return false;
    if ((ka != cnt && ka != 1) || (kb != cnt && kb != 1)) return false;
    for (int i = 0; i < cnt; i++) out[i] = arith(n->op_type, a[ka == 1 ? 0 : i], b[kb == 1 ? 0 : i]);
    return true;
}

static const struct {
    const char *op;
    sym_fn fn;
} RULES[] = {
    {"Shape", sym_Shape},   {"Identity", sym_same}, {"Unsqueeze", sym_same}, {"Squeeze", sym_same},
    {"Reshape", sym_same},  {"Cast", sym_Cast},     {"Gather", sym_Gather},  {"Concat", sym_Concat},
    {"Slice", sym_Slice},   {"Add", sym_arith},     {"Sub", sym_arith},      {"Mul", sym_arith},
    {"Div", sym_arith},
};

kiln_status kiln_sym_infer(kiln_graph *g, const kiln_node *n)
{
    sym_fn fn = NULL;
    for (size_t i = 0; i < sizeof RULES / sizeof RULES[0]; i++)
        if (!strcmp(RULES[i].op, n->op->name)) fn = RULES[i].fn;
    kiln_value *o = kiln_out(n, g->values, 0);
    if (!fn || !o || o->data || (o->dtype != KILN_I64 && o->dtype != KILN_I32) || o->shape.rank < 0 ||
        o->shape.rank > 1)
        return KILN_OK;
    int64_t cnt = kiln_shape_numel(&o->shape);
    if (cnt <= 0 || cnt > KILN_SYM_MAX) return KILN_OK;
    int64_t buf[KILN_SYM_MAX];
    for (int i = 0; i < cnt; i++) buf[i] = KILN_SYMVAL_UNKNOWN;
    if (!fn(n, g->values, buf, (int)cnt)) return KILN_OK;
    bool concrete = true, any = false;
    for (int i = 0; i < cnt; i++) {
        bool k = kiln_symval_known(buf[i]);
        concrete &= k && (o->dtype == KILN_I64 || (buf[i] >= INT32_MIN && buf[i] <= INT32_MAX));
        any |= buf[i] != KILN_SYMVAL_UNKNOWN;
    }
    if (concrete) {
        /* every element known: a constant like any folded one */
        void *d = kiln_graph_alloc(g, kiln_value_bytes(o) + 1);
        if (!d) return KILN_ERR_OUT_OF_MEMORY;
        for (int i = 0; i < cnt; i++) {
            if (o->dtype == KILN_I64)
                ((int64_t *)d)[i] = buf[i];
            else
                ((int32_t *)d)[i] = (int32_t)buf[i];
        }
        o->data = d;
        o->flags |= KILN_V_FOLDED;
        return KILN_OK;
    }
    if (!any) return KILN_OK;
    int64_t *s = kiln_graph_alloc(g, (size_t)cnt * sizeof *s);
    if (!s) return KILN_ERR_OUT_OF_MEMORY;
    memcpy(s, buf, (size_t)cnt * sizeof *s);
    o->sym = s;
    return KILN_OK;
}
