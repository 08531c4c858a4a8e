/* Inputs for run and compare: from .npy files (--input NAME=FILE.npy) or
 * seeded random, and the file names outputs are saved under. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/core.h"
#include "npy.h"

static uint64_t rng_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 11;
}

/* Seeded random input: floats uniform in [-1, 1) without exact zeros,
 * integers in [0, 8), bools half true. */
kiln_status kiln_cli_random_input(const kiln_tensor_desc *d, uint64_t *seed, kiln_tensor *t)
{
    memset(t, 0, sizeof *t);
    t->name = d->name;
    t->dtype = d->dtype;
    t->rank = d->rank;
    int64_t n = 1;
    for (int k = 0; k < d->rank; k++) {
        t->dims[k] = d->dims[k] >= 0 ? d->dims[k] : 1;
        n *= t->dims[k];
    }
    t->data = malloc((size_t)n * kiln_dtype_size(d->dtype) + 1);
    if (!t->data) return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of memory for input '%s'", d->name);
    for (int64_t i = 0; i < n; i++) {
        double u = (double)(rng_next(seed) & ((1ull << 53) - 1)) / (double)(1ull << 53);
        double v;
        if (kiln_dtype_is_float(d->dtype)) {
            v = 2 * u - 1;
            if (v == 0) v = 0.5;
        } else if (d->dtype == KILN_BOOL)
            v = u < 0.5;
        else
            v = floor(u * 8);
        kiln_store_f64(d->dtype, t->data, i, v);
    }
    return KILN_OK;
}

/* Inputs come from the model, or from the engine when running a plan. */
static kiln_status input_desc(const kiln_model *m, const kiln_engine *e, int i, kiln_tensor_desc *d)
{
    return m ? kiln_model_input(m, i, d) : kiln_engine_input(e, i, d);
}

int kiln_cli_load_inputs(const char *cmd, const char *path, kiln_model *m, const kiln_engine *e, int n_files,
                         char **files, int n_shapes, char **shapes, uint64_t seed, bool fix_shapes, kiln_tensor **out)
{
    int n_in = m ? kiln_model_num_inputs(m) : kiln_engine_num_inputs(e);
    kiln_tensor *in = calloc((size_t)n_in + 1, sizeof *in);
    kiln_status st = in ? KILN_OK : kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of host memory");
    int rc = 0;
    *out = in;
    for (int f = 0; f < n_files && st == KILN_OK; f++) {
        const char *eq = strchr(files[f], '=');
        if (!eq) {
            fprintf(stderr, "kiln %s: --input '%s': expected NAME=FILE.npy\n", cmd, files[f]);
            return 2;
        }
        int slot = -1;
        kiln_tensor_desc d;
        for (int i = 0; i < n_in; i++) {
            input_desc(m, e, i, &d);
            if (strlen(d.name) == (size_t)(eq - files[f]) && !strncmp(d.name, files[f], (size_t)(eq - files[f])))
                slot = i;
        }
        if (slot < 0) {
            st = kiln_fail(KILN_ERR_NOT_FOUND, "%s: --input '%s': the model has no input of that name", path, files[f]);
            break;
        }
        input_desc(m, e, slot, &d);
        free(in[slot].data);
        st = kiln_npy_read(eq + 1, &in[slot]);
        if (st == KILN_OK) st = kiln_npy_convert(&in[slot], d.dtype, eq + 1);
        if (st != KILN_OK) break;
        in[slot].name = d.name;
        /* an engine built for these shapes (the cuda backend's profile) */
        if (fix_shapes && (st = kiln_model_set_input_shape(m, d.name, in[slot].rank, in[slot].dims)) != KILN_OK)
            break;
    }
    if (st != KILN_OK) return kiln_cli_fail(st);
    if (m && (rc = kiln_cli_apply_shapes(m, n_shapes, shapes)) != 0) return rc;
    for (int i = 0; i < n_in; i++) {
        if (in[i].name) continue;
        kiln_tensor_desc d;
        input_desc(m, e, i, &d);
        for (int k = 0; k < d.rank; k++)
            if (d.dims[k] < 0)
                fprintf(stderr, "kiln: note: input '%s' dim %d ('%s') is symbolic; using 1 (set it with --shapes)\n",
                        d.name, k, d.dim_names[k] ? d.dim_names[k] : "?");
        uint64_t s = seed * 0x9e3779b97f4a7c15ull + (uint64_t)i + 1;
        if ((st = kiln_cli_random_input(&d, &s, &in[i])) != KILN_OK) return kiln_cli_fail(st);
    }
    return 0;
}

void kiln_cli_free_inputs(kiln_tensor *in, int n)
{
    for (int i = 0; in && i < n; i++) free(in[i].data);
    free(in);
}

void kiln_cli_file_name(const char *in, char *out, size_t cap)
{
    size_t i = 0;
    for (; in[i] && i + 1 < cap; i++) {
        char c = in[i];
        out[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                         c == '_' || c == '-'
                     ? c
                     : '_';
    }
    out[i] = '\0';
}
