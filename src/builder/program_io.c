/* A program in a plan (section PROGRAM, docs/plan-format.md) and the
 * per-step report. Reading checks every index and offset: a plan is a file
 * and may be corrupt beyond what its checksum catches (a bug, a hostile
 * file with a recomputed checksum). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builder/program.h"
#include "plan/plan.h"

#define PROG_MAGIC 0x474f5250u /* "PROG" */
#define PROG_VERSION 4

static uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void kb_program_serialize(const kb_program *p, kiln_bytes *b)
{
    kiln_bytes_u32(b, PROG_MAGIC);
    kiln_bytes_u32(b, PROG_VERSION);
    kiln_bytes_u32(b, (uint32_t)p->precision);
    kiln_bytes_u32(b, (uint32_t)p->compute);
    kiln_bytes_u32(b, (uint32_t)p->n_inputs);
    kiln_bytes_u32(b, (uint32_t)p->n_outputs);
    for (int i = 0; i < p->n_inputs * KILN_MAX_RANK; i++) {
        kiln_bytes_u64(b, (uint64_t)p->prof_min[i]);
        kiln_bytes_u64(b, (uint64_t)p->prof_opt[i]);
        kiln_bytes_u64(b, (uint64_t)p->prof_max[i]);
    }
    kiln_bytes_u32(b, (uint32_t)p->n_tensors);
    for (int t = 0; t < p->n_tensors; t++) {
        const kb_tensor *x = &p->tensors[t];
        kiln_bytes_u32(b, (uint32_t)x->value);
        kiln_bytes_u32(b, (uint32_t)x->shape.rank);
        for (int k = 0; k < KILN_MAX_RANK; k++) kiln_bytes_u64(b, (uint64_t)x->shape.d[k]);
        kiln_bytes_u32(b, (uint32_t)x->dt);
        kiln_bytes_u32(b, (uint32_t)x->layout);
        kiln_bytes_u32(b, (uint32_t)x->storage);
        kiln_bytes_u32(b, (uint32_t)x->alias);
        kiln_bytes_u32(b, (uint32_t)x->slice_node);
        kiln_bytes_u32(b, (uint32_t)x->slice_input);
        kiln_bytes_u32(b, (uint32_t)x->slice_axis);
        kiln_bytes_u32(b, (uint32_t)x->pinned);
        kiln_bytes_u64(b, x->offset);
        kiln_bytes_u64(b, x->max_bytes);
        kiln_bytes_u32(b, (uint32_t)x->first);
        kiln_bytes_u32(b, (uint32_t)x->last);
    }
    kiln_bytes_u32(b, (uint32_t)p->n_steps);
    for (int s = 0; s < p->n_steps; s++) {
        const kb_step *x = &p->steps[s];
        kiln_bytes_u32(b, (uint32_t)x->kind);
        kiln_bytes_u32(b, (uint32_t)x->node);
        kiln_bytes_u32(b, (uint32_t)x->n_in);
        for (int i = 0; i < x->n_in; i++) kiln_bytes_u32(b, (uint32_t)x->in[i]);
        kiln_bytes_u32(b, (uint32_t)x->n_out);
        for (int i = 0; i < x->n_out; i++) kiln_bytes_u32(b, (uint32_t)x->out[i]);
        kiln_bytes_u32(b, (uint32_t)x->act);
        kiln_bytes_u32(b, f2u(x->act_a));
        kiln_bytes_u32(b, f2u(x->act_b));
        kiln_bytes_u32(b, (uint32_t)x->tactic.algo);
        kiln_bytes_u32(b, (uint32_t)x->tactic.fused);
        kiln_bytes_u32(b, (uint32_t)x->tactic.math);
        kiln_bytes_u32(b, (uint32_t)x->tactic.reserved);
        kiln_bytes_u32(b, (uint32_t)x->prog.n_in);
        kiln_bytes_u32(b, (uint32_t)x->prog.n_ins);
        kiln_bytes_u32(b, (uint32_t)x->prog.result);
        for (int i = 0; i < x->prog.n_ins; i++) {
            const kc_ew_ins *in = &x->prog.ins[i];
            uint8_t raw[5] = {in->op, in->dst, in->a, in->b, in->act};
            kiln_bytes_put(b, raw, 5);
            kiln_bytes_u32(b, f2u(in->p0));
            kiln_bytes_u32(b, f2u(in->p1));
        }
        kiln_bytes_u32(b, (uint32_t)x->n_nodes);
        for (int i = 0; i < x->n_nodes; i++) kiln_bytes_u32(b, (uint32_t)x->nodes[i]);
        kiln_bytes_u32(b, f2u(x->ms));
    }
    kiln_bytes_u32(b, (uint32_t)p->n_nodes_total);
    kiln_bytes_put(b, p->node_class, (size_t)p->n_nodes_total);
    kiln_bytes_u32(b, (uint32_t)p->n_values_total);
    for (int i = 0; i < p->n_values_total; i++) kiln_bytes_u32(b, (uint32_t)p->value_tensor[i]);
    for (int i = 0; i < p->n_inputs; i++) kiln_bytes_u32(b, (uint32_t)p->input_tensor[i]);
    for (int i = 0; i < p->n_outputs; i++) kiln_bytes_u32(b, (uint32_t)p->output_tensor[i]);
    kiln_bytes_u64(b, p->arena_bytes);
    kiln_bytes_u64(b, p->naive_bytes);
    kiln_bytes_u64(b, p->ws_bytes);
    kiln_bytes_u64(b, p->weight_bytes);
    kiln_bytes_u32(b, p->cudnn_version);
    kiln_bytes_u32(b, p->cublas_version);
    kiln_bytes_u32(b, p->flags);
}

static kiln_status bad(const char *what, const char *why)
{
    return kiln_fail(KILN_ERR_FORMAT, "%s: corrupt program section (%s); rebuild the plan", what, why);
}

static bool in_range(int x, int n, bool optional) { return (optional && x == -1) || (x >= 0 && x < n); }

/* A slice names a Concat of the graph, one of its inputs (whose value is
 * the slice's) and an axis of its output. */
static bool slice_ok(const kiln_graph *g, const kb_tensor *x, int n_tensors)
{
    if (!in_range(x->alias, n_tensors, false) || !in_range(x->slice_node, g->n_nodes, false)) return false;
    const kiln_node *n = &g->nodes[x->slice_node];
    if (strcmp(n->op_type, "Concat") != 0 || n->n_outputs < 1 || n->outputs[0] < 0) return false;
    if (x->slice_input < 0 || x->slice_input >= n->n_inputs || n->inputs[x->slice_input] != x->value) return false;
    return x->slice_axis >= 0 && x->slice_axis < g->values[n->outputs[0]].shape.rank;
}

kiln_status kb_program_deserialize(const kiln_graph *g, const uint8_t *data, size_t size, const uint8_t *weights,
                                   size_t weight_bytes, const char *what, kb_program **out)
{
    *out = NULL;
    kiln_reader r = {.p = data, .len = size};
    if (kiln_read_u32(&r) != PROG_MAGIC) return bad(what, "no program record");
    if (kiln_read_u32(&r) != PROG_VERSION) return bad(what, "unknown program version");
    kb_program *p = kiln_xcalloc(1, sizeof *p);
    if (!p) return KILN_ERR_OUT_OF_MEMORY;
    kiln_status st = KILN_OK;
    const char *why = NULL;
    p->precision = (int)kiln_read_u32(&r);
    p->compute = (kiln_dtype)kiln_read_u32(&r);
    p->n_inputs = (int)kiln_read_u32(&r);
    p->n_outputs = (int)kiln_read_u32(&r);
    if (p->n_inputs != g->n_inputs || p->n_outputs != g->n_outputs) {
        why = "inputs or outputs differ from the graph";
        goto fail;
    }
    size_t np = (size_t)p->n_inputs * KILN_MAX_RANK + 1;
    p->prof_min = kiln_arena_alloc(&p->arena, np * sizeof(int64_t));
    p->prof_opt = kiln_arena_alloc(&p->arena, np * sizeof(int64_t));
    p->prof_max = kiln_arena_alloc(&p->arena, np * sizeof(int64_t));
    if (!p->prof_min || !p->prof_opt || !p->prof_max) goto oom;
    for (int i = 0; i < p->n_inputs * KILN_MAX_RANK; i++) {
        p->prof_min[i] = (int64_t)kiln_read_u64(&r);
        p->prof_opt[i] = (int64_t)kiln_read_u64(&r);
        p->prof_max[i] = (int64_t)kiln_read_u64(&r);
    }
    uint32_t nt = kiln_read_u32(&r);
    if (r.bad || nt > r.len) {
        why = "tensor count";
        goto fail;
    }
    p->n_tensors = p->cap_tensors = (int)nt;
    p->tensors = kiln_xcalloc((size_t)nt + 1, sizeof *p->tensors);
    if (!p->tensors) goto oom;
    for (uint32_t t = 0; t < nt; t++) {
        kb_tensor *x = &p->tensors[t];
        x->value = (int)kiln_read_u32(&r);
        x->shape.rank = (int)kiln_read_u32(&r);
        for (int k = 0; k < KILN_MAX_RANK; k++) x->shape.d[k] = (int64_t)kiln_read_u64(&r);
        x->dt = (kiln_dtype)kiln_read_u32(&r);
        x->layout = (int)kiln_read_u32(&r);
        x->storage = (int)kiln_read_u32(&r);
        x->alias = (int)kiln_read_u32(&r);
        x->slice_node = (int)kiln_read_u32(&r);
        x->slice_input = (int)kiln_read_u32(&r);
        x->slice_axis = (int)kiln_read_u32(&r);
        x->pinned = (int)kiln_read_u32(&r);
        x->offset = kiln_read_u64(&r);
        x->max_bytes = kiln_read_u64(&r);
        x->first = (int)kiln_read_u32(&r);
        x->last = (int)kiln_read_u32(&r);
        if (r.bad) break;
        if (!in_range(x->value, g->n_values, true) || x->shape.rank < 0 || x->shape.rank > KILN_MAX_RANK ||
            !kiln_dtype_size(x->dt) || x->layout < 0 || x->layout > KB_NHWC || x->storage < 0 ||
            x->storage > KB_SLICE || (x->storage == KB_ALIAS && !in_range(x->alias, (int)t, false))) {
            why = "a tensor out of range";
            goto fail;
        }
        if (x->storage == KB_SLICE && !slice_ok(g, x, (int)nt)) {
            why = "a concat slice out of range";
            goto fail;
        }
        if (x->storage == KB_WEIGHT && (x->offset > weight_bytes || x->max_bytes > weight_bytes - x->offset)) {
            why = "a weight outside the weights";
            goto fail;
        }
    }
    for (uint32_t t = 0; t < nt && !r.bad; t++)
        if (p->tensors[t].storage == KB_SLICE && p->tensors[p->tensors[t].alias].storage != KB_ARENA) {
            why = "a concat slice of a tensor that is not an activation";
            goto fail;
        }
    uint32_t ns = kiln_read_u32(&r);
    if (r.bad || ns > r.len) {
        why = "step count";
        goto fail;
    }
    p->n_steps = p->cap_steps = (int)ns;
    p->steps = kiln_xcalloc((size_t)ns + 1, sizeof *p->steps);
    if (!p->steps) goto oom;
    for (uint32_t s = 0; s < ns && !r.bad; s++) {
        kb_step *x = &p->steps[s];
        x->kind = (int)kiln_read_u32(&r);
        x->node = (int)kiln_read_u32(&r);
        x->n_in = (int)kiln_read_u32(&r);
        if (r.bad || x->n_in < 0 || (size_t)x->n_in > r.len) break;
        x->in = kiln_arena_alloc(&p->arena, ((size_t)x->n_in + 1) * sizeof(int));
        if (!x->in) goto oom;
        for (int i = 0; i < x->n_in; i++) x->in[i] = (int)kiln_read_u32(&r);
        x->n_out = (int)kiln_read_u32(&r);
        if (r.bad || x->n_out < 0 || (size_t)x->n_out > r.len) break;
        x->out = kiln_arena_alloc(&p->arena, ((size_t)x->n_out + 1) * sizeof(int));
        if (!x->out) goto oom;
        for (int i = 0; i < x->n_out; i++) x->out[i] = (int)kiln_read_u32(&r);
        x->act = (int)kiln_read_u32(&r);
        x->act_a = u2f(kiln_read_u32(&r));
        x->act_b = u2f(kiln_read_u32(&r));
        x->tactic.algo = (int32_t)kiln_read_u32(&r);
        x->tactic.fused = (int32_t)kiln_read_u32(&r);
        x->tactic.math = (int32_t)kiln_read_u32(&r);
        x->tactic.reserved = (int32_t)kiln_read_u32(&r);
        x->prog.n_in = (int)kiln_read_u32(&r);
        x->prog.n_ins = (int)kiln_read_u32(&r);
        x->prog.result = (int)kiln_read_u32(&r);
        if (x->prog.n_in < 0 || x->prog.n_in > KC_EW_MAX_IN || x->prog.n_ins < 0 || x->prog.n_ins > KC_EW_MAX_INS ||
            x->prog.result < 0 || x->prog.result >= KC_EW_MAX_REGS) {
            why = "an elementwise program out of range";
            goto fail;
        }
        for (int i = 0; i < x->prog.n_ins; i++) {
            const uint8_t *raw = kiln_read_bytes(&r, 5);
            kc_ew_ins *in = &x->prog.ins[i];
            if (!raw) break;
            in->op = raw[0];
            in->dst = raw[1];
            in->a = raw[2];
            in->b = raw[3];
            in->act = raw[4];
            in->p0 = u2f(kiln_read_u32(&r));
            in->p1 = u2f(kiln_read_u32(&r));
            if (in->op > KC_EW_ROUND || in->dst >= KC_EW_MAX_REGS || in->b >= KC_EW_MAX_REGS ||
                (in->op == KC_EW_LOAD ? in->a >= x->prog.n_in : in->a >= KC_EW_MAX_REGS) || in->act > KC_ACT_GELU_TANH) {
                why = "an elementwise instruction out of range";
                goto fail;
            }
        }
        x->n_nodes = (int)kiln_read_u32(&r);
        if (x->n_nodes < 0 || x->n_nodes > KB_MAX_FUSED) {
            why = "fused node count";
            goto fail;
        }
        for (int i = 0; i < x->n_nodes; i++) {
            x->nodes[i] = (int)kiln_read_u32(&r);
            if (!in_range(x->nodes[i], g->n_nodes, false)) {
                why = "a fused node out of range";
                goto fail;
            }
        }
        x->ms = u2f(kiln_read_u32(&r));
        if (r.bad) break;
        if (x->kind < KB_STEP_OP || x->kind > KB_STEP_COPY || !in_range(x->node, g->n_nodes, x->kind == KB_STEP_COPY) ||
            x->act < 0 || x->act > KC_ACT_GELU_TANH) {
            why = "a step out of range";
            goto fail;
        }
        for (int i = 0; i < x->n_in; i++)
            if (!in_range(x->in[i], (int)nt, true)) why = "a step input out of range";
        for (int i = 0; i < x->n_out; i++)
            if (!in_range(x->out[i], (int)nt, true)) why = "a step output out of range";
        if (x->kind == KB_STEP_OP &&
            (x->n_in != g->nodes[x->node].n_inputs || x->n_out != g->nodes[x->node].n_outputs))
            why = "a step that does not match its node";
        if (x->kind == KB_STEP_CONV && (x->n_in != 4 || x->n_out != 1 || x->in[0] < 0 || x->in[1] < 0 || x->out[0] < 0))
            why = "a conv step without its tensors";
        if (x->kind == KB_STEP_EW && (x->n_in != x->prog.n_in || x->n_out != 1 || x->out[0] < 0))
            why = "an elementwise step without its tensors";
        if (x->kind == KB_STEP_COPY && (x->n_in != 1 || x->n_out != 1 || x->in[0] < 0 || x->out[0] < 0))
            why = "a copy step without its tensors";
        if (x->kind == KB_STEP_EW)
            for (int i = 0; i < x->n_in; i++)
                if (x->in[i] < 0) why = "an elementwise step without its tensors";
        if (why) goto fail;
    }
    uint32_t nn = kiln_read_u32(&r);
    if (r.bad || (int)nn != g->n_nodes) {
        why = "node count";
        goto fail;
    }
    p->n_nodes_total = (int)nn;
    p->node_class = kiln_arena_alloc(&p->arena, (size_t)nn + 1);
    if (!p->node_class) goto oom;
    const uint8_t *cls = kiln_read_bytes(&r, nn);
    if (!cls) {
        why = "cut short";
        goto fail;
    }
    memcpy(p->node_class, cls, nn);
    for (uint32_t i = 0; i < nn; i++)
        if (p->node_class[i] > KB_NODE_DEVICE) {
            why = "node class";
            goto fail;
        }
    uint32_t nv = kiln_read_u32(&r);
    if (r.bad || (int)nv != g->n_values) {
        why = "value count";
        goto fail;
    }
    p->n_values_total = (int)nv;
    p->value_tensor = kiln_arena_alloc(&p->arena, ((size_t)nv + 1) * sizeof(int));
    p->input_tensor = kiln_arena_alloc(&p->arena, ((size_t)p->n_inputs + 1) * sizeof(int));
    p->output_tensor = kiln_arena_alloc(&p->arena, ((size_t)p->n_outputs + 1) * sizeof(int));
    if (!p->value_tensor || !p->input_tensor || !p->output_tensor) goto oom;
    for (uint32_t i = 0; i < nv; i++) {
        p->value_tensor[i] = (int)kiln_read_u32(&r);
        if (!in_range(p->value_tensor[i], (int)nt, true)) why = "value tensor";
    }
    for (int i = 0; i < p->n_inputs; i++) {
        p->input_tensor[i] = (int)kiln_read_u32(&r);
        if (!in_range(p->input_tensor[i], (int)nt, false)) why = "input slot";
    }
    for (int i = 0; i < p->n_outputs; i++) {
        p->output_tensor[i] = (int)kiln_read_u32(&r);
        if (!in_range(p->output_tensor[i], (int)nt, false)) why = "output slot";
    }
    p->arena_bytes = kiln_read_u64(&r);
    p->naive_bytes = kiln_read_u64(&r);
    p->ws_bytes = kiln_read_u64(&r);
    p->weight_bytes = kiln_read_u64(&r);
    p->cudnn_version = kiln_read_u32(&r);
    p->cublas_version = kiln_read_u32(&r);
    p->flags = kiln_read_u32(&r);
    if (why) goto fail;
    if (r.bad) {
        why = "cut short";
        goto fail;
    }
    if (r.off != r.len) {
        why = "trailing bytes";
        goto fail;
    }
    if (p->weight_bytes != weight_bytes) {
        why = "weights of another size";
        goto fail;
    }
    for (int t = 0; t < p->n_tensors; t++) {
        const kb_tensor *x = &p->tensors[t];
        if ((x->storage == KB_ARENA || x->storage == KB_HOST) &&
            (x->offset > p->arena_bytes || x->max_bytes > p->arena_bytes - x->offset)) {
            why = "a tensor outside the arena";
            goto fail;
        }
    }
    p->weights = kiln_xmalloc(weight_bytes + 1);
    if (!p->weights) goto oom;
    if (weight_bytes) memcpy(p->weights, weights, weight_bytes);
    *out = p;
    return KILN_OK;
oom:
    kb_program_free(p);
    return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "%s: out of host memory loading the program", what);
fail:
    kb_program_free(p);
    if (st != KILN_OK) return st;
    return bad(what, why ? why : (r.bad ? "cut short" : "inconsistent"));
}

void kb_program_drops(const kiln_graph *g, const kb_program *p, uint8_t *drop)
{
    /* per node: 1 when its constant inputs are read on the device only */
    uint8_t *dev_only = kiln_xcalloc((size_t)g->n_nodes + 1, 1);
    if (!dev_only) return; /* keep everything */
    for (int n = 0; n < g->n_nodes; n++) dev_only[n] = p->node_class[n] == KB_NODE_SKIP;
    for (int s = 0; s < p->n_steps; s++) {
        const kb_step *st = &p->steps[s];
        if (st->kind != KB_STEP_CONV && st->kind != KB_STEP_EW) continue;
        for (int k = 0; k < st->n_nodes; k++) dev_only[st->nodes[k]] = 1;
    }
    for (int v = 0; v < g->n_values; v++) {
        const kiln_value *x = &g->values[v];
        drop[v] = x->data && !(x->flags & KILN_V_OUTPUT) && kiln_value_bytes(x) > 256;
    }
    for (int n = 0; n < g->n_nodes; n++) {
        if (dev_only[n]) continue;
        for (int k = 0; k < g->nodes[n].n_inputs; k++)
            if (g->nodes[n].inputs[k] >= 0) drop[g->nodes[n].inputs[k]] = 0;
    }
    free(dev_only);
}

/* ------------------------------------------------------------------ report */

const char *kb_step_kind_name(int k)
{
    static const char *const names[] = {"op", "conv", "elementwise", "copy"};
    return k >= 0 && k <= KB_STEP_COPY ? names[k] : "?";
}

const char *kb_act_name(int a)
{
    static const char *const names[] = {"",          "relu",      "sigmoid", "silu", "tanh", "hardsigmoid",
                                        "hardswish", "leakyrelu", "clip",    "gelu", "gelu_tanh"};
    return a >= 0 && a <= KC_ACT_GELU_TANH ? names[a] : "?";
}

static const char *layout_name(const kb_program *p, int t)
{
    if (t < 0 || t >= p->n_tensors) return "-";
    const kb_tensor *x = &p->tensors[t];
    return x->layout == KB_NHWC ? "nhwc" : "nchw";
}

static const char *dtype_of(const kb_program *p, int t)
{
    return t < 0 || t >= p->n_tensors ? "-" : kiln_dtype_name(p->tensors[t].dt);
}

void kb_step_kernel_text(const kiln_graph *g, const kb_program *p, const kb_step *s, char *buf, size_t cap)
{
    /* a plan being described is untrusted: inputs past n_in do not exist */
    int bias = s->n_in > 2 ? s->in[2] : -1, res = s->n_in > 3 ? s->in[3] : -1;
    switch (s->kind) {
    case KB_STEP_CONV:
        if (s->tactic.fused == 2) {
            /* cuDNN's graph API (src/cuda/conv_graph.c): algo = the config's
             * place in the heuristic's list, math = the list (1: fallback) |
             * 0x100 when bias, residual and activation are ops of the graph,
             * reserved = the engine's global index */
            bool pw = (s->tactic.math & 0x100) != 0;
            bool any = bias >= 0 || res >= 0 || s->act;
            snprintf(buf, cap, "cudnn graph engine %d (cfg %d%s)%s%s%s%s%s", s->tactic.reserved, s->tactic.algo,
                     (s->tactic.math & 0xff) == 1 ? ", fallback list" : "", any ? (pw ? " +" : " + epilogue ") : "",
                     bias >= 0 ? "bias" : "", res >= 0 ? (bias >= 0 ? "+residual" : "residual") : "",
                     s->act && (bias >= 0 || res >= 0) ? "+" : "", s->act ? kb_act_name(s->act) : "");
            break;
        }
        if (s->tactic.fused == 3) {
            /* a pointwise conv as one cuBLASLt matmul (src/cuda/conv_gemm.c):
             * algo = the place in the heuristic's list; bias, residual and
             * ReLU/GELU(tanh) are in its epilogue, other activations after it */
            snprintf(buf, cap, "cublasLt matmul (algo %d)%s%s%s%s", s->tactic.algo, bias >= 0 ? " +bias" : "",
                     res >= 0 ? " +residual" : "", s->act ? " +" : "", s->act ? kb_act_name(s->act) : "");
            break;
        }
        snprintf(buf, cap, "cudnn algo %d%s%s%s%s%s", s->tactic.algo, s->tactic.fused ? " fused bias" : " + epilogue",
                 res >= 0 ? "+residual" : "", s->act ? "+" : "", kb_act_name(s->act),
                 s->tactic.math == 1 ? " tensor-op" : s->tactic.math == 3 ? " fma" : "");
        break;
    case KB_STEP_EW: snprintf(buf, cap, "ew program %d ins %d inputs", s->prog.n_ins, s->prog.n_in); break;
    case KB_STEP_COPY:
        snprintf(buf, cap, "copy %s %s -> %s %s", dtype_of(p, s->n_in > 0 ? s->in[0] : -1), layout_name(p, s->n_in > 0 ? s->in[0] : -1),
                 dtype_of(p, s->n_out > 0 ? s->out[0] : -1), layout_name(p, s->n_out > 0 ? s->out[0] : -1));
        break;
    default: snprintf(buf, cap, "kiln_cuda_%s", s->node >= 0 && s->node < g->n_nodes ? g->nodes[s->node].op_type : "?");
    }
}

void kb_program_report(const kiln_graph *g, const kb_program *p, bool json, kiln_sbuf *b)
{
    const char *prec = kiln_precision_name((kiln_precision)p->precision, KILN_BACKEND_CUDA);
    if (json) {
        kiln_sbuf_printf(b, "{\"precision\": \"%s\", \"compute_dtype\": \"%s\", \"steps\": [", prec ? prec : "?",
                         kiln_dtype_name(p->compute));
    } else {
        kiln_sbuf_printf(b, "precision %s (float activations in %s)\n", prec ? prec : "?", kiln_dtype_name(p->compute));
        kiln_sbuf_printf(b, "%-4s %-11s %-48s %-5s %-6s %-9s %s\n", "step", "kind", "nodes", "dtype", "layout", "time ms",
                         "kernel");
    }
    for (int i = 0; i < p->n_steps; i++) {
        const kb_step *s = &p->steps[i];
        char nodes[512] = "", kern[160];
        size_t l = 0;
        for (int k = 0; k < s->n_nodes && l < sizeof nodes; k++)
            l += (size_t)snprintf(nodes + l, sizeof nodes - l, "%s%s", k ? "+" : "", g->nodes[s->nodes[k]].op_type);
        if (!s->n_nodes) snprintf(nodes, sizeof nodes, "(layout/dtype change)");
        kb_step_kernel_text(g, p, s, kern, sizeof kern);
        int ot = s->n_out > 0 ? s->out[0] : -1;
        if (ot >= 0 && p->tensors[ot].storage == KB_SLICE) {
            size_t kl = strlen(kern);
            snprintf(kern + kl, sizeof kern - kl, ", into concat '%s'", g->nodes[p->tensors[ot].slice_node].name);
        }
        const char *dt = ot >= 0 ? kiln_dtype_name(p->tensors[ot].dt) : "-";
        const char *name = s->node >= 0 ? g->nodes[s->node].name : "";
        if (json) {
            kiln_sbuf_printf(b, "%s{\"step\": %d, \"kind\": \"%s\", \"node\": ", i ? ", " : "", i, kb_step_kind_name(s->kind));
            kiln_sbuf_json_string(b, name);
            kiln_sbuf_printf(b, ", \"ops\": ");
            kiln_sbuf_json_string(b, nodes);
            kiln_sbuf_printf(b, ", \"dtype\": \"%s\", \"layout\": \"%s\", \"kernel\": ", dt, layout_name(p, ot));
            kiln_sbuf_json_string(b, kern);
            kiln_sbuf_printf(b, ", \"tuned_ms\": %.5f}", s->ms);
        } else {
            char t[16] = "";
            if (s->ms > 0) snprintf(t, sizeof t, "%.4f", s->ms);
            kiln_sbuf_printf(b, "%-4d %-11s %-48.48s %-5s %-6s %-9s %s  %s\n", i, kb_step_kind_name(s->kind), nodes, dt,
                             layout_name(p, ot), t, kern, name);
        }
    }
    /* concat inputs computed in place, and those copied into place */
    int in_place = 0, copied = 0;
    for (int t = 0; t < p->n_tensors; t++) {
        if (p->tensors[t].storage != KB_SLICE) continue;
        bool by_copy = false;
        for (int i = 0; i < p->n_steps; i++)
            if (p->steps[i].kind == KB_STEP_COPY && p->steps[i].out[0] == t &&
                p->tensors[p->steps[i].in[0]].dt == p->tensors[t].dt &&
                p->tensors[p->steps[i].in[0]].layout == p->tensors[t].layout)
                by_copy = true; /* a plain copy, not a conversion that writes in place */
        by_copy ? copied++ : in_place++;
    }
    if (json)
        kiln_sbuf_printf(b,
                         "], \"arena_bytes\": %llu, \"activations_bytes\": %llu, \"workspace_bytes\": %llu, "
                         "\"weight_bytes\": %llu, \"concat_inputs_in_place\": %d, \"concat_inputs_copied\": %d}\n",
                         (unsigned long long)p->arena_bytes, (unsigned long long)p->naive_bytes,
                         (unsigned long long)p->ws_bytes, (unsigned long long)p->weight_bytes, in_place, copied);
    else {
        if (in_place || copied)
            kiln_sbuf_printf(b, "concat: %d inputs written in place into their concat's output, %d copied into it\n",
                             in_place, copied);
        kiln_sbuf_printf(b,
                         "memory: activations planned into %.2f MB (%.2f MB if each had its own), workspace %.2f MB, "
                         "weights %.2f MB\n",
                         (double)p->arena_bytes / 1e6, (double)p->naive_bytes / 1e6, (double)p->ws_bytes / 1e6,
                         (double)p->weight_bytes / 1e6);
    }
}
