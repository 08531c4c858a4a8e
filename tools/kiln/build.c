/* kiln build MODEL.onnx [--backend ref|cuda] [--cache] [--force-rebuild] [-o OUT.plan]
 *                      [--shapes NAME:DIMS] [--minShapes/--optShapes/--maxShapes NAME:DIMS]
 *                      [--precision P | --fp32 | --tf32 | --fp16 | --bf16] [--report] [--report-json FILE]
 *                      [--model-version V] [--name N] [--cache-dir DIR] [--workspace BYTES] [--no-upload]
 *                      [--quiet] */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char BUILD_USAGE[] =
    "usage: kiln build MODEL.onnx [--backend cuda|ref] [--cache] [--force-rebuild] [-o OUT.plan]\n"
    "                  [--shapes NAME:DIMxDIM..] [--minShapes|--optShapes|--maxShapes NAME:DIMxDIM..]\n"
    "                  [--precision fp32|tf32|fp16|bf16 | --fp32 | --tf32 | --fp16 | --bf16]\n"
    "                  [--report] [--report-json FILE] [--runtime-compile]\n"
    "                  [--model-version V] [--name NAME] [--cache-dir DIR] [--workspace BYTES] [--no-upload] [--quiet]\n"
    "  --backend B       cuda (the default: kiln's GPU engine) or ref (the plain-C reference, on the CPU)\n"
    "  --precision P     cuda: fp32, tf32, fp16 (the default) or bf16; ref builds fp32 only\n"
    "  -o, --output F    write the plan to F; without -o and --cache: MODEL.plan in the current folder\n"
    "  --cache           look in the local cache and the remote store first, and store the plan there\n"
    "  --force-rebuild   build even when cached, and refresh the caches\n"
    "  --shapes N:D..    fix symbolic input dims; --minShapes/--optShapes/--maxShapes: a cuda profile\n"
    "  --report          print the build's steps; --report-json FILE writes them as JSON\n"
    "  --quiet           no progress on stderr (warnings and errors still print)\n";

/* ---- progress
 *
 * The library logs a build's phases and its per-layer progress at
 * KILN_LOG_INFO as "build: <what>", a counted phase with its count in it
 * ("build: timing tactics layer 12/53: Conv conv_12"). On a terminal they
 * become one status line on stderr that overwrites itself; elsewhere (CI
 * logs, pipes) each phase prints one line when it starts, and a counted one
 * at most one more per tenth of its count. Every other message prints as
 * the library's default sink prints it, when $KILN_LOG_LEVEL lets it. */
#define PROGRESS_PREFIX "build: "

static struct progress {
    pthread_mutex_t lock;
    bool tty, quiet;
    int user_level;  /* what prints without this callback: $KILN_LOG_LEVEL, default warn */
    char key[256];   /* the current phase: the message up to its count */
    int tenth;       /* the last tenth of the count printed (not a tty) */
    bool shown;      /* a status line is on the terminal */
    double t0, drawn; /* when the build started; when the status line was drawn last */
} progress = {.lock = PTHREAD_MUTEX_INITIALIZER};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The count of a counted phase: the first " I/N:" (or " I/N" at the end;
 * decimal, N > 0) in text, so that digits in a path are no count. Its
 * offset (of I), *i and *n; -1 without one. */
static int find_count(const char *text, long *i, long *n)
{
    if (!text[0]) return -1;
    for (const char *c = text + 1; *c; c++) {
        if (c[-1] != ' ' || *c < '0' || *c > '9') continue;
        char *slash, *end;
        long a = strtol(c, &slash, 10);
        if (*slash != '/' || slash[1] < '0' || slash[1] > '9') continue;
        long b = strtol(slash + 1, &end, 10);
        if (b <= 0 || a < 0 || (*end != ':' && *end != '\0')) continue;
        *i = a;
        *n = b;
        return (int)(c - text);
    }
    return -1;
}

/* Removes the status line from the terminal; the lock is held. */
static void status_clear(void)
{
    if (!progress.shown) return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    progress.shown = false;
}

/* One "build: ..." message (text after the prefix); the lock is held. */
static void progress_show(const char *text)
{
    long i = 0, n = 0;
    int at = find_count(text, &i, &n);
    size_t klen = at >= 0 ? (size_t)at : strlen(text);
    if (klen >= sizeof progress.key) klen = sizeof progress.key - 1;
    bool same = strlen(progress.key) == klen && !strncmp(progress.key, text, klen);
    if (!same) {
        memcpy(progress.key, text, klen);
        progress.key[klen] = '\0';
        progress.tenth = -1;
    }
    double t = now_s();
    int tenth = at >= 0 ? (int)(i * 10 / n) : 0;
    if (progress.tty) {
        /* redrawn at most 20 times a second, but always for a new phase and the last of a count */
        if (same && progress.shown && t - progress.drawn < 0.05 && !(at >= 0 && i >= n)) return;
        progress.drawn = t;
        struct winsize ws;
        int cols = ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
        char line[512];
        int len = snprintf(line, sizeof line, "[%5.1fs] %s%s", t - progress.t0, PROGRESS_PREFIX, text);
        if (len < 0) return;
        if (len > cols - 1) len = cols - 1; /* one line: a wrapped one would not be overwritten */
        if (len > (int)sizeof line - 1) len = (int)sizeof line - 1;
        fprintf(stderr, "\r\033[K%.*s", len, line);
        fflush(stderr);
        progress.shown = true;
        return;
    }
    /* not a terminal: a new phase, then once per tenth of its count and at its end */
    if (same && (at < 0 || (tenth <= progress.tenth && i < n))) return;
    if (same && at >= 0 && i >= n && progress.tenth >= 10) return;
    progress.tenth = at >= 0 ? (i >= n ? 10 : tenth) : 0;
    fprintf(stderr, "[%5.1fs] %s%s\n", t - progress.t0, PROGRESS_PREFIX, text);
    fflush(stderr);
}

static void build_log(kiln_log_level level, const char *msg, void *user)
{
    static const char *names[] = {"error", "warning", "info", "debug"};
    (void)user;
    pthread_mutex_lock(&progress.lock);
    if (level == KILN_LOG_INFO && !progress.quiet && !strncmp(msg, PROGRESS_PREFIX, strlen(PROGRESS_PREFIX)))
        progress_show(msg + strlen(PROGRESS_PREFIX));
    else if ((int)level <= progress.user_level) {
        /* as the library's own sink prints it, below the status line */
        status_clear();
        fprintf(stderr, "kiln: %s: %s\n", names[level <= KILN_LOG_DEBUG ? level : KILN_LOG_DEBUG], msg);
    }
    pthread_mutex_unlock(&progress.lock);
}

/* A phase of the command itself, shown like the library's. */
static void progress_phase(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress_phase(const char *fmt, ...)
{
    char msg[1024];
    int n = snprintf(msg, sizeof msg, "%s", PROGRESS_PREFIX);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    build_log(KILN_LOG_INFO, msg, NULL);
}

/* Routes the library's log through build_log: its INFO messages reach the
 * callback, which prints what $KILN_LOG_LEVEL asks for as before. */
static void progress_begin(bool quiet)
{
    pthread_mutex_lock(&progress.lock);
    progress.tty = isatty(STDERR_FILENO) && getenv("TERM") && strcmp(getenv("TERM"), "dumb");
    progress.quiet = quiet;
    progress.user_level = (int)kiln_get_log_level();
    progress.key[0] = '\0';
    progress.shown = false;
    progress.t0 = now_s();
    progress.drawn = 0;
    pthread_mutex_unlock(&progress.lock);
    kiln_set_log_callback(build_log, NULL);
    kiln_set_log_level(progress.user_level > KILN_LOG_INFO ? (kiln_log_level)progress.user_level : KILN_LOG_INFO);
}

/* The status line gone, the library's default sink and level back. */
static void progress_end(void)
{
    pthread_mutex_lock(&progress.lock);
    status_clear();
    pthread_mutex_unlock(&progress.lock);
    kiln_set_log_callback(NULL, NULL);
    kiln_set_log_level((kiln_log_level)progress.user_level);
}

static const char *precision_text(const kiln_build_options *o)
{
    /* indexed by kiln_precision; the default is the backend's */
    static const char *const names[] = {"default", "fp32", "fp16", "bf16", "int8", "fp8", "tf32"};
    if (o->precision == KILN_PRECISION_DEFAULT) return o->backend == KILN_BACKEND_REF ? "fp32" : "fp16";
    return (unsigned)o->precision < sizeof names / sizeof names[0] ? names[o->precision] : "?";
}

/* MODEL.plan for MODEL.onnx (the file name only: written in the current folder) */
static void default_plan_name(const char *model, char *out, size_t cap)
{
    const char *base = strrchr(model, '/') ? strrchr(model, '/') + 1 : model;
    size_t l = strlen(base);
    if (l > 5 && !strcmp(base + l - 5, ".onnx")) l -= 5;
    snprintf(out, cap, "%.*s.plan", (int)l, base);
}

int kiln_cmd_build(int argc, char **argv)
{
    if (kiln_cli_help(argc, argv, BUILD_USAGE)) return 0;
    const char *path = NULL, *out = NULL, *backend = NULL, *precision = NULL;
    int use_cache = 0, rc = 0, quiet = 0;
    kiln_build_options o;
    kiln_build_options_init(&o);
    char shapes[4096] = "", prof[3][2048] = {"", "", ""};
    int report = 0;
    const char *report_json = NULL;
    kiln_cli_args p = KILN_CLI_ARGS("build", BUILD_USAGE, argc, argv);
    for (; p.i < argc && !p.rc; p.i++) {
        const char *a = argv[p.i], *v = NULL;
        if (kiln_cli_value(&p, "--backend", &backend) || kiln_cli_value(&p, "-o", &out) ||
            kiln_cli_value(&p, "--output", &out) || kiln_cli_value(&p, "--precision", &precision) ||
            kiln_cli_value(&p, "--report-json", &report_json) || kiln_cli_value(&p, "--model-version", &o.model_version) ||
            kiln_cli_value(&p, "--name", &o.model_name) || kiln_cli_value(&p, "--cache-dir", &o.cache_dir) ||
            kiln_cli_u64(&p, "--workspace", &o.workspace_bytes))
            continue;
        if (kiln_cli_flag(&p, "--cache"))
            use_cache = 1;
        else if (kiln_cli_flag(&p, "--force-rebuild"))
            o.flags |= KILN_BUILD_FORCE_REBUILD;
        else if (kiln_cli_flag(&p, "--no-upload"))
            o.flags |= KILN_BUILD_NO_UPLOAD;
        else if (kiln_cli_value(&p, "--shapes", &v)) {
            size_t l = strlen(shapes);
            if (v) snprintf(shapes + l, sizeof shapes - l, "%s%s", l ? "," : "", v);
        } else if (kiln_cli_value(&p, "--minShapes", &v) || kiln_cli_value(&p, "--optShapes", &v) ||
                   kiln_cli_value(&p, "--maxShapes", &v)) {
            char *d = prof[a[2] == 'm' && a[3] == 'i' ? 0 : a[2] == 'o' ? 1 : 2];
            size_t l = strlen(d);
            if (v) snprintf(d + l, 2048 - l, "%s%s", l ? "," : "", v);
        } else if (!strcmp(a, "--fp32") || !strcmp(a, "--tf32") || !strcmp(a, "--fp16") || !strcmp(a, "--bf16"))
            precision = a + 2;
        else if (kiln_cli_flag(&p, "--report"))
            report = 1;
        else if (kiln_cli_flag(&p, "--quiet"))
            quiet = 1;
        else if (kiln_cli_flag(&p, "--runtime-compile"))
            o.flags |= KILN_BUILD_RUNTIME_COMPILE;
        else
            kiln_cli_positional(&p, &path);
    }
    if (!p.rc && !path) kiln_cli_usage_error(&p, "no model given");
    rc = p.rc;
    if (!rc && backend) rc = kiln_cli_parse_backend("build", backend, &o.backend);
    if (!rc && precision) rc = kiln_cli_parse_precision("build", precision, &o.precision);
    if (rc) return rc;
    /* the plan is saved: to -o, else to the cache (--cache), else beside
     * the working folder as MODEL.plan; checked before building */
    char default_out[512];
    if (!out && !use_cache) {
        default_plan_name(path, default_out, sizeof default_out);
        out = default_out;
    }
    if (out && kiln_cli_check_writable_file("build", "plan", out)) return 1;
    if (report_json && kiln_cli_check_writable_file("build", "report", report_json)) return 1;
    if (shapes[0]) o.input_shapes = shapes;
    char profile[6300] = "";
    for (int k = 0; k < 3; k++)
        if (prof[k][0]) {
            size_t l = strlen(profile);
            snprintf(profile + l, sizeof profile - l, "%s%s:%s", l ? ";" : "", k == 0 ? "min" : k == 1 ? "opt" : "max",
                     prof[k]);
        }
    if (profile[0]) o.profile = profile;

    kiln_engine *e = NULL;
    kiln_engine_source src = KILN_SOURCE_BUILT;
    kiln_status st;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* the backend, precision and device: refused as run and bench refuse them */
    if (kiln_cli_check_backend(path, &o)) return 1;
    progress_begin(quiet);
    const char *bname = kiln_cli_backend_name(o.backend);
    if (use_cache) {
        progress_phase("%s for the %s backend (%s): looking in the cache%s", path, bname, precision_text(&o),
                       o.flags & KILN_BUILD_FORCE_REBUILD ? " (skipped: --force-rebuild), building" : ", else building");
        st = kiln_build_or_load(path, &o, &e, &src);
    } else {
        /* no cache: build now (the identity still names the plan) */
        progress_phase("%s for the %s backend (%s): importing and building", path, bname, precision_text(&o));
        o.flags |= KILN_BUILD_NO_CACHE;
        st = kiln_build_or_load(path, &o, &e, &src);
    }
    if (st != KILN_OK) {
        progress_end();
        return kiln_cli_fail(st);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    kiln_identity id;
    char name[512];
    st = kiln_engine_identity(e, &id);
    if (st == KILN_OK) st = kiln_identity_file_name(&id, name, sizeof name);
    if (st == KILN_OK && out) {
        progress_phase("saving the plan to %s", out);
        st = kiln_engine_save(e, out);
    }
    progress_end();
    if (st != KILN_OK) {
        kiln_engine_destroy(e);
        return kiln_cli_fail(st);
    }
    printf("model    %s\nbackend  %s\nidentity %s\nsource   %s\ntime     %.2f s\n", path, kiln_engine_backend_name(e),
           name, kiln_engine_source_name(src), secs);
    if (use_cache) {
        char *dir = NULL;
        if (kiln_cache_dir(&o, &dir) == KILN_OK) printf("plan     %s/%s\n", dir, name);
        kiln_free(dir);
    }
    if (out) printf("wrote    %s\n", out);
    if (report || report_json) {
        char *text = NULL;
        if (report && kiln_engine_report(e, 0, &text) == KILN_OK) fputs(text, stdout);
        kiln_free(text);
        text = NULL;
        if (report_json) {
            st = kiln_engine_report(e, 1, &text);
            FILE *f = st == KILN_OK ? fopen(report_json, "w") : NULL;
            if (f) {
                fputs(text, f);
                fclose(f);
            } else if (st == KILN_OK)
                fprintf(stderr, "kiln build: cannot write %s\n", report_json);
            kiln_free(text);
        }
    }
    kiln_engine_destroy(e);
    return 0;
}
