/* kiln inspect MODEL.onnx [--json] [--values] [--shapes NAME:DIMS]
 *              MODEL.plan: what the plan records */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char INSPECT_USAGE[] =
    "usage: kiln inspect MODEL.onnx [--json] [--values] [--shapes NAME:DIMxDIM..]\n"
    "       kiln inspect MODEL.plan\n"
    "  --json          the report as one JSON object (docs/inspect-json.md)\n"
    "  --values        the JSON report with every tensor's inferred dtype and shape\n"
    "  --shapes N:D..  fix symbolic input dims first (images:1x3x640x640)\n"
    "  a plan (detected by its magic) prints what its header records and, where it loads here,\n"
    "  its inputs, outputs and build report\n";

static void print_desc(const kiln_tensor_desc *d)
{
    char shape[512];
    int p = snprintf(shape, sizeof shape, "[");
    for (int k = 0; k < d->rank && p < (int)sizeof shape; k++) {
        if (d->dims[k] >= 0)
            p += snprintf(shape + p, sizeof shape - (size_t)p, "%s%lld", k ? "," : "", (long long)d->dims[k]);
        else
            p += snprintf(shape + p, sizeof shape - (size_t)p, "%s%s", k ? "," : "",
                          d->dim_names[k] && d->dim_names[k][0] ? d->dim_names[k] : "?");
    }
    if (p < (int)sizeof shape) snprintf(shape + p, sizeof shape - (size_t)p, "]");
    printf("  %-28s %-5s %s\n", d->name, kiln_dtype_name(d->dtype), shape);
}

/* A plan is no ONNX model: say so, print what its header records, and what
 * the engine tells once loaded (a cuda plan loads only on its GPU). */
static int inspect_plan(const char *path)
{
    kiln_cli_plan_header h;
    if (kiln_cli_read_plan_header(path, &h) != 0) {
        fprintf(stderr, "kiln: error: %s: starts like a kiln plan but its header cannot be read (truncated?)\n", path);
        return 1;
    }
    printf("plan      %s (a kiln plan, not an ONNX model)\n", path);
    printf("model     %s version %s\nbackend   %s\nprecision %s\narch      %s\nkiln      %s\n", h.model, h.version,
           kiln_cli_backend_name(h.backend), h.precision, h.arch, h.kiln_version);
    if (h.options_hash[0]) printf("options   %s\n", h.options_hash);
    kiln_engine *e = NULL;
    kiln_status st = kiln_engine_load(path, &e);
    if (st != KILN_OK) {
        fprintf(stderr,
                "kiln: error: %s\nkiln inspect: the plan cannot be loaded here, so only its header is shown; for the "
                "full report inspect the ONNX model it was built from\n",
                kiln_last_error());
        return 1;
    }
    printf("inputs:\n");
    for (int i = 0; i < kiln_engine_num_inputs(e); i++) {
        kiln_tensor_desc d;
        if (kiln_engine_input(e, i, &d) == KILN_OK) print_desc(&d);
    }
    printf("outputs:\n");
    for (int i = 0; i < kiln_engine_num_outputs(e); i++) {
        kiln_tensor_desc d;
        if (kiln_engine_output(e, i, &d) == KILN_OK) print_desc(&d);
    }
    char *text = NULL;
    if (kiln_engine_report(e, 0, &text) == KILN_OK && text && text[0]) {
        printf("build report:\n");
        fputs(text, stdout);
    }
    kiln_free(text);
    kiln_engine_destroy(e);
    return 0;
}

int kiln_cmd_inspect(int argc, char **argv)
{
    if (kiln_cli_help(argc, argv, INSPECT_USAGE)) return 0;
    const char *path = NULL;
    int json = 0, values = 0, n_shapes = 0;
    char **shapes = calloc((size_t)argc + 1, sizeof *shapes);
    kiln_cli_args p = KILN_CLI_ARGS("inspect", INSPECT_USAGE, argc, argv);
    for (; p.i < argc && !p.rc; p.i++) {
        const char *v = NULL;
        if (kiln_cli_flag(&p, "--json"))
            json = 1;
        else if (kiln_cli_flag(&p, "--values"))
            values = 1;
        else if (kiln_cli_value(&p, "--shapes", &v)) {
            if (v) shapes[n_shapes++] = (char *)v;
        } else
            kiln_cli_positional(&p, &path);
    }
    if (!p.rc && !path) kiln_cli_usage_error(&p, "no model given");
    if (!p.rc && kiln_is_plan_file(path) && (json || values || n_shapes)) {
        fprintf(stderr,
                "kiln inspect: %s is a kiln plan, not an ONNX model: --json, --values and --shapes describe ONNX "
                "models (inspect the model the plan was built from, or the plan without them)\n",
                path);
        p.rc = 2;
    }
    if (p.rc) {
        free(shapes);
        return p.rc;
    }
    if (kiln_is_plan_file(path)) {
        free(shapes);
        return inspect_plan(path);
    }
    kiln_model *m = NULL;
    kiln_status st = kiln_model_load(path, &m);
    if (st != KILN_OK) {
        free(shapes);
        return kiln_cli_fail(st);
    }
    int rc = kiln_cli_apply_shapes(m, n_shapes, shapes);
    free(shapes);
    if (rc) {
        kiln_model_destroy(m);
        return rc;
    }
    char *text = NULL;
    st = kiln_model_report(m, values ? KILN_REPORT_JSON_VALUES : json ? KILN_REPORT_JSON : KILN_REPORT_TEXT, &text);
    if (st != KILN_OK) {
        kiln_model_destroy(m);
        return kiln_cli_fail(st);
    }
    fputs(text, stdout);
    kiln_free(text);
    /* the report lists them; the status says so to scripts */
    int unsupported = kiln_model_num_unsupported(m);
    if (unsupported) {
        const char *node = "", *op = "", *why = "";
        kiln_model_unsupported(m, 0, &node, &op, &why);
        fprintf(stderr, "kiln: %s: %d node%s cannot be run by kiln, first: node '%s' (%s): %s\n", path,
                unsupported, unsupported == 1 ? "" : "s", node, op, why);
    }
    kiln_model_destroy(m);
    return unsupported ? 1 : 0;
}
