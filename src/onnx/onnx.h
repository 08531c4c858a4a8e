/* ONNX import (import.c): protobuf bytes -> kiln IR graph. */
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

#endif
