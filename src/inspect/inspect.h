/* Plans described from their bytes, without an engine: the one folder
 * that reads both a plan's container (plan/) and a GPU program (builder/),
 * above both, so neither calls the other back. Nothing in the engine calls
 * it; the CLI's kiln inspect PLAN does. */
#ifndef KILN_INSPECT_H
#define KILN_INSPECT_H

#include "plan/plan.h"

/* ---- describe.c */
/* What a plan holds, from its bytes alone, without a device and without
 * an engine (kiln inspect PLAN): identity, build options, inputs and
 * outputs with the optimization profile, one row per layer (a GPU plan's
 * program steps with their kernel or tactic, a ref plan's nodes), sections
 * and sizes. Text, or with KILN_PLAN_DESCRIBE_JSON one JSON object
 * (docs/inspect-json.md, kiln.inspect-plan/1), appended to *out (the
 * caller frees out->data). With KILN_PLAN_DESCRIBE_CHECK_HERE it also says
 * whether the plan would load on this machine and why not (asks the
 * backend's table about device 0; still no engine). A malformed plan fails
 * (KILN_ERR_FORMAT; KILN_ERR_VERSION for another format or an op this kiln
 * lacks) naming `what` and the fault, and appends nothing. */
enum { KILN_PLAN_DESCRIBE_JSON = 1u << 0, KILN_PLAN_DESCRIBE_CHECK_HERE = 1u << 1 };
kiln_status kiln_plan_describe(const uint8_t *bytes, size_t size, const char *what, unsigned flags, kiln_sbuf *out);
/* The same for the plan file at path; CHECK_HERE also checks the file name
 * against the header, as kiln_engine_load does. */
kiln_status kiln_plan_describe_file(const char *path, unsigned flags, kiln_sbuf *out);

#endif
