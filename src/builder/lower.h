/* The lowering's internal state and helpers, shared by the files that
 * lower a graph into a program (src/builder/lower*.c):
 * - lower.c: classification, the optimization profile, conv groups, op and
 *   alias steps, the driver (kb_lower);
 * - lower_tensor.c: tensors, steps, weights and value variants (a value in
 *   a layout and dtype), converting with copy steps;
 * - lower_ew.c: fused elementwise programs (formation and emission) and
 *   BatchNormalization as scale and shift.
 * lower.c calls lower_ew.c and lower_tensor.c; lower_ew.c calls
 * lower_tensor.c; lower_tensor.c calls neither. Not part of program.h's
 * interface. */
#ifndef KILN_BUILDER_LOWER_H
#define KILN_BUILDER_LOWER_H

#include <string.h>

#include "builder/program.h"

#define MAX_VARIANTS 4

typedef struct variant {
    int layout;
    kiln_dtype dt;
    int tensor;
} variant;

typedef struct group {
    int kind;                 /* KB_STEP_CONV or KB_STEP_EW */
    int n_nodes;
    int nodes[KB_MAX_FUSED];
    int last;                 /* node index at which the step is emitted */
    int out_value;
    /* conv */
    int conv, bn, z_value, act;
    float act_a, act_b;
} group;

typedef struct lw {
    const kiln_graph *g;
    kb_program *p;
    const kiln_build_options *o;
    kb_op_flags_fn op_flags;  /* the backend's kernels (kb_lower) */
    kb_shapes mx;
    bool *dev;                /* per value: computed from run-time data */
    bool *is_out;             /* per value: a graph output */
    int *cons_start, *cons;   /* per value: consumers among host and device nodes */
    variant (*var)[MAX_VARIANTS];
    int *n_var;
    int *group_of;            /* per node: index into groups, -1 */
    group *groups;
    int n_groups;
    struct ewb **progs;       /* per group: the elementwise program (EW groups) */
    uint8_t *w;               /* weights being written */
    size_t w_len, w_cap;
} lw;

/* A program under construction: registers for the group's values. */
typedef struct ewb {
    kc_ew_prog prog;
    int in_value[KC_EW_MAX_IN];   /* graph value loaded by input i (-1: a tensor in in_tensor) */
    int in_tensor[KC_EW_MAX_IN];  /* a tensor made here (BatchNormalization's scale/shift) */
    int reg_value[KC_EW_MAX_REGS];
    int n_regs;
} ewb;

/* ------------------------------------------------------------ small helpers */

static inline bool is_float(kiln_dtype t) { return t == KILN_F32 || t == KILN_F16 || t == KILN_BF16; }

static inline kiln_dtype internal_dt(const lw *L, kiln_dtype t) { return is_float(t) ? L->p->compute : t; }

static inline bool is_const(const lw *L, int x)
{
    return x >= 0 && !L->dev[x] && L->g->values[x].data != NULL;
}

static inline int n_consumers(const lw *L, int x) { return L->cons_start[x + 1] - L->cons_start[x]; }
static inline int consumer(const lw *L, int x, int i) { return L->cons[L->cons_start[x] + i]; }

static inline bool single_use(const lw *L, int x) { return !L->is_out[x] && n_consumers(L, x) == 1; }

/* a consumer another group has not claimed yet */
static inline bool free_node(const lw *L, int ni)
{
    return L->group_of[ni] < 0 && L->p->node_class[ni] == KB_NODE_DEVICE;
}

static inline bool same_shape(const kiln_shape *a, const kiln_shape *b)
{
    if (a->rank != b->rank || a->rank < 0) return false;
    for (int k = 0; k < a->rank; k++)
        if (!kiln_dim_equal(a->d[k], b->d[k])) return false;
    return true;
}

static inline bool op_is(const kiln_node *n, const char *name) { return !strcmp(n->op_type, name); }

static inline int shape_value_rank(const lw *L, int x) { return L->g->values[x].shape.rank; }

/* dims 2 and 3 fixed to 1: NHWC and NCHW are the same bytes */
static inline bool spatial_one(const lw *L, int x)
{
    const kiln_shape *s = &L->g->values[x].shape;
    return s->rank == 4 && s->d[2] == 1 && s->d[3] == 1;
}

static inline void group_add(group *gr, int node)
{
    if (gr->n_nodes < KB_MAX_FUSED) gr->nodes[gr->n_nodes++] = node;
    if (node > gr->last) gr->last = node;
}

/* ---------------------------------------------- lower_tensor.c: tensors */

/* a new tensor for value (-1: none), sized for the profile's max */
int kbl_new_tensor(lw *L, int value, kiln_dtype dt, int layout, int storage);
kb_step *kbl_new_step(lw *L, int kind, int node, int n_in, int n_out);
/* A weight tensor from doubles: converted to dt, stored in `layout` (NHWC
 * permutes a rank-4 [K,C,R,S] into K,R,S,C order). value -1: fixed dims. */
int kbl_weight_from_f64(lw *L, int value, const kiln_shape *shape, const double *x, kiln_dtype dt, int layout);
/* a constant's elements as doubles (malloc'd) */
double *kbl_value_f64(const kiln_value *v);
variant *kbl_find_variant(lw *L, int x, int layout, kiln_dtype dt);
int kbl_add_variant(lw *L, int x, int layout, kiln_dtype dt, int tensor);
kb_step *kbl_emit_copy(lw *L, int node, int from, int to);
/* The tensor holding value x in `layout` (-1: any) and dtype dt (0: the
 * internal dtype), converting once with a copy step when needed. */
int kbl_want(lw *L, int x, int layout, kiln_dtype dt, int at_node);

/* ---------------------------------- lower_ew.c: elementwise programs */

/* n runs as (part of) a fused elementwise program */
bool kbl_ew_op(const lw *L, const kiln_node *n);
/* a constant's first element, def when x < 0 or empty */
double kbl_const_scalar(const lw *L, int x, double def);
/* BatchNormalization as y = x * scale + shift, scale and shift per channel
 * (dim 1), computed here in double. */
kiln_status kbl_bn_scale_shift(const lw *L, const kiln_node *n, double **scale, double **shift, int64_t *C);
/* the elementwise group starting at node ni, its program in b */
void kbl_form_ew(lw *L, int ni, group *gr, ewb *b);
kiln_status kbl_emit_ew(lw *L, const group *gr, const ewb *b);

#endif
