/* Helpers shared by the CLI subcommands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

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
    const char *p = colon + 1;
    *rank = 0;
    if (!*p) return 0; /* a scalar */
    while (*p) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || *rank >= KILN_MAX_RANK) return -1;
        dims[(*rank)++] = v;
        if (*end == 'x' || *end == 'X')
            end++;
        else if (*end)
            return -1;
        p = end;
    }
    return 0;
}

int kiln_cli_apply_shapes(kiln_model *m, int n, char **shapes)
{
    for (int i = 0; i < n; i++) {
        /* several may be given at once, comma separated: a:1x3,b:1x4 */
        char *copy = strdup(shapes[i]), *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            char name[512];
            int rank;
            int64_t dims[KILN_MAX_RANK];
            if (kiln_cli_parse_shape(tok, name, sizeof name, &rank, dims) != 0) {
                fprintf(stderr, "kiln: error: --shapes '%s': expected NAME:DIMxDIMx... (e.g. images:1x3x640x640)\n", tok);
                free(copy);
                return 2;
            }
            kiln_status st = kiln_model_set_input_shape(m, name, rank, dims);
            if (st != KILN_OK) {
                free(copy);
                return kiln_cli_fail(st);
            }
        }
        free(copy);
    }
    return 0;
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
