/* Parameter parsers of the resampling family: Resize and Pad (the one list
 * of their mode strings; see src/ir/params.h). */
#include "ir/ops.h"

static const char *const RESIZE_MODES[] = {"nearest", "linear", "cubic"};
static const char *const RESIZE_CTMS[] = {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel",
                                          "align_corners", "asymmetric", "tf_crop_and_resize"};
static const char *const RESIZE_NEAREST[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
static const char *const RESIZE_ASPECT[] = {"stretch", "not_larger", "not_smaller"};
static const char *const PAD_MODES[] = {"constant", "reflect", "edge", "wrap"};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

const char *kiln_resize_mode_name(kiln_resize_mode m)
{
    return (int)m >= 0 && (int)m < COUNT(RESIZE_MODES) ? RESIZE_MODES[m] : "?";
}

const char *kiln_pad_mode_name(kiln_pad_mode m) { return (int)m >= 0 && (int)m < COUNT(PAD_MODES) ? PAD_MODES[m] : "?"; }

kiln_status kiln_params_Resize(const kiln_node *n, kiln_params *p)
{
    kiln_resize_params *r = &p->resize;
    int mode, ctm, nm, kar;
    kiln_status st = kiln_pa_enum(n, "mode", KILN_RESIZE_NEAREST, RESIZE_MODES, COUNT(RESIZE_MODES), &mode);
    if (st == KILN_OK)
        st = kiln_pa_enum(n, "coordinate_transformation_mode", KILN_RESIZE_HALF_PIXEL, RESIZE_CTMS, COUNT(RESIZE_CTMS),
                          &ctm);
    if (st == KILN_OK)
        st = kiln_pa_enum(n, "nearest_mode", KILN_RESIZE_ROUND_PREFER_FLOOR, RESIZE_NEAREST, COUNT(RESIZE_NEAREST), &nm);
    if (st == KILN_OK)
        st = kiln_pa_enum(n, "keep_aspect_ratio_policy", KILN_RESIZE_STRETCH, RESIZE_ASPECT, COUNT(RESIZE_ASPECT), &kar);
    if (st == KILN_OK) st = kiln_pa_float(n, "cubic_coeff_a", -0.75f, &r->cubic_coeff_a);
    if (st == KILN_OK) st = kiln_pa_float(n, "extrapolation_value", 0.0f, &r->extrapolation_value);
    if (st == KILN_OK) st = kiln_pa_bool(n, "exclude_outside", false, &r->exclude_outside);
    if (st == KILN_OK) st = kiln_pa_bool(n, "antialias", false, &r->antialias);
    if (st == KILN_OK) st = kiln_pa_ints(n, "axes", KILN_MAX_RANK, r->axes, &r->n_axes);
    if (st != KILN_OK) return st;
    r->mode = (kiln_resize_mode)mode;
    r->ctm = (kiln_resize_ctm)ctm;
    r->nearest_mode = (kiln_resize_nearest)nm;
    r->keep_aspect_ratio_policy = (kiln_resize_aspect)kar;
    return KILN_OK;
}

kiln_status kiln_params_Pad(const kiln_node *n, kiln_params *p)
{
    int mode;
    kiln_status st = kiln_pa_enum(n, "mode", KILN_PAD_CONSTANT, PAD_MODES, COUNT(PAD_MODES), &mode);
    if (st != KILN_OK) return st;
    p->pad.mode = (kiln_pad_mode)mode;
    return KILN_OK;
}
