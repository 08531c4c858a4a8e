/* Import-time version adapters: a node of an op version kiln does not
 * implement natively is rewritten into the op's native form by the adapter
 * the op table names for it (kiln_adapt_<Op>, src/ir/adapt_*.c), and the
 * helpers they share (src/ir/adapt_util.h). */
#include "ir/adapt_util.h"

#include <string.h>

/* The since_version of op that a node of `opset` resolves to; 0 if none. */
static int version_at(const kiln_op_def *op, int opset)
{
    int v = 0;
    for (int i = 0; i < KILN_OP_MAX_VERSIONS && op->all_versions[i]; i++)
        if (op->all_versions[i] <= opset) v = op->all_versions[i];
    return v;
}

static bool native(const kiln_op_def *op, int v)
{
    for (int i = 0; i < KILN_OP_MAX_VERSIONS && op->versions[i]; i++)
        if (op->versions[i] == v) return true;
    return false;
}

kiln_status kiln_graph_adapt(kiln_graph *g)
{
    /* adapters may append nodes (g->nodes can move): index, never hold */
    for (int i = 0; i < g->n_nodes; i++) {
        /* an adapter may turn a node into another op (Upsample -> Resize)
         * that needs adapting in turn; a few rounds at most */
        for (int round = 0; round < 4; round++) {
            kiln_node *n = &g->nodes[i];
            const kiln_op_def *op = kiln_op_find(n->domain, n->op_type);
            if (!op || !op->adapt) break;
            int v = version_at(op, n->opset);
            if (!v || native(op, v)) break;
            const char *before = n->op_type;
            int before_opset = n->opset;
            kiln_status st = op->adapt(g, n);
            if (st != KILN_OK)
                return kiln_fail_prefix(st, "%s: node '%s' (%s, version %d at opset %d): ", g->path,
                                        g->nodes[i].name, before, v, before_opset);
            n = &g->nodes[i];
            if (n->op_type == before && n->opset == before_opset)
                return kiln_fail(KILN_ERR_INTERNAL, "%s: node '%s' (%s): the version %d adapter changed nothing",
                                 g->path, n->name, before, v);
        }
    }
    return KILN_OK;
}

/* ------------------------------------------------------------------ helpers */

int kiln_adapt_value(kiln_graph *g, int node, const char *what)
{
    const char *base = g->nodes[node].name;
    char *name = kiln_arena_printf(&g->arena, "%s/%s", base, what);
    for (int k = 1; name && kiln_graph_find(g, name) >= 0; k++)
        name = kiln_arena_printf(&g->arena, "%s/%s_%d", base, what, k);
    return name ? kiln_graph_value(g, name) : -1;
}

static int new_const(kiln_graph *g, int node, const char *what, kiln_dtype dt, int rank, int cnt, void **data)
{
    int x = kiln_adapt_value(g, node, what);
    if (x < 0) return -1;
    void *d = kiln_graph_alloc(g, (size_t)cnt * kiln_dtype_size(dt) + 1);
    if (!d) return -1;
    kiln_value *v = &g->values[x];
    v->dtype = dt;
    v->shape.rank = rank;
    if (rank == 1) v->shape.d[0] = cnt;
    v->data = d;
    v->flags |= KILN_V_INIT;
    v->producer = -1;
    *data = d;
    return x;
}

int kiln_adapt_const_i64(kiln_graph *g, int node, const char *what, const int64_t *x, int cnt)
{
    void *d;
    int v = new_const(g, node, what, KILN_I64, 1, cnt, &d);
    if (v >= 0 && cnt) memcpy(d, x, (size_t)cnt * sizeof *x);
    return v;
}

int kiln_adapt_const_f32(kiln_graph *g, int node, const char *what, const float *x, int cnt)
{
    void *d;
    int v = new_const(g, node, what, KILN_F32, 1, cnt, &d);
    if (v >= 0 && cnt) memcpy(d, x, (size_t)cnt * sizeof *x);
    return v;
}

int kiln_adapt_const_scalar(kiln_graph *g, int node, const char *what, kiln_dtype dt, double x)
{
    void *d;
    int v = new_const(g, node, what, dt, 0, 1, &d);
    if (v >= 0) kiln_store_f64(dt, d, 0, x);
    return v;
}

static int *copy_ints(kiln_graph *g, const int *x, int cnt)
{
    int *p = kiln_graph_alloc(g, ((size_t)cnt + 1) * sizeof *p);
    if (p && cnt) memcpy(p, x, (size_t)cnt * sizeof *p);
    return p;
}

kiln_status kiln_adapt_set_inputs(kiln_graph *g, kiln_node *n, const int *x, int cnt)
{
    int *p = copy_ints(g, x, cnt);
    if (!p) return KILN_ERR_OUT_OF_MEMORY;
    n->inputs = p;
    n->n_inputs = cnt;
    return KILN_OK;
}

kiln_status kiln_adapt_set_outputs(kiln_graph *g, kiln_node *n, const int *x, int cnt)
{
    int *p = copy_ints(g, x, cnt);
    if (!p) return KILN_ERR_OUT_OF_MEMORY;
    n->outputs = p;
    n->n_outputs = cnt;
    return KILN_OK;
}

void kiln_adapt_drop_attr(kiln_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name)) {
            memmove(&n->attrs[i], &n->attrs[i + 1], (size_t)(n->n_attrs - i - 1) * sizeof *n->attrs);
            n->n_attrs--;
            return;
        }
}

/* The attribute `name` of n, cleared, added when absent; NULL on OOM. */
static kiln_attr *attr_slot(kiln_graph *g, kiln_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name)) {
            memset(&n->attrs[i], 0, sizeof n->attrs[i]);
            n->attrs[i].name = name;
            return &n->attrs[i];
        }
    /* import sizes attrs exactly: grow into a fresh array */
    kiln_attr *a = kiln_graph_alloc(g, ((size_t)n->n_attrs + 2) * sizeof *a);
    if (!a) return NULL;
    if (n->n_attrs) memcpy(a, n->attrs, (size_t)n->n_attrs * sizeof *a);
    n->attrs = a;
    kiln_attr *s = &a[n->n_attrs++];
    s->name = name;
    return s;
}

kiln_status kiln_adapt_attr_int(kiln_graph *g, kiln_node *n, const char *name, int64_t x)
{
    kiln_attr *a = attr_slot(g, n, name);
    if (!a) return KILN_ERR_OUT_OF_MEMORY;
    a->type = KILN_ATTR_INT;
    a->i = x;
    return KILN_OK;
}

kiln_status kiln_adapt_attr_string(kiln_graph *g, kiln_node *n, const char *name, const char *s)
{
    kiln_attr *a = attr_slot(g, n, name);
    if (!a) return KILN_ERR_OUT_OF_MEMORY;
    a->type = KILN_ATTR_STRING;
    a->s = s;
    return KILN_OK;
}

int kiln_adapt_node(kiln_graph *g, int node, const char *op_type, int opset, const char *what, const int *ins,
                    int nin, const int *outs, int nout)
{
    const char *base = g->nodes[node].name; /* in the arena: stays where it is */
    const char *name = kiln_arena_printf(&g->arena, "%s/%s", base, what);
    int *in = copy_ints(g, ins, nin), *out = copy_ints(g, outs, nout);
    if (!name || !in || !out) return -1;
    kiln_node *m = kiln_graph_add_node(g);
    if (!m) return -1;
    m->op_type = op_type;
    m->domain = "";
    m->name = name;
    m->opset = opset;
    m->inputs = in;
    m->n_inputs = nin;
    m->outputs = out;
    m->n_outputs = nout;
    return g->n_nodes - 1;
}

/* The node producing value x and which of its outputs it is; -1 if none. */
static int producer_of(const kiln_graph *g, int x, int *k)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const kiln_node *n = &g->nodes[i];
        for (int j = 0; j < n->n_outputs; j++)
            if (n->outputs[j] == x) {
                *k = j;
                return i;
            }
    }
    return -1;
}

static bool default_domain(const kiln_node *n) { return !n->domain || !n->domain[0] || !strcmp(n->domain, "ai.onnx"); }

const kiln_value *kiln_adapt_known(const kiln_graph *g, int x)
{
    if (x < 0) return NULL;
    const kiln_value *v = &g->values[x];
    if (v->data && (v->flags & KILN_V_INIT)) return v;
    int k, p = producer_of(g, x, &k);
    if (p < 0 || !default_domain(&g->nodes[p]) || strcmp(g->nodes[p].op_type, "Constant")) return NULL;
    const kiln_attr *a = kiln_attr_find(&g->nodes[p], "value");
    return a && a->type == KILN_ATTR_TENSOR && a->t && a->t->data ? a->t : NULL;
}

bool kiln_adapt_known_f64(const kiln_graph *g, int x, double *out, int max, int *cnt)
{
    const kiln_value *v = kiln_adapt_known(g, x);
    if (!v || v->shape.rank > 1 || !kiln_dtype_size(v->dtype)) return false;
    int64_t n = v->shape.rank == 1 ? v->shape.d[0] : 1;
    if (n > max) return false;
    for (int64_t i = 0; i < n; i++) out[i] = kiln_load_f64(v->dtype, v->data, i);
    *cnt = (int)n;
    return true;
}

static bool is_one_of(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(s, *list)) return true;
    return false;
}

/* Ops all of whose inputs share the output's element type: any input whose
 * type is known tells it (a conv's weights end the walk at once). */
static const char *const SAME_TYPE_OPS[] = {"Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization",
                                            "InstanceNormalization", "LayerNormalization", "Add", "Sub", "Mul",
                                            "Div", "PRelu", "Concat", "Sum", "Max", "Min", "Mean", NULL};
static const char *const I64_OPS[] = {"Shape", "Size", "ArgMax", "ArgMin", "NonZero", NULL};
static const char *const BOOL_OPS[] = {"Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Not", "And",
                                       "Or", "Xor", "IsNaN", "IsInf", NULL};

kiln_dtype kiln_adapt_dtype(const kiln_graph *g, int x)
{
    /* each step moves one node up a chain: at most n_nodes steps */
    for (int step = 0; x >= 0 && step <= g->n_nodes; step++) {
        if (g->values[x].dtype) return g->values[x].dtype;
        int k, p = producer_of(g, x, &k);
        if (p < 0) return KILN_DTYPE_UNDEFINED;
        const kiln_node *n = &g->nodes[p];
        const char *op = n->op_type;
        if (!default_domain(n) || !kiln_op_find(n->domain, op)) return KILN_DTYPE_UNDEFINED;
        const kiln_attr *a;
        if (!strcmp(op, "Constant") || !strcmp(op, "ConstantOfShape")) {
            if ((a = kiln_attr_find(n, "value")) && a->type == KILN_ATTR_TENSOR && a->t) return a->t->dtype;
            if (kiln_attr_find(n, "value_int") || kiln_attr_find(n, "value_ints")) return KILN_I64;
            return KILN_F32; /* value_float(s), or ConstantOfShape's default */
        }
        if (!strcmp(op, "Cast")) {
            a = kiln_attr_find(n, "to");
            return a && a->type == KILN_ATTR_INT && kiln_dtype_valid((kiln_dtype)a->i) ? (kiln_dtype)a->i
                                                                                      : KILN_DTYPE_UNDEFINED;
        }
        if (is_one_of(op, I64_OPS) || (k == 1 && (!strcmp(op, "TopK") || !strcmp(op, "MaxPool")))) return KILN_I64;
        if (is_one_of(op, BOOL_OPS) || (k == 1 && !strcmp(op, "Dropout"))) return KILN_BOOL;
        int next = -1;
        if (is_one_of(op, SAME_TYPE_OPS))
            for (int i = 0; i < n->n_inputs; i++)
                if (n->inputs[i] >= 0 && g->values[n->inputs[i]].dtype) return g->values[n->inputs[i]].dtype;
        if (!strcmp(op, "Where"))
            next = n->n_inputs > 1 ? n->inputs[1] : -1;
        else if (!strcmp(op, "OneHot"))
            next = n->n_inputs > 2 ? n->inputs[2] : -1;
        else
            next = n->n_inputs > 0 ? n->inputs[0] : -1;
        x = next;
    }
    return KILN_DTYPE_UNDEFINED;
}

/* Ops whose output 0 has the rank of input 0. */
static const char *const SAME_RANK_OPS[] = {"Relu", "LeakyRelu", "PRelu", "Sigmoid", "HardSigmoid", "HardSwish",
                                            "Tanh", "Erf", "Gelu", "Clip", "Sqrt", "Exp", "Log", "Neg", "Abs",
                                            "Reciprocal", "Floor", "Ceil", "Round", "Cast", "Identity", "Dropout",
                                            "Softmax", "LogSoftmax", "Elu", "Selu", "Softplus", "Softsign", NULL};

int kiln_adapt_rank(const kiln_graph *g, int x)
{
    for (int step = 0; x >= 0 && step <= g->n_nodes; step++) {
        if (g->values[x].shape.rank >= 0) return g->values[x].shape.rank;
        int k, p = producer_of(g, x, &k);
        if (p < 0) return -1;
        const kiln_node *n = &g->nodes[p];
        if (!default_domain(n) || k != 0) return -1;
        if (!strcmp(n->op_type, "Gemm") || !strcmp(n->op_type, "Flatten")) return 2;
        if (!strcmp(n->op_type, "Reshape")) {
            const kiln_value *s = kiln_adapt_known(g, n->n_inputs > 1 ? n->inputs[1] : -1);
            return s && s->shape.rank == 1 ? (int)s->shape.d[0] : -1;
        }
        if (!is_one_of(n->op_type, SAME_RANK_OPS)) return -1;
        x = n->n_inputs > 0 ? n->inputs[0] : -1;
    }
    return -1;
}

bool kiln_adapt_output_used(const kiln_graph *g, const kiln_node *n, int k)
{
    int x = k < n->n_outputs ? n->outputs[k] : -1;
    if (x < 0) return false;
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == x) return true;
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_inputs; j++)
            if (g->nodes[i].inputs[j] == x) return true;
    return false;
}

kiln_status kiln_adapt_ints_to_input(kiln_graph *g, kiln_node *n, const char *name, int pos, bool required)
{
    const kiln_attr *a = kiln_attr_find(n, name);
    if (!a) return required ? kiln_fail(KILN_ERR_FORMAT, "the required attribute '%s' is missing", name) : KILN_OK;
    if (a->type != KILN_ATTR_INTS) return kiln_fail(KILN_ERR_FORMAT, "attribute '%s' is not a list of ints", name);
    int node = kiln_adapt_index(g, n);
    int c = kiln_adapt_const_i64(g, node, name, a->ints, a->n);
    if (c < 0) return KILN_ERR_OUT_OF_MEMORY;
    int cnt = n->n_inputs > pos + 1 ? n->n_inputs : pos + 1;
    int ins[16];
    if (cnt > 16) return kiln_fail(KILN_ERR_FORMAT, "has %d inputs", n->n_inputs);
    for (int i = 0; i < cnt; i++) ins[i] = i < n->n_inputs ? n->inputs[i] : -1;
    ins[pos] = c;
    kiln_adapt_drop_attr(n, name);
    return kiln_adapt_set_inputs(g, n, ins, cnt);
}
