/* The `kiln inspect` report: what a model is, what it costs, and what kiln
 * cannot run. The JSON form is a stable schema (docs/inspect-json.md). */
#include "ir/model.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct op_stat {
    const char *op;
    int count;
    double flops;
    bool flops_partial; /* some nodes' shapes were not known */
} op_stat;

typedef struct summary {
    op_stat *ops;
    int n_ops;
    int64_t params, param_bytes;
    double flops;
    bool flops_partial;
    int n_unsupported;
} summary;

static int cmp_count(const void *a, const void *b)
{
    const op_stat *x = a, *y = b;
    if (x->count != y->count) return y->count - x->count;
    return strcmp(x->op, y->op);
}

static bool summarize(const kiln_graph *g, summary *s)
{
    memset(s, 0, sizeof *s);
    s->ops = calloc((size_t)g->n_nodes + 1, sizeof *s->ops);
    if (!s->ops) return false;
    for (int i = 0; i < g->n_nodes; i++) {
        const kiln_node *n = &g->nodes[i];
        int j = 0;
        while (j < s->n_ops && strcmp(s->ops[j].op, n->op_type)) j++;
        if (j == s->n_ops) s->ops[s->n_ops++].op = n->op_type;
        s->ops[j].count++;
        if (n->unsupported) s->n_unsupported++;
        double f = -1;
        if (n->op && n->op->flops && !n->unsupported) {
            bool known = true;
            for (int k = 0; k < n->n_outputs; k++)
                if (n->outputs[k] >= 0 && !kiln_shape_known(&g->values[n->outputs[k]].shape)) known = false;
            for (int k = 0; k < n->n_inputs; k++)
                if (n->inputs[k] >= 0 && !kiln_shape_known(&g->values[n->inputs[k]].shape)) known = false;
            if (known) f = n->op->flops(n, g->values);
        }
        /* folded nodes cost nothing at run time */
        bool folded = n->n_outputs > 0 && n->outputs[0] >= 0 && (g->values[n->outputs[0]].flags & KILN_V_FOLDED);
        if (folded) f = 0;
        if (f < 0) {
            s->ops[j].flops_partial = s->flops_partial = true;
        } else {
            s->ops[j].flops += f;
            s->flops += f;
        }
    }
    for (int i = 0; i < g->n_values; i++) {
        const kiln_value *v = &g->values[i];
        if (!(v->flags & KILN_V_INIT)) continue;
        int64_t cnt = kiln_shape_numel(&v->shape);
        if (cnt < 0) continue;
        s->params += cnt;
        s->param_bytes += cnt * (int64_t)kiln_dtype_size(v->dtype);
    }
    /* Constant nodes carry weights too in torch exports */
    for (int i = 0; i < g->n_nodes; i++) {
        const kiln_node *n = &g->nodes[i];
        if (strcmp(n->op_type, "Constant") || n->n_outputs < 1 || n->outputs[0] < 0) continue;
        const kiln_value *v = &g->values[n->outputs[0]];
        int64_t cnt = kiln_shape_numel(&v->shape);
        if (cnt < 0 || !v->dtype) continue;
        s->params += cnt;
        s->param_bytes += cnt * (int64_t)kiln_dtype_size(v->dtype);
    }
    qsort(s->ops, (size_t)s->n_ops, sizeof *s->ops, cmp_count);
    return true;
}

static void human(char *buf, size_t n, double v, const char *unit)
{
    const char *pre[] = {"", "K", "M", "G", "T", "P"};
    int i = 0;
    while (fabs(v) >= 1000 && i < 5) {
        v /= 1000;
        i++;
    }
    snprintf(buf, n, i ? "%.2f %s%s" : "%.0f %s%s", v, pre[i], unit);
}

static void text_tensor(const kiln_graph *g, kiln_sbuf *b, int x)
{
    char sh[512];
    const kiln_value *v = &g->values[x];
    kiln_sbuf_printf(b, "  %-32s %-6s %s\n", v->name, kiln_dtype_name(v->dtype), kiln_shape_str(g, &v->shape, sh, sizeof sh));
}

void kiln_report_text(const kiln_graph *g, kiln_sbuf *b)
{
    summary s;
    if (!summarize(g, &s)) {
        b->failed = true;
        return;
    }
    char h1[64], h2[64];
    kiln_sbuf_printf(b, "model     %s\n", g->path);
    kiln_sbuf_printf(b, "producer  %s\n", g->producer[0] ? g->producer : "(none)");
    kiln_sbuf_printf(b, "ir        %" PRId64 ", opset %d, %d nodes, %d tensors\n", g->ir_version, g->opset, g->n_nodes,
                     g->n_values);
    kiln_sbuf_printf(b, "\ninputs (%d)\n", g->n_inputs);
    for (int i = 0; i < g->n_inputs; i++) text_tensor(g, b, g->inputs[i]);
    kiln_sbuf_printf(b, "\noutputs (%d)\n", g->n_outputs);
    for (int i = 0; i < g->n_outputs; i++) text_tensor(g, b, g->outputs[i]);
    human(h1, sizeof h1, (double)s.params, "");
    human(h2, sizeof h2, (double)s.param_bytes, "B");
    kiln_sbuf_printf(b, "\nparameters %" PRId64 " (%s), %s\n", s.params, h1, h2);
    human(h1, sizeof h1, s.flops, "FLOP");
    kiln_sbuf_printf(b, "compute    %s per inference%s\n", h1,
                     s.flops_partial ? " (lower bound: some shapes are symbolic; fix them with --shapes)" : "");
    kiln_sbuf_printf(b, "\n  %-24s %6s %14s %7s\n", "op", "count", "FLOPs", "share");
    for (int i = 0; i < s.n_ops; i++) {
        human(h1, sizeof h1, s.ops[i].flops, "");
        kiln_sbuf_printf(b, "  %-24s %6d %13s%s %6.1f%%\n", s.ops[i].op, s.ops[i].count, h1,
                         s.ops[i].flops_partial ? "+" : " ", s.flops > 0 ? 100.0 * s.ops[i].flops / s.flops : 0.0);
    }
    if (s.n_unsupported) {
        kiln_sbuf_printf(b, "\nunsupported nodes (%d): kiln cannot run this model until they are\n", s.n_unsupported);
        for (int i = 0; i < g->n_nodes; i++) {
            const kiln_node *n = &g->nodes[i];
            if (n->unsupported)
                kiln_sbuf_printf(b, "  %-32s %-20s %s\n", n->name,
                                 n->domain[0] ? n->domain : n->op_type, n->unsupported);
        }
    } else {
        kiln_sbuf_printf(b, "\nevery node is supported\n");
    }
    free(s.ops);
}

static void json_shape(const kiln_graph *g, kiln_sbuf *b, const kiln_shape *sh)
{
    if (sh->rank < 0) {
        kiln_sbuf_printf(b, "null");
        return;
    }
    kiln_sbuf_printf(b, "[");
    for (int k = 0; k < sh->rank; k++) {
        int64_t d = sh->d[k];
        if (k) kiln_sbuf_printf(b, ",");
        if (d >= 0)
            kiln_sbuf_printf(b, "%" PRId64, d);
        else if (d != KILN_DIM_UNKNOWN && kiln_dim_sym_id(d) < g->n_symbols)
            kiln_sbuf_json_string(b, g->symbols[kiln_dim_sym_id(d)]);
        else
            kiln_sbuf_printf(b, "\"?\"");
    }
    kiln_sbuf_printf(b, "]");
}

static void json_tensor(const kiln_graph *g, kiln_sbuf *b, int x)
{
    const kiln_value *v = &g->values[x];
    kiln_sbuf_printf(b, "{\"name\":");
    kiln_sbuf_json_string(b, v->name);
    kiln_sbuf_printf(b, ",\"dtype\":\"%s\",\"shape\":", kiln_dtype_name(v->dtype));
    json_shape(g, b, &v->shape);
    kiln_sbuf_printf(b, "}");
}

void kiln_report_json(const kiln_graph *g, bool with_values, kiln_sbuf *b)
{
    summary s;
    if (!summarize(g, &s)) {
        b->failed = true;
        return;
    }
    kiln_sbuf_printf(b, "{\"schema\":\"kiln.inspect/1\",\"kiln_version\":\"%s\",\"model\":{\"path\":", kiln_version_string());
    kiln_sbuf_json_string(b, g->path);
    kiln_sbuf_printf(b, ",\"producer\":");
    kiln_sbuf_json_string(b, g->producer);
    kiln_sbuf_printf(b, ",\"graph_name\":");
    kiln_sbuf_json_string(b, g->name);
    kiln_sbuf_printf(b, ",\"ir_version\":%" PRId64 ",\"opset\":%d,\"nodes\":%d},\"inputs\":[", g->ir_version, g->opset,
                     g->n_nodes);
    for (int i = 0; i < g->n_inputs; i++) {
        if (i) kiln_sbuf_printf(b, ",");
        json_tensor(g, b, g->inputs[i]);
    }
    kiln_sbuf_printf(b, "],\"outputs\":[");
    for (int i = 0; i < g->n_outputs; i++) {
        if (i) kiln_sbuf_printf(b, ",");
        json_tensor(g, b, g->outputs[i]);
    }
    kiln_sbuf_printf(b, "],\"parameters\":{\"count\":%" PRId64 ",\"bytes\":%" PRId64 "},", s.params, s.param_bytes);
    kiln_sbuf_printf(b, "\"flops\":{\"total\":%.0f,\"complete\":%s},\"ops\":[", s.flops, s.flops_partial ? "false" : "true");
    for (int i = 0; i < s.n_ops; i++) {
        kiln_sbuf_printf(b, "%s{\"op\":", i ? "," : "");
        kiln_sbuf_json_string(b, s.ops[i].op);
        kiln_sbuf_printf(b, ",\"count\":%d,\"flops\":%.0f,\"flops_complete\":%s}", s.ops[i].count, s.ops[i].flops,
                         s.ops[i].flops_partial ? "false" : "true");
    }
    kiln_sbuf_printf(b, "],\"unsupported\":[");
    int k = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const kiln_node *n = &g->nodes[i];
        if (!n->unsupported) continue;
        kiln_sbuf_printf(b, "%s{\"node\":", k++ ? "," : "");
        kiln_sbuf_json_string(b, n->name);
        kiln_sbuf_printf(b, ",\"op\":");
        kiln_sbuf_json_string(b, n->op_type);
        kiln_sbuf_printf(b, ",\"domain\":");
        kiln_sbuf_json_string(b, n->domain);
        kiln_sbuf_printf(b, ",\"reason\":");
        kiln_sbuf_json_string(b, n->unsupported);
        kiln_sbuf_printf(b, "}");
    }
    kiln_sbuf_printf(b, "]");
    if (with_values) {
        kiln_sbuf_printf(b, ",\"values\":[");
        for (int i = 0; i < g->n_values; i++) {
            if (i) kiln_sbuf_printf(b, ",");
            json_tensor(g, b, i);
        }
        kiln_sbuf_printf(b, "]");
    }
    kiln_sbuf_printf(b, "}\n");
    free(s.ops);
}
