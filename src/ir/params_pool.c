/* Parameter parser of the pools: MaxPool, AveragePool (see
 * src/ir/params.h). The window geometry from these parameters and the
 * input's shape is kiln_window_pool's (src/ir/shape_conv.c). */
#include "ir/ops.h"

#include <inttypes.h>
#include <string.h>

static kiln_status pool(const kiln_node *n, kiln_params *p, bool is_max)
{
    kiln_pool_params *q = &p->pool;
    const int ms = KILN_PARAMS_MAX_SPATIAL;
    kiln_status st = kiln_pa_auto_pad(n, &q->auto_pad);
    if (st == KILN_OK) st = kiln_pa_ints_min(n, "kernel_shape", ms, 1, q->kernel, &q->n_kernel);
    if (st == KILN_OK) st = kiln_pa_ints_min(n, "strides", ms, 1, q->strides, &q->n_strides);
    if (st == KILN_OK) st = kiln_pa_ints_min(n, "dilations", ms, 1, q->dilations, &q->n_dilations);
    if (st == KILN_OK) st = kiln_pa_ints_min(n, "pads", 2 * ms, 0, q->pads, &q->n_pads);
    if (st == KILN_OK) st = kiln_pa_bool(n, "ceil_mode", false, &q->ceil_mode);
    if (st == KILN_OK) st = kiln_pa_bool(n, "count_include_pad", false, &q->count_include_pad);
    if (st == KILN_OK && is_max) {
        int64_t so;
        st = kiln_pa_int(n, "storage_order", 0, &so);
        if (st == KILN_OK && so != 0 && so != 1)
            return kiln_fail(KILN_ERR_FORMAT, "MaxPool attribute 'storage_order' is %" PRId64 ", expected 0 or 1", so);
        q->column_major = so == 1;
    }
    if (st != KILN_OK) return st;
    if (q->auto_pad == KILN_AUTO_PAD_VALID) {
        /* no padding and floor rounding: NOTSET's windows with pads of 0 */
        q->auto_pad = KILN_AUTO_PAD_NOTSET;
        q->n_pads = 0;
        memset(q->pads, 0, sizeof q->pads);
        q->ceil_mode = false;
    }
    return KILN_OK;
}

kiln_status kiln_params_MaxPool(const kiln_node *n, kiln_params *p) { return pool(n, p, true); }
kiln_status kiln_params_AveragePool(const kiln_node *n, kiln_params *p) { return pool(n, p, false); }
