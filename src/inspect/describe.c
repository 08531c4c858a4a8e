/* What a plan holds, read from its bytes alone (kiln inspect PLAN,
 * docs/inspect-json.md): the identity and build options, the sections and
 * sizes, the inputs and outputs with the optimization profile, and one row
 * per layer: a GPU plan's program steps with the kernel or tactic each
 * chose, a ref plan's nodes. No device is asked and no engine is created,
 * so a plan for a GPU this machine lacks is described as fully as one for
 * it (issue #18).
 *
 * The bytes are untrusted. The container, graph and program readers
 * (container.c, graph_io.c, builder/program_io.c) check every size, index
 * and offset before anything here uses them; what this file reads beyond
 * them (a step's optional tensors, an input's rank, a profile's dims) it
 * checks again instead of assuming.
 *
 * The PROGRAM section is the builder's format and is read by the builder's
 * own reader, kb_program_deserialize: a second reader here would drift from
 * it at the next PROG_VERSION. That makes this the one file of plan/ that
 * calls builder/ (plain C, compiled into every build, CUDA or not, which is
 * what lets a CPU-only kiln describe a cuda plan: the cuda backend's table
 * is not there to ask). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builder/program.h"
#include "core/sha256.h"
#include "inspect/inspect.h"
#include "runtime/backend.h"

/* One row of the layer table, the same for every backend. */
typedef struct layer {
    const char *kind;          /* program: op, conv, elementwise, copy; graph: node, folded */
    int n_nodes;
    int nodes[KB_MAX_FUSED];   /* the graph nodes it runs */
    int node;                  /* the step's own node (copy: the node that needed it), -1 none */
    const char *dtype, *layout;
    char kernel[192];          /* "" when nothing runs (a folded node) */
    const char *library;       /* who supplies the kernel; NULL when nothing runs */
    const kb_step *step;       /* program steps: the tactic, the program, the time */
    const char *into_concat;   /* the output is written in place into this Concat's output */
} layer;

typedef struct desc {
    const char *what;
    const uint8_t *bytes;
    size_t size;
    kiln_plan_info info;
    kiln_graph *g;
    kb_program *p; /* NULL: a plan that is its graph (ref) */
    int n_layers;
    layer *layers;
    const char *here; /* NULL: not asked; "": runs here; else why not */
    bool json;
    kiln_sbuf *b;
} desc;

/* cudnnConvolutionFwdAlgo_t, which a legacy tactic's algo is. */
static const char *cudnn_algo_name(int a)
{
    static const char *const names[] = {"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM",     "DIRECT",
                                        "FFT",           "FFT_TILING",            "WINOGRAD", "WINOGRAD_NONFUSED"};
    return a >= 0 && a < (int)(sizeof names / sizeof names[0]) ? names[a] : "?";
}

/* kc_conv_tactic.fused: 0 and 1 are cuDNN's legacy API without and with
 * its fused bias call; these two are src/cuda/conv_common.h's
 * KC_CONV_GRAPH and KC_CONV_GEMM, which plan/ cannot include. */
enum { TACTIC_GRAPH = 2, TACTIC_GEMM = 3 };

static const char *tensor_dtype(const kb_program *p, int t)
{
    return t >= 0 && t < p->n_tensors ? kiln_dtype_name(p->tensors[t].dt) : "-";
}
static const char *tensor_layout(const kb_program *p, int t)
{
    return t < 0 || t >= p->n_tensors ? "-" : p->tensors[t].layout == KB_NHWC ? "nhwc" : "nchw";
}

/* The kernel a step runs, in the build report's words (one function for
 * both), so `kiln inspect PLAN` and the build report on the GPU agree.
 * *library: who supplies it. */
static void step_kernel(const kiln_graph *g, const kb_program *p, const kb_step *s, char *buf, size_t cap,
                        const char **library)
{
    kb_step_kernel_text(g, p, s, buf, cap);
    *library = s->kind != KB_STEP_CONV          ? "kiln"
               : s->tactic.fused == TACTIC_GRAPH ? "cudnn-graph"
               : s->tactic.fused == TACTIC_GEMM  ? "cublaslt"
                                                 : "cudnn";
}

/* A ref node runs when one of its outputs is not a constant folded at
 * build time (the rule of src/ref/executor.c). */
static bool node_folded(const kiln_graph *g, const kiln_node *n)
{
    for (int k = 0; k < n->n_outputs; k++)
        if (n->outputs[k] >= 0 && !(g->values[n->outputs[k]].flags & KILN_V_FOLDED)) return false;
    return true;
}

static kiln_status make_layers(desc *d)
{
    const kiln_graph *g = d->g;
    const kb_program *p = d->p;
    int n = p ? p->n_steps : g->n_nodes;
    d->layers = kiln_xcalloc((size_t)n + 1, sizeof *d->layers);
    if (!d->layers) return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "%s: out of host memory describing the plan", d->what);
    d->n_layers = n;
    for (int i = 0; i < n; i++) {
        layer *l = &d->layers[i];
        if (!p) {
            const kiln_node *nd = &g->nodes[i];
            int out = nd->n_outputs > 0 ? nd->outputs[0] : -1;
            bool folded = node_folded(g, nd);
            l->kind = folded ? "folded" : "node";
            l->n_nodes = 1;
            l->nodes[0] = l->node = i;
            l->dtype = out >= 0 ? kiln_dtype_name(g->values[out].dtype) : "-";
            l->layout = "onnx"; /* the ref backend keeps every tensor as ONNX lays it out */
            if (!folded) {
                snprintf(l->kernel, sizeof l->kernel, "kiln_ref_%s", nd->op_type);
                l->library = "ref";
            }
            continue;
        }
        const kb_step *s = &p->steps[i];
        l->step = s;
        l->kind = kb_step_kind_name(s->kind);
        l->node = s->node;
        /* a copy's node is the one that needed it, which it does not run */
        l->n_nodes = s->kind == KB_STEP_COPY ? 0 : s->n_nodes;
        memcpy(l->nodes, s->nodes, sizeof l->nodes);
        int ot = s->n_out > 0 ? s->out[0] : -1;
        l->dtype = tensor_dtype(p, ot);
        l->layout = tensor_layout(p, ot);
        step_kernel(g, p, s, l->kernel, sizeof l->kernel, &l->library);
        if (ot >= 0 && p->tensors[ot].storage == KB_SLICE) l->into_concat = g->nodes[p->tensors[ot].slice_node].name;
    }
    return KILN_OK;
}

/* ------------------------------------------------------------------ output */

/* Length of the UTF-8 sequence at s (1..4), 0 when it is not one: JSON is
 * UTF-8, and the names in a hostile plan need not be. */
static int utf8_len(const unsigned char *s)
{
    int n = 0;
    if (s[0] < 0x80)
        n = 1;
    else if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2;
    else if ((s[0] & 0xf0) == 0xe0)
        n = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4;
    for (int k = 1; k < n; k++) /* stops at the NUL: it is no continuation byte */
        if ((s[k] & 0xc0) != 0x80) return 0;
    if (n == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))) return 0; /* overlong, surrogate */
    if (n == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))) return 0;
    return n;
}

/* A JSON string of a name from the file: escaped as kiln_sbuf_json_string
 * does, and a byte that is not UTF-8 becomes U+FFFD. */
static void put_json_str(kiln_sbuf *b, const char *s)
{
    kiln_sbuf_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p;) {
        int n = utf8_len(p);
        if (!n) {
            kiln_sbuf_printf(b, "\\ufffd");
            p++;
        } else if (*p == '"' || *p == '\\') {
            kiln_sbuf_printf(b, "\\%c", *p++);
        } else if (*p < 0x20) {
            kiln_sbuf_printf(b, "\\u%04x", *p++);
        } else {
            kiln_sbuf_printf(b, "%.*s", n, (const char *)p);
            p += n;
        }
    }
    kiln_sbuf_printf(b, "\"");
}

/* A name from the file, for a terminal: control bytes become '?' so that a
 * hostile plan cannot drive the terminal. */
static void put_text(kiln_sbuf *b, const char *s)
{
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++)
        kiln_sbuf_printf(b, "%c", *c < 0x20 || *c == 0x7f ? '?' : *c);
}

static void put_json_dim(desc *d, int64_t v)
{
    if (v >= 0)
        kiln_sbuf_printf(d->b, "%" PRId64, v);
    else if (v != KILN_DIM_UNKNOWN && kiln_dim_sym_id(v) < d->g->n_symbols)
        put_json_str(d->b, d->g->symbols[kiln_dim_sym_id(v)]);
    else
        kiln_sbuf_printf(d->b, "\"?\"");
}

/* A shape as kiln.inspect/1 writes it: [1, "batch", "?"], null for an
 * unknown rank; as text [1,batch,?]. */
static void put_shape(desc *d, const kiln_shape *s)
{
    if (s->rank < 0) {
        kiln_sbuf_printf(d->b, d->json ? "null" : "[?]");
        return;
    }
    kiln_sbuf_printf(d->b, "[");
    for (int k = 0; k < s->rank; k++) {
        if (k) kiln_sbuf_printf(d->b, d->json ? ", " : ",");
        if (d->json)
            put_json_dim(d, s->d[k]);
        else if (s->d[k] >= 0)
            kiln_sbuf_printf(d->b, "%" PRId64, s->d[k]);
        else if (s->d[k] != KILN_DIM_UNKNOWN && kiln_dim_sym_id(s->d[k]) < d->g->n_symbols)
            put_text(d->b, d->g->symbols[kiln_dim_sym_id(s->d[k])]);
        else
            kiln_sbuf_printf(d->b, "?");
    }
    kiln_sbuf_printf(d->b, "]");
}

/* dims[rank] of a profile: [1, 3, 64, 64] in JSON, 1x3x64x64 as text */
static void put_dims(desc *d, const int64_t *dims, int rank)
{
    if (d->json) kiln_sbuf_printf(d->b, "[");
    for (int k = 0; k < rank; k++) kiln_sbuf_printf(d->b, "%s%" PRId64, k ? (d->json ? ", " : "x") : "", dims[k]);
    if (d->json) kiln_sbuf_printf(d->b, "]");
}

/* Input i's profile dims in the program, NULL for a plan without one or an
 * input of unknown rank. */
static const int64_t *profile(const desc *d, const int64_t *base, int i)
{
    if (!d->p || d->g->values[d->g->inputs[i]].shape.rank < 0) return NULL;
    return base + (size_t)i * KILN_MAX_RANK;
}

static void put_io(desc *d, bool inputs)
{
    const kiln_graph *g = d->g;
    int n = inputs ? g->n_inputs : g->n_outputs;
    if (d->json)
        kiln_sbuf_printf(d->b, ", \"%s\": [", inputs ? "inputs" : "outputs");
    else
        kiln_sbuf_printf(d->b, "\n%s (%d)\n", inputs ? "inputs" : "outputs", n);
    for (int i = 0; i < n; i++) {
        const kiln_value *v = &g->values[inputs ? g->inputs[i] : g->outputs[i]];
        const int64_t *mn = inputs ? profile(d, d->p ? d->p->prof_min : NULL, i) : NULL;
        const int64_t *op = mn ? profile(d, d->p->prof_opt, i) : NULL, *mx = mn ? profile(d, d->p->prof_max, i) : NULL;
        if (d->json) {
            kiln_sbuf_printf(d->b, "%s{\"name\": ", i ? ", " : "");
            put_json_str(d->b, v->name);
            kiln_sbuf_printf(d->b, ", \"dtype\": \"%s\", \"shape\": ", kiln_dtype_name(v->dtype));
            put_shape(d, &v->shape);
            if (inputs) {
                kiln_sbuf_printf(d->b, ", \"profile\": ");
                if (mn) {
                    kiln_sbuf_printf(d->b, "{\"min\": ");
                    put_dims(d, mn, v->shape.rank);
                    kiln_sbuf_printf(d->b, ", \"opt\": ");
                    put_dims(d, op, v->shape.rank);
                    kiln_sbuf_printf(d->b, ", \"max\": ");
                    put_dims(d, mx, v->shape.rank);
                    kiln_sbuf_printf(d->b, "}");
                } else
                    kiln_sbuf_printf(d->b, "null");
            }
            kiln_sbuf_printf(d->b, "}");
            continue;
        }
        size_t at = d->b->len;
        kiln_sbuf_printf(d->b, "  ");
        put_text(d->b, v->name);
        kiln_sbuf_printf(d->b, "%*s %-5s ", d->b->len - at < 31 ? (int)(31 - (d->b->len - at)) : 0, "",
                         kiln_dtype_name(v->dtype));
        put_shape(d, &v->shape);
        if (mn) {
            kiln_sbuf_printf(d->b, "  profile min ");
            put_dims(d, mn, v->shape.rank);
            kiln_sbuf_printf(d->b, " opt ");
            put_dims(d, op, v->shape.rank);
            kiln_sbuf_printf(d->b, " max ");
            put_dims(d, mx, v->shape.rank);
        }
        kiln_sbuf_printf(d->b, "\n");
    }
    if (d->json) kiln_sbuf_printf(d->b, "]");
}

static void put_tactic_json(desc *d, const kb_step *s)
{
    const kc_conv_tactic *t = &s->tactic;
    kiln_sbuf *b = d->b;
    if (t->fused == TACTIC_GRAPH)
        kiln_sbuf_printf(b,
                         ", \"tactic\": {\"api\": \"cudnn-graph\", \"engine\": %d, \"config\": %d, \"fallback_list\": "
                         "%s, \"epilogue_in_graph\": %s}",
                         (int)t->reserved, (int)t->algo, (t->math & 0xff) == 1 ? "true" : "false",
                         t->math & 0x100 ? "true" : "false");
    else if (t->fused == TACTIC_GEMM)
        kiln_sbuf_printf(b, ", \"tactic\": {\"api\": \"cublaslt\", \"algo\": %d}", (int)t->algo);
    else
        kiln_sbuf_printf(b,
                         ", \"tactic\": {\"api\": \"cudnn\", \"algo\": %d, \"algo_name\": \"%s\", \"math\": %d, "
                         "\"fused_bias\": %s}",
                         (int)t->algo, cudnn_algo_name(t->algo), (int)t->math, t->fused ? "true" : "false");
}

static void put_layer_json(desc *d, int i)
{
    const layer *l = &d->layers[i];
    const kiln_graph *g = d->g;
    kiln_sbuf *b = d->b;
    kiln_sbuf_printf(b, "%s{\"index\": %d, \"kind\": \"%s\", \"ops\": [", i ? ", " : "", i, l->kind);
    for (int k = 0; k < l->n_nodes; k++) {
        if (k) kiln_sbuf_printf(b, ", ");
        put_json_str(b, g->nodes[l->nodes[k]].op_type);
    }
    kiln_sbuf_printf(b, "], \"nodes\": [");
    for (int k = 0; k < l->n_nodes; k++) {
        if (k) kiln_sbuf_printf(b, ", ");
        put_json_str(b, g->nodes[l->nodes[k]].name);
    }
    kiln_sbuf_printf(b, "], \"node\": ");
    if (l->node >= 0)
        put_json_str(b, g->nodes[l->node].name);
    else
        kiln_sbuf_printf(b, "null");
    kiln_sbuf_printf(b, ", \"dtype\": \"%s\", \"layout\": \"%s\", \"kernel\": ", l->dtype, l->layout);
    if (l->library) {
        put_json_str(b, l->kernel);
        kiln_sbuf_printf(b, ", \"library\": \"%s\"", l->library);
    } else
        kiln_sbuf_printf(b, "null, \"library\": null");
    const kb_step *s = l->step;
    if (s) {
        if (s->kind == KB_STEP_CONV) put_tactic_json(d, s);
        if (s->kind == KB_STEP_CONV || s->kind == KB_STEP_EW)
            kiln_sbuf_printf(b, ", \"activation\": %s%s%s", s->act ? "\"" : "", s->act ? kb_act_name(s->act) : "null",
                             s->act ? "\"" : "");
        if (s->kind == KB_STEP_EW) kiln_sbuf_printf(b, ", \"instructions\": %d", s->prog.n_ins);
        kiln_sbuf_printf(b, ", \"into_concat\": ");
        if (l->into_concat)
            put_json_str(b, l->into_concat);
        else
            kiln_sbuf_printf(b, "null");
        /* the time is a float from the file: JSON has no NaN */
        if (isfinite(s->ms))
            kiln_sbuf_printf(b, ", \"tuned_ms\": %.5f", (double)s->ms);
        else
            kiln_sbuf_printf(b, ", \"tuned_ms\": null");
    }
    kiln_sbuf_printf(b, "}");
}

static void put_layer_text(desc *d, int i)
{
    const layer *l = &d->layers[i];
    const kiln_graph *g = d->g;
    kiln_sbuf *b = d->b;
    char ops[40] = "";
    size_t n = 0;
    for (int k = 0; k < l->n_nodes && n < sizeof ops; k++)
        n += (size_t)snprintf(ops + n, sizeof ops - n, "%s%s", k ? "+" : "", g->nodes[l->nodes[k]].op_type);
    if (!l->n_nodes) snprintf(ops, sizeof ops, "(layout/dtype change)");
    if (n >= sizeof ops) memcpy(ops + sizeof ops - 4, "...", 4); /* the JSON has them all */
    for (char *c = ops; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
    char ms[16] = "";
    if (l->step && l->step->ms > 0) snprintf(ms, sizeof ms, "%.4f", (double)l->step->ms);
    kiln_sbuf_printf(b, "  %-4d %-11s %-39s %-5s %-6s", i, l->kind, ops, l->dtype, l->layout);
    if (d->p) kiln_sbuf_printf(b, " %-9s", ms);
    size_t at = b->len;
    kiln_sbuf_printf(b, " ");
    put_text(b, l->library ? l->kernel : "-");
    if (l->into_concat) {
        kiln_sbuf_printf(b, ", into concat '");
        put_text(b, l->into_concat);
        kiln_sbuf_printf(b, "'");
    }
    kiln_sbuf_printf(b, "%*s  ", b->len - at < 31 ? (int)(31 - (b->len - at)) : 0, "");
    for (int k = 0; k < l->n_nodes; k++) {
        if (k) kiln_sbuf_printf(b, ",");
        put_text(b, g->nodes[l->nodes[k]].name);
    }
    if (!l->n_nodes && l->node >= 0) {
        kiln_sbuf_printf(b, "(for ");
        put_text(b, g->nodes[l->node].name);
        kiln_sbuf_printf(b, ")");
    }
    while (!b->failed && b->len && b->data[b->len - 1] == ' ') b->data[--b->len] = '\0'; /* no nodes: no padding */
    kiln_sbuf_printf(b, "\n");
}

/* Bytes of v with every symbolic or unknown dim taken as 1, saturating (a
 * hostile plan's dims may overflow); *partial when its rank is unknown. */
static uint64_t bytes_at_one(const kiln_value *v, bool *partial)
{
    if (v->shape.rank < 0) {
        *partial = true;
        return 0;
    }
    uint64_t n = kiln_dtype_size(v->dtype);
    for (int k = 0; k < v->shape.rank && n; k++) {
        uint64_t dim = v->shape.d[k] >= 0 ? (uint64_t)v->shape.d[k] : 1;
        if (dim && n > UINT64_MAX / dim) return UINT64_MAX;
        n *= dim;
    }
    return n;
}

/* The ref backend plans no arena: it keeps one buffer per computed tensor,
 * sized by each run. What they sum to with every symbolic dim 1 (one batch
 * item) is the figure a user can scale. */
static uint64_t ref_activation_bytes(const kiln_graph *g, bool *partial)
{
    uint64_t sum = 0;
    *partial = false;
    for (int v = 0; v < g->n_values; v++) {
        const kiln_value *x = &g->values[v];
        if (x->data || (x->flags & (KILN_V_INIT | KILN_V_FOLDED))) continue; /* constants are weights */
        uint64_t n = bytes_at_one(x, partial);
        sum = n > UINT64_MAX - sum ? UINT64_MAX : sum + n;
    }
    return sum;
}

static void put_sizes(desc *d)
{
    const kiln_graph *g = d->g;
    const kb_program *p = d->p;
    const kiln_plan_section *ws = kiln_plan_find(&d->info, "WEIGHTS");
    int constants = 0, dropped = 0;
    for (int v = 0; v < g->n_values; v++) {
        constants += g->values[v].data != NULL;
        dropped += !g->values[v].data && (g->values[v].flags & KILN_V_INIT);
    }
    bool partial = false;
    uint64_t act = p ? p->arena_bytes : ref_activation_bytes(g, &partial);
    kiln_sbuf *b = d->b;
    if (d->json) {
        kiln_sbuf_printf(b,
                         ", \"sizes\": {\"file_bytes\": %zu, \"header_bytes\": %d, \"weights_bytes\": %" PRIu64
                         ", \"constants\": %d, \"constants_on_device_only\": %d, \"device_weights_bytes\": ",
                         d->size, KILN_PLAN_HEADER_SIZE, ws ? ws->size : 0, constants, dropped);
        if (p)
            kiln_sbuf_printf(b,
                             "%" PRIu64 ", \"activation_bytes\": %" PRIu64 ", \"activation_bytes_unplanned\": %" PRIu64
                             ", \"activations_at\": \"profile max\", \"workspace_bytes\": %" PRIu64,
                             p->weight_bytes, p->arena_bytes, p->naive_bytes, p->ws_bytes);
        else
            kiln_sbuf_printf(b,
                             "null, \"activation_bytes\": %" PRIu64 ", \"activation_bytes_unplanned\": null"
                             ", \"activations_at\": \"%s\", \"workspace_bytes\": 0",
                             act, partial ? "symbolic dims 1, some ranks unknown" : "symbolic dims 1");
        kiln_sbuf_printf(b, ", \"workspace_limit_bytes\": %" PRIu64 "}", d->info.workspace);
        return;
    }
    kiln_sbuf_printf(b, "\nsizes\n  file         %zu bytes (header %d)\n", d->size, KILN_PLAN_HEADER_SIZE);
    for (int i = 0; i < d->info.n_sections; i++) {
        const kiln_plan_section *s = &d->info.sections[i];
        kiln_sbuf_printf(b, "  section      ");
        put_text(b, s->tag);
        kiln_sbuf_printf(b, " %" PRIu64 " bytes at %td\n", s->size, s->data - d->bytes);
    }
    kiln_sbuf_printf(b, "  weights      %" PRIu64 " bytes on the host (%d constants)", ws ? ws->size : 0, constants);
    if (p)
        kiln_sbuf_printf(b, ", %" PRIu64 " bytes on the device (%d constants only there, pre-transformed)\n",
                         p->weight_bytes, dropped);
    else
        kiln_sbuf_printf(b, "\n");
    if (p) {
        kiln_sbuf_printf(b,
                         "  activations  %" PRIu64 " bytes planned at the profile's max (%" PRIu64
                         " if each tensor had its own)\n",
                         p->arena_bytes, p->naive_bytes);
        kiln_sbuf_printf(b, "  workspace    %" PRIu64 " bytes, one buffer shared by every step (the plan records no "
                            "per-step figure)",
                         p->ws_bytes);
    } else {
        kiln_sbuf_printf(b, "  activations  %" PRIu64 " bytes with every symbolic dim 1%s (one buffer per tensor, no "
                            "planned arena)\n",
                         act, partial ? ", some ranks unknown" : "");
        kiln_sbuf_printf(b, "  workspace    none");
    }
    if (d->info.workspace) kiln_sbuf_printf(b, "; limit given at build %" PRIu64 " bytes", d->info.workspace);
    kiln_sbuf_printf(b, "\n");
}

static void put_identity(desc *d)
{
    const kiln_identity *id = &d->info.id;
    static const uint8_t zero[32];
    char sha[65] = "";
    if (memcmp(d->info.model_sha, zero, 32)) kiln_hex(d->info.model_sha, 32, sha);
    char fname[512];
    if (kiln_identity_file_name(id, fname, sizeof fname) != KILN_OK) fname[0] = '\0';
    const char *be = kiln_backend_name(d->info.backend);
    kiln_sbuf *b = d->b;
    if (d->json) {
        kiln_sbuf_printf(b, "{\"schema\": \"kiln.inspect-plan/1\", \"path\": ");
        put_json_str(b, d->what);
        kiln_sbuf_printf(b, ", \"format\": %u, \"identity\": {\"model\": ", d->info.format);
        put_json_str(b, id->model);
        kiln_sbuf_printf(b, ", \"version\": ");
        put_json_str(b, id->version);
        kiln_sbuf_printf(b, ", \"backend\": \"%s\", \"precision\": ", be);
        put_json_str(b, id->precision);
        kiln_sbuf_printf(b, ", \"arch\": ");
        put_json_str(b, id->arch);
        kiln_sbuf_printf(b, ", \"kiln_version\": ");
        put_json_str(b, id->kiln_version);
        kiln_sbuf_printf(b, ", \"options_hash\": ");
        put_json_str(b, id->options_hash);
        kiln_sbuf_printf(b, ", \"model_sha256\": ");
        if (sha[0])
            put_json_str(b, sha);
        else
            kiln_sbuf_printf(b, "null");
        kiln_sbuf_printf(b, ", \"file_name\": ");
        put_json_str(b, fname);
        kiln_sbuf_printf(b, "}");
        return;
    }
    kiln_sbuf_printf(b, "plan      ");
    put_text(b, d->what);
    kiln_sbuf_printf(b, " (a kiln plan, not an ONNX model)\nmodel     ");
    put_text(b, id->model);
    kiln_sbuf_printf(b, " version ");
    put_text(b, id->version);
    kiln_sbuf_printf(b, "\nbackend   %s\nprecision ", be);
    put_text(b, id->precision);
    kiln_sbuf_printf(b, "\narch      ");
    put_text(b, id->arch);
    kiln_sbuf_printf(b, "\nkiln      ");
    put_text(b, id->kiln_version);
    kiln_sbuf_printf(b, "\n");
    if (id->options_hash[0]) {
        kiln_sbuf_printf(b, "options   ");
        put_text(b, id->options_hash);
        kiln_sbuf_printf(b, "\n");
    }
    /* kiln build leaves it zero: the version is the digest it records */
    kiln_sbuf_printf(b, "sha256    %s\nidentity  ",
                     sha[0] ? sha : "not recorded (the version is the first 8 hex digits of the model's SHA-256 "
                                    "unless --model-version named it)");
    put_text(b, fname);
    kiln_sbuf_printf(b, "\n");
}

static void put_graph(desc *d)
{
    const kiln_graph *g = d->g;
    kiln_sbuf *b = d->b;
    if (d->json) {
        kiln_sbuf_printf(b, ", \"model\": {\"path\": ");
        put_json_str(b, g->path);
        kiln_sbuf_printf(b, ", \"producer\": ");
        put_json_str(b, g->producer);
        kiln_sbuf_printf(b, ", \"graph_name\": ");
        put_json_str(b, g->name);
        kiln_sbuf_printf(b, ", \"ir_version\": %" PRId64 ", \"opset\": %d, \"nodes\": %d, \"values\": %d}",
                         g->ir_version, g->opset, g->n_nodes, g->n_values);
        return;
    }
    kiln_sbuf_printf(b, "built from ");
    put_text(b, g->path);
    kiln_sbuf_printf(b, " (");
    put_text(b, g->producer);
    kiln_sbuf_printf(b, "), ir %" PRId64 ", opset %d, %d nodes, %d tensors\n", g->ir_version, g->opset, g->n_nodes,
                     g->n_values);
}

static void put_here(desc *d)
{
    if (!d->here) return;
    if (d->json) {
        kiln_sbuf_printf(d->b, ", \"runs_here\": {\"ok\": %s, \"reason\": ", d->here[0] ? "false" : "true");
        if (d->here[0])
            put_json_str(d->b, d->here);
        else
            kiln_sbuf_printf(d->b, "null");
        kiln_sbuf_printf(d->b, "}");
    } else if (d->here[0]) {
        kiln_sbuf_printf(d->b, "runs here no: ");
        put_text(d->b, d->here);
        kiln_sbuf_printf(d->b, "\n");
    } else
        kiln_sbuf_printf(d->b, "runs here yes\n");
}

static void put_program(desc *d)
{
    const kb_program *p = d->p;
    kiln_sbuf *b = d->b;
    const char *prec = kiln_precision_name((kiln_precision)p->precision, d->info.backend);
    if (d->json) {
        kiln_sbuf_printf(b,
                         ", \"program\": {\"precision\": \"%s\", \"compute_dtype\": \"%s\", \"steps\": %d, "
                         "\"tensors\": %d, \"cudnn_version\": %u, \"cublaslt_version\": %u, "
                         "\"runtime_compiled_engines\": %s}",
                         prec ? prec : "?", kiln_dtype_name(p->compute), p->n_steps, p->n_tensors, p->cudnn_version,
                         p->cublas_version, p->flags & KB_PROG_RUNTIME_COMPILE ? "true" : "false");
        return;
    }
    kiln_sbuf_printf(b, "program   %s, float activations in %s; tactics chosen with cuDNN %u and cuBLASLt %u%s\n",
                     prec ? prec : "?", kiln_dtype_name(p->compute), p->cudnn_version, p->cublas_version,
                     p->flags & KB_PROG_RUNTIME_COMPILE ? " (some engines compiled at run time)" : "");
}

/* The program's device nodes that no step runs: views (Reshape, Flatten,
 * ...) whose output is their input's bytes read with other dims, and
 * Concats whose inputs were all written in place into their output. */
static void put_stepless(desc *d)
{
    const kiln_graph *g = d->g;
    const kb_program *p = d->p;
    uint8_t *run = kiln_xcalloc((size_t)g->n_nodes + 1, 1);
    if (!run) {
        d->b->failed = true;
        return;
    }
    for (int i = 0; i < p->n_steps; i++)
        for (int k = 0; k < p->steps[i].n_nodes; k++) run[p->steps[i].nodes[k]] = 1;
    int k = 0;
    for (int n = 0; n < g->n_nodes; n++) {
        if (p->node_class[n] != KB_NODE_DEVICE || run[n]) continue;
        if (d->json) {
            kiln_sbuf_printf(d->b, "%s{\"node\": ", k ? ", " : ", \"nodes_without_step\": [");
            put_json_str(d->b, g->nodes[n].name);
            kiln_sbuf_printf(d->b, ", \"op\": ");
            put_json_str(d->b, g->nodes[n].op_type);
            kiln_sbuf_printf(d->b, "}");
        } else {
            kiln_sbuf_printf(d->b, "%s ", k ? "," : "no step of their own (views of their input, concats written in place):");
            put_text(d->b, g->nodes[n].name);
            kiln_sbuf_printf(d->b, " (");
            put_text(d->b, g->nodes[n].op_type);
            kiln_sbuf_printf(d->b, ")");
        }
        k++;
    }
    if (d->json) kiln_sbuf_printf(d->b, k ? "]" : ", \"nodes_without_step\": []");
    else if (k) kiln_sbuf_printf(d->b, "\n");
    free(run);
}

/* The graph nodes by where they run: folded, host, device (a program), or
 * run / folded (a graph plan). */
static void put_layers(desc *d)
{
    const kiln_graph *g = d->g;
    const kb_program *p = d->p;
    kiln_sbuf *b = d->b;
    int cls[3] = {0, 0, 0};
    for (int n = 0; n < g->n_nodes; n++) {
        int c = p ? p->node_class[n] : node_folded(g, &g->nodes[n]) ? KB_NODE_SKIP : KB_NODE_DEVICE;
        cls[c]++;
    }
    if (d->json) {
        kiln_sbuf_printf(b, ", \"nodes\": {\"total\": %d, \"run\": %d, \"host\": %d, \"folded\": %d}, \"layers\": [",
                         g->n_nodes, cls[KB_NODE_DEVICE], cls[KB_NODE_HOST], cls[KB_NODE_SKIP]);
        for (int i = 0; i < d->n_layers; i++) put_layer_json(d, i);
        kiln_sbuf_printf(b, "]");
        if (p) {
            kiln_sbuf_printf(b, ", \"host_nodes\": [");
            int k = 0;
            for (int n = 0; n < g->n_nodes; n++) {
                if (p->node_class[n] != KB_NODE_HOST) continue;
                kiln_sbuf_printf(b, "%s{\"node\": ", k++ ? ", " : "");
                put_json_str(b, g->nodes[n].name);
                kiln_sbuf_printf(b, ", \"op\": ");
                put_json_str(b, g->nodes[n].op_type);
                kiln_sbuf_printf(b, "}");
            }
            kiln_sbuf_printf(b, "]");
            put_stepless(d);
        }
        return;
    }
    if (p)
        kiln_sbuf_printf(b,
                         "\nlayers (%d program steps; of the %d graph nodes %d run on the GPU, %d on the host per "
                         "shape, %d were folded at build time)\n",
                         d->n_layers, g->n_nodes, cls[KB_NODE_DEVICE], cls[KB_NODE_HOST], cls[KB_NODE_SKIP]);
    else
        kiln_sbuf_printf(b,
                         "\nlayers (%d nodes: %d run by the ref backend's kernels in fp32, %d folded at build time)\n",
                         d->n_layers, cls[KB_NODE_DEVICE], cls[KB_NODE_SKIP]);
    kiln_sbuf_printf(b, "  %-4s %-11s %-39s %-5s %-6s", "#", "kind", "ops", "dtype", "layout");
    if (p) kiln_sbuf_printf(b, " %-9s", "tuned ms");
    kiln_sbuf_printf(b, " %-30s  nodes\n", "kernel");
    for (int i = 0; i < d->n_layers; i++) put_layer_text(d, i);
    if (p && cls[KB_NODE_HOST]) {
        kiln_sbuf_printf(b, "host nodes:");
        for (int n = 0; n < g->n_nodes; n++) {
            if (p->node_class[n] != KB_NODE_HOST) continue;
            kiln_sbuf_printf(b, " ");
            put_text(b, g->nodes[n].name);
            kiln_sbuf_printf(b, " (");
            put_text(b, g->nodes[n].op_type);
            kiln_sbuf_printf(b, ")");
        }
        kiln_sbuf_printf(b, "\n");
    }
    if (p) put_stepless(d);
}

/* ------------------------------------------------------------------ reading */

/* Whether the plan's backend writes a program (PROGRAM and DWEIGHTS, as
 * engine_plan.c saves them): every backend except one this build has
 * without `save`, which is its graph. A backend this build lacks (cuda in
 * a CPU-only kiln) can only be a GPU backend: the host one is always here. */
static bool has_program(kiln_backend backend)
{
    const kiln_backend_iface *be = kiln_backend_find(backend);
    return !be || be->save;
}

static kiln_status read_plan(desc *d)
{
    kiln_status st = kiln_plan_parse(d->bytes, d->size, d->what, &d->info);
    if (st != KILN_OK) return st;
    const kiln_plan_section *gs = kiln_plan_find(&d->info, "GRAPH"), *ws = kiln_plan_find(&d->info, "WEIGHTS");
    if (!gs || !ws) return kiln_fail(KILN_ERR_FORMAT, "%s: plan without its GRAPH and WEIGHTS sections", d->what);
    st = kiln_graph_deserialize(gs->data, (size_t)gs->size, ws->data, (size_t)ws->size, NULL, d->what, &d->g);
    if (st != KILN_OK) return st;
    if (!has_program(d->info.backend)) return KILN_OK;
    const kiln_plan_section *ps = kiln_plan_find(&d->info, "PROGRAM"), *dw = kiln_plan_find(&d->info, "DWEIGHTS");
    if (!ps || !dw)
        return kiln_fail(KILN_ERR_FORMAT, "%s: plan of the %s backend without its PROGRAM and DWEIGHTS sections",
                         d->what, kiln_backend_name(d->info.backend));
    /* checks every index against the graph (its inputs are the profile's)
     * and copies DWEIGHTS, which a description does not need: the price of
     * one reader */
    return kb_program_deserialize(d->g, ps->data, (size_t)ps->size, dw->data, (size_t)dw->size, d->what, &d->p);
}

/* Why the plan would not load here, into *why ("" when it would): the
 * checks of kiln_engine_load before it builds anything (the name, the kiln
 * version, the backend, the device and its architecture). */
static void check_here(desc *d, const char *path, char *why, size_t cap)
{
    why[0] = '\0';
    const char *base = path && strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char want[512];
    if (base && kiln_identity_name_shaped(base) && kiln_identity_file_name(&d->info.id, want, sizeof want) == KILN_OK &&
        strcmp(want, base) != 0) {
        snprintf(why, cap, "the file name and the plan header disagree: the header is the identity of '%s'", want);
        return;
    }
    if (kiln_plan_check_runnable(&d->info, d->what) != KILN_OK) snprintf(why, cap, "%s", kiln_last_error());
    kiln_clear_error();
}

static kiln_status describe(desc *d, const char *path, unsigned flags)
{
    kiln_status st = read_plan(d);
    /* the readers name the file, except where the graph's own checks (its
     * sort: a cycle, a value produced twice) speak of a node alone */
    if (st != KILN_OK && !strstr(kiln_last_error(), d->what)) kiln_fail_prefix(st, "%s: ", d->what);
    if (st == KILN_OK) st = make_layers(d);
    char why[1024];
    if (st == KILN_OK && (flags & KILN_PLAN_DESCRIBE_CHECK_HERE)) {
        check_here(d, path, why, sizeof why);
        d->here = why;
    }
    if (st == KILN_OK) {
        put_identity(d);
        if (!d->json) put_here(d);
        put_graph(d);
        if (d->json) put_here(d);
        if (d->p) put_program(d);
        put_io(d, true);
        put_io(d, false);
        put_layers(d);
        if (d->json) {
            kiln_sbuf_printf(d->b, ", \"sections\": [");
            for (int i = 0; i < d->info.n_sections; i++) {
                const kiln_plan_section *s = &d->info.sections[i];
                kiln_sbuf_printf(d->b, "%s{\"tag\": ", i ? ", " : "");
                put_json_str(d->b, s->tag);
                kiln_sbuf_printf(d->b, ", \"offset\": %td, \"bytes\": %" PRIu64 "}", s->data - d->bytes, s->size);
            }
            kiln_sbuf_printf(d->b, "]");
        }
        put_sizes(d);
        if (d->json) kiln_sbuf_printf(d->b, "}\n");
        if (d->b->failed) st = kiln_fail(KILN_ERR_OUT_OF_MEMORY, "%s: out of host memory describing the plan", d->what);
    }
    free(d->layers);
    if (d->p) kb_program_free(d->p);
    if (d->g) kiln_graph_free(d->g);
    return st;
}

kiln_status kiln_plan_describe(const uint8_t *bytes, size_t size, const char *what, unsigned flags, kiln_sbuf *out)
{
    if (!bytes || !what || !out) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_plan_describe: NULL argument");
    desc d = {.what = what, .bytes = bytes, .size = size, .json = (flags & KILN_PLAN_DESCRIBE_JSON) != 0, .b = out};
    return describe(&d, NULL, flags);
}

kiln_status kiln_plan_describe_file(const char *path, unsigned flags, kiln_sbuf *out)
{
    if (!path || !out) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_plan_describe_file: NULL argument");
    uint8_t *bytes;
    size_t size;
    kiln_status st = kiln_read_file(path, &bytes, &size);
    if (st != KILN_OK) return st;
    desc d = {.what = path, .bytes = bytes, .size = size, .json = (flags & KILN_PLAN_DESCRIBE_JSON) != 0, .b = out};
    st = describe(&d, path, flags);
    free(bytes);
    return st;
}
