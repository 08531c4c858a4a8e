/* kiln build MODEL.onnx [--backend ref|cuda] [--cache] [--force-rebuild] [-o OUT.plan]
 *                      [--shapes NAME:DIMS] [--minShapes/--optShapes/--maxShapes NAME:DIMS]
 *                      [--precision P | --fp32 | --tf32 | --fp16 | --bf16] [--report] [--report-json FILE]
 *                      [--model-version V] [--name N] [--cache-dir DIR] [--workspace BYTES] [--no-upload] */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char BUILD_USAGE[] =
    "usage: kiln build MODEL.onnx [--backend cuda|ref] [--cache] [--force-rebuild] [-o OUT.plan]\n"
    "                  [--shapes NAME:DIMxDIM..] [--minShapes|--optShapes|--maxShapes NAME:DIMxDIM..]\n"
    "                  [--precision fp32|tf32|fp16|bf16 | --fp32 | --tf32 | --fp16 | --bf16]\n"
    "                  [--report] [--report-json FILE] [--runtime-compile]\n"
    "                  [--model-version V] [--name NAME] [--cache-dir DIR] [--workspace BYTES] [--no-upload]\n"
    "  --backend B       cuda (the default: kiln's GPU engine) or ref (the plain-C reference, on the CPU)\n"
    "  --precision P     cuda: fp32, tf32, fp16 (the default) or bf16; ref builds fp32 only\n"
    "  -o, --output F    write the plan to F; without -o and --cache: MODEL.plan in the current folder\n"
    "  --cache           look in the local cache and the remote store first, and store the plan there\n"
    "  --force-rebuild   build even when cached, and refresh the caches\n"
    "  --shapes N:D..    fix symbolic input dims; --minShapes/--optShapes/--maxShapes: a cuda profile\n"
    "  --report          print the build's steps; --report-json FILE writes them as JSON\n";

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
    int use_cache = 0, rc = 0;
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
    if (use_cache) {
        st = kiln_build_or_load(path, &o, &e, &src);
    } else {
        /* no cache: build now (the identity still names the plan) */
        o.flags |= KILN_BUILD_NO_CACHE;
        st = kiln_build_or_load(path, &o, &e, &src);
    }
    if (st != KILN_OK) return kiln_cli_fail(st);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    kiln_identity id;
    char name[512];
    st = kiln_engine_identity(e, &id);
    if (st == KILN_OK) st = kiln_identity_file_name(&id, name, sizeof name);
    if (st == KILN_OK && out) st = kiln_engine_save(e, out);
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
