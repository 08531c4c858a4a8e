/* The engine cache: identities and file names (identity.c), the local
 * folder with its locks (local.c), the S3-compatible remote (remote_s3.c),
 * and the plan <-> engine glue (src/plan/engine_plan.c). */
#ifndef KILN_CACHE_H
#define KILN_CACHE_H

#include "core/core.h"
#include "plan/plan.h"
#include "runtime/backend.h"

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

/* ---- engine_plan.c */
kiln_status kiln_engine_to_plan(const kiln_engine *e, uint8_t **out, size_t *size);
/* Takes `bytes` (malloc'd) in every case. */
kiln_status kiln_engine_from_plan(uint8_t *bytes, size_t size, const char *what, kiln_engine **out);

/* ---- remote_s3.c */
typedef struct kiln_remote kiln_remote;
/* KILN_ERR_NOT_FOUND (no message) when no remote is configured. */
kiln_status kiln_remote_open(kiln_remote **out);
void kiln_remote_close(kiln_remote *r);
bool kiln_remote_can_write(const kiln_remote *r); /* credentials present */
const char *kiln_remote_url(const kiln_remote *r);
/* KILN_ERR_NOT_FOUND when the object does not exist. *out is the caller's. */
kiln_status kiln_remote_get(kiln_remote *r, const char *name, uint8_t **out, size_t *size);
kiln_status kiln_remote_put(kiln_remote *r, const char *name, const void *bytes, size_t size);
/* Appends "NAME\tBYTES\n" per object under the prefix. */
kiln_status kiln_remote_list(kiln_remote *r, kiln_sbuf *out);
/* Logs a remote failure: a warning the first time in this process, then at
 * info level. */
void kiln_remote_warn(const char *what);

#endif
