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
    "                  [--model-version V] [--name NAME] [--cache-dir DIR] [--workspace BYTES] [--no-upload]\n";

int kiln_cmd_build(int argc, char **argv)
{
    const char *path = NULL, *out = NULL, *backend = "cuda", *precision = NULL;
    int use_cache = 0, rc = 0;
    kiln_build_options o;
    kiln_build_options_init(&o);
    char shapes[4096] = "", prof[3][2048] = {"", "", ""};
    int report = 0;
    const char *report_json = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (!strcmp(a, "--backend") && more)
            backend = argv[++i];
        else if (!strcmp(a, "--cache"))
            use_cache = 1;
        else if (!strcmp(a, "--force-rebuild"))
            o.flags |= KILN_BUILD_FORCE_REBUILD;
        else if (!strcmp(a, "--no-upload"))
            o.flags |= KILN_BUILD_NO_UPLOAD;
        else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && more)
            out = argv[++i];
        else if (!strcmp(a, "--shapes") && more) {
            size_t l = strlen(shapes);
            snprintf(shapes + l, sizeof shapes - l, "%s%s", l ? "," : "", argv[++i]);
        } else if ((!strcmp(a, "--minShapes") || !strcmp(a, "--optShapes") || !strcmp(a, "--maxShapes")) && more) {
            char *d = prof[a[2] == 'm' && a[3] == 'i' ? 0 : a[2] == 'o' ? 1 : 2];
            size_t l = strlen(d);
            snprintf(d + l, 2048 - l, "%s%s", l ? "," : "", argv[++i]);
        } else if (!strcmp(a, "--precision") && more)
            precision = argv[++i];
        else if (!strcmp(a, "--fp32") || !strcmp(a, "--tf32") || !strcmp(a, "--fp16") || !strcmp(a, "--bf16"))
            precision = a + 2;
        else if (!strcmp(a, "--report"))
            report = 1;
        else if (!strcmp(a, "--runtime-compile"))
            o.flags |= KILN_BUILD_RUNTIME_COMPILE;
        else if (!strcmp(a, "--report-json") && more)
            report_json = argv[++i];
        else if (!strcmp(a, "--model-version") && more)
            o.model_version = argv[++i];
        else if (!strcmp(a, "--name") && more)
            o.model_name = argv[++i];
        else if (!strcmp(a, "--cache-dir") && more)
            o.cache_dir = argv[++i];
        else if (!strcmp(a, "--workspace") && more)
            o.workspace_bytes = strtoull(argv[++i], NULL, 10);
        else if (a[0] == '-' || path) {
            fprintf(stderr, "kiln build: unexpected argument '%s'\n%s", a, BUILD_USAGE);
            return 2;
        } else
            path = a;
    }
    if (!strcmp(backend, "ref"))
        o.backend = KILN_BACKEND_REF;
    else if (!strcmp(backend, "cuda"))
        o.backend = KILN_BACKEND_CUDA;
    else {
        fprintf(stderr, "kiln build: unknown backend '%s' (cuda or ref)\n", backend);
        rc = 2;
    }
    if (precision && kiln_cli_parse_precision("build", precision, &o.precision) != 0) rc = 2;
    if (!path && !rc) {
        fputs(BUILD_USAGE, stderr);
        rc = 2;
    }
    if (rc) return rc;
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
