/* Engines to plan files and back. Every plan holds the graph (sections
 * GRAPH and WEIGHTS), and a backend with `save` adds its own sections
 * (PROGRAM, DWEIGHTS); a loaded plan owns a graph of its own. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sha256.h"
#include "plan/plan.h"
#include "runtime/backend.h"

kiln_status kiln_engine_identity(const kiln_engine *e, kiln_identity *out)
{
    if (!e || !out) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_identity: NULL argument");
    const kiln_identity *id = kiln_engine_stored_identity(e);
    if (id) {
        *out = *id;
        return KILN_OK;
    }
    /* built by kiln_engine_build: the identity of the model file it came from */
    const kiln_graph *g = kiln_engine_graph(e);
    kiln_build_options o = *kiln_engine_options(e);
    if (access(g->path, R_OK) != 0) {
        /* a model from memory: its version is the hash of its graph */
        kiln_bytes gb = {0}, wb = {0};
        kiln_graph_serialize(g, &gb, &wb);
        kiln_sha256_ctx s;
        uint8_t d[32];
        kiln_sha256_init(&s);
        kiln_sha256_update(&s, gb.p ? gb.p : (uint8_t *)"", gb.len);
        kiln_sha256_update(&s, wb.p ? wb.p : (uint8_t *)"", wb.len);
        kiln_sha256_final(&s, d);
        bool failed = gb.failed || wb.failed;
        free(gb.p);
        free(wb.p);
        if (failed) return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of host memory hashing the model");
        char ver[9];
        kiln_hex(d, 4, ver);
        o.model_version = ver;
        return kiln_identity_compute(g->path, &o, out, NULL);
    }
    return kiln_identity_compute(g->path, &o, out, NULL);
}

static void add_section(kiln_plan_info *info, const char *tag, const kiln_bytes *b)
{
    kiln_plan_section *sec = &info->sections[info->n_sections++];
    snprintf(sec->tag, sizeof sec->tag, "%s", tag);
    sec->data = b->p;
    sec->size = b->len;
}

kiln_status kiln_engine_to_plan(const kiln_engine *e, uint8_t **out, size_t *size)
{
    *out = NULL;
    const kiln_build_options *o = kiln_engine_options(e);
    /* a backend without `save` is its graph: GRAPH and WEIGHTS are its
     * whole plan, and loading it builds again */
    const kiln_backend_iface *be = kiln_engine_backend(e);
    kiln_plan_info info;
    memset(&info, 0, sizeof info);
    kiln_status st = kiln_engine_identity(e, &info.id);
    if (st != KILN_OK) return st;
    info.backend = o->backend;
    info.precision = o->precision;
    info.workspace = o->workspace_bytes;
    kiln_bytes gb = {0}, wb = {0};
    const kiln_graph *g = kiln_engine_graph(e);
    uint8_t *drop = be->plan_drops ? kiln_xcalloc((size_t)g->n_values + 1, 1) : NULL;
    if (be->plan_drops && !drop) return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of host memory serializing the engine");
    if (drop) be->plan_drops(kiln_engine_state(e), drop);
    kiln_graph_serialize_dropping(g, drop, &gb, &wb);
    free(drop);
    if (gb.failed || wb.failed) {
        free(gb.p);
        free(wb.p);
        return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of host memory serializing the engine");
    }
    add_section(&info, "GRAPH", &gb);
    add_section(&info, "WEIGHTS", &wb);
    /* a GPU engine adds its program (steps, tactics, memory plan) and its
     * pre-transformed device weights */
    kiln_bytes pb = {0}, db = {0};
    if (be->save) {
        st = be->save(kiln_engine_state(e), &pb, &db);
        if (st == KILN_OK && (pb.failed || db.failed))
            st = kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of host memory serializing the engine");
        add_section(&info, "PROGRAM", &pb);
        add_section(&info, "DWEIGHTS", &db);
    }
    if (st == KILN_OK) st = kiln_plan_assemble(&info, out, size);
    free(gb.p);
    free(wb.p);
    free(pb.p);
    free(db.p);
    return st;
}

kiln_status kiln_engine_from_plan(uint8_t *bytes, size_t size, const char *what, kiln_engine **out)
{
    return kiln_engine_from_plan_device(bytes, size, what, 0, out);
}

kiln_status kiln_engine_from_plan_device(uint8_t *bytes, size_t size, const char *what, int device,
                                         kiln_engine **out)
{
    *out = NULL;
    kiln_plan_info info;
    kiln_status st = kiln_plan_parse(bytes, size, what, &info);
    if (st == KILN_OK) st = kiln_plan_check_device(&info, what, device);
    if (st != KILN_OK) {
        free(bytes);
        return st;
    }
    const kiln_plan_section *gs = kiln_plan_find(&info, "GRAPH"), *ws = kiln_plan_find(&info, "WEIGHTS");
    if (!gs || !ws) {
        free(bytes);
        return kiln_fail(KILN_ERR_FORMAT, "%s: plan without its GRAPH and WEIGHTS sections", what);
    }
    kiln_graph *g;
    st = kiln_graph_deserialize(gs->data, gs->size, ws->data, ws->size, bytes, what, &g);
    if (st != KILN_OK) return st; /* bytes freed with the graph */
    /* errors while running this engine name the plan, which is what the
     * user has, not the ONNX file it was built from (the identity keeps
     * that one) */
    const char *plan_name = kiln_arena_strdup(&g->arena, what);
    if (plan_name) g->path = plan_name;
    kiln_graph_ref *ref = kiln_graph_ref_new(g);
    if (!ref) return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of host memory");
    kiln_build_options o;
    kiln_build_options_init(&o);
    o.backend = info.backend;
    o.precision = info.precision;
    o.workspace_bytes = info.workspace;
    o.device = device;
    kiln_engine *e;
    st = kiln_engine_create_from_plan(ref, &o, &info, &e);
    kiln_graph_ref_release(ref); /* the engine holds it now */
    if (st != KILN_OK) return kiln_fail_prefix(st, "%s: ", what);
    kiln_engine_set_identity(e, &info.id);
    *out = e;
    return KILN_OK;
}

kiln_status kiln_engine_save(const kiln_engine *e, const char *path)
{
    if (!e || !path) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_save: NULL argument");
    uint8_t *bytes;
    size_t size;
    kiln_status st = kiln_engine_to_plan(e, &bytes, &size);
    if (st != KILN_OK) return st;
    st = kiln_write_file_atomic(path, bytes, size);
    free(bytes);
    return st;
}

kiln_status kiln_engine_load(const char *path, kiln_engine **out)
{
    return kiln_engine_load_device(path, 0, out);
}

kiln_status kiln_engine_load_device(const char *path, int device, kiln_engine **out)
{
    if (!out) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_load: out is NULL");
    *out = NULL;
    if (!path) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_load: path is NULL");
    if (device < 0) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_load: device %d is negative", device);
    uint8_t *bytes;
    size_t size;
    kiln_status st = kiln_read_file(path, &bytes, &size);
    if (st != KILN_OK) return st;
    /* a file named like a cache entry must be the entry its name says */
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (kiln_identity_name_shaped(base)) {
        kiln_plan_info info;
        st = kiln_plan_parse(bytes, size, path, &info);
        char want[512];
        if (st == KILN_OK) st = kiln_identity_file_name(&info.id, want, sizeof want);
        if (st == KILN_OK && strcmp(want, base) != 0)
            st = kiln_fail(KILN_ERR_FORMAT, "%s: the file name and the plan header disagree: the header is the identity of '%s'; refused",
                           path, want);
        if (st != KILN_OK) {
            free(bytes);
            return st;
        }
    }
    return kiln_engine_from_plan_device(bytes, size, path, device, out);
}

int kiln_is_plan_file(const char *path)
{
    if (!path) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char m[8];
    ssize_t n = read(fd, m, 8);
    close(fd);
    return n == 8 && !memcmp(m, KILN_PLAN_MAGIC, 8);
}
