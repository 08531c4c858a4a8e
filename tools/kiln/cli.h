/* Subcommands of the kiln CLI; each returns the process exit status
 * (0 ok, 1 model/data problem, 2 usage). */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include "kiln.h"

int kiln_cmd_inspect(int argc, char **argv);
int kiln_cmd_run(int argc, char **argv);
int kiln_cmd_build(int argc, char **argv);
int kiln_cmd_cache(int argc, char **argv);
int kiln_cmd_bench(int argc, char **argv);

/* Parses "name:1x3x224x224" into name (copied into name[cap]) and dims. */
int kiln_cli_parse_shape(const char *arg, char *name, size_t cap, int *rank, int64_t *dims);
/* Calls fn for every NAME:DIMS of every --shapes value (each may hold
 * several, comma separated), `tok` being its text; stops at fn's first
 * non-zero return and returns it. A malformed one prints the error and
 * returns 2. */
typedef int (*kiln_cli_shape_fn)(const char *name, int rank, const int64_t *dims, const char *tok, void *ctx);
int kiln_cli_each_shape(int n, char **shapes, kiln_cli_shape_fn fn, void *ctx);
/* Applies every --shapes option to the model; prints the error, returns the exit status. */
int kiln_cli_apply_shapes(kiln_model *m, int n, char **shapes);
/* A seeded random input for d (symbolic dims become 1): floats uniform in
 * [-1, 1), integers in [0, 8), bools half true. t->data is malloc'd (free). */
kiln_status kiln_cli_random_input(const kiln_tensor_desc *d, uint64_t *seed, kiln_tensor *t);
/* --precision NAME (fp32, tf32, fp16, bf16, int8, fp8, default) into *out;
 * prints the error for `cmd` and returns 2 on an unknown name, else 0. */
int kiln_cli_parse_precision(const char *cmd, const char *name, kiln_precision *out);
/* Prints "kiln: <message>" for the last error and returns 1 or 2. */
int kiln_cli_fail(kiln_status s);

#endif
