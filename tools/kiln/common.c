/* Helpers shared by the CLI subcommands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
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
