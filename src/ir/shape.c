/* Shape helpers shared by every op's shape rule. */
#include "ir/ir.h"

#include <stdlib.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

bool kiln_shape_known(const kiln_shape *s)
{
    if (s->rank < 0) return false;
    for (int i = 0; i < s->rank; i++)
        if (s->d[i] < 0) return false;
    return true;
}

int64_t kiln_shape_numel(const kiln_shape *s)
{
    if (!kiln_shape_known(s)) return -1;
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++)
        if (__builtin_mul_overflow(n, s->d[i], &n)) return -1; /* a hostile file: no such tensor can exist */
    return n;
}

bool kiln_dim_equal(int64_t a, int64_t b) { return a == b && a != KILN_DIM_UNKNOWN; }

/* ONNX Broadcasting.md: align on the right; a dim of 1 stretches. */
kiln_status kiln_broadcast(const kiln_shape *a, const kiln_shape *b, kiln_shape *out)
{
    if (a->rank < 0 || b->rank < 0) {
        out->rank = -1;
        return KILN_OK;
    }
    int r = a->rank > b->rank ? a->rank : b->rank;
    kiln_shape o = {.rank = r};
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        int64_t da = ia >= 0 ? a->d[ia] : 1, db = ib >= 0 ? b->d[ib] : 1;
        if (da == 1)
            o.d[i] = db;
        else if (db == 1)
            o.d[i] = da;
        else if (da >= 0 && db >= 0) {
            if (da != db)
                return kiln_fail(KILN_ERR_SHAPE, "cannot broadcast dim %d: %" PRId64 " vs %" PRId64, i, da, db);
            o.d[i] = da;
        } else if (kiln_dim_equal(da, db))
            o.d[i] = da;
        else if (da >= 0)
            o.d[i] = da; /* the symbol must be 1 or equal: the concrete one wins */
        else if (db >= 0)
            o.d[i] = db;
        else
            o.d[i] = KILN_DIM_UNKNOWN;
    }
    *out = o;
    return KILN_OK;
}

kiln_status kiln_axis(int64_t axis, int rank, int *out)
{
    if (axis < -(int64_t)rank || axis >= rank)
        return kiln_fail(KILN_ERR_SHAPE, "axis %" PRId64 " is out of range for rank %d", axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return KILN_OK;
}

const char *kiln_shape_str(const kiln_graph *g, const kiln_shape *s, char *buf, size_t n)
{
    if (s->rank < 0) {
        snprintf(buf, n, "[?]");
        return buf;
    }
    size_t p = 0;
    p += (size_t)snprintf(buf + p, p < n ? n - p : 0, "[");
    for (int i = 0; i < s->rank; i++) {
        const char *sep = i ? "," : "";
        int64_t d = s->d[i];
        if (d >= 0)
            p += (size_t)snprintf(buf + p, p < n ? n - p : 0, "%s%" PRId64, sep, d);
        else if (d != KILN_DIM_UNKNOWN && g && kiln_dim_sym_id(d) < g->n_symbols)
            p += (size_t)snprintf(buf + p, p < n ? n - p : 0, "%s%s", sep, g->symbols[kiln_dim_sym_id(d)]);
        else
            p += (size_t)snprintf(buf + p, p < n ? n - p : 0, "%s?", sep);
    }
    snprintf(buf + p, p < n ? n - p : 0, "]");
    return buf;
}

size_t kiln_value_bytes(const kiln_value *v)
{
    int64_t n = kiln_shape_numel(&v->shape);
    return n < 0 ? 0 : (size_t)n * kiln_dtype_size(v->dtype);
}

kiln_status kiln_value_ints(const kiln_value *v, int64_t *out, int max, int *n)
{
    if (!v->data) return kiln_fail(KILN_ERR_UNSUPPORTED, "'%s' is not known at build time", v->name);
    if (v->dtype != KILN_I64 && v->dtype != KILN_I32)
        return kiln_fail(KILN_ERR_SHAPE, "'%s' must be int64 or int32, is %s", v->name, kiln_dtype_name(v->dtype));
    if (v->shape.rank > 1) return kiln_fail(KILN_ERR_SHAPE, "'%s' must be 0-D or 1-D, has rank %d", v->name, v->shape.rank);
    int64_t cnt = kiln_shape_numel(&v->shape);
    if (cnt < 0 || cnt > max)
        return kiln_fail(KILN_ERR_SHAPE, "'%s' has %" PRId64 " elements, at most %d allowed", v->name, cnt, max);
    for (int64_t i = 0; i < cnt; i++) out[i] = kiln_load_i64(v->dtype, v->data, i);
    *n = (int)cnt;
    return KILN_OK;
}

bool kiln_parse_dims(const char *text, int *rank, int64_t *dims)
{
    *rank = 0;
    for (const char *p = text; *p;) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || *rank >= KILN_MAX_RANK) return false;
        dims[(*rank)++] = v;
        if (*end == 'x' || *end == 'X')
            end++;
        else if (*end)
            return false;
        p = end;
    }
    return true;
}
