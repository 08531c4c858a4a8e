/* kiln inspect MODEL.onnx [--json] [--values] [--shapes NAME:DIMS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int kiln_cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0, values = 0, n_shapes = 0;
    char **shapes = calloc((size_t)argc + 1, sizeof *shapes);
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--values"))
            values = 1;
        else if (!strcmp(argv[i], "--shapes") && i + 1 < argc)
            shapes[n_shapes++] = argv[++i];
        else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "kiln inspect: unexpected argument '%s'\nusage: kiln inspect MODEL.onnx [--json] [--values] [--shapes NAME:DIMS]\n", argv[i]);
            free(shapes);
            return 2;
        } else
            path = argv[i];
    }
    if (!path) {
        fprintf(stderr, "usage: kiln inspect MODEL.onnx [--json] [--values] [--shapes NAME:DIMS]\n");
        free(shapes);
        return 2;
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
