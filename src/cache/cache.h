/* The engine cache: the local folder with its locks (local.c) and the
 * S3-compatible remote (remote_s3.c). It keeps plans: identities, file
 * names and the plan <-> engine glue are src/plan's, below it. */
#ifndef KILN_CACHE_H
#define KILN_CACHE_H

#include "core/core.h"
#include "plan/plan.h"

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
