/* Parameter parsers of the elementwise ops with attributes: the
 * activations LeakyRelu, HardSigmoid, Elu, Selu, Celu, ThresholdedRelu,
 * Gelu, and Cast, Mod, Dropout (see src/ir/params.h). Attributes are f32 in
 * ONNX: the defaults are the f32 values (Selu's the f32 roundings of its
 * constants), which the kernels widen. */
#include "ir/ops.h"

#include <inttypes.h>

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

kiln_status kiln_params_LeakyRelu(const kiln_node *n, kiln_params *p)
{
    return kiln_pa_float(n, "alpha", 0.01f, &p->act.alpha);
}

kiln_status kiln_params_HardSigmoid(const kiln_node *n, kiln_params *p)
{
    kiln_status st = kiln_pa_float(n, "alpha", 0.2f, &p->act.alpha);
    if (st == KILN_OK) st = kiln_pa_float(n, "beta", 0.5f, &p->act.beta);
    return st;
}

kiln_status kiln_params_Elu(const kiln_node *n, kiln_params *p) { return kiln_pa_float(n, "alpha", 1.0f, &p->act.alpha); }

kiln_status kiln_params_Selu(const kiln_node *n, kiln_params *p)
{
    kiln_status st = kiln_pa_float(n, "alpha", 1.67326319217681884765625f, &p->act.alpha);
    if (st == KILN_OK) st = kiln_pa_float(n, "gamma", 1.05070102214813232421875f, &p->act.gamma);
    return st;
}

kiln_status kiln_params_Celu(const kiln_node *n, kiln_params *p)
{
    kiln_status st = kiln_pa_float(n, "alpha", 1.0f, &p->act.alpha);
    if (st == KILN_OK && p->act.alpha == 0.0f)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "Celu attribute 'alpha' is 0, which is not defined (x / alpha)");
    return st;
}

kiln_status kiln_params_ThresholdedRelu(const kiln_node *n, kiln_params *p)
{
    return kiln_pa_float(n, "alpha", 1.0f, &p->act.alpha);
}

kiln_status kiln_params_Gelu(const kiln_node *n, kiln_params *p)
{
    static const char *const names[] = {"none", "tanh"};
    int a;
    kiln_status st = kiln_pa_enum(n, "approximate", KILN_GELU_NONE, names, COUNT(names), &a);
    p->gelu.approximate = (kiln_gelu_approx)a;
    return st;
}

/* 'to' is required; whether kiln has that dtype is the shape rule's */
kiln_status kiln_params_Cast(const kiln_node *n, kiln_params *p)
{
    int64_t to;
    kiln_status st = kiln_pa_int_required(n, "to", &to);
    if (st == KILN_OK) st = kiln_pa_bool(n, "saturate", true, &p->cast.saturate);
    if (st != KILN_OK) return st;
    /* ONNX TensorProto.DataType values; kiln_dtype uses the same numbers */
    if (to <= 0 || to >= 32)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "Cast attribute 'to' is %" PRId64 ", not an ONNX data type kiln knows",
                         to);
    p->cast.to = (kiln_dtype)to;
    return KILN_OK;
}

kiln_status kiln_params_Mod(const kiln_node *n, kiln_params *p)
{
    int64_t f;
    kiln_status st = kiln_pa_int(n, "fmod", 0, &f);
    if (st != KILN_OK) return st;
    if (f != 0 && f != 1)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "Mod attribute 'fmod' is %" PRId64 ", expected 0 or 1", f);
    p->mod.fmod = f == 1;
    return KILN_OK;
}

kiln_status kiln_params_Dropout(const kiln_node *n, kiln_params *p)
{
    kiln_dropout_params *d = &p->dropout;
    kiln_status st = kiln_pa_int(n, "seed", 0, &d->seed);
    d->has_seed = st == KILN_OK && kiln_pa_has(n, "seed");
    return st;
}
