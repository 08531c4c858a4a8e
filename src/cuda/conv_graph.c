/* Conv through cuDNN's graph (backend) API: the engines behind cuDNN's own
 * frontend and PyTorch, which the legacy API (conv_legacy.c) does not reach.
 *
 * A conv becomes an operation graph: CONVOLUTION_FORWARD (x, w -> y, f32
 * accumulation), then, when the conv has them, pointwise ops on its result:
 * ADD bias ([1, K, 1, 1] in y's layout), ADD z (the residual) and the
 * activation where cuDNN has a pointwise mode for it. Intermediate results
 * are virtual f32 tensors; only the last op writes y. An activation cuDNN
 * cannot express (HardSwish, HardSigmoid, Clip with a non-zero floor) runs
 * afterwards as an elementwise program in place on y, as the legacy API's
 * unfused path does; so do bias, residual and activation all when the graph
 * holds the conv alone.
 *
 * cuDNN's heuristics (mode A, else FALLBACK) rank engine configurations for
 * a graph. The tuner finalizes the first few into execution plans, times
 * them against the legacy candidates (conv.c's tuner), and the tactic of
 * the winner records (kc_conv_tactic, fused == KC_CONV_GRAPH): algo = the
 * config's index in the heuristic's list, math = the list (mode) | POINTWISE
 * when the pointwise ops are in the graph, reserved = the engine's global
 * index.
 * Prepare rebuilds the graph for the dims it is given, asks the heuristic
 * again and takes that config if it is still the same engine, else that
 * engine wherever it now is in the list, else the first config that runs.
 *
 * Geometry is conv_common.c's (conv_common.h): symmetric pads as pre- and
 * post-paddings, and for ONNX pads cuDNN's symmetric ones cannot express,
 * the zero-padded copy of x at the head of the workspace. The descriptors
 * are made through conv_graph_desc.c.
 *
 * Precision: strict f32 engines refuse tensor-core engines (TF32); no engine
 * that converts its inputs down or reduces in reduced precision is taken. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cudnn.h>

#include "cuda/conv_common.h"
#include "cuda/conv_graph.h"
#include "cuda/conv_graph_desc.h"
#include "cuda/kc.h"

typedef cudnnBackendDescriptor_t bdesc;

/* The real tensors of a graph, by role; their unique ids are role + 1. */
enum { T_X, T_W, T_B, T_Z, T_Y, N_REAL };
/* virtual tensors' ids start here */
#define UID_VIRTUAL 100

/* descriptors of one graph: 5 real and 3 virtual tensors, the conv
 * descriptor and op, 3 pointwise descriptors and ops, the graph */
#define MAX_OWNED 24
/* configs timed per conv (the rest of the heuristic's list is not tried) */
#define TUNE_CONFIGS 8
/* configs finalized per list at most, whether or not they run */
#define TUNE_TRIES 16
/* seconds spent on one list after which, once one config runs, no more are
 * tried (three times that when none runs yet): runtime-compiled engines
 * take long to finalize the first time */
#define TUNE_BUDGET_S 2.0
/* engine configs taken from a heuristic's list at most */
#define MAX_CFGS 256

static const char *const role_name[N_REAL] = {"input", "weights", "bias", "residual", "output"};

/* ---- descriptors */

typedef struct graph_desc {
    bdesc owned[MAX_OWNED]; /* tensors, ops, the op graph; destroyed in reverse */
    int n_owned;
    bdesc opg;              /* the operation graph */
    bool in_graph[N_REAL];  /* real tensors the graph has */
    int64_t align[N_REAL];  /* their byte alignment as cuDNN was told */
    bool pw;                /* bias and residual (and maybe the activation) are ops of the graph */
    bool act_in_graph;
    int n_pw;               /* pointwise ops */
} graph_desc;

typedef struct graph_plan {
    int kind;               /* KC_CONV_STATE_GRAPH, first: conv.c dispatches on it */
    bool empty;             /* y has no elements */
    bool strict;            /* f32 without TF32: no tensor-core engines */
    bool rtc;               /* engines compiled at run time are allowed */
    bool has_bias, has_z;
    bool epilogue;          /* prog runs in place on y after the graph */
    bool prog_bias, prog_z; /* prog's inputs after y */
    kc_conv_geom g;
    graph_desc gd;
    kc_ew_prog prog;
    bdesc cfg;              /* the engine config of plan (prepare; NULL while tuning) */
    bdesc plan;             /* the execution plan */
    size_t plan_ws;         /* its workspace, aligned */
    kc_conv_tactic t;
    bdesc pack;             /* the variant pack for pack_ptr: rebuilt when the pointers change */
    void *pack_ptr[N_REAL + 1]; /* x, w, bias, z, y, cuDNN's workspace */
} graph_plan;

/* A descriptor the graph owns (graph_free destroys it). */
static kiln_status own(graph_desc *gd, cudnnBackendDescriptorType_t type, bdesc *out, const char *what)
{
    *out = NULL;
    if (gd->n_owned == MAX_OWNED)
        return kiln_fail(KILN_ERR_INTERNAL, "more than %d cuDNN descriptors for one conv graph", MAX_OWNED);
    kiln_status st = kc_bd_create(type, out, what);
    if (st == KILN_OK) gd->owned[gd->n_owned++] = *out;
    return st;
}

static void graph_free(graph_desc *gd)
{
    for (int i = gd->n_owned - 1; i >= 0; i--) kc_bd_destroy(gd->owned[i]);
    gd->n_owned = 0;
    gd->opg = NULL;
}

/* ---- the operation graph */

typedef struct tdesc {
    int nd;
    int64_t d[KILN_MAX_RANK], s[KILN_MAX_RANK];
} tdesc;

static kiln_status make_tensor(graph_desc *gd, int64_t uid, cudnnDataType_t dt, const tdesc *t, int64_t align,
                               bool virt, bdesc *out)
{
    kiln_status st = own(gd, CUDNN_BACKEND_TENSOR_DESCRIPTOR, out, "tensor");
    bdesc d = *out;
    if (st == KILN_OK) st = KC_BD_SET(d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt);
    if (st == KILN_OK) st = KC_BD_SET(d, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, t->nd, t->d);
    if (st == KILN_OK) st = KC_BD_SET(d, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, t->nd, t->s);
    if (st == KILN_OK) st = KC_BD_SET(d, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
    if (st == KILN_OK) st = KC_BD_SET(d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align);
    if (st == KILN_OK) st = KC_BD_SET(d, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &virt);
    if (st == KILN_OK) st = kc_bd_finalize(d, "tensor");
    return st;
}

/* The view as cuDNN takes it (kc_dnn_shape, conv_common.c), in int64. */
static kiln_status view_desc(const kc_view *v, bool cl, const char *role, tdesc *t, int *layout)
{
    int di[KILN_MAX_RANK], si[KILN_MAX_RANK];
    if (!kc_dnn_shape(v, cl, &t->nd, di, si, layout))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "the %s has a dim or stride beyond cuDNN's int", role);
    for (int k = 0; k < t->nd; k++) {
        t->d[k] = di[k];
        t->s[k] = si[k];
    }
    return KILN_OK;
}

/* The byte alignment a pointer has, up to 16. Prepare may see a NULL pointer
 * (the padded copy lives in a workspace it is not given): kiln's arena,
 * weights and workspace start 256-aligned. Run checks every pointer. */
static int64_t ptr_align(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    int64_t al = 16;
    while (al > 1 && a % (uintptr_t)al) al /= 2;
    return al;
}

/* The activation as a pointwise mode, with its RELU clips; false: cuDNN
 * has none for it. */
typedef struct act_mode {
    cudnnPointwiseMode_t mode;
    bool relu;       /* RELU_FWD: lower clip, upper clip, slope below the lower clip */
    double upper, slope;
    bool swish;      /* SWISH_FWD: beta */
} act_mode;

static bool act_pointwise(kc_act act, float a, float b, act_mode *m)
{
    memset(m, 0, sizeof *m);
    m->upper = FLT_MAX; /* cuDNN's frontend clamps "no upper clip" to this for f32 math */
    switch (act) {
    case KC_ACT_RELU: m->mode = CUDNN_POINTWISE_RELU_FWD, m->relu = true; return true;
    case KC_ACT_LEAKY: /* x >= 0 ? x : a x: the slope below the lower clip 0 */
        m->mode = CUDNN_POINTWISE_RELU_FWD, m->relu = true, m->slope = a;
        return true;
    case KC_ACT_CLIP: /* min(max(x, 0), b): ReLU6 and the like; another floor is not a ReLU */
        if (a != 0.0f || !(b > 0.0f)) return false;
        m->mode = CUDNN_POINTWISE_RELU_FWD, m->relu = true;
        if (b < FLT_MAX) m->upper = b;
        return true;
    case KC_ACT_SIGMOID: m->mode = CUDNN_POINTWISE_SIGMOID_FWD; return true;
    case KC_ACT_SILU: m->mode = CUDNN_POINTWISE_SWISH_FWD, m->swish = true; return true; /* x sigmoid(1 x) */
    case KC_ACT_TANH: m->mode = CUDNN_POINTWISE_TANH_FWD; return true;
    case KC_ACT_GELU: m->mode = CUDNN_POINTWISE_GELU_FWD; return true;
    case KC_ACT_GELU_TANH: m->mode = CUDNN_POINTWISE_GELU_APPROX_TANH_FWD; return true;
    default: return false; /* HardSigmoid, HardSwish: the program after the graph */
    }
}

/* One pointwise op: out = mode(in[, b]) in f32. */
static kiln_status pointwise_op(graph_desc *gd, cudnnPointwiseMode_t mode, const act_mode *am, bdesc in, bdesc b,
                                bdesc out, bdesc *op)
{
    bdesc pw;
    cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    kiln_status st = own(gd, CUDNN_BACKEND_POINTWISE_DESCRIPTOR, &pw, "pointwise");
    if (st == KILN_OK) st = KC_BD_SET(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
    if (st == KILN_OK) st = KC_BD_SET(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec);
    if (st == KILN_OK && am && am->relu) {
        double lower = 0.0;
        st = KC_BD_SET(pw, CUDNN_ATTR_POINTWISE_RELU_LOWER_CLIP, CUDNN_TYPE_DOUBLE, 1, &lower);
        if (st == KILN_OK) st = KC_BD_SET(pw, CUDNN_ATTR_POINTWISE_RELU_UPPER_CLIP, CUDNN_TYPE_DOUBLE, 1, &am->upper);
        if (st == KILN_OK)
            st = KC_BD_SET(pw, CUDNN_ATTR_POINTWISE_RELU_LOWER_CLIP_SLOPE, CUDNN_TYPE_DOUBLE, 1, &am->slope);
    }
    if (st == KILN_OK && am && am->swish) {
        double beta = 1.0;
        st = KC_BD_SET(pw, CUDNN_ATTR_POINTWISE_SWISH_BETA, CUDNN_TYPE_DOUBLE, 1, &beta);
    }
    if (st == KILN_OK) st = kc_bd_finalize(pw, "pointwise");
    if (st == KILN_OK) st = own(gd, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, op, "pointwise operation");
    if (st == KILN_OK)
        st = KC_BD_SET(*op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw);
    if (st == KILN_OK) st = KC_BD_SET(*op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &in);
    if (st == KILN_OK && b)
        st = KC_BD_SET(*op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b);
    if (st == KILN_OK)
        st = KC_BD_SET(*op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &out);
    if (st == KILN_OK) st = kc_bd_finalize(*op, "pointwise operation");
    return st;
}

/* The graph of c: the conv, and with `pw` bias, residual and activation
 * (where cuDNN has it) after it. Host work only. */
static kiln_status graph_build(kc_handles *h, const kc_conv *c, const kc_conv_geom *g, bool pw, graph_desc *gd)
{
    memset(gd, 0, sizeof *gd);
    bool cl = kc_conv_channels_last(c);
    const kc_view *xv = g->prepad ? &g->xp : &c->x;
    cudnnDataType_t dt[N_REAL] = {CUDNN_DATA_FLOAT};
    const kc_view *views[N_REAL] = {xv, &c->w, &c->bias, &c->z, &c->y};
    bool present[N_REAL] = {true, true, c->bias.p != NULL, c->z.p != NULL, true};
    for (int r = 0; r < N_REAL; r++)
        if (present[r] && !kc_dnn_dtype(views[r]->dt, &dt[r]))
            return kiln_fail(KILN_ERR_UNSUPPORTED, "the %s is %s; cuDNN convolves f32, f16 and bf16", role_name[r],
                             kiln_dtype_name(views[r]->dt));
    tdesc td[N_REAL];
    int lay[N_REAL];
    kiln_status st;
    if ((st = view_desc(xv, cl, "input", &td[T_X], &lay[T_X])) != KILN_OK ||
        (st = view_desc(&c->w, cl, "weights", &td[T_W], &lay[T_W])) != KILN_OK ||
        (st = view_desc(&c->y, cl, "output", &td[T_Y], &lay[T_Y])) != KILN_OK)
        return st;
    if (lay[T_W] < 0)
        return kiln_fail(KILN_ERR_UNSUPPORTED,
                         "the weights are neither KCRS- nor KRSC-dense; cuDNN takes one of the two");

    act_mode am = {.mode = CUDNN_POINTWISE_IDENTITY};
    gd->pw = pw && (present[T_B] || present[T_Z] || act_pointwise(c->act, c->act_a, c->act_b, &am));
    if (gd->pw) {
        gd->act_in_graph = act_pointwise(c->act, c->act_a, c->act_b, &am);
        if (present[T_B]) {
            const kc_view *b = &c->bias;
            int64_t k = c->y.d[1];
            if (b->rank != 1 || b->d[0] != k || (b->s[0] != 1 && k != 1))
                return kiln_fail(KILN_ERR_UNSUPPORTED, "the bias is not [%lld] with unit stride", (long long)k);
            /* [1, K, 1, 1] with y's layout's strides */
            bool ycl = lay[T_Y] >= 0 ? lay[T_Y] == 1 : cl;
            td[T_B].nd = td[T_Y].nd;
            for (int i = 0; i < td[T_B].nd; i++) {
                td[T_B].d[i] = 1;
                td[T_B].s[i] = ycl ? k : 1;
            }
            td[T_B].d[1] = k;
            td[T_B].s[0] = k;
            td[T_B].s[1] = 1;
        }
        if (present[T_Z]) {
            if ((st = view_desc(&c->z, cl, "residual", &td[T_Z], &lay[T_Z])) != KILN_OK) return st;
            bool same = td[T_Z].nd == td[T_Y].nd;
            for (int i = 0; same && i < td[T_Y].nd; i++) same = td[T_Z].d[i] == td[T_Y].d[i];
            if (!same) return kiln_fail(KILN_ERR_SHAPE, "the residual does not have the output's shape");
        }
    }

    bdesc t[N_REAL] = {NULL};
    for (int r = 0; r < N_REAL; r++) {
        gd->in_graph[r] = r == T_X || r == T_W || r == T_Y || (gd->pw && present[r]);
        if (!gd->in_graph[r]) continue;
        /* the padded copy is at the workspace's head: 256-aligned */
        const void *p = r == T_X && g->prepad ? NULL : views[r]->p;
        gd->align[r] = ptr_align(p);
        if ((st = make_tensor(gd, r + 1, dt[r], &td[r], gd->align[r], false, &t[r])) != KILN_OK) return st;
    }

    /* the conv, into y or a virtual f32 tensor of y's dims, dense in y's
     * layout (y itself may be a slice of a concat's output) */
    tdesc tv = td[T_Y];
    if (lay[T_Y] < 0) kc_dense_strides(tv.nd, tv.d, cl, tv.s);
    int64_t n_virt = 0;
    bdesc conv_out = t[T_Y];
    if (gd->pw && (st = make_tensor(gd, UID_VIRTUAL + n_virt++, CUDNN_DATA_FLOAT, &tv, 16, true, &conv_out)) != KILN_OK)
        return st;
    bdesc conv;
    int64_t nsp = g->dnn_nsp, pad[KILN_MAX_SPATIAL], stride[KILN_MAX_SPATIAL], dil[KILN_MAX_SPATIAL];
    for (int i = 0; i < nsp; i++) {
        pad[i] = g->pad[i];
        stride[i] = g->stride[i];
        dil[i] = g->dil[i];
    }
    cudnnDataType_t comp = CUDNN_DATA_FLOAT;
    cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
    if ((st = own(gd, CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, &conv, "convolution")) != KILN_OK) return st;
    if ((st = KC_BD_SET(conv, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp)) != KILN_OK ||
        (st = KC_BD_SET(conv, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode)) != KILN_OK ||
        (st = KC_BD_SET(conv, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &nsp)) != KILN_OK ||
        (st = KC_BD_SET(conv, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, nsp, dil)) != KILN_OK ||
        (st = KC_BD_SET(conv, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, nsp, stride)) != KILN_OK ||
        (st = KC_BD_SET(conv, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, nsp, pad)) != KILN_OK ||
        (st = KC_BD_SET(conv, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, nsp, pad)) != KILN_OK ||
        (st = kc_bd_finalize(conv, "convolution")) != KILN_OK)
        return st;

    bdesc ops[4];
    int n_ops = 0;
    float alpha = 1.0f, beta = 0.0f;
    if ((st = own(gd, CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, &ops[0], "convolution forward")) !=
        KILN_OK)
        return st;
    bdesc op = ops[n_ops++];
    if ((st = KC_BD_SET(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &t[T_X])) !=
            KILN_OK ||
        (st = KC_BD_SET(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &t[T_W])) !=
            KILN_OK ||
        (st = KC_BD_SET(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &conv_out)) !=
            KILN_OK ||
        (st = KC_BD_SET(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                        &conv)) != KILN_OK ||
        (st = KC_BD_SET(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha)) != KILN_OK ||
        (st = KC_BD_SET(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta)) != KILN_OK ||
        (st = kc_bd_finalize(op, "convolution forward")) != KILN_OK)
        return st;

    if (gd->pw) {
        /* y = act((conv + bias) + z): each op's result feeds the next; the last writes y */
        int n_pw = present[T_B] + present[T_Z] + gd->act_in_graph;
        bdesc cur = conv_out;
        for (int k = 0; k < n_pw; k++) {
            bool last = k == n_pw - 1;
            bdesc out = t[T_Y];
            if (!last &&
                (st = make_tensor(gd, UID_VIRTUAL + n_virt++, CUDNN_DATA_FLOAT, &tv, 16, true, &out)) != KILN_OK)
                return st;
            int which = k; /* 0 bias, 1 z, 2 act, skipping the absent */
            if (!present[T_B]) which++;
            if (which == 1 && !present[T_Z]) which++;
            if (which == 0)
                st = pointwise_op(gd, CUDNN_POINTWISE_ADD, NULL, cur, t[T_B], out, &ops[n_ops]);
            else if (which == 1)
                st = pointwise_op(gd, CUDNN_POINTWISE_ADD, NULL, cur, t[T_Z], out, &ops[n_ops]);
            else
                st = pointwise_op(gd, am.mode, &am, cur, NULL, out, &ops[n_ops]);
            if (st != KILN_OK) return st;
            n_ops++;
            cur = out;
        }
        gd->n_pw = n_pw;
    }

    if ((st = own(gd, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, &gd->opg, "operation graph")) != KILN_OK) return st;
    kc_bd_set_handle(gd->opg, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, h);
    if ((st = KC_BD_SET(gd->opg, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, n_ops, ops)) !=
            KILN_OK ||
        (st = kc_bd_finalize(gd->opg, "operation graph")) != KILN_OK)
        return st;
    return KILN_OK;
}

/* ---- plans */

static void gp_free(graph_plan *p)
{
    if (!p) return;
    kc_bd_destroy(p->pack);
    kc_bd_destroy(p->plan);
    kc_bd_destroy(p->cfg);
    graph_free(&p->gd);
    free(p);
}

/* Geometry, graph and epilogue of c (no engine yet). */
static kiln_status gp_create(kc_handles *h, const kc_conv *c, bool pw, graph_plan **out)
{
    *out = NULL;
    bool has_bias, has_z;
    kiln_status cst = kc_conv_check(h, c, &has_bias, &has_z);
    if (cst != KILN_OK) return cst;
    graph_plan *p = kiln_xcalloc(1, sizeof *p);
    if (!p) return KILN_ERR_OUT_OF_MEMORY;
    p->kind = KC_CONV_STATE_GRAPH;
    p->strict = c->x.dt == KILN_F32 && h->precision != KILN_PRECISION_TF32;
    p->rtc = h->allow_rtc != 0;
    p->has_bias = has_bias;
    p->has_z = has_z;
    p->t.fused = KC_CONV_GRAPH;
    if (kc_view_numel(&c->y) == 0) {
        p->empty = true;
        *out = p;
        return KILN_OK;
    }
    kiln_status st = kc_conv_geom_nonempty(c, false, &p->g);
    if (st == KILN_OK) st = graph_build(h, c, &p->g, pw, &p->gd);
    if (st != KILN_OK) {
        gp_free(p);
        return st;
    }
    bool act_prog;
    if (p->gd.pw) {
        act_prog = c->act != KC_ACT_NONE && !p->gd.act_in_graph;
    } else {
        p->prog_bias = has_bias;
        p->prog_z = has_z;
        act_prog = c->act != KC_ACT_NONE;
    }
    p->epilogue = p->prog_bias || p->prog_z || act_prog;
    kc_conv_epilogue_prog(&p->prog, p->prog_bias, p->prog_z, act_prog ? c->act : KC_ACT_NONE, c->act_a, c->act_b);
    p->t.math = p->gd.pw ? KC_CONV_GRAPH_POINTWISE : 0;
    *out = p;
    return KILN_OK;
}

/* ---- engines */

typedef struct heur_list {
    bdesc heur;
    bdesc *cfg;
    int64_t n;
} heur_list;

static void heur_free(heur_list *hl, bdesc keep)
{
    for (int64_t i = 0; hl->cfg && i < hl->n; i++)
        if (hl->cfg[i] != keep) kc_bd_destroy(hl->cfg[i]);
    free(hl->cfg);
    kc_bd_destroy(hl->heur);
    memset(hl, 0, sizeof *hl);
}

/* The heuristic's ranked engine configs for the graph (mode: KC_CONV_GRAPH_MODE_*). */
static kiln_status heur_get(bdesc opg, int mode, heur_list *hl)
{
    memset(hl, 0, sizeof *hl);
    cudnnBackendHeurMode_t m = mode == KC_CONV_GRAPH_MODE_FALLBACK ? CUDNN_HEUR_MODE_FALLBACK : CUDNN_HEUR_MODE_A;
    kiln_status st = kc_bd_create(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, &hl->heur, "engine heuristics");
    if (st == KILN_OK)
        st = KC_BD_SET(hl->heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &opg);
    if (st == KILN_OK) st = KC_BD_SET(hl->heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &m);
    if (st == KILN_OK) st = kc_bd_finalize(hl->heur, "engine heuristics");
    int64_t n = 0;
    if (st == KILN_OK &&
        cudnnBackendGetAttribute(hl->heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &n, NULL) !=
            CUDNN_STATUS_SUCCESS)
        n = MAX_CFGS / 4; /* no count: ask for a list of this many, cuDNN says how many it filled */
    if (st == KILN_OK && n > MAX_CFGS) n = MAX_CFGS;
    if (st == KILN_OK && n > 0) {
        hl->cfg = kiln_xcalloc((size_t)n, sizeof *hl->cfg);
        if (!hl->cfg) st = KILN_ERR_OUT_OF_MEMORY;
        for (int64_t i = 0; st == KILN_OK && i < n; i++) {
            st = kc_bd_create(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &hl->cfg[i], "engine config");
            if (st == KILN_OK) hl->n = i + 1;
        }
        int64_t got = 0;
        if (st == KILN_OK)
            st = KC_BD_GET(hl->heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, n, &got, hl->cfg);
        /* the configs past what cuDNN filled are empty */
        if (st == KILN_OK && got < n) {
            for (int64_t i = got > 0 ? got : 0; i < n; i++) kc_bd_destroy(hl->cfg[i]);
            hl->n = got > 0 ? got : 0;
        }
    }
    if (st != KILN_OK) heur_free(hl, NULL);
    return st;
}

typedef struct engine_info {
    int64_t gidx;     /* CUDNN_ATTR_ENGINE_GLOBAL_INDEX */
    unsigned num;     /* numerical notes, 1 << cudnnBackendNumericalNote_t */
    unsigned beh;     /* behaviour notes, 1 << cudnnBackendBehaviorNote_t */
    bool num_unknown; /* cuDNN did not say */
} engine_info;

static kiln_status cfg_engine(bdesc cfg, engine_info *ei)
{
    memset(ei, 0, sizeof *ei);
    ei->gidx = -1;
    bdesc eng;
    int64_t n = 0;
    kiln_status st = kc_bd_create(CUDNN_BACKEND_ENGINE_DESCRIPTOR, &eng, "engine");
    if (st != KILN_OK) return st;
    st = KC_BD_GET(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &eng);
    if (st == KILN_OK) st = KC_BD_GET(eng, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &ei->gidx);
    /* the notes are advice: an engine that does not give them is not refused for that alone */
    cudnnBackendNumericalNote_t num[32];
    if (st == KILN_OK) {
        n = 0;
        if (cudnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE, 32, &n, num) ==
            CUDNN_STATUS_SUCCESS) {
            for (int64_t i = 0; i < n && i < 32; i++)
                if ((unsigned)num[i] < 32) ei->num |= 1u << num[i];
        } else {
            ei->num_unknown = true;
        }
    }
    cudnnBackendBehaviorNote_t beh[32];
    if (st == KILN_OK) {
        n = 0;
        if (cudnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE, 32, &n, beh) ==
            CUDNN_STATUS_SUCCESS)
            for (int64_t i = 0; i < n && i < 32; i++)
                if ((unsigned)beh[i] < 32) ei->beh |= 1u << beh[i];
    }
    kc_bd_destroy(eng);
    return st;
}

/* Why kiln does not take this engine, or NULL. */
/* Runtime-compiled engines cost 0.3-1 s of NVRTC per conv when a plan is
 * finalized: at build, and again the first time a process runs a shape,
 * which would make loading an engine take seconds. They are left out
 * unless the engine was built with KILN_BUILD_RUNTIME_COMPILE. */
static const char *engine_refusal(const engine_info *ei, bool strict, bool rtc)
{
    if ((ei->beh & (1u << CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION)) && !rtc)
        return "is compiled at run time (kiln build --runtime-compile allows it)";
    if (strict && ei->num_unknown) return "gives no numerical notes, and the engine is strict fp32";
    if (ei->num & (1u << CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS)) return "converts its inputs to a narrower type";
    if (ei->num & (1u << CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION))
        return "accumulates in reduced precision";
    if (strict && (ei->num & (1u << CUDNN_NUMERICAL_NOTE_TENSOR_CORE)))
        return "runs on tensor cores (TF32), and the engine is strict fp32";
    return NULL;
}

static void notes_text(const engine_info *ei, char *buf, size_t cap)
{
    static const struct {
        bool beh;
        int bit;
        const char *name;
    } names[] = {
        {false, CUDNN_NUMERICAL_NOTE_TENSOR_CORE, "tensor-core"},
        {false, CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS, "down-convert"},
        {false, CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION, "reduced-precision"},
        {false, CUDNN_NUMERICAL_NOTE_FFT, "fft"},
        {false, CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC, "nondeterministic"},
        {false, CUDNN_NUMERICAL_NOTE_WINOGRAD, "winograd"},
        {true, CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION, "runtime-compiled"},
        {true, CUDNN_BEHAVIOR_NOTE_CUBLASLT_DEPENDENCY, "cublaslt"},
    };
    size_t l = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof names / sizeof *names && l < cap; i++)
        if (((names[i].beh ? ei->beh : ei->num) >> names[i].bit) & 1u)
            l += (size_t)snprintf(buf + l, cap - l, "%s%s", l ? "," : "", names[i].name);
    if (ei->num_unknown && l < cap) l += (size_t)snprintf(buf + l, cap - l, "%snotes-unknown", l ? "," : "");
    if (!l) snprintf(buf, cap, "-");
}

/* Finalizes cfg into an execution plan; *ws its workspace in bytes. */
static kiln_status plan_make(kc_handles *h, bdesc cfg, bdesc *plan, size_t *ws)
{
    *ws = 0;
    int64_t bytes = 0, n = 0;
    kiln_status st = kc_bd_create(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, plan, "execution plan");
    if (st == KILN_OK) kc_bd_set_handle(*plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, h);
    if (st == KILN_OK)
        st = KC_BD_SET(*plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfg);
    if (st == KILN_OK) st = kc_bd_finalize(*plan, "execution plan");
    if (st == KILN_OK) st = KC_BD_GET(*plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n, &bytes);
    if (st == KILN_OK && bytes < 0)
        st = kiln_fail(KILN_ERR_DEVICE, "cuDNN reports a workspace of %lld bytes", (long long)bytes);
    if (st != KILN_OK) {
        kc_bd_destroy(*plan);
        *plan = NULL;
        return st;
    }
    *ws = (size_t)bytes;
    return KILN_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- running */

static kiln_status pack_make(graph_plan *p, void *const ptr[N_REAL + 1])
{
    kc_bd_destroy(p->pack);
    p->pack = NULL;
    memset(p->pack_ptr, 0, sizeof p->pack_ptr);
    int64_t uid[N_REAL];
    void *data[N_REAL];
    int n = 0;
    for (int r = 0; r < N_REAL; r++)
        if (p->gd.in_graph[r]) {
            uid[n] = r + 1;
            data[n++] = ptr[r];
        }
    void *ws = ptr[N_REAL];
    bdesc pack;
    kiln_status st = kc_bd_create(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pack, "variant pack");
    if (st != KILN_OK) return st;
    st = KC_BD_SET(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uid);
    if (st == KILN_OK) st = KC_BD_SET(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, data);
    if (st == KILN_OK) st = KC_BD_SET(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws);
    if (st == KILN_OK) st = kc_bd_finalize(pack, "variant pack");
    if (st != KILN_OK) {
        kc_bd_destroy(pack);
        return st;
    }
    p->pack = pack;
    memcpy(p->pack_ptr, ptr, sizeof p->pack_ptr);
    return KILN_OK;
}

kiln_status kc_graph_run(void *state, kc_handles *h, const kc_conv *c, void *ws, size_t ws_bytes, cudaStream_t s)
{
    graph_plan *p = state;
    if (!p || p->kind != KC_CONV_STATE_GRAPH) return kiln_fail(KILN_ERR_INTERNAL, "conv run without a graph plan");
    if (p->empty) return KILN_OK;
    if (!p->plan) return kiln_fail(KILN_ERR_INTERNAL, "conv run with a graph plan but no engine");
    size_t need = p->g.xp_bytes + p->plan_ws;
    kiln_status st = kc_conv_run_check(c, ws, ws_bytes, need, p->has_bias, p->has_z);
    if (st != KILN_OK) return st;
    cudnnHandle_t dnn = (cudnnHandle_t)h->cudnn;
    if ((st = kc_dnn_check(cudnnSetStream(dnn, s), "cudnnSetStream")) != KILN_OK) return st;

    void *ptr[N_REAL + 1] = {c->x.p, c->w.p, c->bias.p, c->z.p, c->y.p, NULL};
    if (p->g.prepad) {
        if ((st = kc_conv_prepad(&p->g, &c->x, ws, s)) != KILN_OK) return st;
        ptr[T_X] = ws;
    }
    if (p->plan_ws) ptr[N_REAL] = (char *)ws + p->g.xp_bytes;
    /* cuDNN was told these alignments at prepare; another pointer must keep them */
    for (int r = 0; r < N_REAL; r++)
        if (p->gd.in_graph[r] && (uintptr_t)ptr[r] % (uintptr_t)p->gd.align[r])
            return kiln_fail(KILN_ERR_INTERNAL, "the conv's %s at %p is not %lld-byte aligned as at prepare",
                             role_name[r], ptr[r], (long long)p->gd.align[r]);
    if (!p->pack || memcmp(ptr, p->pack_ptr, sizeof p->pack_ptr) != 0)
        if ((st = pack_make(p, ptr)) != KILN_OK) return st;
    st = kc_dnn_check(cudnnBackendExecute(dnn, p->plan, p->pack), "cudnnBackendExecute");
    if (st != KILN_OK || !p->epilogue) return st;
    return kc_conv_epilogue_run(c, p->prog_bias, p->prog_z, &p->prog, s);
}

void kc_graph_release(void *state) { gp_free(state); }

/* ---- prepare */

/* Config i of the list as p's plan when its engine is `gidx` (any engine:
 * gidx < 0) and kiln takes it, within ws_cap bytes (SIZE_MAX: any). The first plan that
 * does not finalize says why in why[256] (when still empty). */
static bool try_config(kc_handles *h, graph_plan *p, heur_list *hl, int64_t i, int64_t gidx, size_t ws_cap,
                       engine_info *ei, char *why)
{
    if (cfg_engine(hl->cfg[i], ei) != KILN_OK || (gidx >= 0 && ei->gidx != gidx) || engine_refusal(ei, p->strict, p->rtc)) {
        kiln_clear_error();
        return false;
    }
    bdesc plan;
    size_t ws;
    if (plan_make(h, hl->cfg[i], &plan, &ws) != KILN_OK) {
        if (!why[0]) snprintf(why, 256, "engine %lld: %s", (long long)ei->gidx, kiln_last_error());
        kiln_clear_error();
        return false;
    }
    if (p->g.xp_bytes + kc_conv_align(ws) > ws_cap) {
        kc_bd_destroy(plan);
        return false;
    }
    p->plan = plan;
    p->plan_ws = kc_conv_align(ws);
    p->cfg = hl->cfg[i];
    return true;
}

kiln_status kc_graph_prepare(kc_handles *h, const kc_conv *c, const kc_conv_tactic *t, void **state, size_t *ws_bytes)
{
    *state = NULL;
    *ws_bytes = 0;
    bool trace = kc_conv_trace();
    graph_plan *p;
    kiln_status st = gp_create(h, c, (t->math & KC_CONV_GRAPH_POINTWISE) != 0, &p);
    if (st != KILN_OK) return st;
    if (p->empty) {
        *state = p;
        return KILN_OK;
    }
    int mode = (t->math & 0xff) == KC_CONV_GRAPH_MODE_FALLBACK ? KC_CONV_GRAPH_MODE_FALLBACK : KC_CONV_GRAPH_MODE_A;
    char why[256] = "";
    engine_info ei = {.gidx = -1};
    int64_t chosen = -1;
    for (int pass = 0; pass < 2 && chosen < 0; pass++) {
        /* the tuned list first, then the other */
        int m = pass == 0 ? mode : !mode;
        heur_list hl;
        if ((st = heur_get(p->gd.opg, m, &hl)) != KILN_OK) {
            if (!why[0]) snprintf(why, sizeof why, "%s", kiln_last_error());
            kiln_clear_error();
            continue;
        }
        const char *how = "";
        if (pass == 0 && t->algo >= 0 && t->algo < hl.n &&
            try_config(h, p, &hl, t->algo, t->reserved, h->ws_cap, &ei, why))
            chosen = t->algo;
        for (int64_t i = 0; chosen < 0 && i < hl.n; i++)
            if (try_config(h, p, &hl, i, t->reserved, h->ws_cap, &ei, why)) {
                chosen = i;
                how = "the tuned engine, at another place in cuDNN's list";
            }
        for (int64_t i = 0, tried = 0; chosen < 0 && i < hl.n && tried < TUNE_TRIES; i++, tried++)
            if (try_config(h, p, &hl, i, -1, kc_ws_within(h, p->g.xp_bytes + KC_CONV_OP_WS_CAP), &ei, why)) {
                chosen = i;
                how = "the tuned engine is not in cuDNN's list here, or wants more workspace than the context has; "
                      "its first engine that runs within it";
            }
        if (chosen >= 0) {
            p->t.algo = (int32_t)chosen;
            p->t.math = m | (p->gd.pw ? KC_CONV_GRAPH_POINTWISE : 0);
            p->t.reserved = (int32_t)ei.gidx;
            if (how[0])
                kiln_log(trace ? KILN_LOG_WARN : KILN_LOG_INFO,
                         "conv '%s': tuned graph engine %d (cfg %d) -> %s: engine %d (cfg %lld)", c->n->name,
                         (int)t->reserved, (int)t->algo, how, (int)ei.gidx, (long long)chosen);
        } else if (!why[0]) {
            snprintf(why, sizeof why, "none of the %lld configs of cuDNN's %s list finalizes", (long long)hl.n,
                     m == KC_CONV_GRAPH_MODE_A ? "mode A" : "fallback");
        }
        heur_free(&hl, p->cfg);
    }
    if (chosen < 0) {
        gp_free(p);
        return kiln_fail(KILN_ERR_UNSUPPORTED, "no engine of cuDNN's graph API runs this conv at these dims: %s",
                         why[0] ? why : "cuDNN's lists are empty");
    }
    if (trace) {
        char notes[128];
        notes_text(&ei, notes, sizeof notes);
        kiln_log(KILN_LOG_WARN, "conv '%s': prepared graph engine %d (cfg %d, %s), workspace %zu bytes", c->n->name,
                 (int)p->t.reserved, (int)p->t.algo, notes, p->g.xp_bytes + p->plan_ws);
    }
    *state = p;
    *ws_bytes = p->g.xp_bytes + p->plan_ws;
    return KILN_OK;
}

/* ---- tuning */

/* Times up to TUNE_CONFIGS configs of one heuristic list of p's graph;
 * *n_ok: how many ran. */
static kiln_status tune_list(kc_handles *h, const kc_conv *c, const kc_conv_timer *tm, graph_plan *p, int mode,
                             kc_conv_tactic *best, float *best_ms, int *n_ok)
{
    int lvl = kc_conv_trace() ? KILN_LOG_WARN : KILN_LOG_DEBUG;
    const char *gname = p->gd.pw ? "conv+pointwise graph" : "conv graph";
    const char *lname = mode == KC_CONV_GRAPH_MODE_A ? "mode A" : "fallback";
    *n_ok = 0;
    heur_list hl;
    kiln_status st = heur_get(p->gd.opg, mode, &hl);
    if (st != KILN_OK) {
        kiln_log(lvl, "conv '%s': %s, %s list: %s", c->n->name, gname, lname, kiln_last_error());
        kiln_clear_error();
        return KILN_OK;
    }
    kiln_log(lvl, "conv '%s': %s, %s list: %lld configs", c->n->name, gname, lname, (long long)hl.n);
    double t0 = now_s();
    int tried = 0;
    for (int64_t i = 0; i < hl.n && st == KILN_OK; i++) {
        if (*n_ok >= TUNE_CONFIGS || tried >= TUNE_TRIES) break;
        if (now_s() - t0 > (*n_ok > 0 ? TUNE_BUDGET_S : 3 * TUNE_BUDGET_S)) {
            kiln_log(lvl, "conv '%s': %s: %.1f s spent finalizing plans; the rest of the list is not tried", c->n->name,
                     gname, now_s() - t0);
            break;
        }
        engine_info ei;
        char notes[128];
        if (cfg_engine(hl.cfg[i], &ei) != KILN_OK) {
            kiln_log(lvl, "conv '%s': %s cfg %lld: no engine: %s", c->n->name, gname, (long long)i, kiln_last_error());
            kiln_clear_error();
            continue;
        }
        notes_text(&ei, notes, sizeof notes);
        const char *refusal = engine_refusal(&ei, p->strict, p->rtc);
        if (refusal) {
            kiln_log(lvl, "conv '%s': %s cfg %lld engine %lld (%s): skipped: %s", c->n->name, gname, (long long)i,
                     (long long)ei.gidx, notes, refusal);
            continue;
        }
        tried++;
        double f0 = now_s();
        bdesc plan;
        size_t ws;
        if (plan_make(h, hl.cfg[i], &plan, &ws) != KILN_OK) {
            kiln_log(lvl, "conv '%s': %s cfg %lld engine %lld (%s): no plan: %s", c->n->name, gname, (long long)i,
                     (long long)ei.gidx, notes, kiln_last_error());
            kiln_clear_error();
            continue;
        }
        double fin_ms = (now_s() - f0) * 1e3;
        size_t need = p->g.xp_bytes + kc_conv_align(ws);
        if (need > tm->ws_limit) {
            kiln_log(lvl, "conv '%s': %s cfg %lld engine %lld (%s): needs %zu bytes of workspace, over %zu",
                     c->n->name, gname, (long long)i, (long long)ei.gidx, notes, need, tm->ws_limit);
            kc_bd_destroy(plan);
            continue;
        }
        p->plan = plan;
        p->plan_ws = kc_conv_align(ws);
        float ms;
        char why[384] = "";
        st = kc_conv_time(tm, h, c, kc_graph_run, p, &ms, why, sizeof why);
        kc_bd_destroy(p->plan);
        p->plan = NULL;
        if (st != KILN_OK) break;
        if (ms < 0) {
            kiln_log(lvl, "conv '%s': %s cfg %lld engine %lld (%s): refused at run: %s", c->n->name, gname,
                     (long long)i, (long long)ei.gidx, notes, why);
            continue;
        }
        (*n_ok)++;
        kiln_log(lvl, "conv '%s': %s, %s cfg %lld engine %lld (%s), workspace %zu, plan in %.0f ms: %.4f ms",
                 c->n->name, gname, lname, (long long)i, (long long)ei.gidx, notes, need, fin_ms, ms);
        if (*best_ms < 0 || ms < *best_ms) {
            *best_ms = ms;
            *best = (kc_conv_tactic){.algo = (int32_t)i,
                                     .fused = KC_CONV_GRAPH,
                                     .math = mode | (p->gd.pw ? KC_CONV_GRAPH_POINTWISE : 0),
                                     .reserved = (int32_t)ei.gidx};
        }
    }
    heur_free(&hl, NULL);
    return st;
}

kiln_status kc_graph_tune(kc_handles *h, const kc_conv *c, const kc_conv_timer *tm, kc_conv_tactic *best,
                          float *best_ms)
{
    int lvl = kc_conv_trace() ? KILN_LOG_WARN : KILN_LOG_DEBUG;
    kiln_status st = KILN_OK;
    /* the graph with the pointwise ops, then the conv alone with the
     * program after it */
    for (int v = 0; v < 2 && st == KILN_OK; v++) {
        bool pw = v == 0;
        graph_plan *p;
        if (gp_create(h, c, pw, &p) != KILN_OK) {
            kiln_log(lvl, "conv '%s': %s: not built: %s", c->n->name, pw ? "conv+pointwise graph" : "conv graph",
                     kiln_last_error());
            kiln_clear_error();
            continue;
        }
        if (p->empty || p->g.xp_bytes > tm->ws_limit) {
            gp_free(p);
            return KILN_OK;
        }
        int n_ok = 0;
        st = tune_list(h, c, tm, p, KC_CONV_GRAPH_MODE_A, best, best_ms, &n_ok);
        if (st == KILN_OK && n_ok == 0) st = tune_list(h, c, tm, p, KC_CONV_GRAPH_MODE_FALLBACK, best, best_ms, &n_ok);
        bool had_pw = p->gd.pw;
        gp_free(p);
        /* nothing different to try; otherwise the conv alone (+ program)
         * competes too: without runtime compilation few engines take the
         * residual add, and conv + one elementwise pass often beats the
         * legacy fused call */
        if (!had_pw) break;
    }
    return st;
}
