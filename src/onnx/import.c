/* ONNX import: protobuf (protobuf-c, kiln_onnx.proto) -> kiln IR.
 *
 * The parsed protobuf is kept alive by the graph: initializers given as
 * raw_data are used in place, not copied again; external data is mapped
 * from its file. Everything kiln cannot represent is refused here with the
 * file and tensor or node named. */
#include "onnx/onnx.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln_onnx.pb-c.h"

/* ONNX TensorProto.DataType values kiln represents share kiln_dtype's
 * numbering; anything else is refused. */
static kiln_dtype dtype_from_onnx(int32_t t)
{
    switch (t) {
    case 1: case 2: case 3: case 6: case 7: case 9: case 10: case 11: case 16: case 17:
        return (kiln_dtype)t;
    default:
        return KILN_DTYPE_UNDEFINED;
    }
}

static const char *onnx_dtype_name(int32_t t)
{
    static const char *names[] = {"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32",
                                  "INT64", "STRING", "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64",
                                  "COMPLEX64", "COMPLEX128", "BFLOAT16", "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ",
                                  "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4", "FLOAT4E2M1"};
    return t >= 0 && t < (int32_t)(sizeof names / sizeof names[0]) ? names[t] : "unknown";
}

typedef struct importer {
    kiln_graph *g;
    const char *path;
    const char *dir; /* real path of the model's folder, NULL: no external data */
    int anonymous_dims; /* anonymous input dims named so far ("?1", "?2", ...) */
} importer;

/* ------------------------------------------------------------ external data */

static kiln_status map_external(importer *im, const KilnOnnx__TensorProto *t, size_t want, void **out)
{
    const char *location = NULL;
    int64_t offset = 0, length = -1;
    for (size_t i = 0; i < t->n_external_data; i++) {
        const KilnOnnx__StringStringEntryProto *e = t->external_data[i];
        if (!e->key || !e->value) continue;
        if (!strcmp(e->key, "location"))
            location = e->value;
        else if (!strcmp(e->key, "offset"))
            offset = strtoll(e->value, NULL, 10);
        else if (!strcmp(e->key, "length"))
            length = strtoll(e->value, NULL, 10);
    }
    const char *tname = t->name ? t->name : "";
    if (!location || !location[0])
        return kiln_fail(KILN_ERR_FORMAT, "%s: tensor '%s' is external but names no location", im->path, tname);
    if (!im->dir)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT,
                         "%s: tensor '%s' has external data ('%s') but the model was loaded from memory "
                         "without a base folder",
                         im->path, tname, location);
    if (location[0] == '/')
        return kiln_fail(KILN_ERR_FORMAT,
                         "%s: tensor '%s': external data location '%s' is an absolute path; ONNX requires "
                         "a path relative to the model's folder",
                         im->path, tname, location);
    char joined[PATH_MAX], real[PATH_MAX];
    if (snprintf(joined, sizeof joined, "%s/%s", im->dir, location) >= (int)sizeof joined)
        return kiln_fail(KILN_ERR_FORMAT, "%s: tensor '%s': external data path is too long", im->path, tname);
    if (!realpath(joined, real))
        return kiln_fail(KILN_ERR_IO, "%s: tensor '%s': cannot open external data '%s': %s", im->path, tname,
                         joined, strerror(errno));
    size_t dl = strlen(im->dir);
    /* refuse a location that resolves (through '..' or links) outside the
     * model's folder: a model must not read arbitrary files */
    if (strncmp(real, im->dir, dl) != 0 || (real[dl] != '/' && strcmp(im->dir, "/") != 0))
        return kiln_fail(KILN_ERR_FORMAT,
                         "%s: tensor '%s': external data location '%s' resolves to '%s', outside the "
                         "model's folder '%s'; refused",
                         im->path, tname, location, real, im->dir);
    int fd = open(real, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return kiln_fail(KILN_ERR_IO, "%s: tensor '%s': cannot open external data '%s': %s", im->path, tname,
                         real, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return kiln_fail(KILN_ERR_IO, "%s: tensor '%s': external data '%s' is not a regular file", im->path,
                         tname, real);
    }
    if (length < 0) length = (int64_t)want;
    if (offset < 0 || (size_t)length != want || offset + length > st.st_size) {
        close(fd);
        return kiln_fail(KILN_ERR_FORMAT,
                         "%s: tensor '%s': external data '%s' holds %" PRId64 " bytes; offset %" PRId64
                         " + length %" PRId64 " (tensor needs %zu) does not fit",
                         im->path, tname, location, (int64_t)st.st_size, offset, length, want);
    }
    if (want == 0) {
        close(fd);
        *out = kiln_graph_alloc(im->g, 1);
        return *out ? KILN_OK : KILN_ERR_OUT_OF_MEMORY;
    }
    long page = sysconf(_SC_PAGESIZE);
    off_t base = (off_t)(offset / page * page);
    size_t len = (size_t)(offset - base) + want;
    void *addr = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, base);
    close(fd);
    if (addr == MAP_FAILED)
        return kiln_fail(KILN_ERR_IO, "%s: tensor '%s': cannot map external data '%s': %s", im->path, tname,
                         real, strerror(errno));
    kiln_mapping *m = kiln_xmalloc(sizeof *m);
    if (!m) {
        munmap(addr, len);
        return KILN_ERR_OUT_OF_MEMORY;
    }
    m->addr = addr;
    m->len = len;
    m->next = im->g->mappings;
    im->g->mappings = m;
    unsigned char *p = (unsigned char *)addr + (offset - base);
    if (((uintptr_t)p % 16) != 0) {
        /* kernels read typed elements: give them an aligned copy */
        void *c = kiln_graph_alloc(im->g, want);
        if (!c) return KILN_ERR_OUT_OF_MEMORY;
        memcpy(c, p, want);
        p = c;
    }
    *out = p;
    return KILN_OK;
}

/* ------------------------------------------------------------------ tensors */

/* Fills v (dtype, shape, data) from a TensorProto; `what` names it. */
static kiln_status tensor_to_value(importer *im, const KilnOnnx__TensorProto *t, kiln_value *v, const char *what)
{
    const char *tname = t->name && t->name[0] ? t->name : what;
    kiln_dtype dt = dtype_from_onnx(t->data_type);
    if (!dt)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "%s: tensor '%s' has element type %s (%d), which kiln does not support",
                         im->path, tname, onnx_dtype_name(t->data_type), t->data_type);
    if (t->n_dims > KILN_MAX_RANK)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "%s: tensor '%s' has rank %zu; kiln supports up to %d", im->path,
                         tname, t->n_dims, KILN_MAX_RANK);
    v->dtype = dt;
    v->shape.rank = (int)t->n_dims;
    uint64_t count = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0 || (t->dims[i] > 0 && count > (UINT64_MAX >> 8) / (uint64_t)t->dims[i]))
            return kiln_fail(KILN_ERR_FORMAT, "%s: tensor '%s' has an invalid dim %" PRId64, im->path, tname,
                             t->dims[i]);
        v->shape.d[i] = t->dims[i];
        count *= (uint64_t)t->dims[i];
    }
    size_t esize = kiln_dtype_size(dt);
    size_t bytes = (size_t)count * esize;

    if (t->has_data_location && t->data_location == KILN_ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return map_external(im, t, bytes, &v->data);

    if (t->has_raw_data) {
        if (t->raw_data.len != bytes)
            return kiln_fail(KILN_ERR_FORMAT, "%s: tensor '%s' has %zu bytes of raw data, its shape needs %zu",
                             im->path, tname, t->raw_data.len, bytes);
        if (bytes && ((uintptr_t)t->raw_data.data % 16) == 0) {
            v->data = t->raw_data.data; /* used in place: the proto lives as long as the graph */
            return KILN_OK;
        }
        v->data = kiln_graph_alloc(im->g, bytes + 1);
        if (!v->data) return KILN_ERR_OUT_OF_MEMORY;
        if (bytes) memcpy(v->data, t->raw_data.data, bytes);
        return KILN_OK;
    }
    /* typed fields: ONNX stores f16/bf16/f8/bool/i8/u8 bit patterns in int32_data */
    size_t have;
    switch (dt) {
    case KILN_F32: have = t->n_float_data; break;
    case KILN_F64: have = t->n_double_data; break;
    case KILN_I64: have = t->n_int64_data; break;
    default: have = t->n_int32_data; break;
    }
    if (have != count)
        return kiln_fail(KILN_ERR_FORMAT, "%s: tensor '%s' has %zu values, its shape [%" PRIu64 " elements] needs %" PRIu64,
                         im->path, tname, have, count, count);
    v->data = kiln_graph_alloc(im->g, bytes + 1);
    if (!v->data) return KILN_ERR_OUT_OF_MEMORY;
    if (!count) return KILN_OK; /* an empty tensor: the typed field may be absent */
    switch (dt) {
    case KILN_F32: memcpy(v->data, t->float_data, bytes); break;
    case KILN_F64: memcpy(v->data, t->double_data, bytes); break;
    case KILN_I64: memcpy(v->data, t->int64_data, bytes); break;
    case KILN_I32: memcpy(v->data, t->int32_data, bytes); break;
    case KILN_F16: case KILN_BF16:
        for (size_t i = 0; i < count; i++) ((uint16_t *)v->data)[i] = (uint16_t)t->int32_data[i];
        break;
    default:
        for (size_t i = 0; i < count; i++) ((uint8_t *)v->data)[i] = (uint8_t)t->int32_data[i];
        break;
    }
    return KILN_OK;
}

/* --------------------------------------------------------------- attributes */

static kiln_status convert_attr(importer *im, const KilnOnnx__NodeProto *np, const char *node_name,
                                const KilnOnnx__AttributeProto *ap, kiln_attr *a)
{
    kiln_arena *ar = &im->g->arena;
    a->name = kiln_arena_strdup(ar, ap->name ? ap->name : "");
    if (!a->name) return KILN_ERR_OUT_OF_MEMORY;
    int type = ap->has_type ? (int)ap->type : 0;
    if (!type) {
        /* IR < 3 files omit the type: infer it from the one field set */
        if (ap->t) type = KILN_ATTR_TENSOR;
        else if (ap->g) type = KILN_ATTR_GRAPH;
        else if (ap->n_floats) type = KILN_ATTR_FLOATS;
        else if (ap->n_ints) type = KILN_ATTR_INTS;
        else if (ap->n_strings) type = KILN_ATTR_STRINGS;
        else if (ap->has_s) type = KILN_ATTR_STRING;
        else if (ap->has_f) type = KILN_ATTR_FLOAT;
        else if (ap->has_i) type = KILN_ATTR_INT;
    }
    a->type = (kiln_attr_type)type;
    switch (type) {
    case KILN_ATTR_FLOAT: a->f = ap->f; break;
    case KILN_ATTR_INT: a->i = ap->i; break;
    case KILN_ATTR_STRING: {
        char *s = kiln_arena_alloc(ar, ap->s.len + 1);
        if (!s) return KILN_ERR_OUT_OF_MEMORY;
        if (ap->s.len) memcpy(s, ap->s.data, ap->s.len);
        a->s = s;
        break;
    }
    case KILN_ATTR_FLOATS: a->n = (int)ap->n_floats; a->floats = ap->floats; break;
    case KILN_ATTR_INTS: a->n = (int)ap->n_ints; a->ints = ap->ints; break;
    case KILN_ATTR_STRINGS: {
        const char **ss = kiln_arena_alloc(ar, (ap->n_strings + 1) * sizeof *ss);
        if (!ss) return KILN_ERR_OUT_OF_MEMORY;
        for (size_t i = 0; i < ap->n_strings; i++) {
            char *s = kiln_arena_alloc(ar, ap->strings[i].len + 1);
            if (!s) return KILN_ERR_OUT_OF_MEMORY;
            if (ap->strings[i].len) memcpy(s, ap->strings[i].data, ap->strings[i].len);
            ss[i] = s;
        }
        a->n = (int)ap->n_strings;
        a->strings = ss;
        break;
    }
    case KILN_ATTR_TENSOR: {
        if (!ap->t)
            return kiln_fail(KILN_ERR_FORMAT, "%s: node '%s': attribute '%s' is a tensor but holds none", im->path,
                             node_name, a->name);
        a->t = kiln_arena_alloc(ar, sizeof *a->t);
        if (!a->t) return KILN_ERR_OUT_OF_MEMORY;
        a->t->name = a->name;
        a->t->producer = -1;
        a->t->flags = KILN_V_INIT;
        kiln_status st = tensor_to_value(im, ap->t, a->t, a->name);
        if (st != KILN_OK) return kiln_fail_prefix(st, "node '%s' (%s): attribute '%s': ", node_name, np->op_type, a->name);
        break;
    }
    default:
        /* graphs, sparse tensors, type protos: kept as a typed marker; the ops
         * that take them (If, Loop, ...) are not in kiln's set and are
         * reported unsupported by the registry */
        break;
    }
    return KILN_OK;
}

/* ------------------------------------------------------------------- types */

static kiln_status value_type(importer *im, const KilnOnnx__ValueInfoProto *vi, kiln_dtype *dt, kiln_shape *shape,
                              const char *role)
{
    *dt = KILN_DTYPE_UNDEFINED;
    shape->rank = -1;
    const KilnOnnx__TypeProto *tp = vi->type;
    if (!tp) return KILN_OK; /* untyped: inferred later (outputs) */
    if (tp->value_case != KILN_ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "%s: %s '%s' is not a tensor (sequence/map/optional types are not supported)",
                         im->path, role, vi->name);
    const KilnOnnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->elem_type) {
        *dt = dtype_from_onnx(tt->elem_type);
        if (!*dt)
            return kiln_fail(KILN_ERR_UNSUPPORTED, "%s: %s '%s' has element type %s, which kiln does not support",
                             im->path, role, vi->name, onnx_dtype_name(tt->elem_type));
    }
    if (!tt->shape) return KILN_OK;
    if (tt->shape->n_dim > KILN_MAX_RANK)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "%s: %s '%s' has rank %zu; kiln supports up to %d", im->path, role,
                         vi->name, tt->shape->n_dim, KILN_MAX_RANK);
    shape->rank = (int)tt->shape->n_dim;
    for (size_t i = 0; i < tt->shape->n_dim; i++) {
        const KilnOnnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        bool has_value = d->value_case == KILN_ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        bool has_param = d->value_case == KILN_ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
        if (has_value && d->dim_value >= 0) {
            shape->d[i] = d->dim_value;
        } else if (has_param && d->dim_param[0] && strcmp(d->dim_param, "?")) {
            /* a named dim: equal to every dim of the same name */
            int s = kiln_graph_symbol(im->g, d->dim_param);
            if (s < 0) return KILN_ERR_OUT_OF_MEMORY;
            shape->d[i] = kiln_dim_sym(s);
        } else if (!strcmp(role, "input")) {
            /* '?', an empty name, -1 or nothing: unknown and anonymous, tied
             * to no other dim (exporters write [-1,3,'?','?'] for free H and
             * W). A graph input's dim still needs a symbol of its own, so
             * that profiles and run-time shapes can bind it: "?1", "?2", ...
             * (a name no exporter gives, since '?' itself means anonymous) */
            char name[32];
            snprintf(name, sizeof name, "?%d", ++im->anonymous_dims);
            int s = kiln_graph_symbol(im->g, name);
            if (s < 0) return KILN_ERR_OUT_OF_MEMORY;
            shape->d[i] = kiln_dim_sym(s);
        } else {
            shape->d[i] = KILN_DIM_UNKNOWN;
        }
    }
    return KILN_OK;
}

/* -------------------------------------------------------------------- graph */

static int opset_of(const KilnOnnx__ModelProto *m, const char *domain)
{
    bool dflt = !domain || !domain[0] || !strcmp(domain, "ai.onnx");
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const char *d = m->opset_import[i]->domain;
        bool idflt = !d || !d[0] || !strcmp(d, "ai.onnx");
        if ((dflt && idflt) || (!dflt && !idflt && !strcmp(d, domain))) return (int)m->opset_import[i]->version;
    }
    return 0;
}

static kiln_status import_graph(importer *im, const KilnOnnx__ModelProto *m)
{
    kiln_graph *g = im->g;
    const KilnOnnx__GraphProto *gp = m->graph;
    kiln_status st;

    g->ir_version = m->has_ir_version ? m->ir_version : 0;
    g->producer = kiln_arena_printf(&g->arena, "%s%s%s", m->producer_name ? m->producer_name : "",
                                    m->producer_version && m->producer_version[0] ? " " : "",
                                    m->producer_version ? m->producer_version : "");
    g->name = kiln_arena_strdup(&g->arena, gp->name ? gp->name : "");
    g->opset = opset_of(m, "");
    if (!g->producer || !g->name) return KILN_ERR_OUT_OF_MEMORY;
    if (g->opset == 0)
        return kiln_fail(KILN_ERR_FORMAT, "%s: the model imports no default-domain (ai.onnx) opset", im->path);
    if (g->opset < KILN_MIN_OPSET || g->opset > KILN_MAX_OPSET)
        return kiln_fail(KILN_ERR_UNSUPPORTED,
                         "%s: the model uses ONNX opset %d; kiln reads opsets %d to %d (re-export with "
                         "opset_version in that range, or convert with onnx.version_converter)",
                         im->path, g->opset, KILN_MIN_OPSET, KILN_MAX_OPSET);

    for (size_t i = 0; i < gp->n_initializer; i++) {
        const KilnOnnx__TensorProto *t = gp->initializer[i];
        if (!t->name || !t->name[0])
            return kiln_fail(KILN_ERR_FORMAT, "%s: initializer #%zu has no name", im->path, i);
        int x = kiln_graph_value(g, t->name);
        if (x < 0) return KILN_ERR_OUT_OF_MEMORY;
        kiln_value *v = &g->values[x];
        if (v->flags & KILN_V_INIT)
            return kiln_fail(KILN_ERR_FORMAT, "%s: initializer '%s' is defined twice", im->path, t->name);
        v->flags |= KILN_V_INIT;
        st = tensor_to_value(im, t, v, t->name);
        if (st != KILN_OK) return st;
    }

    g->inputs = kiln_arena_alloc(&g->arena, (gp->n_input + 1) * sizeof(int));
    if (!g->inputs) return KILN_ERR_OUT_OF_MEMORY;
    for (size_t i = 0; i < gp->n_input; i++) {
        const KilnOnnx__ValueInfoProto *vi = gp->input[i];
        if (!vi->name || !vi->name[0]) return kiln_fail(KILN_ERR_FORMAT, "%s: graph input #%zu has no name", im->path, i);
        int x = kiln_graph_value(g, vi->name);
        if (x < 0) return KILN_ERR_OUT_OF_MEMORY;
        /* IR < 4 lists initializers among the inputs too: they stay constants */
        if (g->values[x].flags & KILN_V_INIT) continue;
        kiln_dtype dt;
        kiln_shape sh;
        st = value_type(im, vi, &dt, &sh, "input");
        if (st != KILN_OK) return st;
        if (!dt) return kiln_fail(KILN_ERR_FORMAT, "%s: input '%s' declares no element type", im->path, vi->name);
        if (sh.rank < 0)
            return kiln_fail(KILN_ERR_UNSUPPORTED, "%s: input '%s' declares no shape; kiln needs at least its rank",
                             im->path, vi->name);
        g->values[x].dtype = dt;
        g->values[x].shape = sh;
        g->values[x].flags |= KILN_V_INPUT;
        g->inputs[g->n_inputs++] = x;
    }

    g->outputs = kiln_arena_alloc(&g->arena, (gp->n_output + 1) * sizeof(int));
    g->declared = kiln_arena_alloc(&g->arena, (gp->n_output + 1) * sizeof(kiln_shape));
    g->declared_dtype = kiln_arena_alloc(&g->arena, (gp->n_output + 1) * sizeof(kiln_dtype));
    if (!g->outputs || !g->declared || !g->declared_dtype) return KILN_ERR_OUT_OF_MEMORY;
    for (size_t i = 0; i < gp->n_output; i++) {
        const KilnOnnx__ValueInfoProto *vi = gp->output[i];
        if (!vi->name || !vi->name[0]) return kiln_fail(KILN_ERR_FORMAT, "%s: graph output #%zu has no name", im->path, i);
        int x = kiln_graph_value(g, vi->name);
        if (x < 0) return KILN_ERR_OUT_OF_MEMORY;
        st = value_type(im, vi, &g->declared_dtype[g->n_outputs], &g->declared[g->n_outputs], "output");
        if (st != KILN_OK) return st;
        g->values[x].flags |= KILN_V_OUTPUT;
        g->outputs[g->n_outputs++] = x;
    }
    if (!g->n_outputs) return kiln_fail(KILN_ERR_FORMAT, "%s: the graph has no outputs", im->path);

    for (size_t i = 0; i < gp->n_node; i++) {
        const KilnOnnx__NodeProto *np = gp->node[i];
        kiln_node *n = kiln_graph_add_node(g);
        if (!n) return KILN_ERR_OUT_OF_MEMORY;
        const char *op = np->op_type ? np->op_type : "";
        if (!op[0]) return kiln_fail(KILN_ERR_FORMAT, "%s: node #%zu has no op_type", im->path, i);
        n->op_type = kiln_arena_strdup(&g->arena, op);
        n->domain = kiln_arena_strdup(&g->arena, np->domain ? np->domain : "");
        n->name = np->name && np->name[0] ? kiln_arena_strdup(&g->arena, np->name)
                                          : kiln_arena_printf(&g->arena, "%s_%zu", op, i);
        n->opset = opset_of(m, n->domain);
        n->inputs = kiln_arena_alloc(&g->arena, (np->n_input + 1) * sizeof(int));
        n->outputs = kiln_arena_alloc(&g->arena, (np->n_output + 1) * sizeof(int));
        n->attrs = kiln_arena_alloc(&g->arena, (np->n_attribute + 1) * sizeof(kiln_attr));
        if (!n->op_type || !n->domain || !n->name || !n->inputs || !n->outputs || !n->attrs)
            return KILN_ERR_OUT_OF_MEMORY;
        for (size_t k = 0; k < np->n_input; k++) {
            const char *nm = np->input[k];
            int x = nm && nm[0] ? kiln_graph_value(g, nm) : -1;
            if (nm && nm[0] && x < 0) return KILN_ERR_OUT_OF_MEMORY;
            n->inputs[n->n_inputs++] = x;
        }
        for (size_t k = 0; k < np->n_output; k++) {
            const char *nm = np->output[k];
            int x = nm && nm[0] ? kiln_graph_value(g, nm) : -1;
            if (nm && nm[0] && x < 0) return KILN_ERR_OUT_OF_MEMORY;
            n->outputs[n->n_outputs++] = x;
        }
        for (size_t k = 0; k < np->n_attribute; k++) {
            st = convert_attr(im, np, n->name, np->attribute[k], &n->attrs[n->n_attrs]);
            if (st != KILN_OK) return st;
            n->n_attrs++;
        }
    }
    return KILN_OK;
}

static void free_proto(void *p) { kiln_onnx__model_proto__free_unpacked(p, NULL); }

kiln_status kiln_onnx_import(const void *bytes, size_t size, const char *path, const char *dir, kiln_graph **out)
{
    *out = NULL;
    if (size == 0) return kiln_fail(KILN_ERR_FORMAT, "%s: the file is empty, not an ONNX model", path);
    KilnOnnx__ModelProto *m = kiln_onnx__model_proto__unpack(NULL, size, bytes);
    if (!m)
        return kiln_fail(KILN_ERR_FORMAT,
                         "%s: not a valid ONNX model: the protobuf does not parse (truncated or not an ONNX file)",
                         path);
    if (!m->graph || !m->has_ir_version) {
        const char *missing = !m->graph ? "graph" : "ir_version";
        kiln_onnx__model_proto__free_unpacked(m, NULL);
        return kiln_fail(KILN_ERR_FORMAT, "%s: not an ONNX model: no %s", path, missing);
    }
    kiln_graph *g = kiln_graph_new(path);
    if (!g) {
        kiln_onnx__model_proto__free_unpacked(m, NULL);
        return KILN_ERR_OUT_OF_MEMORY;
    }
    g->proto = m;
    g->proto_free = free_proto;
    g->dir = dir ? kiln_arena_strdup(&g->arena, dir) : NULL;
    importer im = {.g = g, .path = g->path, .dir = g->dir};
    kiln_status st = import_graph(&im, m);
    /* older op versions become their native forms before anything reads them */
    if (st == KILN_OK) st = kiln_graph_adapt(g);
    if (st == KILN_OK) st = kiln_graph_sort(g);
    if (st == KILN_OK) st = kiln_graph_infer(g);
    if (st != KILN_OK) {
        if (st == KILN_ERR_OUT_OF_MEMORY && !strstr(kiln_last_error(), "memory"))
            kiln_fail(st, "%s: out of host memory while importing", path);
        kiln_graph_free(g);
        return st;
    }
    *out = g;
    return KILN_OK;
}

kiln_status kiln_onnx_import_file(const char *path, kiln_graph **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return kiln_fail(KILN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return kiln_fail(KILN_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return kiln_fail(KILN_ERR_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    void *bytes = NULL;
    if (size) {
        bytes = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (bytes == MAP_FAILED) {
            int e = errno;
            close(fd);
            return kiln_fail(KILN_ERR_IO, "%s: cannot map: %s", path, strerror(e));
        }
    }
    close(fd);
    /* external data resolves against the real folder of the model */
    char dir[PATH_MAX], real[PATH_MAX];
    const char *dirp = NULL;
    if (realpath(path, real)) {
        char *slash = strrchr(real, '/');
        if (slash == real)
            snprintf(dir, sizeof dir, "/");
        else {
            *slash = '\0';
            snprintf(dir, sizeof dir, "%s", real);
        }
        dirp = dir;
    }
    kiln_status s = kiln_onnx_import(bytes, size, path, dirp, out);
    if (size) munmap(bytes, size);
    return s;
}
