/* Parameter parsers of the normalizations over channels and spatial dims
 * (LRN, InstanceNormalization, GroupNormalization) and of CumSum (see
 * src/ir/params.h). Attributes are f32 in ONNX: the defaults are the f32
 * values, which the kernels widen. */
#include "ir/ops.h"

#include <inttypes.h>

/* LRN-1/13: size is required */
kiln_status kiln_params_LRN(const kiln_node *n, kiln_params *p)
{
    kiln_lrn_params *l = &p->lrn;
    kiln_status st = kiln_pa_int_required(n, "size", &l->size);
    if (st == KILN_OK && l->size < 1)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "LRN attribute 'size' is %" PRId64 ", must be 1 or more", l->size);
    if (st == KILN_OK) st = kiln_pa_float(n, "alpha", 0.0001f, &l->alpha);
    if (st == KILN_OK) st = kiln_pa_float(n, "beta", 0.75f, &l->beta);
    if (st == KILN_OK) st = kiln_pa_float(n, "bias", 1.0f, &l->bias);
    return st;
}

kiln_status kiln_params_InstanceNormalization(const kiln_node *n, kiln_params *p)
{
    p->norm.num_groups = 0;
    p->norm.stash_type = KILN_F32;
    return kiln_pa_float(n, "epsilon", 1e-5f, &p->norm.epsilon);
}

/* GroupNormalization-18/21: num_groups is required; stash_type (21) says
 * the statistics' precision (the ref computes them in f64 whatever it
 * says) and must be a float type */
kiln_status kiln_params_GroupNormalization(const kiln_node *n, kiln_params *p)
{
    kiln_norm_params *g = &p->norm;
    int64_t stash;
    kiln_status st = kiln_pa_float(n, "epsilon", 1e-5f, &g->epsilon);
    if (st == KILN_OK) st = kiln_pa_int_required(n, "num_groups", &g->num_groups);
    if (st == KILN_OK && g->num_groups < 1)
        return kiln_fail(KILN_ERR_FORMAT, "GroupNormalization attribute 'num_groups' is %" PRId64 ", must be 1 or more",
                         g->num_groups);
    if (st == KILN_OK) st = kiln_pa_int(n, "stash_type", KILN_F32, &stash);
    if (st != KILN_OK) return st;
    if (stash != KILN_F32 && stash != KILN_F64 && stash != KILN_F16 && stash != KILN_BF16)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "GroupNormalization attribute 'stash_type' is %" PRId64 ", not a float type",
                         stash);
    g->stash_type = (kiln_dtype)stash;
    return KILN_OK;
}

kiln_status kiln_params_CumSum(const kiln_node *n, kiln_params *p)
{
    kiln_status st = kiln_pa_bool(n, "exclusive", false, &p->cumsum.exclusive);
    if (st == KILN_OK) st = kiln_pa_bool(n, "reverse", false, &p->cumsum.reverse);
    return st;
}
