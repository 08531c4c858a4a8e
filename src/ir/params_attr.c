/* Attribute readers for the op parameter parsers (src/ir/params_*.c): a
 * missing attribute (or one of IR < 3 without type or value) gives the
 * default; one of the wrong type, or of a value kiln does not implement,
 * fails naming the op, the attribute and the value. */
#include "ir/ir.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *type_name(kiln_attr_type t)
{
    switch (t) {
    case KILN_ATTR_FLOAT: return "a float";
    case KILN_ATTR_INT: return "an int";
    case KILN_ATTR_STRING: return "a string";
    case KILN_ATTR_TENSOR: return "a tensor";
    case KILN_ATTR_GRAPH: return "a graph";
    case KILN_ATTR_FLOATS: return "a list of floats";
    case KILN_ATTR_INTS: return "a list of ints";
    case KILN_ATTR_STRINGS: return "a list of strings";
    default: return "of an unknown type";
    }
}

/* The attribute, NULL when absent (or typeless: nothing to read). */
static const kiln_attr *find(const kiln_node *n, const char *name)
{
    const kiln_attr *a = kiln_attr_find(n, name);
    return a && a->type != KILN_ATTR_UNDEFINED ? a : NULL;
}

static kiln_status wrong_type(const kiln_node *n, const kiln_attr *a, const char *want)
{
    return kiln_fail(KILN_ERR_FORMAT, "%s attribute '%s' is %s, expected %s", n->op_type, a->name, type_name(a->type),
                     want);
}

bool kiln_pa_has(const kiln_node *n, const char *name) { return find(n, name) != NULL; }

kiln_status kiln_pa_int(const kiln_node *n, const char *name, int64_t def, int64_t *out)
{
    const kiln_attr *a = find(n, name);
    *out = def;
    if (!a) return KILN_OK;
    if (a->type != KILN_ATTR_INT) return wrong_type(n, a, "an int");
    *out = a->i;
    return KILN_OK;
}

kiln_status kiln_pa_bool(const kiln_node *n, const char *name, bool def, bool *out)
{
    int64_t v;
    kiln_status st = kiln_pa_int(n, name, def ? 1 : 0, &v);
    *out = v != 0; /* as every kernel read it: any non-zero is true */
    return st;
}

kiln_status kiln_pa_float(const kiln_node *n, const char *name, float def, float *out)
{
    const kiln_attr *a = find(n, name);
    *out = def;
    if (!a) return KILN_OK;
    if (a->type == KILN_ATTR_FLOAT) *out = a->f;
    else if (a->type == KILN_ATTR_INT) *out = (float)a->i;
    else return wrong_type(n, a, "a float");
    return KILN_OK;
}

kiln_status kiln_pa_string(const kiln_node *n, const char *name, const char *def, const char **out)
{
    const kiln_attr *a = find(n, name);
    *out = def;
    if (!a) return KILN_OK;
    if (a->type != KILN_ATTR_STRING) return wrong_type(n, a, "a string");
    *out = a->s;
    return KILN_OK;
}

kiln_status kiln_pa_enum(const kiln_node *n, const char *name, int def, const char *const *names, int count, int *out)
{
    const kiln_attr *a = find(n, name);
    *out = def;
    if (!a) return KILN_OK;
    if (a->type != KILN_ATTR_STRING) return wrong_type(n, a, "a string");
    for (int i = 0; i < count; i++)
        if (!strcmp(a->s, names[i])) {
            *out = i;
            return KILN_OK;
        }
    char list[256] = "";
    size_t len = 0;
    for (int i = 0; i < count && len < sizeof list; i++) {
        int w = snprintf(list + len, sizeof list - len, "%s%s", i == 0 ? "" : i == count - 1 ? " or " : ", ", names[i]);
        if (w < 0) break;
        len += (size_t)w;
    }
    return kiln_fail(KILN_ERR_UNSUPPORTED, "%s attribute '%s' is '%s', which is not supported; kiln implements %s",
                     n->op_type, name, a->s, list);
}

kiln_status kiln_pa_ints(const kiln_node *n, const char *name, int max, int64_t *out, int *cnt)
{
    const kiln_attr *a = find(n, name);
    *cnt = 0;
    if (!a) return KILN_OK;
    if (a->type != KILN_ATTR_INTS) return wrong_type(n, a, "a list of ints");
    if (a->n > max)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "%s attribute '%s' has %d values; kiln takes at most %d", n->op_type, name,
                         a->n, max);
    for (int i = 0; i < a->n; i++) out[i] = a->ints[i];
    *cnt = a->n;
    return KILN_OK;
}

kiln_status kiln_pa_ints_min(const kiln_node *n, const char *name, int max, int64_t min, int64_t *out, int *cnt)
{
    kiln_status st = kiln_pa_ints(n, name, max, out, cnt);
    if (st != KILN_OK) return st;
    for (int i = 0; i < *cnt; i++)
        if (out[i] < min)
            return kiln_fail(KILN_ERR_FORMAT, "%s attribute '%s' has value %" PRId64 ", must be >= %" PRId64, n->op_type,
                             name, out[i], min);
    return KILN_OK;
}

kiln_status kiln_pa_int_required(const kiln_node *n, const char *name, int64_t *out)
{
    *out = 0;
    if (!find(n, name)) return kiln_fail(KILN_ERR_FORMAT, "%s attribute '%s' (an int) is required", n->op_type, name);
    return kiln_pa_int(n, name, 0, out);
}

kiln_status kiln_pa_auto_pad(const kiln_node *n, kiln_auto_pad *out)
{
    static const char *const names[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};
    const kiln_attr *a = find(n, "auto_pad");
    int ap = KILN_AUTO_PAD_NOTSET;
    kiln_status st = KILN_OK;
    if (!(a && a->type == KILN_ATTR_STRING && !a->s[0])) /* "" is NOTSET too */
        st = kiln_pa_enum(n, "auto_pad", KILN_AUTO_PAD_NOTSET, names, 4, &ap);
    *out = (kiln_auto_pad)ap;
    return st;
}
