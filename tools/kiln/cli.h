/* Subcommands of the kiln CLI; each returns the process exit status
 * (0 ok, 1 model/data problem, 2 usage). */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "kiln.h"

int kiln_cmd_inspect(int argc, char **argv);
int kiln_cmd_run(int argc, char **argv);
int kiln_cmd_build(int argc, char **argv);
int kiln_cmd_cache(int argc, char **argv);
int kiln_cmd_bench(int argc, char **argv);
int kiln_cmd_compare(int argc, char **argv); /* compare.c */
int kiln_cmd_convert(int argc, char **argv); /* convert.c */

/* ---- argument parsing, one rule for every command
 *
 *   kiln_cli_args p = KILN_CLI_ARGS("run", RUN_USAGE, argc, argv);
 *   for (; p.i < argc && !p.rc; p.i++) {
 *       if (kiln_cli_value(&p, "--backend", &backend)) continue;
 *       ...
 *       kiln_cli_unexpected(&p);
 *   }
 *   if (p.rc) return p.rc;
 *
 * The first error is printed (once, with the usage when it is about the
 * command line's shape) and sets rc = 2, which ends the loop. */
typedef struct kiln_cli_args {
    const char *cmd, *usage;
    int argc, i;
    char **argv;
    int rc;
} kiln_cli_args;
#define KILN_CLI_ARGS(cmd, usage, argc, argv) ((kiln_cli_args){(cmd), (usage), (argc), 0, (argv), 0})

/* -h or --help anywhere: prints usage to stdout; the caller returns 0. */
bool kiln_cli_help(int argc, char **argv, const char *usage);
/* The current argument is the flag `name`. */
bool kiln_cli_flag(kiln_cli_args *p, const char *name);
/* The current argument is option `name`: its value (the next argument,
 * consumed) into *value. A missing value is an error ("--backend needs a
 * value"); *value is then NULL. */
bool kiln_cli_value(kiln_cli_args *p, const char *name, const char **value);
/* The same for an integer option: decimal digits only (a leading '-' when
 * lo < 0), within [lo, hi]; anything else is an error naming the option. */
bool kiln_cli_int(kiln_cli_args *p, const char *name, long long lo, long long hi, int *value);
/* The same for an unsigned 64-bit option (--seed, --workspace). */
bool kiln_cli_u64(kiln_cli_args *p, const char *name, uint64_t *value);
/* Strict parses on their own: 0, or -1 with the error printed for `cmd`
 * and option `name`. */
int kiln_cli_parse_int(const char *cmd, const char *name, const char *text, long long lo, long long hi, long long *out);
int kiln_cli_parse_u64(const char *cmd, const char *name, const char *text, uint64_t *out);
/* Prints "kiln CMD: <message>" and the usage; sets p->rc = 2. */
void kiln_cli_usage_error(kiln_cli_args *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The current argument is none the command knows: an unexpected option, or
 * a second MODEL when *path is set; else it becomes *path. */
void kiln_cli_positional(kiln_cli_args *p, const char **path);

/* "cuda" or "ref" into *out; an unknown name prints the error for `cmd`
 * and returns 2, else 0. */
int kiln_cli_parse_backend(const char *cmd, const char *name, kiln_backend *out);
/* What `kiln build` checks before it builds, for run and bench too: that
 * the backend builds this precision on this device (kiln_model_identity).
 * Prints the error, with the hint to use --backend ref where no GPU can run
 * the cuda backend, and returns 1; else 0. */
int kiln_cli_check_backend(const char *model, const kiln_build_options *o);
/* Where --backend or --precision was given (non-NULL) for a plan: the plan
 * runs on the backend and at the precision it was built for, so asking for
 * another is an error naming both (printed; returns 2). 0 when they agree,
 * when none was given, or when the file's header cannot be read (loading
 * it then says why). */
int kiln_cli_check_plan(const char *cmd, const char *path, const char *backend, const char *precision);
/* What a plan's header says (docs/plan-format.md); 0, or -1 when the file
 * is not a readable plan. */
typedef struct kiln_cli_plan_header {
    unsigned backend;                 /* kiln_backend */
    char model[65], version[33], precision[17], arch[17], kiln_version[17], options_hash[17];
} kiln_cli_plan_header;
int kiln_cli_read_plan_header(const char *path, kiln_cli_plan_header *h);
const char *kiln_cli_backend_name(unsigned backend);
/* A folder that outputs will be written to: created when missing, and
 * refused at once when it cannot be written. Prints the error and returns
 * 1; else 0. */
int kiln_cli_prepare_output_dir(const char *cmd, const char *dir);
/* Where `path` (a file to be written) can be created: its folder exists and
 * is writable. Prints the error and returns 1; else 0. */
int kiln_cli_check_writable_file(const char *cmd, const char *what, const char *path);

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
/* The inputs of a model (m) or plan (e, m NULL), into *in (n = its input
 * count; free with kiln_cli_free_inputs, also after a failure): each
 * --input NAME=FILE.npy of files[] read (and, with fix_shapes, its dims set
 * on m), then --shapes applied to m, then the rest random from `seed`
 * (symbolic dims 1, with a note). Prints the error; returns the exit status. */
int kiln_cli_load_inputs(const char *cmd, const char *path, kiln_model *m, const kiln_engine *e, int n_files,
                         char **files, int n_shapes, char **shapes, uint64_t seed, bool fix_shapes, kiln_tensor **in);
void kiln_cli_free_inputs(kiln_tensor *in, int n);
/* A tensor name made a file name: [A-Za-z0-9._-] kept, the rest '_'. */
void kiln_cli_file_name(const char *name, char *out, size_t cap);
/* --precision NAME (fp32, tf32, fp16, bf16, int8, fp8, default) into *out;
 * prints the error for `cmd` and returns 2 on an unknown name, else 0. */
int kiln_cli_parse_precision(const char *cmd, const char *name, kiln_precision *out);
/* The largest error (max|d| / max|ref| of an output) a result computed at
 * `precision` ("fp32", "tf32", "fp16", "bf16"; NULL: fp32) may have and be
 * right: what kiln compare and kiln bench --verify accept. */
double kiln_cli_limit(const char *precision);
/* max|a - ref| / max|ref| over the finite elements of ref (divided by 1
 * when ref is all zero); a and ref have ref's element count, any dtypes.
 * *n_nonfinite (may be NULL): elements where a is NaN/inf and ref is not,
 * or ref is and a differs. */
double kiln_cli_rel_err(const kiln_tensor *a, const kiln_tensor *ref, int64_t *n_nonfinite);
/* Runs `model` on onnxruntime (CPU) through `python` (ort.c): the n_in
 * inputs in, the tensors named names[0..n_out) out (intermediate ones too,
 * with the onnx package), into out[] (data malloc'd: free each; names
 * point into names[]). The onnxruntime version into version[cap]. A
 * missing package is an error naming the pip package. */
kiln_status kiln_cli_ort_run(const char *python, const char *model, int n_in, const kiln_tensor *in, int n_out,
                             const char *const *names, kiln_tensor *out, char *version, size_t version_cap);
/* Prints "kiln: <message>" for the last error and returns 1 or 2. */
int kiln_cli_fail(kiln_status s);

#endif
