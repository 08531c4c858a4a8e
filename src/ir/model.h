/* The public kiln_model: an imported graph, shared by reference with the
 * engines built from it. */
#ifndef KILN_MODEL_H
#define KILN_MODEL_H

#include <stdatomic.h>

#include "ir/ir.h"

typedef struct kiln_graph_ref {
    kiln_graph *g;
    atomic_int refs;
} kiln_graph_ref;

struct kiln_model {
    kiln_graph_ref *ref;
};

kiln_graph_ref *kiln_graph_ref_new(kiln_graph *g); /* takes g; NULL on OOM (g freed) */
void kiln_graph_ref_retain(kiln_graph_ref *r);
void kiln_graph_ref_release(kiln_graph_ref *r);

/* Fills a public description of value x of g. */
void kiln_describe_value(const kiln_graph *g, int x, kiln_tensor_desc *out);

/* Appends the inspect report of g to b (report.c). */
void kiln_report_text(const kiln_graph *g, kiln_sbuf *b);
void kiln_report_json(const kiln_graph *g, bool with_values, kiln_sbuf *b);

#endif
