/* The model's digest, for the engine identity's version (src/plan/identity.c):
 * SHA-256 over the ONNX file's bytes, then over each external data file it
 * names. Reading the names needs the protobuf, which only src/onnx reads. */
#include "onnx/onnx.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sha256.h"
#include "kiln_onnx.pb-c.h"


static kiln_status hash_file(kiln_sha256_ctx *s, const char *path, const char *model)
{
    FILE *f = fopen(path, "rb");
    if (!f) return kiln_fail(KILN_ERR_IO, "%s: cannot read external data '%s': %s", model, path, strerror(errno));
    static _Thread_local unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) kiln_sha256_update(s, buf, n);
    int err = ferror(f);
    fclose(f);
    return err ? kiln_fail(KILN_ERR_IO, "%s: read error in '%s'", model, path) : KILN_OK;
}

static void add_location(const KilnOnnx__TensorProto *t, const char **locs, int *n, int cap)
{
    if (!t || !t->has_data_location || t->data_location != KILN_ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) return;
    for (size_t k = 0; k < t->n_external_data; k++) {
        const KilnOnnx__StringStringEntryProto *e = t->external_data[k];
        if (e->key && e->value && !strcmp(e->key, "location") && *n < cap) locs[(*n)++] = e->value;
    }
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The bytes are those identities have always hashed: the ONNX file, then
 * each external data file (sorted by name, each once) as "\0name\0" +
 * contents. Changing them renames every cached plan. */
kiln_status kiln_onnx_digest(const char *path, uint8_t out[32])
{
    uint8_t *bytes;
    size_t size;
    kiln_status st = kiln_read_file(path, &bytes, &size);
    if (st != KILN_OK) return st;
    kiln_sha256_ctx s;
    kiln_sha256_init(&s);
    kiln_sha256_update(&s, bytes, size);
    KilnOnnx__ModelProto *m = kiln_onnx__model_proto__unpack(NULL, size, bytes);
    if (!m) {
        free(bytes);
        return kiln_fail(KILN_ERR_FORMAT, "%s: not a readable ONNX model (protobuf parse failed)", path);
    }
    int cap = 4096, n = 0;
    const char **locs = kiln_xcalloc((size_t)cap, sizeof *locs);
    if (!locs) st = KILN_ERR_OUT_OF_MEMORY;
    if (locs && m->graph) {
        for (size_t i = 0; i < m->graph->n_initializer; i++) add_location(m->graph->initializer[i], locs, &n, cap);
        for (size_t i = 0; i < m->graph->n_node; i++)
            for (size_t k = 0; k < m->graph->node[i]->n_attribute; k++)
                add_location(m->graph->node[i]->attribute[k]->t, locs, &n, cap);
    }
    if (n) {
        qsort(locs, (size_t)n, sizeof *locs, cmp_str);
        char *dup = kiln_xstrdup(path);
        char *slash = dup ? strrchr(dup, '/') : NULL;
        const char *dir = slash ? (*slash = '\0', dup) : ".";
        for (int i = 0; i < n && st == KILN_OK && dup; i++) {
            if (i && !strcmp(locs[i], locs[i - 1])) continue;
            char file[PATH_MAX];
            snprintf(file, sizeof file, "%s/%s", dir[0] ? dir : "/", locs[i]);
            kiln_sha256_update(&s, "", 1);
            kiln_sha256_update(&s, locs[i], strlen(locs[i]) + 1);
            st = hash_file(&s, file, path);
        }
        free(dup);
    }
    free(locs);
    kiln_onnx__model_proto__free_unpacked(m, NULL);
    free(bytes);
    if (st == KILN_OK) kiln_sha256_final(&s, out);
    return st;
}
