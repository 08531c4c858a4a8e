/* Concat in place: a Concat's inputs become slices of its output, so the
 * steps that compute them write straight into it and nothing is copied.
 *
 * An input tensor X of the Concat whose output is Y becomes a slice of Y
 * (storage KB_SLICE) when
 * - X is an activation of its own (KB_ARENA), not a graph input or output
 *   slot, of Y's dtype and layout, and appears once among the inputs;
 * - nothing reads X's bytes as another shape (no alias of X), and X is not
 *   itself the output of a placed Concat (slices do not nest);
 * - every other step that writes or reads X takes strided tensors: a conv
 *   writing it as its output or reading it as its residual (all three conv
 *   paths take a channel slice of NHWC or a batch-strided NCHW tensor), an
 *   elementwise program, a copy, or an op kernel that takes any strides
 *   (KB_OP_STRIDED). Not a conv reading it as its input: see
 *   reads_as_conv_input.
 * The inputs that fail these are copied into their slices by copy steps
 * where the Concat was; a Concat none of whose inputs qualifies stays one
 * Concat kernel (one launch beats a copy per input). The memory planner
 * then keeps Y's bytes from the first slice's writer to the last reader of
 * Y or of any slice (memplan.c follows slices to Y). */
#include <stdlib.h>
#include <string.h>

#include "builder/program.h"

int64_t kb_slice_start(const kiln_graph *g, const kb_tensor *t, const kiln_value *v)
{
    const kiln_node *n = &g->nodes[t->slice_node];
    int64_t start = 0;
    for (int j = 0; j < t->slice_input; j++)
        if (n->inputs[j] >= 0) start += v[n->inputs[j]].shape.d[t->slice_axis];
    return start;
}

static bool takes_strides(const kiln_graph *g, kb_op_flags_fn op_flags, const kb_step *s)
{
    switch (s->kind) {
    case KB_STEP_CONV:
    case KB_STEP_EW:
    case KB_STEP_COPY: return true;
    case KB_STEP_OP: {
        bool exists = false;
        unsigned f = op_flags ? op_flags(g->nodes[s->node].op_type, &exists) : 0;
        return exists && (f & KB_OP_STRIDED) && !(f & KB_OP_ALIAS);
    }
    default: return false;
    }
}

/* A conv reading x from a slice: cuDNN's kernels read a strided input
 * markedly slower (yolov8n b16: its convs on Split outputs 28 % slower)
 * than the copy placing would save; they write strided outputs at full
 * speed. */
static bool reads_as_conv_input(const kb_step *s, int t) { return s->kind == KB_STEP_CONV && s->in[0] == t; }

static bool step_uses(const kb_step *s, int t, bool *writes)
{
    bool any = false;
    for (int i = 0; i < s->n_in; i++) any |= s->in[i] == t;
    for (int i = 0; i < s->n_out; i++)
        if (s->out[i] == t) any = *writes = true;
    return any;
}

/* Whether tensor x, input k of Concat step c with output y, can be a slice. */
static bool placeable(const kiln_graph *g, kb_op_flags_fn op_flags, const kb_program *p, int c, int k, int x, int y)
{
    const kb_step *cs = &p->steps[c];
    const kb_tensor *tx = &p->tensors[x], *ty = &p->tensors[y];
    if (x == y || tx->storage != KB_ARENA || tx->pinned || tx->dt != ty->dt || tx->layout != ty->layout) return false;
    for (int j = 0; j < cs->n_in; j++)
        if (j != k && cs->in[j] == x) return false;
    for (int t = 0; t < p->n_tensors; t++)
        if ((p->tensors[t].storage == KB_ALIAS || p->tensors[t].storage == KB_SLICE) && p->tensors[t].alias == x)
            return false;
    int writers = 0;
    for (int s = 0; s < p->n_steps; s++) {
        if (s == c) continue;
        bool writes = false;
        if (!step_uses(&p->steps[s], x, &writes)) continue;
        if (!takes_strides(g, op_flags, &p->steps[s]) || reads_as_conv_input(&p->steps[s], x)) return false;
        if (writes && (++writers > 1 || s > c)) return false;
    }
    return writers == 1;
}

static kiln_status grow_steps(kb_program *p, int need)
{
    if (need <= p->cap_steps) return KILN_OK;
    kb_step *q = kiln_xrealloc(p->steps, (size_t)need * sizeof *q);
    if (!q) return KILN_ERR_OUT_OF_MEMORY;
    p->steps = q;
    p->cap_steps = need;
    return KILN_OK;
}

/* Makes tensor t the part of y that input k of Concat `node` occupies. */
static void set_slice(kb_tensor *t, int y, int node, int k, int axis)
{
    t->storage = KB_SLICE;
    t->alias = y;
    t->slice_node = node;
    t->slice_input = k;
    t->slice_axis = axis;
    t->offset = 0;
}

static int new_slice(kb_program *p, int value, int y, int node, int k, int axis)
{
    if (p->n_tensors + 1 > p->cap_tensors) {
        int nc = p->cap_tensors ? p->cap_tensors * 2 : 64;
        kb_tensor *q = kiln_xrealloc(p->tensors, (size_t)nc * sizeof *q);
        if (!q) return -1;
        p->tensors = q;
        p->cap_tensors = nc;
    }
    kb_tensor *t = &p->tensors[p->n_tensors];
    memset(t, 0, sizeof *t);
    t->value = value;
    t->dt = p->tensors[y].dt;
    t->layout = p->tensors[y].layout;
    set_slice(t, y, node, k, axis);
    return p->n_tensors++;
}

/* Concat step c: places what it can; the rest become copies in its place. */
static kiln_status place(const kiln_graph *g, kb_op_flags_fn op_flags, kb_program *p, int c)
{
    const kiln_node *n = &g->nodes[p->steps[c].node];
    int y = p->steps[c].out[0];
    const kiln_shape *ys = &g->values[n->outputs[0]].shape;
    if (y < 0 || p->tensors[y].storage != KB_ARENA || ys->rank < 1) return KILN_OK;
    int64_t axis = n->params.axis.axis;
    if (axis < 0) axis += ys->rank;
    if (axis < 0 || axis >= ys->rank) return KILN_OK;
    int n_in = p->steps[c].n_in;
    bool *ok = kiln_xcalloc((size_t)n_in + 1, sizeof *ok);
    if (!ok) return KILN_ERR_OUT_OF_MEMORY;
    int placed = 0;
    for (int k = 0; k < n_in; k++) {
        int x = p->steps[c].in[k];
        ok[k] = x >= 0 && placeable(g, op_flags, p, c, k, x, y);
        placed += ok[k];
    }
    if (!placed) {
        free(ok);
        return KILN_OK;
    }
    /* slices for every input; copies for those not placed */
    int from[64], to[64];
    int m = 0;
    for (int k = 0; k < n_in; k++) {
        int x = p->steps[c].in[k];
        if (x < 0) continue;
        if (ok[k]) {
            set_slice(&p->tensors[x], y, p->steps[c].node, k, (int)axis);
            continue;
        }
        int s = new_slice(p, n->inputs[k], y, p->steps[c].node, k, (int)axis);
        if (s < 0) {
            free(ok);
            return KILN_ERR_OUT_OF_MEMORY;
        }
        p->tensors[s].max_bytes = p->tensors[x].max_bytes;
        from[m] = x;
        to[m++] = s;
    }
    free(ok);
    int n_copies = m;
    /* the Concat step becomes n_copies copy steps (none: it goes) */
    kiln_status st = grow_steps(p, p->n_steps + n_copies);
    if (st != KILN_OK) return st;
    kb_step concat = p->steps[c];
    int shift = n_copies - 1;
    if (shift != 0)
        memmove(&p->steps[c + 1 + shift], &p->steps[c + 1], (size_t)(p->n_steps - c - 1) * sizeof *p->steps);
    p->n_steps += shift;
    for (int i = 0; i < n_copies; i++) {
        kb_step *s = &p->steps[c + i];
        memset(s, 0, sizeof *s);
        s->kind = KB_STEP_COPY;
        s->node = concat.node;
        s->n_in = s->n_out = 1;
        s->in = kiln_arena_alloc(&p->arena, sizeof(int));
        s->out = kiln_arena_alloc(&p->arena, sizeof(int));
        if (!s->in || !s->out) return KILN_ERR_OUT_OF_MEMORY;
        s->in[0] = from[i];
        s->out[0] = to[i];
        s->n_nodes = 1;
        s->nodes[0] = concat.node;
    }
    return KILN_OK;
}

kiln_status kb_place_concats(const kiln_graph *g, kb_program *p, kb_op_flags_fn op_flags)
{
    for (int c = 0; c < p->n_steps; c++) {
        const kb_step *s = &p->steps[c];
        if (s->kind != KB_STEP_OP || s->n_out != 1 || s->n_in > 64 || strcmp(g->nodes[s->node].op_type, "Concat"))
            continue;
        int before = p->n_steps;
        kiln_status st = place(g, op_flags, p, c);
        if (st != KILN_OK) return st;
        /* continue after the copies that replaced it (or at the next step) */
        c += p->n_steps - before;
    }
    return KILN_OK;
}
