/* Helpers shared by the CLI subcommands. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "core/core.h"
#include "ir/ir.h"

int kiln_cli_fail(kiln_status s)
{
    fprintf(stderr, "kiln: error: %s\n", kiln_last_error());
    (void)s; /* usage errors are caught by the argument parsers (exit 2); what reaches here is the model's or the data's */
    return 1;
}

int kiln_cli_parse_shape(const char *arg, char *name, size_t cap, int *rank, int64_t *dims)
{
    const char *colon = strrchr(arg, ':');
    if (!colon || colon == arg || (size_t)(colon - arg) >= cap) return -1;
    memcpy(name, arg, (size_t)(colon - arg));
    name[colon - arg] = '\0';
    return kiln_parse_dims(colon + 1, rank, dims) ? 0 : -1;
}

int kiln_cli_each_shape(int n, char **shapes, kiln_cli_shape_fn fn, void *ctx)
{
    for (int i = 0; i < n; i++) {
        /* several may be given at once, comma separated: a:1x3,b:1x4 */
        char *copy = strdup(shapes[i]), *save = NULL;
        int rc = copy ? 0 : 1;
        for (char *tok = copy ? strtok_r(copy, ",", &save) : NULL; tok && !rc; tok = strtok_r(NULL, ",", &save)) {
            char name[512];
            int rank;
            int64_t dims[KILN_MAX_RANK];
            if (kiln_cli_parse_shape(tok, name, sizeof name, &rank, dims) != 0) {
                fprintf(stderr, "kiln: error: --shapes '%s': expected NAME:DIMxDIMx... (e.g. images:1x3x640x640)\n", tok);
                rc = 2;
            } else
                rc = fn(name, rank, dims, tok, ctx);
        }
        free(copy);
        if (rc) return rc;
    }
    return 0;
}

static int set_model_shape(const char *name, int rank, const int64_t *dims, const char *tok, void *ctx)
{
    (void)tok;
    kiln_status st = kiln_model_set_input_shape(ctx, name, rank, dims);
    return st == KILN_OK ? 0 : kiln_cli_fail(st);
}

int kiln_cli_apply_shapes(kiln_model *m, int n, char **shapes)
{
    return kiln_cli_each_shape(n, shapes, set_model_shape, m);
}

int kiln_cli_parse_precision(const char *cmd, const char *name, kiln_precision *out)
{
    /* indexed by kiln_precision */
    static const char *const names[] = {"default", "fp32", "fp16", "bf16", "int8", "fp8", "tf32"};
    for (int k = 0; k < (int)(sizeof names / sizeof names[0]); k++)
        if (!strcmp(name, names[k])) {
            *out = (kiln_precision)k;
            return 0;
        }
    fprintf(stderr, "kiln %s: unknown precision '%s' (fp32, tf32, fp16, bf16, int8, fp8)\n", cmd, name);
    return 2;
}

double kiln_cli_limit(const char *precision)
{
    /* max|d| / max|ref| per output, as the GPU accuracy checks measure it
     * (scripts/gpu/check_cuda.py): fp32 1e-4 and tf32 1e-2 as there; at
     * fp16/bf16 those checks also accept 2x PyTorch's own error at that
     * precision, which on deep random-weight nets reaches 2.75e-2 (resnet50
     * fp16), so the fixed limits here are 2x that, and 4x for bf16's three
     * fewer mantissa bits */
    if (!precision || !strcmp(precision, "fp32") || !strcmp(precision, "default")) return 1e-4;
    if (!strcmp(precision, "tf32")) return 1e-2;
    if (!strcmp(precision, "fp16")) return 5.5e-2;
    if (!strcmp(precision, "bf16")) return 2.2e-1;
    return 2.2e-1; /* int8 / fp8: the loosest until their own checks exist */
}

double kiln_cli_rel_err(const kiln_tensor *a, const kiln_tensor *ref, int64_t *n_nonfinite)
{
    int64_t n = 1;
    for (int k = 0; k < ref->rank; k++) n *= ref->dims[k];
    double md = 0, mr = 0;
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = kiln_load_f64(a->dtype, a->data, i), y = kiln_load_f64(ref->dtype, ref->data, i);
        if (!isfinite(y)) {
            if (x != y && !(x != x && y != y)) bad++;
            continue;
        }
        if (!isfinite(x)) {
            bad++;
            continue;
        }
        double d = fabs(x - y);
        if (d > md) md = d;
        if (fabs(y) > mr) mr = fabs(y);
    }
    if (n_nonfinite) *n_nonfinite = bad;
    return md / (mr > 0 ? mr : 1);
}

/* ------------------------------------------------------------ arguments */

bool kiln_cli_help(int argc, char **argv, const char *usage)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage, stdout);
            return true;
        }
    return false;
}

void kiln_cli_usage_error(kiln_cli_args *p, const char *fmt, ...)
{
    fprintf(stderr, "kiln %s: ", p->cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", p->usage);
    p->rc = 2;
}

bool kiln_cli_flag(kiln_cli_args *p, const char *name)
{
    return !p->rc && p->i < p->argc && !strcmp(p->argv[p->i], name);
}

bool kiln_cli_value(kiln_cli_args *p, const char *name, const char **value)
{
    if (!kiln_cli_flag(p, name)) return false;
    if (p->i + 1 >= p->argc) {
        *value = NULL;
        kiln_cli_usage_error(p, "option %s needs a value", name);
        return true;
    }
    *value = p->argv[++p->i];
    return true;
}

/* digits only, after an optional '-' when negative values are allowed */
static bool all_digits(const char *s, bool sign)
{
    if (sign && *s == '-') s++;
    if (!*s) return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return false;
    return true;
}

int kiln_cli_parse_int(const char *cmd, const char *name, const char *text, long long lo, long long hi, long long *out)
{
    if (!all_digits(text, true)) {
        fprintf(stderr, "kiln %s: %s '%s' is not a number (a decimal integer is expected)\n", cmd, name, text);
        return -1;
    }
    errno = 0;
    long long v = strtoll(text, NULL, 10);
    if (errno == ERANGE || v < lo || v > hi) {
        if (errno != ERANGE && v < lo && (hi == INT_MAX || hi == LLONG_MAX))
            fprintf(stderr, "kiln %s: %s %s: it must be >= %lld\n", cmd, name, text, lo);
        else
            fprintf(stderr, "kiln %s: %s %s is out of range: it must be in %lld..%lld\n", cmd, name, text, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int kiln_cli_parse_u64(const char *cmd, const char *name, const char *text, uint64_t *out)
{
    if (!all_digits(text, false)) {
        fprintf(stderr, "kiln %s: %s '%s' is not a number (a decimal integer >= 0 is expected)\n", cmd, name, text);
        return -1;
    }
    errno = 0;
    unsigned long long v = strtoull(text, NULL, 10);
    if (errno == ERANGE) {
        fprintf(stderr, "kiln %s: %s %s is out of range: it must be in 0..%llu\n", cmd, name, text,
                (unsigned long long)UINT64_MAX);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

bool kiln_cli_int(kiln_cli_args *p, const char *name, long long lo, long long hi, int *value)
{
    const char *text = NULL;
    if (!kiln_cli_value(p, name, &text)) return false;
    long long v;
    if (text && kiln_cli_parse_int(p->cmd, name, text, lo, hi, &v) == 0)
        *value = (int)v;
    else if (text)
        p->rc = 2;
    return true;
}

bool kiln_cli_u64(kiln_cli_args *p, const char *name, uint64_t *value)
{
    const char *text = NULL;
    if (!kiln_cli_value(p, name, &text)) return false;
    if (text && kiln_cli_parse_u64(p->cmd, name, text, value) != 0) p->rc = 2;
    return true;
}

void kiln_cli_positional(kiln_cli_args *p, const char **path)
{
    const char *a = p->argv[p->i];
    if (a[0] == '-' && a[1])
        kiln_cli_usage_error(p, "unexpected argument '%s' (kiln %s --help lists the options)", a, p->cmd);
    else if (*path)
        kiln_cli_usage_error(p, "unexpected argument '%s': the model is '%s' already", a, *path);
    else
        *path = a;
}

int kiln_cli_parse_backend(const char *cmd, const char *name, kiln_backend *out)
{
    if (!strcmp(name, "cuda"))
        *out = KILN_BACKEND_CUDA;
    else if (!strcmp(name, "ref"))
        *out = KILN_BACKEND_REF;
    else {
        fprintf(stderr, "kiln %s: unknown backend '%s' (cuda or ref)\n", cmd, name);
        return 2;
    }
    return 0;
}

/* ------------------------------------------------------------ backends */

static const char NO_GPU_HINT[] = "use the ref backend explicitly (--backend ref) on machines without an NVIDIA GPU";

int kiln_cli_check_backend(const char *model, const kiln_build_options *o)
{
    /* the identity is what kiln build computes first; a given version spares
     * hashing the model, so only the backend, precision and device count */
    kiln_build_options c = *o;
    c.model_version = "check";
    c.input_shapes = c.profile = NULL;
    kiln_identity id;
    if (kiln_model_identity(model, &c, &id) == KILN_OK) return 0;
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", kiln_last_error());
    bool hint = false;
    if (o->backend == KILN_BACKEND_CUDA && !strstr(msg, "--backend ref")) {
        /* the cuda backend cannot build even its default here: no GPU (or
         * no cuda in this build), where the ref backend is the way */
        kiln_build_options d;
        kiln_build_options_init(&d);
        d.model_version = "check";
        hint = kiln_model_identity(model, &d, &id) != KILN_OK;
    }
    fprintf(stderr, "kiln: error: %s%s%s\n", msg, hint ? "; " : "", hint ? NO_GPU_HINT : "");
    return 1;
}

const char *kiln_cli_backend_name(unsigned backend)
{
    return backend == KILN_BACKEND_CUDA ? "cuda" : backend == KILN_BACKEND_REF ? "ref" : "unknown";
}

/* a NUL-padded header field (docs/plan-format.md) into out[n + 1] */
static void header_str(const unsigned char *h, int off, int n, char *out)
{
    memcpy(out, h + off, (size_t)n);
    out[n] = '\0';
}

int kiln_cli_read_plan_header(const char *path, kiln_cli_plan_header *h)
{
    /* offsets of docs/plan-format.md: magic 0, backend 56, identity 80.. */
    unsigned char b[272];
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    if (n != sizeof b || memcmp(b, "KILNPLAN", 8)) return -1;
    memset(h, 0, sizeof *h);
    h->backend = (unsigned)b[56] | (unsigned)b[57] << 8 | (unsigned)b[58] << 16 | (unsigned)b[59] << 24;
    header_str(b, 80, 64, h->model);
    header_str(b, 144, 32, h->version);
    header_str(b, 176, 16, h->precision);
    header_str(b, 192, 16, h->arch);
    header_str(b, 208, 16, h->kiln_version);
    header_str(b, 224, 16, h->options_hash);
    return 0;
}

int kiln_cli_check_plan(const char *cmd, const char *path, const char *backend, const char *precision)
{
    kiln_cli_plan_header h;
    if ((!backend && !precision) || kiln_cli_read_plan_header(path, &h) != 0) return 0;
    const char *has = kiln_cli_backend_name(h.backend);
    if (backend && strcmp(backend, has)) {
        fprintf(stderr,
                "kiln %s: %s is a plan for the %s backend, but --backend %s was asked for: a plan runs on the "
                "backend it was built for (leave out --backend, or build a plan with kiln build --backend %s)\n",
                cmd, path, has, backend, backend);
        return 2;
    }
    if (precision && strcmp(precision, "default") && strcmp(precision, h.precision)) {
        fprintf(stderr,
                "kiln %s: %s is a plan built for precision %s, but --precision %s was asked for: a plan runs at "
                "the precision it was built for (leave out --precision, or build another plan with kiln build)\n",
                cmd, path, h.precision, precision);
        return 2;
    }
    return 0;
}

/* ------------------------------------------------------------ outputs */

/* as the library words a failed write */
static const char *write_cause(int e)
{
    return e == EACCES || e == EPERM ? "no write permission"
           : e == EROFS              ? "the file system is read-only"
                                     : strerror(e);
}

int kiln_cli_prepare_output_dir(const char *cmd, const char *dir)
{
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        if (errno != ENOENT || mkdir(dir, 0777) != 0) {
            fprintf(stderr, "kiln %s: error: %s: cannot create the output folder: %s\n", cmd, dir, write_cause(errno));
            return 1;
        }
    } else if (!S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "kiln %s: error: %s: the output folder is a file, not a folder\n", cmd, dir);
        return 1;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        fprintf(stderr, "kiln %s: error: %s: cannot write into the output folder: %s\n", cmd, dir,
                write_cause(errno));
        return 1;
    }
    return 0;
}

int kiln_cli_check_writable_file(const char *cmd, const char *what, const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "kiln %s: error: %s: is a folder; give the %s's file name\n", cmd, path, what);
        return 1;
    }
    const char *why = stat(dir, &sb) != 0              ? strerror(errno)
                      : !S_ISDIR(sb.st_mode)             ? "not a folder"
                      : access(dir, W_OK | X_OK) != 0 ? write_cause(errno)
                                                         : NULL;
    if (why) {
        fprintf(stderr, "kiln %s: error: %s: cannot write the %s: %s (folder '%s')\n", cmd, path, what, why, dir);
        return 1;
    }
    return 0;
}
