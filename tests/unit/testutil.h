/* Shared helpers for the cmocka unit tests. */
#ifndef KILN_TESTUTIL_H
#define KILN_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kiln.h"

/* Path of a file under tests/ (static buffer per call site is not needed:
 * the result is the caller's to free). */
char *kt_path(const char *rel);
/* Path of a generated test model (tests/models/gen.py output), or NULL
 * when the models were not generated. Caller frees. */
char *kt_model(const char *name);
/* Loads the model at `path` (failing the test if it cannot) and builds a
 * ref-backend engine of it. *model receives the model when non-NULL (the
 * caller destroys it); otherwise it is destroyed here. */
kiln_engine *kt_build_ref(const char *path, kiln_model **model);
/* Deterministic pseudo-random floats in [lo, hi). */
void kt_fill_uniform(float *x, size_t n, unsigned seed, float lo, float hi);

#define assert_kiln_ok(expr)                                                                    \
    do {                                                                                        \
        kiln_status _s = (expr);                                                                \
        if (_s != KILN_OK) fail_msg("%s -> %s: %s", #expr, kiln_status_name(_s), kiln_last_error()); \
    } while (0)

#endif
