/* Lowering (lower.h): fused elementwise programs. A chain of float
 * elementwise ops, each single-use, becomes one program of register
 * instructions (kc_ew_prog); BatchNormalization is folded into scale and
 * shift (here, and for conv groups in lower.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "builder/lower.h"

/* ---------------------------------------------------- elementwise programs */

bool kbl_ew_op(const lw *L, const kiln_node *n)
{
    /* the op table's KILN_OP_EW ops (src/ir/ops.def): each has an opcode in
     * emit_ew below */
    bool known = n->op && (n->op->flags & KILN_OP_EW);
    if (!known || n->n_outputs < 1 || n->outputs[0] < 0) return false;
    for (int k = 1; k < n->n_outputs; k++)
        if (n->outputs[k] >= 0) return false; /* BatchNormalization's training outputs */
    if (!is_float(L->g->values[n->outputs[0]].dtype)) return false;
    for (int k = 0; k < n->n_inputs; k++) {
        int x = n->inputs[k];
        if (x < 0) continue;
        if (!is_float(L->g->values[x].dtype)) return false;
    }
    if (op_is(n, "Clip"))
        for (int k = 1; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0 && !is_const(L, n->inputs[k])) return false;
    if (op_is(n, "BatchNormalization")) {
        if (n->params.batchnorm.training_mode) return false;
        for (int k = 1; k < 5; k++)
            if (!is_const(L, n->inputs[k])) return false;
    }
    return true;
}

static int ewb_ins(ewb *b, int op, int a, int bb, int act, float p0, float p1)
{
    if (b->prog.n_ins >= KC_EW_MAX_INS || b->n_regs >= KC_EW_MAX_REGS) return -1;
    int dst = b->n_regs++;
    b->reg_value[dst] = -1;
    b->prog.ins[b->prog.n_ins++] = (kc_ew_ins){.op = (uint8_t)op, .dst = (uint8_t)dst, .a = (uint8_t)a,
                                               .b = (uint8_t)bb, .act = (uint8_t)act, .p0 = p0, .p1 = p1};
    return dst;
}

/* The register holding value x: computed in the group, or loaded. */
static int ewb_reg(ewb *b, int x)
{
    for (int r = 0; r < b->n_regs; r++)
        if (b->reg_value[r] == x) return r;
    int i = -1;
    for (int k = 0; k < b->prog.n_in; k++)
        if (b->in_value[k] == x) i = k;
    if (i < 0) {
        if (b->prog.n_in >= KC_EW_MAX_IN) return -1;
        i = b->prog.n_in++;
        b->in_value[i] = x;
        b->in_tensor[i] = -1;
    }
    int r = ewb_ins(b, KC_EW_LOAD, i, 0, 0, 0, 0);
    if (r >= 0) b->reg_value[r] = x;
    return r;
}

static int ewb_load_tensor(ewb *b, int tensor)
{
    if (b->prog.n_in >= KC_EW_MAX_IN) return -1;
    int i = b->prog.n_in++;
    b->in_value[i] = -1;
    b->in_tensor[i] = tensor;
    return ewb_ins(b, KC_EW_LOAD, i, 0, 0, 0, 0);
}

double kbl_const_scalar(const lw *L, int x, double def)
{
    if (x < 0) return def;
    const kiln_value *v = &L->g->values[x];
    return kiln_shape_numel(&v->shape) >= 1 ? kiln_load_f64(v->dtype, v->data, 0) : def;
}

/* BatchNormalization as y = x * scale + shift, scale and shift per channel
 * (dim 1), computed here in double. */
kiln_status kbl_bn_scale_shift(const lw *L, const kiln_node *n, double **scale, double **shift, int64_t *C)
{
    const kiln_value *gm = &L->g->values[n->inputs[1]], *bt = &L->g->values[n->inputs[2]],
                     *mn = &L->g->values[n->inputs[3]], *vr = &L->g->values[n->inputs[4]];
    int64_t c = kiln_shape_numel(&gm->shape);
    double eps = n->params.batchnorm.epsilon;
    *scale = kiln_xmalloc(((size_t)c + 1) * sizeof(double));
    *shift = kiln_xmalloc(((size_t)c + 1) * sizeof(double));
    if (!*scale || !*shift) {
        free(*scale);
        free(*shift);
        return KILN_ERR_OUT_OF_MEMORY;
    }
    for (int64_t i = 0; i < c; i++) {
        double s = kiln_load_f64(gm->dtype, gm->data, i) / sqrt(kiln_load_f64(vr->dtype, vr->data, i) + eps);
        (*scale)[i] = s;
        (*shift)[i] = kiln_load_f64(bt->dtype, bt->data, i) - kiln_load_f64(mn->dtype, mn->data, i) * s;
    }
    *C = c;
    return KILN_OK;
}

/* Adds node n to the program; false when it does not fit. */
static bool ewb_node(lw *L, ewb *b, const kiln_node *n)
{
    ewb save = *b;
    int a = ewb_reg(b, n->inputs[0]);
    int r = -1;
    const char *op = n->op_type;
    if (a < 0) goto full;
    if (!strcmp(op, "Relu")) r = ewb_ins(b, KC_EW_ACT, a, 0, KC_ACT_RELU, 0, 0);
    else if (!strcmp(op, "LeakyRelu")) r = ewb_ins(b, KC_EW_ACT, a, 0, KC_ACT_LEAKY, n->params.act.alpha, 0);
    else if (!strcmp(op, "Sigmoid")) r = ewb_ins(b, KC_EW_ACT, a, 0, KC_ACT_SIGMOID, 0, 0);
    else if (!strcmp(op, "HardSigmoid"))
        r = ewb_ins(b, KC_EW_ACT, a, 0, KC_ACT_HARDSIGMOID, n->params.act.alpha, n->params.act.beta);
    else if (!strcmp(op, "HardSwish")) r = ewb_ins(b, KC_EW_ACT, a, 0, KC_ACT_HARDSWISH, 0, 0);
    else if (!strcmp(op, "Tanh")) r = ewb_ins(b, KC_EW_ACT, a, 0, KC_ACT_TANH, 0, 0);
    else if (!strcmp(op, "Gelu"))
        r = ewb_ins(b, KC_EW_ACT, a, 0, n->params.gelu.approximate == KILN_GELU_TANH ? KC_ACT_GELU_TANH : KC_ACT_GELU, 0, 0);
    else if (!strcmp(op, "Clip")) {
        double lo = kbl_const_scalar(L, n->n_inputs > 1 ? n->inputs[1] : -1, -INFINITY);
        double hi = kbl_const_scalar(L, n->n_inputs > 2 ? n->inputs[2] : -1, INFINITY);
        if (lo > hi) lo = hi; /* Clip-13: min > max gives max everywhere */
        r = ewb_ins(b, KC_EW_ACT, a, 0, KC_ACT_CLIP, (float)lo, (float)hi);
    } else if (!strcmp(op, "Erf")) r = ewb_ins(b, KC_EW_ERF, a, 0, 0, 0, 0);
    else if (!strcmp(op, "Sqrt")) r = ewb_ins(b, KC_EW_SQRT, a, 0, 0, 0, 0);
    else if (!strcmp(op, "Exp")) r = ewb_ins(b, KC_EW_EXP, a, 0, 0, 0, 0);
    else if (!strcmp(op, "Log")) r = ewb_ins(b, KC_EW_LOG, a, 0, 0, 0, 0);
    else if (!strcmp(op, "Neg")) r = ewb_ins(b, KC_EW_NEG, a, 0, 0, 0, 0);
    else if (!strcmp(op, "Abs")) r = ewb_ins(b, KC_EW_ABS, a, 0, 0, 0, 0);
    else if (!strcmp(op, "Reciprocal")) r = ewb_ins(b, KC_EW_RECIP, a, 0, 0, 0, 0);
    else if (!strcmp(op, "Floor")) r = ewb_ins(b, KC_EW_FLOOR, a, 0, 0, 0, 0);
    else if (!strcmp(op, "Ceil")) r = ewb_ins(b, KC_EW_CEIL, a, 0, 0, 0, 0);
    else if (!strcmp(op, "Round")) r = ewb_ins(b, KC_EW_ROUND, a, 0, 0, 0, 0);
    else if (!strcmp(op, "BatchNormalization")) {
        double *scale, *shift;
        int64_t C;
        if (kbl_bn_scale_shift(L, n, &scale, &shift, &C) != KILN_OK) goto full;
        /* [C] broadcast against dim 1 of x: [C, 1, ..., 1] */
        kiln_shape s = {.rank = L->g->values[n->inputs[0]].shape.rank - 1};
        s.d[0] = C;
        for (int k = 1; k < s.rank; k++) s.d[k] = 1;
        if (s.rank < 1) s.rank = 1;
        int ts = kbl_weight_from_f64(L, -1, &s, scale, L->p->compute, KB_NCHW);
        int th = kbl_weight_from_f64(L, -1, &s, shift, L->p->compute, KB_NCHW);
        free(scale);
        free(shift);
        if (ts < 0 || th < 0) goto full;
        int rs = ewb_load_tensor(b, ts);
        int m = rs < 0 ? -1 : ewb_ins(b, KC_EW_MUL, a, rs, 0, 0, 0);
        int rh = m < 0 ? -1 : ewb_load_tensor(b, th);
        r = rh < 0 ? -1 : ewb_ins(b, KC_EW_ADD, m, rh, 0, 0, 0);
    } else {
        int bb = ewb_reg(b, n->inputs[1]);
        if (bb < 0) goto full;
        int code = !strcmp(op, "Add") ? KC_EW_ADD
                   : !strcmp(op, "Sub") ? KC_EW_SUB
                   : !strcmp(op, "Mul") ? KC_EW_MUL
                   : !strcmp(op, "Div") ? KC_EW_DIV
                   : !strcmp(op, "Pow") ? KC_EW_POW
                   : !strcmp(op, "PRelu") ? KC_EW_PRELU
                                          : -1;
        if (code < 0) goto full;
        r = ewb_ins(b, code, a, bb, 0, 0, 0);
    }
    if (r < 0) goto full;
    b->reg_value[r] = n->outputs[0];
    b->prog.result = r;
    return true;
full:
    *b = save;
    return false;
}

void kbl_form_ew(lw *L, int ni, group *gr, ewb *b)
{
    const kiln_graph *g = L->g;
    memset(gr, 0, sizeof *gr);
    memset(b, 0, sizeof *b);
    gr->kind = KB_STEP_EW;
    gr->last = ni;
    gr->conv = gr->bn = gr->z_value = -1;
    if (!ewb_node(L, b, &g->nodes[ni])) return; /* cannot happen for one node; caught by the caller */
    group_add(gr, ni);
    int y = g->nodes[ni].outputs[0];
    while (single_use(L, y) && gr->n_nodes < KB_MAX_FUSED) {
        int mi = consumer(L, y, 0);
        const kiln_node *m = &g->nodes[mi];
        if (L->group_of[mi] >= 0 || L->p->node_class[mi] != KB_NODE_DEVICE || !kbl_ew_op(L, m)) break;
        if (!same_shape(&g->values[m->outputs[0]].shape, &g->values[y].shape)) break;
        if (!ewb_node(L, b, m)) break;
        group_add(gr, mi);
        y = m->outputs[0];
    }
    gr->out_value = y;
}

kiln_status kbl_emit_ew(lw *L, const group *gr, const ewb *b)
{
    kb_program *p = L->p;
    int in_t[KC_EW_MAX_IN];
    int layout = KB_NCHW;
    const kiln_shape *os = &L->g->values[gr->out_value].shape;
    for (int i = 0; i < b->prog.n_in; i++) {
        if (b->in_value[i] >= 0) {
            in_t[i] = kbl_want(L, b->in_value[i], -1, 0, gr->last);
            if (in_t[i] < 0) return KILN_ERR_OUT_OF_MEMORY;
            const kb_tensor *t = &p->tensors[in_t[i]];
            if (t->layout == KB_NHWC && same_shape(&L->g->values[b->in_value[i]].shape, os)) layout = KB_NHWC;
        } else
            in_t[i] = b->in_tensor[i];
    }
    if (os->rank != 4) layout = KB_NCHW;
    int ty = kbl_new_tensor(L, gr->out_value, internal_dt(L, L->g->values[gr->out_value].dtype), layout, KB_ARENA);
    if (ty < 0) return KILN_ERR_OUT_OF_MEMORY;
    kbl_add_variant(L, gr->out_value, layout, p->tensors[ty].dt, ty);
    kb_step *s = kbl_new_step(L, KB_STEP_EW, gr->last, b->prog.n_in, 1);
    if (!s) return KILN_ERR_OUT_OF_MEMORY;
    for (int i = 0; i < b->prog.n_in; i++) s->in[i] = in_t[i];
    s->out[0] = ty;
    s->prog = b->prog;
    s->n_nodes = gr->n_nodes;
    memcpy(s->nodes, gr->nodes, sizeof s->nodes);
    return KILN_OK;
}
