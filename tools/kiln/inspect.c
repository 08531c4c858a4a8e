/* kiln inspect MODEL.onnx [--json] [--values] [--shapes NAME:DIMS]
 *              MODEL.plan [--json]: what the plan holds, read from the
 *              file alone (no device, no engine: src/inspect/describe.c) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/core.h"
#include "inspect/inspect.h"

static const char INSPECT_USAGE[] =
    "usage: kiln inspect MODEL.onnx [--json] [--values] [--shapes NAME:DIMxDIM..]\n"
    "       kiln inspect MODEL.plan [--json]\n"
    "  --json          the report as one JSON object (docs/inspect-json.md)\n"
    "  --values        the JSON report with every tensor's inferred dtype and shape\n"
    "  --shapes N:D..  fix symbolic input dims first (images:1x3x640x640)\n"
    "  a plan (detected by its magic) prints what it holds: identity, profile, inputs and outputs,\n"
    "  every layer with its kernel or tactic, and sizes; no GPU is needed, and it says whether the\n"
    "  plan would load on this machine\n";

/* A plan is no ONNX model: what it holds, from its bytes (a cuda plan is
 * described on a machine without its GPU). When it cannot be read, the
 * header's fields are still printed (as text), then why. */
static int inspect_plan(const char *path, bool json)
{
    kiln_cli_plan_header h;
    if (kiln_cli_read_plan_header(path, &h) != 0) {
        fprintf(stderr, "kiln: error: %s: starts like a kiln plan but its header cannot be read (truncated?)\n", path);
        return 1;
    }
    kiln_sbuf b = {0};
    unsigned flags = KILN_PLAN_DESCRIBE_CHECK_HERE | (json ? KILN_PLAN_DESCRIBE_JSON : 0);
    kiln_status st = kiln_plan_describe_file(path, flags, &b);
    if (st == KILN_OK) {
        fputs(b.data ? b.data : "", stdout);
        free(b.data);
        return 0;
    }
    free(b.data);
    if (!json) {
        printf("plan      %s (a kiln plan, not an ONNX model)\n", path);
        printf("model     %s version %s\nbackend   %s\nprecision %s\narch      %s\nkiln      %s\n", h.model,
               h.version, kiln_cli_backend_name(h.backend), h.precision, h.arch, h.kiln_version);
        if (h.options_hash[0]) printf("options   %s\n", h.options_hash);
    }
    /* the message may quote a name from the broken file: no control bytes to the terminal */
    fputs("kiln: error: ", stderr);
    for (const unsigned char *c = (const unsigned char *)kiln_last_error(); *c; c++)
        fputc(*c < 0x20 || *c == 0x7f ? '?' : *c, stderr);
    fprintf(stderr,
            "\nkiln inspect: the plan cannot be read, so %s; for the full report inspect the ONNX model it was "
            "built from\n",
            json ? "nothing is shown" : "only its header is shown");
    return 1;
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
    if (!p.rc && kiln_is_plan_file(path) && (values || n_shapes)) {
        /* a plan holds inferred shapes already, and its profile */
        fprintf(stderr,
                "kiln inspect: %s is a kiln plan, not an ONNX model: --values and --shapes describe ONNX models "
                "(inspect the model the plan was built from, or the plan without them)\n",
                path);
        p.rc = 2;
    }
    if (p.rc) {
        free(shapes);
        return p.rc;
    }
    if (kiln_is_plan_file(path)) {
        free(shapes);
        return inspect_plan(path, json);
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
