/* kiln's graph IR: values, nodes, attributes, and the op registry.
 *
 * A graph owns everything through its arena. Values are addressed by index
 * into g->values; a node names its inputs and outputs by those indices (-1
 * for an omitted optional input). Shape functions and reference kernels both
 * work on a value table `v` (normally g->values; the ref executor passes its
 * own per-context copy), so the same code infers shapes at build time and
 * at run time. */
#ifndef KILN_IR_H
#define KILN_IR_H

#include "core/core.h"
#include "ir/params.h"

/* A dimension: >= 0 concrete; KILN_DIM_UNKNOWN unknown and anonymous (equal
 * to nothing, not even itself); any other negative value is a named symbol
 * (g->symbols[kiln_dim_sym_id(d)]), equal to the same symbol. */
#define KILN_DIM_UNKNOWN INT64_MIN
/* Largest dim a shape rule computes through floating point: beyond it a
 * file is hostile, not a model (and doubles stop being exact). */
#define KILN_DIM_MAX 9007199254740992.0
static inline int64_t kiln_dim_sym(int id) { return -(int64_t)id - 1; }
static inline int kiln_dim_sym_id(int64_t d) { return (int)(-(d + 1)); }
static inline bool kiln_dim_known(int64_t d) { return d >= 0; }

/* A symval: one element of a symbolic shape value (kiln_value.sym). Real
 * integers keep their value; the lowest 2^32 int64 values are reserved:
 * INT64_MIN is unknown, INT64_MIN + 1 + id is symbol `id` (g->symbols[id]).
 * A real value inside the reserved range is read as unknown. */
#define KILN_SYMVAL_UNKNOWN INT64_MIN
#define KILN_SYMVAL_RESERVED ((int64_t)1 << 32)
static inline bool kiln_symval_known(int64_t e) { return e >= INT64_MIN + KILN_SYMVAL_RESERVED; }
static inline int64_t kiln_symval_of_int(int64_t x) { return kiln_symval_known(x) ? x : KILN_SYMVAL_UNKNOWN; }
/* The symval of a dim (concrete, symbol or unknown). */
static inline int64_t kiln_symval_of_dim(int64_t d)
{
    if (d >= 0) return d;
    if (d == KILN_DIM_UNKNOWN || -(d + 1) >= KILN_SYMVAL_RESERVED - 1) return KILN_SYMVAL_UNKNOWN;
    return INT64_MIN + 1 + -(d + 1);
}
/* The dim of a symval that is not known (a symbol, or KILN_DIM_UNKNOWN). */
static inline int64_t kiln_symval_dim(int64_t e)
{
    return e == KILN_SYMVAL_UNKNOWN ? KILN_DIM_UNKNOWN : -(e - (INT64_MIN + 1)) - 1;
}

typedef struct kiln_shape {
    int rank; /* -1: rank unknown */
    int64_t d[KILN_MAX_RANK];
} kiln_shape;

enum {
    KILN_V_INPUT = 1u << 0,  /* a graph input */
    KILN_V_OUTPUT = 1u << 1, /* a graph output */
    KILN_V_INIT = 1u << 2,   /* an initializer or Constant from the model */
    KILN_V_FOLDED = 1u << 3  /* computed at build time by constant folding */
};

typedef struct kiln_value {
    const char *name;
    kiln_dtype dtype; /* KILN_DTYPE_UNDEFINED until inferred */
    kiln_shape shape;
    void *data;       /* non-NULL: contents known (constant, or computed at run time) */
    /* Build-time inference only: a small 0-D/1-D integer tensor computed from
     * shapes whose elements are partly symbolic (Shape of [batch,144,80,80]),
     * one symval per element (see below); NULL otherwise, and always NULL
     * when data is known. Never read at run time. */
    const int64_t *sym;
    int producer;     /* node index, -1 for inputs and initializers */
    unsigned flags;
    int n_consumers;  /* filled by kiln_graph_index */
} kiln_value;

typedef enum kiln_attr_type {
    KILN_ATTR_UNDEFINED = 0,
    KILN_ATTR_FLOAT = 1,
    KILN_ATTR_INT = 2,
    KILN_ATTR_STRING = 3,
    KILN_ATTR_TENSOR = 4,
    KILN_ATTR_GRAPH = 5,
    KILN_ATTR_FLOATS = 6,
    KILN_ATTR_INTS = 7,
    KILN_ATTR_STRINGS = 8
} kiln_attr_type; /* values as ONNX's AttributeProto.AttributeType */

typedef struct kiln_attr {
    const char *name;
    kiln_attr_type type;
    float f;
    int64_t i;
    const char *s;
    int n;                /* length of floats / ints / strings */
    const float *floats;
    const int64_t *ints;
    const char **strings;
    kiln_value *t;        /* KILN_ATTR_TENSOR: dtype, shape and data */
} kiln_attr;

struct kiln_op_def;

typedef struct kiln_node {
    const char *name;     /* never NULL: import names unnamed nodes "<op>_<index>" */
    const char *op_type;
    const char *domain;   /* "" for the default ONNX domain */
    int n_inputs, n_outputs, n_attrs;
    int *inputs;          /* value indices, -1 for an omitted optional input */
    int *outputs;
    kiln_attr *attrs;
    int opset;            /* the model's opset for this node's domain */
    int version;          /* the op's since_version that applies (0: none) */
    const struct kiln_op_def *op; /* NULL when kiln does not know the op */
    kiln_params params;   /* the op's attributes, parsed once (kiln_op_resolve) */
    const char *unsupported;      /* why kiln cannot handle the node, NULL if it can */
} kiln_node;

typedef struct kiln_mapping {
    struct kiln_mapping *next;
    void *addr;
    size_t len;
} kiln_mapping;

typedef struct kiln_graph {
    kiln_arena arena;
    const char *path;     /* the model file, for messages */
    const char *dir;      /* folder external data resolves against; NULL: refused */
    const char *name;
    const char *producer;
    int64_t ir_version;
    int opset;            /* default-domain opset */
    kiln_value *values;
    int n_values, cap_values;
    kiln_node *nodes;     /* in topological order after kiln_graph_sort */
    int n_nodes, cap_nodes;
    int *inputs, n_inputs;   /* graph inputs that are not initializers */
    int *outputs, n_outputs;
    kiln_shape *declared;     /* outputs' shapes as the model declares them */
    kiln_dtype *declared_dtype;
    const char **symbols; /* names of symbolic dims */
    int n_symbols, cap_symbols;
    kiln_strmap names;    /* value name -> index */
    kiln_mapping *mappings;
    void *proto;          /* the parsed protobuf, kept: initializer data points into it */
    void (*proto_free)(void *);
} kiln_graph;

/* ---- graph construction (graph.c) */
kiln_graph *kiln_graph_new(const char *path);
void kiln_graph_free(kiln_graph *g);
/* Index of the value named `name`, created (undefined dtype, unknown rank)
 * when absent; -1 on OOM. The name is copied into the arena. */
int kiln_graph_value(kiln_graph *g, const char *name);
int kiln_graph_find(const kiln_graph *g, const char *name); /* -1 if absent */
kiln_node *kiln_graph_add_node(kiln_graph *g); /* zeroed node, NULL on OOM */
int kiln_graph_symbol(kiln_graph *g, const char *name); /* symbol id, interned; -1 on OOM */
/* Sorts nodes topologically and fills producer / n_consumers. Fails naming
 * a node on a cycle, a value produced twice, or an input nobody produces. */
kiln_status kiln_graph_sort(kiln_graph *g);
/* Allocates n bytes from the graph's arena for constant data (NULL on OOM). */
void *kiln_graph_alloc(kiln_graph *g, size_t n);

/* ---- shapes (shape.c) */
bool kiln_shape_known(const kiln_shape *s);       /* rank known and every dim concrete */
int64_t kiln_shape_numel(const kiln_shape *s);    /* -1 unless known */
bool kiln_dim_equal(int64_t a, int64_t b);        /* same concrete value or same symbol */
/* Multidirectional (numpy) broadcasting of a and b into out; fails on two
 * different concrete dims, naming them. */
kiln_status kiln_broadcast(const kiln_shape *a, const kiln_shape *b, kiln_shape *out);
/* Parses the dims of a shape as users write them, "1x3x224x224" (an empty
 * string: a scalar), into dims[KILN_MAX_RANK]; false when the text is not
 * that, or has a negative dim or more than KILN_MAX_RANK dims. */
bool kiln_parse_dims(const char *text, int *rank, int64_t *dims);
/* Normalizes a possibly negative axis into [0, rank); fails if out of range. */
kiln_status kiln_axis(int64_t axis, int rank, int *out);
/* "[batch,3,224,224]" into buf (g may be NULL: symbols print as "?"). */
const char *kiln_shape_str(const kiln_graph *g, const kiln_shape *s, char *buf, size_t n);
size_t kiln_value_bytes(const kiln_value *v);     /* 0 unless the shape is known */
/* Reads a known 0-D/1-D integer tensor (i32/i64) into out[max]. Fails if the
 * data is not known, is not integer, or is longer than max. */
kiln_status kiln_value_ints(const kiln_value *v, int64_t *out, int max, int *n);

/* ---- symbolic shape values (shape_sym.c) */
/* Longest symbolic shape value kept (elements). */
#define KILN_SYM_MAX (2 * KILN_MAX_RANK)
/* Symvals of a 0-D/1-D i32/i64 value of at most max elements, from its data
 * or its sym; false when it has neither or is not such a value. */
bool kiln_value_symvals(const kiln_value *v, int64_t *out, int max, int *n);
/* After n's shape rule: computes the symbolic value of n's output for the
 * ops that pass shapes along (Shape, Gather, Concat, ...), into g's arena.
 * A value that turns out wholly concrete becomes a folded constant (data). */
kiln_status kiln_sym_infer(kiln_graph *g, const kiln_node *n);

/* ---- attributes (attr.c): a missing attribute gives the default */
const kiln_attr *kiln_attr_find(const kiln_node *n, const char *name);
int64_t kiln_attr_int(const kiln_node *n, const char *name, int64_t def);
float kiln_attr_float(const kiln_node *n, const char *name, float def);
const char *kiln_attr_string(const kiln_node *n, const char *name, const char *def);
/* Number of ints (0 if absent); *out points into the node. */
int kiln_attr_ints(const kiln_node *n, const char *name, const int64_t **out);

/* Value i of node n in table v, or NULL when the input is omitted/absent. */
static inline kiln_value *kiln_in(const kiln_node *n, kiln_value *v, int i)
{
    return i < n->n_inputs && n->inputs[i] >= 0 ? &v[n->inputs[i]] : NULL;
}
static inline kiln_value *kiln_out(const kiln_node *n, kiln_value *v, int i)
{
    return i < n->n_outputs && n->outputs[i] >= 0 ? &v[n->outputs[i]] : NULL;
}

/* ---- op registry (registry.c) */

/* Infers dtype and shape of n's outputs from its inputs (and their data when
 * known). Returns KILN_ERR_SHAPE for a contradiction, KILN_ERR_UNSUPPORTED
 * for an attribute value kiln does not implement; the caller adds the node
 * name to the message. Must not allocate or touch anything but outputs. */
typedef kiln_status (*kiln_shape_fn)(const kiln_node *n, kiln_value *v);
/* Computes n's outputs: inputs and outputs have concrete shapes and data
 * buffers (outputs allocated by the caller from the inferred shape). */
typedef kiln_status (*kiln_ref_fn)(const kiln_node *n, kiln_value *v);
/* Multiply-adds x2 (or elementwise ops) the node costs; shapes are known. */
typedef double (*kiln_flops_fn)(const kiln_node *n, const kiln_value *v);

enum {
    KILN_OP_SHAPE_ONLY = 1u << 0,  /* reads only its input's shape (Shape, Size) */
    KILN_OP_EW = 1u << 1,          /* float pointwise: fusable into elementwise programs */
    KILN_OP_KEEPS_LAYOUT = 1u << 2 /* 4-D outputs follow their first input's layout */
};

#define KILN_OP_MAX_VERSIONS 12

/* Rewrites an older version of an op into a native one (src/ir/ops.h). */
typedef kiln_status (*kiln_adapt_fn)(kiln_graph *g, kiln_node *n);
/* Parses a node's attributes into its typed parameters (src/ir/params.h). */
typedef kiln_status (*kiln_params_fn)(const kiln_node *n, kiln_params *p);

/* One row of the op table (src/ir/ops.def), as the IR sees it. */
typedef struct kiln_op_def {
    const char *name;
    /* ONNX's since_versions of the op reachable from opsets
     * KILN_MIN_OPSET..KILN_MAX_OPSET, ascending, 0-terminated. A node's
     * version is the largest of them <= its opset. */
    int all_versions[KILN_OP_MAX_VERSIONS];
    /* those the shape rule and kernels implement; a node of another version
     * is rewritten by `adapt` at import, or refused when adapt is NULL */
    int versions[KILN_OP_MAX_VERSIONS];
    kiln_shape_fn shape;
    kiln_ref_fn ref;
    kiln_flops_fn flops;
    kiln_adapt_fn adapt;   /* NULL: older versions are refused */
    kiln_params_fn params; /* NULL: the op has no typed parameters */
    unsigned flags;        /* KILN_OP_* */
    /* what ONNX allows at the native versions; the first min_in inputs and
     * min_out outputs must be present: rules and kernels rely on it */
    int min_in, max_in, min_out, max_out;
} kiln_op_def;

const kiln_op_def *kiln_op_find(const char *domain, const char *op_type);
/* Fills n->op, n->version, n->params and n->unsupported from the op
 * table. A node whose version is not native is unsupported here: import
 * rewrites such nodes first (kiln_graph_adapt). */
void kiln_op_resolve(kiln_node *n);
/* Import: rewrites every node of an older op version that has an adapter
 * into its native form (src/ir/adapt.c). Fails naming the node, op, version
 * and why when a form cannot be expressed; nodes without an adapter are
 * left for kiln_op_resolve to refuse. */
kiln_status kiln_graph_adapt(kiln_graph *g);
int kiln_op_count(void);
const kiln_op_def *kiln_op_at(int i);

/* ---- inference and folding (infer.c) */
/* Infers every node in order; folds nodes whose inputs are all known when
 * the result is small (shape computations) into constants. A node that is
 * unsupported leaves its outputs unknown; a contradiction fails the whole
 * call naming the file and node. */
kiln_status kiln_graph_infer(kiln_graph *g);
/* Runs n's reference kernel on table v, allocating outputs from g's arena.
 * Used by folding; fails naming the node. */
kiln_status kiln_fold_node(kiln_graph *g, const kiln_node *n, kiln_value *v);
/* Largest result (elements) folded at import; the builder folds the rest. */
#define KILN_FOLD_MAX_ELEMS 65536

/* ---- printing (print.c) */
void kiln_graph_print(const kiln_graph *g, kiln_sbuf *out);

#endif
