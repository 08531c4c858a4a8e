/* The plan container (docs/plan-format.md): one file format for every
 * backend. A fixed 512-byte header — magic, format version, sizes, SHA-256,
 * backend, build options, identity, section table — then the backend's
 * sections, each 64-byte aligned. All integers little-endian. */
#ifndef KILN_PLAN_H
#define KILN_PLAN_H

#include "core/core.h"
#include "ir/model.h"

#define KILN_PLAN_MAGIC "KILNPLAN"
#define KILN_PLAN_FORMAT 1
#define KILN_PLAN_HEADER_SIZE 512
#define KILN_PLAN_ALIGN 64
#define KILN_PLAN_MAX_SECTIONS 8

/* header field offsets */
enum {
    KILN_PLAN_OFF_MAGIC = 0,       /* 8 bytes "KILNPLAN" */
    KILN_PLAN_OFF_FORMAT = 8,      /* u32 */
    KILN_PLAN_OFF_HEADER = 12,     /* u32 header size (512) */
    KILN_PLAN_OFF_SIZE = 16,       /* u64 whole file size */
    KILN_PLAN_OFF_SHA = 24,        /* 32 bytes: SHA-256 of the file with this field zeroed */
    KILN_PLAN_OFF_BACKEND = 56,    /* u32 kiln_backend */
    KILN_PLAN_OFF_PRECISION = 60,  /* u32 kiln_precision */
    KILN_PLAN_OFF_WORKSPACE = 64,  /* u64 */
    KILN_PLAN_OFF_NSECT = 72,      /* u32 */
    KILN_PLAN_OFF_FLAGS = 76,      /* u32, 0 */
    KILN_PLAN_OFF_MODEL = 80,      /* char[64] */
    KILN_PLAN_OFF_VERSION = 144,   /* char[32] */
    KILN_PLAN_OFF_PREC_NAME = 176, /* char[16] */
    KILN_PLAN_OFF_ARCH = 192,      /* char[16] */
    KILN_PLAN_OFF_KILN = 208,      /* char[16] */
    KILN_PLAN_OFF_OPTHASH = 224,   /* char[16] */
    KILN_PLAN_OFF_MODEL_SHA = 240, /* 32 bytes: SHA-256 of the model, zero when not computed */
    KILN_PLAN_OFF_SECTIONS = 272   /* KILN_PLAN_MAX_SECTIONS x {char tag[8], u64 offset, u64 size} */
};

/* A growable byte buffer with little-endian writers. */
typedef struct kiln_bytes {
    uint8_t *p;
    size_t len, cap;
    bool failed;
} kiln_bytes;

void kiln_bytes_put(kiln_bytes *b, const void *data, size_t n);
void kiln_bytes_u32(kiln_bytes *b, uint32_t v);
void kiln_bytes_u64(kiln_bytes *b, uint64_t v);
void kiln_bytes_str(kiln_bytes *b, const char *s); /* u32 length + bytes; NULL as 0xffffffff */
void kiln_bytes_align(kiln_bytes *b, size_t a);   /* zero padding */

/* A bounds-checked reader: any read past the end sets `bad` and returns 0. */
typedef struct kiln_reader {
    const uint8_t *p;
    size_t len, off;
    bool bad;
} kiln_reader;

uint32_t kiln_read_u32(kiln_reader *r);
uint64_t kiln_read_u64(kiln_reader *r);
const void *kiln_read_bytes(kiln_reader *r, size_t n);
/* A kiln_bytes_str string copied into the arena (NULL stays NULL). */
const char *kiln_read_str(kiln_reader *r, kiln_arena *a);

static inline uint32_t kiln_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t kiln_le64(const uint8_t *p) { return kiln_le32(p) | (uint64_t)kiln_le32(p + 4) << 32; }

typedef struct kiln_plan_section {
    char tag[9];
    const uint8_t *data;
    uint64_t size;
} kiln_plan_section;

/* What the header says. */
typedef struct kiln_plan_info {
    uint32_t format;
    kiln_backend backend;
    kiln_precision precision;
    uint64_t workspace;
    kiln_identity id;
    uint8_t model_sha[32];
    int n_sections;
    kiln_plan_section sections[KILN_PLAN_MAX_SECTIONS];
} kiln_plan_info;

/* ---- container.c */
/* Assembles a plan: header from info (its sections' data and sizes), then
 * the sections, checksum last. *out is the caller's (free). */
kiln_status kiln_plan_assemble(const kiln_plan_info *info, uint8_t **out, size_t *size);
/* Checks magic, format, size and checksum of bytes[size] and fills *info
 * (sections point into bytes). `what` names the file in messages. Does not
 * check the identity against this kiln. */
kiln_status kiln_plan_parse(const uint8_t *bytes, size_t size, const char *what, kiln_plan_info *info);
/* Refuses (KILN_ERR_VERSION) a plan this kiln cannot run: another kiln
 * version, another architecture than the backend's. */
kiln_status kiln_plan_check_runnable(const kiln_plan_info *info, const char *what);
const kiln_plan_section *kiln_plan_find(const kiln_plan_info *info, const char *tag);
/* Reads a whole file into a malloc'd buffer (*out is the caller's). */
kiln_status kiln_read_file(const char *path, uint8_t **out, size_t *size);
/* Writes bytes to path atomically: a temporary file in the same folder,
 * fsync, rename, fsync of the folder. Nothing appears under `path` on
 * failure; the message names the path and the cause (disk full, ...). */
kiln_status kiln_write_file_atomic(const char *path, const void *bytes, size_t size);

/* ---- graph_io.c */
/* Serializes g: structure into `graph`, constant data into `weights`. */
void kiln_graph_serialize(const kiln_graph *g, kiln_bytes *graph, kiln_bytes *weights);
/* The same, without the data of the values with drop[v] set (and of the
 * Constant nodes' tensors that hold it): they load as data-less values of
 * their shape and dtype. */
void kiln_graph_serialize_dropping(const kiln_graph *g, const uint8_t *drop, kiln_bytes *graph, kiln_bytes *weights);
/* Rebuilds a graph from the two sections. `keep` (malloc'd, may be NULL) is
 * the buffer the sections live in: the graph takes it and points its
 * constant data into it. *out is the caller's (kiln_graph_free). */
kiln_status kiln_graph_deserialize(const uint8_t *graph, size_t graph_size, const uint8_t *weights,
                                   size_t weights_size, void *keep, const char *what, kiln_graph **out);

/* ---- identity names (cache/identity.c) */
const char *kiln_precision_name(kiln_precision p, kiln_backend b);
const char *kiln_backend_arch(kiln_backend b); /* "cpu" for ref */

#endif
