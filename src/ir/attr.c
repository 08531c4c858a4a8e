/* Attribute look-up with ONNX defaults. */
#include "ir/ir.h"

#include <string.h>

const kiln_attr *kiln_attr_find(const kiln_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name)) return &n->attrs[i];
    return NULL;
}

int64_t kiln_attr_int(const kiln_node *n, const char *name, int64_t def)
{
    const kiln_attr *a = kiln_attr_find(n, name);
    return a && a->type == KILN_ATTR_INT ? a->i : def;
}

float kiln_attr_float(const kiln_node *n, const char *name, float def)
{
    const kiln_attr *a = kiln_attr_find(n, name);
    if (!a) return def;
    if (a->type == KILN_ATTR_FLOAT) return a->f;
    if (a->type == KILN_ATTR_INT) return (float)a->i;
    return def;
}

const char *kiln_attr_string(const kiln_node *n, const char *name, const char *def)
{
    const kiln_attr *a = kiln_attr_find(n, name);
    return a && a->type == KILN_ATTR_STRING ? a->s : def;
}

int kiln_attr_ints(const kiln_node *n, const char *name, const int64_t **out)
{
    const kiln_attr *a = kiln_attr_find(n, name);
    if (!a || a->type != KILN_ATTR_INTS) {
        *out = NULL;
        return 0;
    }
    *out = a->ints;
    return a->n;
}
