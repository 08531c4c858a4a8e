/* Version adapters of the tensor family: attributes that later opsets made
 * inputs (Split, Squeeze, Unsqueeze, Slice, Pad), and the resampling ops
 * before Resize-13 (Resize-10/11, Upsample-7/9). Each cites the ONNX
 * changelog (docs/Changelog.md) difference it bridges. */
#include "ir/adapt_util.h"

#include <string.h>

/* Split-2 -> Split-11: negative axis allowed (a superset). Split-11 ->
 * Split-13: attribute 'split' became the optional input 'split'. */
kiln_status kiln_adapt_Split(kiln_graph *g, kiln_node *n)
{
    kiln_status st = kiln_adapt_ints_to_input(g, n, "split", 1, false);
    if (st != KILN_OK) return st;
    n->opset = 13;
    return KILN_OK;
}

/* Squeeze-1 -> 11: negative axes allowed. Squeeze-11 -> 13: attribute
 * 'axes' became the optional input 'axes' (absent: every dim of size 1). */
kiln_status kiln_adapt_Squeeze(kiln_graph *g, kiln_node *n)
{
    kiln_status st = kiln_adapt_ints_to_input(g, n, "axes", 1, false);
    if (st != KILN_OK) return st;
    n->opset = 13;
    return KILN_OK;
}

/* Unsqueeze-1 -> 11: negative axes allowed. Unsqueeze-11 -> 13: the
 * required attribute 'axes' became the required input 'axes'. */
kiln_status kiln_adapt_Unsqueeze(kiln_graph *g, kiln_node *n)
{
    kiln_status st = kiln_adapt_ints_to_input(g, n, "axes", 1, true);
    if (st != KILN_OK) return st;
    n->opset = 13;
    return KILN_OK;
}

/* Slice-1 -> Slice-10: attributes 'starts', 'ends' (required) and 'axes'
 * became inputs, and the input 'steps' was added (Slice-1 steps by 1, which
 * is what an omitted 'steps' means). The clamping of out-of-range starts
 * and ends is the same. Slice-10 and 11 are native (11 only documents
 * negative values and INT_MIN). */
kiln_status kiln_adapt_Slice(kiln_graph *g, kiln_node *n)
{
    if (n->n_inputs != 1) return kiln_fail(KILN_ERR_FORMAT, "Slice-1 takes 1 input, the node has %d", n->n_inputs);
    kiln_status st = kiln_adapt_ints_to_input(g, n, "starts", 1, true);
    if (st == KILN_OK) st = kiln_adapt_ints_to_input(g, n, "ends", 2, true);
    if (st == KILN_OK) st = kiln_adapt_ints_to_input(g, n, "axes", 3, false);
    if (st != KILN_OK) return st;
    n->opset = 13;
    return KILN_OK;
}

/* Pad-2 -> Pad-11: attribute 'pads' became the input 'pads' (i64), and the
 * float attribute 'value' the optional input 'constant_value' (a scalar of
 * the data's type; absent means 0). Modes are the same. Pad-11 -> 13 only
 * adds types: native. */
kiln_status kiln_adapt_Pad(kiln_graph *g, kiln_node *n)
{
    if (n->n_inputs != 1) return kiln_fail(KILN_ERR_FORMAT, "Pad-2 takes 1 input, the node has %d", n->n_inputs);
    float value = kiln_attr_float(n, "value", 0.0f);
    kiln_status st = kiln_adapt_ints_to_input(g, n, "pads", 1, true);
    if (st != KILN_OK) return st;
    kiln_adapt_drop_attr(n, "value");
    if (value != 0.0f) {
        /* Pad-2 takes only float types; f32 when the graph does not tell */
        kiln_dtype dt = kiln_adapt_dtype(g, n->inputs[0]);
        if (!dt) dt = KILN_F32;
        int node = kiln_adapt_index(g, n);
        int c = kiln_adapt_const_scalar(g, node, "value", dt, value);
        if (c < 0) return KILN_ERR_OUT_OF_MEMORY;
        int ins[3] = {n->inputs[0], n->inputs[1], c};
        if ((st = kiln_adapt_set_inputs(g, n, ins, 3)) != KILN_OK) return st;
    }
    n->opset = 13;
    return KILN_OK;
}

/* ---- resampling */

/* Resize-10 and Upsample map output pixel x to input pixel x / scale
 * (Resize-11's "asymmetric"); which input pixel "nearest" takes is not in
 * their text. onnxruntime, the reference these versions were written
 * against, truncates when upsampling (scale >= 1, every Upsample: ONNX's
 * own Upsample reference repeats each pixel `scale` times) and rounds up
 * when downsampling: Resize-13's nearest_mode "floor" and "ceil". An axis of
 * scale 1 maps onto itself either way. Scales that are not constants at
 * import are taken as upsampling (what Upsample and Resize-10 exist for). */
static kiln_status set_legacy_modes(kiln_graph *g, kiln_node *n, int scales)
{
    const char *mode = kiln_attr_string(n, "mode", "nearest");
    kiln_status st = kiln_adapt_attr_string(g, n, "coordinate_transformation_mode", "asymmetric");
    if (st != KILN_OK || strcmp(mode, "nearest")) return st;
    double s[KILN_MAX_RANK];
    int cnt = 0;
    bool up = false, down = false;
    if (kiln_adapt_known_f64(g, scales, s, KILN_MAX_RANK, &cnt))
        for (int i = 0; i < cnt; i++) {
            if (s[i] > 1) up = true;
            if (s[i] < 1) down = true;
        }
    if (up && down)
        return kiln_fail(KILN_ERR_UNSUPPORTED,
                         "nearest mode with scales that both up- and downsample (onnxruntime rounds each axis its "
                         "own way; Resize-13 has one nearest_mode for all) is not supported");
    return kiln_adapt_attr_string(g, n, "nearest_mode", down ? "ceil" : "floor");
}

/* Resize-10 -> Resize-11: the inputs became (X, roi, scales[, sizes]) and
 * the attributes coordinate_transformation_mode (default half_pixel),
 * nearest_mode, cubic_coeff_a, exclude_outside and extrapolation_value were
 * added; Resize-10 is "asymmetric" (see set_legacy_modes). Resize-11 ->
 * Resize-13: roi and scales became optional (an empty scales tensor, as
 * Resize-11 spells "use sizes", is still accepted), and the mode
 * tf_half_pixel_for_nn was removed: x_original = (x + 0.5) / scale, which
 * is half_pixel's value + 0.5; under "floor" and "round_prefer_floor" that
 * shift is half_pixel with round_prefer_ceil and ceil. */
kiln_status kiln_adapt_Resize(kiln_graph *g, kiln_node *n)
{
    kiln_status st = KILN_OK;
    if (n->opset < 11) {
        if (n->n_inputs != 2)
            return kiln_fail(KILN_ERR_FORMAT, "Resize-10 takes 2 inputs, the node has %d", n->n_inputs);
        int ins[3] = {n->inputs[0], -1, n->inputs[1]};
        if ((st = kiln_adapt_set_inputs(g, n, ins, 3)) != KILN_OK) return st;
        if ((st = set_legacy_modes(g, n, ins[2])) != KILN_OK) return st;
    } else if (!strcmp(kiln_attr_string(n, "coordinate_transformation_mode", ""), "tf_half_pixel_for_nn")) {
        const char *nm = kiln_attr_string(n, "nearest_mode", "round_prefer_floor");
        const char *to = !strcmp(nm, "floor") ? "round_prefer_ceil" : !strcmp(nm, "round_prefer_floor") ? "ceil" : NULL;
        if (strcmp(kiln_attr_string(n, "mode", "nearest"), "nearest") || !to)
            return kiln_fail(KILN_ERR_UNSUPPORTED,
                             "coordinate_transformation_mode tf_half_pixel_for_nn (removed in Resize-13) is supported "
                             "with mode nearest and nearest_mode floor or round_prefer_floor, not mode '%s' with "
                             "nearest_mode '%s'",
                             kiln_attr_string(n, "mode", "nearest"), nm);
        if ((st = kiln_adapt_attr_string(g, n, "coordinate_transformation_mode", "half_pixel")) != KILN_OK ||
            (st = kiln_adapt_attr_string(g, n, "nearest_mode", to)) != KILN_OK)
            return st;
    }
    n->opset = 13;
    return KILN_OK;
}

/* Upsample-7 (scales an attribute) and Upsample-9 (scales an input), gone
 * after opset 9: Resize-10 replaced it with the same semantics (ONNX's
 * version converter renames Upsample-9 to Resize-10, adapters/
 * upsample_9_10.h). Rewritten into Resize-13 (X, no roi, scales) with
 * Resize-10's modes (set_legacy_modes). Modes: nearest (default), linear. */
kiln_status kiln_adapt_Upsample(kiln_graph *g, kiln_node *n)
{
    kiln_status st;
    int node = kiln_adapt_index(g, n);
    int scales;
    if (n->opset < 9) {
        const kiln_attr *a = kiln_attr_find(n, "scales");
        if (!a || a->type != KILN_ATTR_FLOATS)
            return kiln_fail(KILN_ERR_FORMAT, "the required attribute 'scales' (floats) is missing");
        if (n->n_inputs != 1)
            return kiln_fail(KILN_ERR_FORMAT, "Upsample-7 takes 1 input, the node has %d", n->n_inputs);
        scales = kiln_adapt_const_f32(g, node, "scales", a->floats, a->n);
        if (scales < 0) return KILN_ERR_OUT_OF_MEMORY;
        kiln_adapt_drop_attr(n, "scales");
    } else {
        if (n->n_inputs != 2)
            return kiln_fail(KILN_ERR_FORMAT, "Upsample-9 takes 2 inputs, the node has %d", n->n_inputs);
        scales = n->inputs[1];
    }
    const char *mode = kiln_attr_string(n, "mode", "nearest");
    if (strcmp(mode, "nearest") && strcmp(mode, "linear"))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "mode '%s' is not one of Upsample's nearest and linear", mode);
    int ins[3] = {n->inputs[0], -1, scales};
    if ((st = kiln_adapt_set_inputs(g, n, ins, 3)) != KILN_OK) return st;
    if ((st = set_legacy_modes(g, n, scales)) != KILN_OK) return st;
    n->op_type = "Resize";
    n->opset = 13;
    return KILN_OK;
}
