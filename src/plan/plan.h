/* Plans (docs/plan-format.md): the container, one file format for every
 * backend — a fixed 512-byte header (magic, format version, sizes, SHA-256,
 * backend, build options, identity, section table), then the backend's
 * sections, each 64-byte aligned, all integers little-endian
 * (container.c); graphs in and out of it (graph_io.c); engine identities
 * (identity.c); engines to plans and back (engine_plan.c).
 *
 * Layers: plan/ sits on runtime/ (engines, the backend table) and below
 * cache/, which keeps plans; it never calls cache/. */
#ifndef KILN_PLAN_H
#define KILN_PLAN_H

#include "core/core.h"
#include "ir/model.h"

#define KILN_PLAN_MAGIC "KILNPLAN"
#define KILN_PLAN_FORMAT 1
#define KILN_PLAN_HEADER_SIZE 512
#define KILN_PLAN_ALIGN 64
#define KILN_PLAN_MAX_SECTIONS 8
/* Largest workspace a plan may ask for: beyond any GPU (1 TiB). */
#define KILN_PLAN_MAX_WORKSPACE ((uint64_t)1 << 40)

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
    KILN_PLAN_OFF_SECTIONS = 272,  /* KILN_PLAN_MAX_SECTIONS x {char tag[8], u64 offset, u64 size} */
    KILN_PLAN_OFF_RESERVED = 464   /* 48 bytes, zero */
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
/* Refuses a plan this kiln cannot run on `device`: another kiln version
 * or another architecture than that device's (KILN_ERR_VERSION), a backend
 * this build lacks (KILN_ERR_UNSUPPORTED), a device the backend cannot use. */
kiln_status kiln_plan_check_device(const kiln_plan_info *info, const char *what, int device);
/* The same for device 0. */
kiln_status kiln_plan_check_runnable(const kiln_plan_info *info, const char *what);
const kiln_plan_section *kiln_plan_find(const kiln_plan_info *info, const char *tag);
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

/* ---- identity.c */
/* The identity of (model file, options); *sha (may be NULL) gets the
 * model's SHA-256 when it was computed (zero when the user named a version). */
kiln_status kiln_identity_compute(const char *model_path, const kiln_build_options *o, kiln_identity *id,
                                  uint8_t sha[32]);
/* The options hash: "" for default options, else 8 hex digits. */
void kiln_options_hash(const kiln_build_options *o, char out[16]);
/* True when `base` (a file name) has the shape of an identity file name:
 * ..._{precision}_{arch}_{x.y.z}[_{hash}].plan */
bool kiln_identity_name_shaped(const char *base);
/* "fp16"; DEFAULT as backend b builds it; NULL for a value kiln does not know. */
const char *kiln_precision_name(kiln_precision p, kiln_backend b);

/* ---- engine_plan.c */
kiln_status kiln_engine_to_plan(const kiln_engine *e, uint8_t **out, size_t *size);
/* An engine from a plan's bytes (malloc'd), which it takes in every case;
 * `what` names the plan in messages. */
kiln_status kiln_engine_from_plan(uint8_t *bytes, size_t size, const char *what, kiln_engine **out);
/* The same onto device `device`; the plan's architecture must be that
 * device's. */
kiln_status kiln_engine_from_plan_device(uint8_t *bytes, size_t size, const char *what, int device,
                                         kiln_engine **out);


#endif
