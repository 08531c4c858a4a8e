/* ONNX import (import.c): protobuf bytes -> kiln IR graph; the model's
 * digest (digest.c). The only folder that reads the protobuf. */
#ifndef KILN_ONNX_H
#define KILN_ONNX_H

#include "ir/ir.h"

/* The default-domain opsets kiln reads. Within them each op is checked by
 * the version that applies (registry.c); versions older than an op's native
 * ones are rewritten at import by its adapter (src/ir/adapt.c). */
#define KILN_MIN_OPSET 7
#define KILN_MAX_OPSET 25

/* Parses, sorts and infers a model. `path` names it in messages; external
 * data resolves against `dir` (NULL: refused). On success *out is the
 * caller's (kiln_graph_free). */
kiln_status kiln_onnx_import(const void *bytes, size_t size, const char *path, const char *dir, kiln_graph **out);
kiln_status kiln_onnx_import_file(const char *path, kiln_graph **out);

/* The model's SHA-256 (digest.c): over the file's bytes, then over each
 * external data file it names, resolved against the file's folder. The
 * engine identity's version is its first 8 hex digits. */
kiln_status kiln_onnx_digest(const char *path, uint8_t out[32]);

#endif
