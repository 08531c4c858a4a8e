/* Parameter parsers of the conv family: Conv, ConvTranspose,
 * BatchNormalization, Gemm (see src/ir/params.h). The window geometry from
 * the conv parameters and the input's shape is kiln_window_conv's and
 * kiln_window_convtranspose's (src/ir/shape_conv.c), which check the
 * lists' lengths against the spatial dims. */
#include "ir/ops.h"

#include <inttypes.h>

static kiln_status conv(const kiln_node *n, kiln_params *p, bool transpose)
{
    kiln_conv_params *c = &p->conv;
    const int ms = KILN_PARAMS_MAX_SPATIAL;
    kiln_status st = kiln_pa_auto_pad(n, &c->auto_pad);
    if (st == KILN_OK) st = kiln_pa_int(n, "group", 1, &c->group);
    if (st == KILN_OK && c->group < 1)
        return kiln_fail(KILN_ERR_FORMAT, "%s attribute 'group' is %" PRId64 ", must be >= 1", n->op_type, c->group);
    if (st == KILN_OK) st = kiln_pa_ints_min(n, "kernel_shape", ms, 1, c->kernel, &c->n_kernel);
    if (st == KILN_OK) st = kiln_pa_ints_min(n, "strides", ms, 1, c->strides, &c->n_strides);
    if (st == KILN_OK) st = kiln_pa_ints_min(n, "dilations", ms, 1, c->dilations, &c->n_dilations);
    if (st == KILN_OK) st = kiln_pa_ints_min(n, "pads", 2 * ms, 0, c->pads, &c->n_pads);
    if (st == KILN_OK && transpose)
        st = kiln_pa_ints_min(n, "output_padding", ms, 0, c->output_padding, &c->n_output_padding);
    if (st == KILN_OK && transpose)
        st = kiln_pa_ints_min(n, "output_shape", KILN_MAX_RANK, 0, c->output_shape, &c->n_output_shape);
    return st;
}

kiln_status kiln_params_Conv(const kiln_node *n, kiln_params *p) { return conv(n, p, false); }
kiln_status kiln_params_ConvTranspose(const kiln_node *n, kiln_params *p) { return conv(n, p, true); }

kiln_status kiln_params_BatchNormalization(const kiln_node *n, kiln_params *p)
{
    kiln_batchnorm_params *b = &p->batchnorm;
    kiln_status st = kiln_pa_float(n, "epsilon", 1e-5f, &b->epsilon);
    if (st == KILN_OK) st = kiln_pa_bool(n, "training_mode", false, &b->training_mode);
    return st;
}

kiln_status kiln_params_Gemm(const kiln_node *n, kiln_params *p)
{
    kiln_gemm_params *g = &p->gemm;
    kiln_status st = kiln_pa_float(n, "alpha", 1.0f, &g->alpha);
    if (st == KILN_OK) st = kiln_pa_float(n, "beta", 1.0f, &g->beta);
    if (st == KILN_OK) st = kiln_pa_bool(n, "transA", false, &g->trans_a);
    if (st == KILN_OK) st = kiln_pa_bool(n, "transB", false, &g->trans_b);
    return st;
}
