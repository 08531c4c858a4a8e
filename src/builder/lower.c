/* Lowering: a graph becomes a program of device tensors and steps.
 *
 * Decisions made here, once per engine:
 * - which nodes run on the host per shape (shape subgraphs) and which on
 *   the GPU;
 * - fusion: Conv [+ BatchNormalization] [+ residual Add] [+ activation]
 *   into one cuDNN step; chains of float elementwise ops into one program;
 *   Reshape-like ops into aliases (no copy);
 * - precision: float activations in the compute dtype (f32, f16, bf16),
 *   converted at the graph's edges; weights pre-converted;
 * - layout: in f16/bf16 engines convolutions run NHWC and the ops that take
 *   any strides keep NHWC, so layout changes happen only where an op needs
 *   dense NCHW (Reshape, Gemm, ...) or at the edges.
 * Then Concats are placed (concat.c): their inputs written into the output
 * in place. The memory plan follows (memplan.c). */
/* This file: classification, the profile, conv groups, op and alias steps
 * and the driver; tensors and variants are in lower_tensor.c, elementwise
 * programs in lower_ew.c (lower.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "builder/lower.h"
#include "plan/plan.h"

/* ------------------------------------------------------- node classification */

static bool node_folded(const kiln_graph *g, const kiln_node *n)
{
    for (int k = 0; k < n->n_outputs; k++)
        if (n->outputs[k] >= 0 && !(g->values[n->outputs[k]].flags & KILN_V_FOLDED)) return false;
    return true;
}

static kiln_status classify(lw *L)
{
    const kiln_graph *g = L->g;
    for (int i = 0; i < g->n_inputs; i++) L->dev[g->inputs[i]] = true;
    for (int ni = 0; ni < g->n_nodes; ni++) {
        const kiln_node *n = &g->nodes[ni];
        if (node_folded(g, n)) {
            L->p->node_class[ni] = KB_NODE_SKIP;
            continue;
        }
        bool d = false;
        if (!(n->op->flags & KILN_OP_SHAPE_ONLY))
            for (int k = 0; k < n->n_inputs; k++)
                if (n->inputs[k] >= 0 && L->dev[n->inputs[k]]) d = true;
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] >= 0) L->dev[n->outputs[k]] = d;
        L->p->node_class[ni] = d ? KB_NODE_DEVICE : KB_NODE_HOST;
    }
    /* consumers, as CSR; a node reading one value twice (Mul(x, x))
     * counts once */
    int *cnt = kiln_xcalloc((size_t)g->n_values + 1, sizeof *cnt);
    if (!cnt) return KILN_ERR_OUT_OF_MEMORY;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            L->cons_start[0] = 0;
            for (int x = 0; x < g->n_values; x++) L->cons_start[x + 1] = L->cons_start[x] + cnt[x];
            L->cons = kiln_xmalloc(((size_t)L->cons_start[g->n_values] + 1) * sizeof *L->cons);
            if (!L->cons) {
                free(cnt);
                return KILN_ERR_OUT_OF_MEMORY;
            }
            memset(cnt, 0, (size_t)g->n_values * sizeof *cnt);
        }
        for (int ni = 0; ni < g->n_nodes; ni++) {
            if (L->p->node_class[ni] == KB_NODE_SKIP) continue;
            const kiln_node *n = &g->nodes[ni];
            for (int k = 0; k < n->n_inputs; k++) {
                int x = n->inputs[k];
                if (x < 0) continue;
                bool seen = false;
                for (int j = 0; j < k; j++)
                    if (n->inputs[j] == x) seen = true;
                if (seen) continue;
                if (pass == 1) L->cons[L->cons_start[x] + cnt[x]] = ni;
                cnt[x]++;
            }
        }
    }
    free(cnt);
    for (int i = 0; i < g->n_outputs; i++) L->is_out[g->outputs[i]] = true;
    return KILN_OK;
}

/* ------------------------------------------------------------------ profile */

/* "images:1x3x224x224,mask:1x1" -> dims of the named inputs into dst */
static kiln_status parse_shapes(const lw *L, const char *spec, int64_t *dst, const char *what)
{
    const kiln_graph *g = L->g;
    char *copy = kiln_xstrdup(spec), *save = NULL;
    if (!copy) return KILN_ERR_OUT_OF_MEMORY;
    kiln_status st = KILN_OK;
    for (char *t = strtok_r(copy, ", ", &save); t && st == KILN_OK; t = strtok_r(NULL, ", ", &save)) {
        char *colon = strrchr(t, ':');
        if (!colon) {
            st = kiln_fail(KILN_ERR_INVALID_ARGUMENT, "profile %s '%s': expected NAME:DIMxDIM...", what, t);
            break;
        }
        *colon = '\0';
        int idx = -1;
        for (int i = 0; i < g->n_inputs; i++)
            if (!strcmp(g->values[g->inputs[i]].name, t)) idx = i;
        if (idx < 0) {
            st = kiln_fail(KILN_ERR_NOT_FOUND, "%s: profile %s names input '%s', which the model does not have",
                           g->path, what, t);
            break;
        }
        const kiln_shape *s = &g->values[g->inputs[idx]].shape;
        int rank = 0;
        int64_t d[KILN_MAX_RANK];
        if (!kiln_parse_dims(colon + 1, &rank, d)) {
            st = kiln_fail(KILN_ERR_INVALID_ARGUMENT, "profile %s for '%s': bad dims '%s'", what, t, colon + 1);
            break;
        }
        if (rank != s->rank) {
            st = kiln_fail(KILN_ERR_SHAPE, "%s: profile %s for '%s' has rank %d, the input has rank %d", g->path, what,
                           t, rank, s->rank);
            break;
        }
        for (int k = 0; k < rank; k++) {
            if (s->d[k] >= 0 && s->d[k] != d[k]) {
                st = kiln_fail(KILN_ERR_SHAPE, "%s: profile %s for '%s': dim %d is fixed to %lld by the model, %lld given",
                               g->path, what, t, k, (long long)s->d[k], (long long)d[k]);
                break;
            }
            dst[idx * KILN_MAX_RANK + k] = d[k];
        }
    }
    free(copy);
    return st;
}

static kiln_status make_profile(lw *L)
{
    const kiln_graph *g = L->g;
    kb_program *p = L->p;
    size_t n = (size_t)g->n_inputs * KILN_MAX_RANK + 1;
    p->prof_min = kiln_arena_alloc(&p->arena, n * sizeof(int64_t));
    p->prof_opt = kiln_arena_alloc(&p->arena, n * sizeof(int64_t));
    p->prof_max = kiln_arena_alloc(&p->arena, n * sizeof(int64_t));
    if (!p->prof_min || !p->prof_opt || !p->prof_max) return KILN_ERR_OUT_OF_MEMORY;
    for (int i = 0; i < g->n_inputs; i++) {
        const kiln_shape *s = &g->values[g->inputs[i]].shape;
        for (int k = 0; k < s->rank; k++) {
            int64_t d = s->d[k] >= 0 ? s->d[k] : -1;
            p->prof_min[i * KILN_MAX_RANK + k] = p->prof_opt[i * KILN_MAX_RANK + k] =
                p->prof_max[i * KILN_MAX_RANK + k] = d;
        }
    }
    const char *spec = L->o->profile;
    if (spec && spec[0]) {
        char *copy = kiln_xstrdup(spec), *save = NULL;
        if (!copy) return KILN_ERR_OUT_OF_MEMORY;
        kiln_status st = KILN_OK;
        for (char *part = strtok_r(copy, ";", &save); part && st == KILN_OK; part = strtok_r(NULL, ";", &save)) {
            int64_t *dst = !strncmp(part, "min:", 4) ? p->prof_min
                           : !strncmp(part, "opt:", 4) ? p->prof_opt
                           : !strncmp(part, "max:", 4) ? p->prof_max
                                                        : NULL;
            if (!dst) {
                st = kiln_fail(KILN_ERR_INVALID_ARGUMENT,
                               "profile '%s': expected min:SHAPES;opt:SHAPES;max:SHAPES, got '%s'", spec, part);
                break;
            }
            char what[4] = {part[0], part[1], part[2], 0};
            st = parse_shapes(L, part + 4, dst, what);
        }
        free(copy);
        if (st != KILN_OK) return st;
    }
    /* what is left symbolic: dim 0 is a batch (1, 1, 32), anything else
     * needs the user to say */
    for (int i = 0; i < g->n_inputs; i++) {
        const kiln_value *x = &g->values[g->inputs[i]];
        for (int k = 0; k < x->shape.rank; k++) {
            int64_t *mn = &p->prof_min[i * KILN_MAX_RANK + k], *op = &p->prof_opt[i * KILN_MAX_RANK + k],
                    *mx = &p->prof_max[i * KILN_MAX_RANK + k];
            if (*mn < 0 && *op < 0 && *mx < 0) {
                if (k != 0)
                    return kiln_fail(KILN_ERR_INVALID_ARGUMENT,
                                     "%s: input '%s' dim %d is symbolic; give its range with --minShapes/--optShapes/"
                                     "--maxShapes (or fix it with --shapes)",
                                     g->path, x->name, k);
                *mn = 1;
                *op = 1;
                *mx = 32;
            }
            /* a partly given range: the missing ends follow the given ones */
            if (*mx < 0) *mx = *op >= 0 ? *op : *mn;
            if (*op < 0) *op = *mn >= 0 ? *mn : *mx;
            if (*mn < 0) *mn = *op < *mx ? *op : *mx;
            bool was_symbolic = x->shape.d[k] < 0;
            if (!(*mn <= *op && *op <= *mx) || (was_symbolic && *mn < 1))
                return kiln_fail(KILN_ERR_INVALID_ARGUMENT,
                                 "%s: input '%s' dim %d: the profile needs 1 <= min <= opt <= max, got %lld, %lld, %lld",
                                 g->path, x->name, k, (long long)*mn, (long long)*op, (long long)*mx);
        }
    }
    return KILN_OK;
}

/* ------------------------------------------------------------------ groups */

static int act_of(const lw *L, const kiln_node *n, float *a, float *b)
{
    *a = *b = 0;
    if (op_is(n, "Relu")) return KC_ACT_RELU;
    if (op_is(n, "Sigmoid")) return KC_ACT_SIGMOID;
    if (op_is(n, "Tanh")) return KC_ACT_TANH;
    if (op_is(n, "HardSwish")) return KC_ACT_HARDSWISH;
    if (op_is(n, "HardSigmoid")) {
        *a = n->params.act.alpha;
        *b = n->params.act.beta;
        return KC_ACT_HARDSIGMOID;
    }
    if (op_is(n, "LeakyRelu")) {
        *a = n->params.act.alpha;
        return KC_ACT_LEAKY;
    }
    if (op_is(n, "Gelu")) return n->params.gelu.approximate == KILN_GELU_TANH ? KC_ACT_GELU_TANH : KC_ACT_GELU;
    if (op_is(n, "Clip")) {
        for (int k = 1; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0 && !is_const(L, n->inputs[k])) return KC_ACT_NONE;
        double lo = kbl_const_scalar(L, n->n_inputs > 1 ? n->inputs[1] : -1, -INFINITY);
        double hi = kbl_const_scalar(L, n->n_inputs > 2 ? n->inputs[2] : -1, INFINITY);
        if (lo > hi) lo = hi;
        *a = (float)lo;
        *b = (float)hi;
        return KC_ACT_CLIP;
    }
    return KC_ACT_NONE;
}

static bool conv_fusable(const lw *L, const kiln_node *n)
{
    if (!op_is(n, "Conv") || n->n_outputs != 1) return false;
    const kiln_value *x = &L->g->values[n->inputs[0]];
    if (x->shape.rank != 4 || !is_float(x->dtype)) return false;
    if (!is_const(L, n->inputs[1])) return false;
    if (n->n_inputs > 2 && n->inputs[2] >= 0 && !is_const(L, n->inputs[2])) return false;
    return true;
}

static kiln_status form_conv(lw *L, int ni, group *gr)
{
    const kiln_graph *g = L->g;
    memset(gr, 0, sizeof *gr);
    gr->kind = KB_STEP_CONV;
    gr->conv = ni;
    gr->bn = gr->z_value = -1;
    gr->last = ni;
    group_add(gr, ni);
    int y = g->nodes[ni].outputs[0];
    if (single_use(L, y)) {
        const kiln_node *c = &g->nodes[consumer(L, y, 0)];
        if (free_node(L, consumer(L, y, 0)) && op_is(c, "BatchNormalization") && c->inputs[0] == y && kbl_ew_op(L, c)) {
            gr->bn = consumer(L, y, 0);
            group_add(gr, gr->bn);
            y = c->outputs[0];
        }
    }
    if (single_use(L, y)) {
        int ai = consumer(L, y, 0);
        const kiln_node *c = &g->nodes[ai];
        if (free_node(L, ai) && op_is(c, "Add") && c->n_inputs == 2) {
            int z = c->inputs[0] == y ? c->inputs[1] : c->inputs[0];
            if (z != y && L->dev[z] && same_shape(&g->values[z].shape, &g->values[y].shape) &&
                is_float(g->values[z].dtype)) {
                gr->z_value = z;
                group_add(gr, ai);
                y = c->outputs[0];
            }
        }
    }
    if (single_use(L, y)) {
        int ai = consumer(L, y, 0);
        float a, b;
        int act = free_node(L, ai) ? act_of(L, &g->nodes[ai], &a, &b) : KC_ACT_NONE;
        if (act != KC_ACT_NONE && g->nodes[ai].inputs[0] == y) {
            gr->act = act;
            gr->act_a = a;
            gr->act_b = b;
            group_add(gr, ai);
            y = g->nodes[ai].outputs[0];
        }
    } else if (!L->is_out[y] && n_consumers(L, y) == 2) {
        /* SiLU: Sigmoid(y) and Mul(y, sigmoid) */
        int s = -1, m = -1;
        for (int i = 0; i < 2; i++) {
            const kiln_node *c = &g->nodes[consumer(L, y, i)];
            if (op_is(c, "Sigmoid")) s = consumer(L, y, i);
            if (op_is(c, "Mul")) m = consumer(L, y, i);
        }
        if (s >= 0 && m >= 0 && free_node(L, s) && free_node(L, m)) {
            int so = g->nodes[s].outputs[0];
            const kiln_node *mn = &g->nodes[m];
            if (single_use(L, so) && consumer(L, so, 0) == m &&
                ((mn->inputs[0] == y && mn->inputs[1] == so) || (mn->inputs[1] == y && mn->inputs[0] == so))) {
                gr->act = KC_ACT_SILU;
                group_add(gr, s);
                group_add(gr, m);
                y = mn->outputs[0];
            }
        }
    }
    gr->out_value = y;
    return KILN_OK;
}

/* ------------------------------------------------------------------ emission */

static kiln_status emit_conv(lw *L, const group *gr)
{
    const kiln_graph *g = L->g;
    kb_program *p = L->p;
    const kiln_node *n = &g->nodes[gr->conv];
    int layout = p->compute == KILN_F32 ? KB_NCHW : KB_NHWC;
    /* weights: BatchNormalization folded in, in the compute dtype and layout */
    const kiln_value *wv = &g->values[n->inputs[1]];
    int64_t K = wv->shape.d[0], per = kiln_shape_numel(&wv->shape) / (K ? K : 1);
    double *w = kbl_value_f64(wv);
    double *bias = kiln_xcalloc((size_t)K + 1, sizeof *bias);
    if (!w || !bias) {
        free(w);
        free(bias);
        return KILN_ERR_OUT_OF_MEMORY;
    }
    if (n->n_inputs > 2 && n->inputs[2] >= 0) {
        const kiln_value *bv = &g->values[n->inputs[2]];
        for (int64_t k = 0; k < K; k++) bias[k] = kiln_load_f64(bv->dtype, bv->data, k);
    }
    if (gr->bn >= 0) {
        double *scale, *shift;
        int64_t C;
        kiln_status st = kbl_bn_scale_shift(L, &g->nodes[gr->bn], &scale, &shift, &C);
        if (st != KILN_OK || C != K) {
            free(w);
            free(bias);
            if (st == KILN_OK) {
                free(scale);
                free(shift);
            }
            return st != KILN_OK ? st
                                 : kiln_fail(KILN_ERR_SHAPE, "%s: node '%s': %lld channels, the conv has %lld", g->path,
                                             g->nodes[gr->bn].name, (long long)C, (long long)K);
        }
        for (int64_t k = 0; k < K; k++) {
            for (int64_t i = 0; i < per; i++) w[k * per + i] *= scale[k];
            bias[k] = bias[k] * scale[k] + shift[k];
        }
        free(scale);
        free(shift);
    }
    int tw = kbl_weight_from_f64(L, -1, &wv->shape, w, p->compute, layout);
    kiln_shape bs = {.rank = 1, .d = {K}};
    int tb = kbl_weight_from_f64(L, -1, &bs, bias, p->compute, KB_NCHW);
    free(w);
    free(bias);
    if (tw < 0 || tb < 0) return KILN_ERR_OUT_OF_MEMORY;
    int tx = kbl_want(L, n->inputs[0], layout, 0, gr->conv);
    int tz = gr->z_value >= 0 ? kbl_want(L, gr->z_value, layout, 0, gr->conv) : -1;
    if (tx < 0 || (gr->z_value >= 0 && tz < 0)) return KILN_ERR_OUT_OF_MEMORY;
    int ty = kbl_new_tensor(L, gr->out_value, p->compute, layout, KB_ARENA);
    if (ty < 0) return KILN_ERR_OUT_OF_MEMORY;
    kbl_add_variant(L, gr->out_value, layout, p->compute, ty);
    kb_step *s = kbl_new_step(L, KB_STEP_CONV, gr->conv, 4, 1);
    if (!s) return KILN_ERR_OUT_OF_MEMORY;
    s->in[0] = tx;
    s->in[1] = tw;
    s->in[2] = tb;
    s->in[3] = tz;
    s->out[0] = ty;
    s->act = gr->act;
    s->act_a = gr->act_a;
    s->act_b = gr->act_b;
    s->n_nodes = gr->n_nodes;
    memcpy(s->nodes, gr->nodes, sizeof s->nodes);
    return KILN_OK;
}

static bool alias_op(const kiln_node *n)
{
    if (op_is(n, "Reshape") || op_is(n, "Flatten") || op_is(n, "Squeeze") || op_is(n, "Unsqueeze") ||
        op_is(n, "Identity"))
        return true;
    if (op_is(n, "Dropout")) return n->n_outputs == 1 || n->outputs[1] < 0;
    return false;
}

static kiln_status emit_alias(lw *L, int ni)
{
    const kiln_node *n = &L->g->nodes[ni];
    int tx = kbl_want(L, n->inputs[0], KB_NCHW, 0, ni);
    if (tx < 0) return KILN_ERR_OUT_OF_MEMORY;
    int base = tx;
    while (L->p->tensors[base].storage == KB_ALIAS) base = L->p->tensors[base].alias;
    int y = n->outputs[0];
    int t = kbl_new_tensor(L, y, L->p->tensors[tx].dt, KB_NCHW, KB_ALIAS);
    if (t < 0) return KILN_ERR_OUT_OF_MEMORY;
    L->p->tensors[t].alias = base;
    kbl_add_variant(L, y, KB_NCHW, L->p->tensors[t].dt, t);
    return KILN_OK;
}

/* ops whose 4-D float outputs keep their input's layout */
static bool keeps_layout(const kiln_node *n) { return n->op && (n->op->flags & KILN_OP_KEEPS_LAYOUT); }

/* The dtypes the cuda backend's kernels store (src/cuda/tensor.cu). */
static bool device_dtype(kiln_dtype t)
{
    switch (t) {
    case KILN_F32: case KILN_F16: case KILN_BF16: case KILN_I64: case KILN_I32: case KILN_I8: case KILN_U8:
    case KILN_BOOL: return true;
    default: return false;
    }
}

static kiln_status emit_op(lw *L, int ni)
{
    const kiln_graph *g = L->g;
    const kiln_node *n = &g->nodes[ni];
    bool exists = false;
    unsigned flags = L->op_flags ? L->op_flags(n->op_type, &exists) : 0;
    if (!exists)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "%s: node '%s' (%s): the cuda backend has no kernel for %s", g->path,
                         n->name, n->op_type, n->op_type);
    /* tensors the device holds: every output, and every input whose
     * contents are not known at build (constants are read on the host) */
    for (int k = 0; k < n->n_inputs + n->n_outputs; k++) {
        int v = k < n->n_outputs ? n->outputs[k] : n->inputs[k - n->n_outputs];
        if (v < 0 || (k >= n->n_outputs && g->values[v].data)) continue;
        if (!device_dtype(g->values[v].dtype))
            return kiln_fail(KILN_ERR_UNSUPPORTED,
                             "%s: node '%s' (%s): tensor '%s' is %s; %s tensors are not supported by the cuda backend "
                             "(f32, f16, bf16, i64, i32, i8, u8 and bool are); run it with --backend ref",
                             g->path, n->name, n->op_type, g->values[v].name, kiln_dtype_name(g->values[v].dtype),
                             kiln_dtype_name(g->values[v].dtype));
    }
    bool strided = (flags & KB_OP_STRIDED) != 0;
    int in_t[64], n_in = n->n_inputs;
    if (n_in > 64)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "%s: node '%s' (%s) has %d inputs; the cuda backend takes at most 64",
                         g->path, n->name, n->op_type, n_in);
    int lay = KB_NCHW;
    for (int k = 0; k < n_in; k++) {
        int x = n->inputs[k];
        in_t[k] = -1;
        if (x < 0) continue;
        in_t[k] = kbl_want(L, x, strided ? -1 : KB_NCHW, 0, ni);
        if (in_t[k] < 0) return KILN_ERR_OUT_OF_MEMORY;
        if (k == 0 && L->p->tensors[in_t[k]].layout == KB_NHWC && strided && keeps_layout(n)) lay = KB_NHWC;
    }
    int out_t[64];
    if (n->n_outputs > 64)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "%s: node '%s' (%s) has %d outputs; the cuda backend takes at most 64",
                         g->path, n->name, n->op_type, n->n_outputs);
    for (int k = 0; k < n->n_outputs; k++) {
        int y = n->outputs[k];
        out_t[k] = -1;
        if (y < 0) continue;
        const kiln_value *yv = &g->values[y];
        int l = yv->shape.rank == 4 ? lay : KB_NCHW;
        out_t[k] = kbl_new_tensor(L, y, internal_dt(L, yv->dtype), l, KB_ARENA);
        if (out_t[k] < 0) return KILN_ERR_OUT_OF_MEMORY;
        kbl_add_variant(L, y, l, L->p->tensors[out_t[k]].dt, out_t[k]);
    }
    kb_step *s = kbl_new_step(L, KB_STEP_OP, ni, n_in, n->n_outputs);
    if (!s) return KILN_ERR_OUT_OF_MEMORY;
    memcpy(s->in, in_t, (size_t)n_in * sizeof(int));
    memcpy(s->out, out_t, (size_t)n->n_outputs * sizeof(int));
    return KILN_OK;
}

/* ------------------------------------------------------------------ driver */

void kb_program_free(kb_program *p)
{
    if (!p) return;
    free(p->weights);
    free(p->tensors);
    free(p->steps);
    kiln_arena_free(&p->arena);
    free(p);
}

static void lw_free(lw *L)
{
    kb_shapes_free(&L->mx);
    free(L->dev);
    free(L->is_out);
    free(L->cons_start);
    free(L->cons);
    free(L->var);
    free(L->n_var);
    free(L->group_of);
    free(L->groups);
    free(L->w);
}

static kiln_status lower_all(lw *L)
{
    const kiln_graph *g = L->g;
    kb_program *p = L->p;
    kiln_status st = classify(L);
    if (st != KILN_OK) return st;
    st = make_profile(L);
    if (st != KILN_OK) return st;
    /* concrete shapes at the profile's max decide sizes */
    const int64_t *dims[64];
    if (g->n_inputs > 64) return kiln_fail(KILN_ERR_UNSUPPORTED, "%s: more than 64 inputs", g->path);
    for (int i = 0; i < g->n_inputs; i++) dims[i] = &p->prof_max[i * KILN_MAX_RANK];
    st = kb_shapes_infer(g, p, dims, &L->mx);
    if (st != KILN_OK) return st;
    for (int ni = 0; ni < g->n_nodes; ni++) {
        if (p->node_class[ni] != KB_NODE_DEVICE) continue;
        const kiln_node *n = &g->nodes[ni];
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] >= 0 && g->values[n->outputs[k]].dtype == KILN_F64)
                return kiln_fail(KILN_ERR_UNSUPPORTED,
                                 "%s: node '%s' (%s): f64 tensors are not supported by the cuda backend; export the "
                                 "model in float32",
                                 g->path, n->name, n->op_type);
    }
    /* graph inputs: staging slots in the user's dtype, dense */
    for (int i = 0; i < g->n_inputs; i++) {
        int x = g->inputs[i];
        int t = kbl_new_tensor(L, x, g->values[x].dtype, KB_NCHW, KB_ARENA);
        if (t < 0) return KILN_ERR_OUT_OF_MEMORY;
        p->tensors[t].pinned = 1;
        p->input_tensor[i] = t;
        kbl_add_variant(L, x, KB_NCHW, g->values[x].dtype, t);
    }
    /* A fused group is emitted at its last node in graph order: by then
     * every input of every member (the residual of a conv, the other
     * operand of a Mul) has been computed, and nothing outside the group
     * reads its inner values (single uses). Progress is logged per node
     * (weights are converted here: the time goes with the model's size). */
    int n_dev = 0, i_dev = 0;
    for (int ni = 0; ni < g->n_nodes; ni++) n_dev += p->node_class[ni] == KB_NODE_DEVICE;
    for (int ni = 0; ni < g->n_nodes && st == KILN_OK; ni++) {
        if (p->node_class[ni] != KB_NODE_DEVICE) continue;
        const kiln_node *n = &g->nodes[ni];
        kiln_log(KILN_LOG_INFO, "build: lowering GPU node %d/%d: %s %s", ++i_dev, n_dev, n->op_type, n->name);
        int gi = L->group_of[ni];
        if (gi < 0 && (conv_fusable(L, n) || kbl_ew_op(L, n))) {
            gi = L->n_groups++;
            group *gr = &L->groups[gi];
            if (conv_fusable(L, n))
                st = form_conv(L, ni, gr);
            else {
                L->progs[gi] = kiln_xmalloc(sizeof(ewb));
                if (!L->progs[gi]) return KILN_ERR_OUT_OF_MEMORY;
                kbl_form_ew(L, ni, gr, L->progs[gi]);
                if (gr->n_nodes == 0)
                    return kiln_fail(KILN_ERR_INTERNAL, "%s: node '%s' (%s): no elementwise program", g->path,
                                     n->name, n->op_type);
            }
            for (int k = 0; k < gr->n_nodes; k++) L->group_of[gr->nodes[k]] = gi;
        }
        if (gi >= 0) {
            const group *gr = &L->groups[gi];
            if (gr->last == ni) st = gr->kind == KB_STEP_CONV ? emit_conv(L, gr) : kbl_emit_ew(L, gr, L->progs[gi]);
        } else if (alias_op(n))
            st = emit_alias(L, ni);
        else
            st = emit_op(L, ni);
    }
    if (st != KILN_OK) return st;
    /* graph outputs: read back from a dense slot in the model's dtype */
    for (int i = 0; i < g->n_outputs; i++) {
        int x = g->outputs[i];
        kiln_dtype dt = g->values[x].dtype;
        int t = -1;
        variant *v = L->dev[x] ? kbl_find_variant(L, x, KB_NCHW, dt) : NULL;
        if (v) {
            const kb_tensor *tt = &p->tensors[v->tensor];
            int base = v->tensor;
            while (p->tensors[base].storage == KB_ALIAS) base = p->tensors[base].alias;
            if (p->tensors[base].storage == KB_ARENA && tt->dt == dt) t = v->tensor;
        }
        if (t < 0) {
            int src = L->dev[x] ? (L->n_var[x] ? L->var[x][0].tensor : -1) : kbl_want(L, x, KB_NCHW, dt, -1);
            if (src < 0)
                return kiln_fail(KILN_ERR_INTERNAL, "%s: output '%s' is never computed", g->path, g->values[x].name);
            t = kbl_new_tensor(L, x, dt, KB_NCHW, KB_ARENA);
            if (t < 0 || !kbl_emit_copy(L, -1, src, t)) return KILN_ERR_OUT_OF_MEMORY;
        }
        p->tensors[t].pinned = 1;
        p->output_tensor[i] = t;
    }
    for (int x = 0; x < g->n_values; x++) p->value_tensor[x] = L->n_var[x] ? L->var[x][0].tensor : -1;
    return KILN_OK;
}

kiln_status kb_lower(const kiln_graph *g, const kiln_build_options *o, kb_op_flags_fn op_flags, kb_program **out)
{
    *out = NULL;
    kb_program *p = kiln_xcalloc(1, sizeof *p);
    if (!p) return KILN_ERR_OUT_OF_MEMORY;
    p->precision = o->precision;
    switch (o->precision) {
    case KILN_PRECISION_DEFAULT:
    case KILN_PRECISION_FP16: p->compute = KILN_F16; break;
    case KILN_PRECISION_FP32:
    case KILN_PRECISION_TF32: p->compute = KILN_F32; break;
    case KILN_PRECISION_BF16: p->compute = KILN_BF16; break;
    default:
        free(p);
        return kiln_fail(KILN_ERR_UNSUPPORTED, "%s: precision %s is not supported by the cuda backend yet (fp32, tf32, "
                         "fp16, bf16)", g->path, kiln_precision_name(o->precision, KILN_BACKEND_CUDA));
    }
    if (o->precision == KILN_PRECISION_DEFAULT) p->precision = KILN_PRECISION_FP16;
    p->n_inputs = g->n_inputs;
    p->n_outputs = g->n_outputs;
    if (o->flags & KILN_BUILD_RUNTIME_COMPILE) p->flags |= KB_PROG_RUNTIME_COMPILE;
    p->n_nodes_total = g->n_nodes;
    p->n_values_total = g->n_values;
    lw L = {.g = g, .p = p, .o = o, .op_flags = op_flags};
    size_t nv = (size_t)g->n_values + 1, nn = (size_t)g->n_nodes + 1;
    L.dev = kiln_xcalloc(nv, sizeof *L.dev);
    L.is_out = kiln_xcalloc(nv, sizeof *L.is_out);
    L.cons_start = kiln_xcalloc(nv + 1, sizeof *L.cons_start);
    L.var = kiln_xcalloc(nv, sizeof *L.var);
    L.n_var = kiln_xcalloc(nv, sizeof *L.n_var);
    L.group_of = kiln_xmalloc(nn * sizeof *L.group_of);
    L.groups = kiln_xcalloc(nn, sizeof *L.groups);
    L.progs = kiln_xcalloc(nn, sizeof *L.progs);
    p->node_class = kiln_arena_alloc(&p->arena, nn);
    p->value_tensor = kiln_arena_alloc(&p->arena, nv * sizeof(int));
    p->input_tensor = kiln_arena_alloc(&p->arena, ((size_t)g->n_inputs + 1) * sizeof(int));
    p->output_tensor = kiln_arena_alloc(&p->arena, ((size_t)g->n_outputs + 1) * sizeof(int));
    kiln_status st = KILN_OK;
    if (!L.dev || !L.is_out || !L.cons_start || !L.var || !L.n_var || !L.group_of || !L.groups || !L.progs ||
        !p->node_class || !p->value_tensor || !p->input_tensor || !p->output_tensor)
        st = KILN_ERR_OUT_OF_MEMORY;
    if (st == KILN_OK) {
        for (size_t i = 0; i < nn; i++) L.group_of[i] = -1;
        kiln_log(KILN_LOG_INFO, "build: lowering %d nodes for cuda (%s): shapes at the profile's max", g->n_nodes,
                 kiln_precision_name(p->precision, KILN_BACKEND_CUDA));
        st = lower_all(&L);
    }
    /* KILN_CONCAT_PLACE=0 keeps every Concat a copy (to measure what
     * placing them saves) */
    const char *cp = getenv("KILN_CONCAT_PLACE");
    if (st == KILN_OK && !(cp && !strcmp(cp, "0"))) st = kb_place_concats(g, p, op_flags);
    if (st == KILN_OK) {
        kiln_log(KILN_LOG_INFO, "build: planning memory for %d steps", p->n_steps);
        kb_plan_memory(p);
        p->weight_bytes = L.w_len;
        p->weights = L.w;
        L.w = NULL;
    }
    for (size_t i = 0; L.progs && i < nn; i++) free(L.progs[i]);
    free(L.progs);
    lw_free(&L);
    if (st != KILN_OK) {
        if (st == KILN_ERR_OUT_OF_MEMORY && !kiln_last_error()[0])
            kiln_fail(st, "%s: out of host memory lowering the model", g->path);
        kb_program_free(p);
        return st;
    }
    *out = p;
    return KILN_OK;
}
