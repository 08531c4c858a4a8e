/* Shape rules of the resampling family: Resize and Pad.
 *
 * Both ops take their shape-determining parameters as inputs (Resize: scales
 * or sizes; Pad: pads and axes). When those are constants the output shape is
 * exact; otherwise the rank is kept and only the dims they could change become
 * KILN_DIM_UNKNOWN, so a symbolic batch dim survives an unknown spatial resize. */
#include "ir/ops.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

/* Element count of a 1-D (or 0-D) input, -1 when unknown, 0 when omitted. */
static int64_t input_len(const kiln_value *x)
{
    if (!x) return 0;
    if (x->shape.rank < 0) return -1;
    int64_t n = kiln_shape_numel(&x->shape);
    return n < 0 ? -1 : n;
}

/* Normalizes `cnt` axes into out[], rejecting out-of-range and repeated axes. */
static kiln_status normalize_axes(const char *what, const int64_t *ax, int cnt, int rank, int *out)
{
    bool seen[KILN_MAX_RANK] = {false};
    for (int i = 0; i < cnt; i++) {
        if (kiln_axis(ax[i], rank, &out[i]) != KILN_OK)
            return kiln_fail(KILN_ERR_SHAPE, "%s: axis %" PRId64 " is out of range for rank %d", what, ax[i], rank);
        if (seen[out[i]]) return kiln_fail(KILN_ERR_SHAPE, "%s: axis %" PRId64 " is repeated", what, ax[i]);
        seen[out[i]] = true;
    }
    return KILN_OK;
}

/* ---- Resize */

/* The attributes are n->params.resize, checked by the parser
 * (src/ir/params_resize.c). */
static kiln_status resize_check_attrs(const kiln_node *n, kiln_dtype dt)
{
    kiln_resize_mode mode = n->params.resize.mode;
    /* nearest is a gather and takes any element type; linear and cubic
     * interpolate in f64 and round back, which needs a numeric type */
    if (mode != KILN_RESIZE_NEAREST && (dt == KILN_BOOL || dt == KILN_F8E4M3))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "Resize mode '%s' on %s input is not supported",
                         kiln_resize_mode_name(mode), kiln_dtype_name(dt));
    return KILN_OK;
}

/* Output dims from known `sizes` (one per resized axis). With a
 * keep_aspect_ratio_policy other than stretch, the ONNX spec (Resize-18)
 * takes one scale for all resized axes, the min (not_larger) or max
 * (not_smaller) of sizes[i] / in[i], and rounds scale * in half up. */
static kiln_status resize_from_sizes(const kiln_node *n, const kiln_value *x, const kiln_value *sz, const int *axes,
                                     int k, kiln_shape *o)
{
    int64_t sizes[KILN_MAX_RANK];
    int cnt;
    kiln_status st = kiln_value_ints(sz, sizes, KILN_MAX_RANK, &cnt);
    if (st != KILN_OK) return st;
    for (int i = 0; i < k; i++)
        if (sizes[i] < 0) return kiln_fail(KILN_ERR_SHAPE, "input '%s' has negative size %" PRId64, sz->name, sizes[i]);
    kiln_resize_aspect kar = n->params.resize.keep_aspect_ratio_policy;
    if (kar == KILN_RESIZE_STRETCH) {
        for (int i = 0; i < k; i++) o->d[axes[i]] = sizes[i];
        return KILN_OK;
    }
    bool larger = kar == KILN_RESIZE_NOT_SMALLER;
    double scale = larger ? 0.0 : INFINITY;
    for (int i = 0; i < k; i++) {
        int64_t d = x->shape.d[axes[i]];
        if (!kiln_dim_known(d)) {
            for (int j = 0; j < k; j++) o->d[axes[j]] = KILN_DIM_UNKNOWN;
            return KILN_OK;
        }
        if (d == 0) return kiln_fail(KILN_ERR_SHAPE, "input '%s' axis %d is empty: no aspect ratio to keep", x->name, axes[i]);
        double s = (double)sizes[i] / (double)d;
        scale = larger ? fmax(scale, s) : fmin(scale, s);
    }
    for (int i = 0; i < k; i++) {
        double d = floor(scale * (double)x->shape.d[axes[i]] + 0.5);
        if (!(d >= 0 && d <= KILN_DIM_MAX)) return kiln_fail(KILN_ERR_SHAPE, "resized dim %g is out of range", d);
        o->d[axes[i]] = (int64_t)d;
    }
    return KILN_OK;
}

/* Output dims from known `scales`: floor(in * scale), as ONNX's reference
 * computes it (in f64 from the f32 scale). A scale of exactly 1 keeps a
 * symbolic dim. */
static kiln_status resize_from_scales(const kiln_value *x, const kiln_value *sc, const int *axes, int k, kiln_shape *o)
{
    if (!kiln_dtype_is_float(sc->dtype))
        return kiln_fail(KILN_ERR_SHAPE, "input '%s' must be float, is %s", sc->name, kiln_dtype_name(sc->dtype));
    for (int i = 0; i < k; i++) {
        double s = kiln_load_f64(sc->dtype, sc->data, i);
        if (!(s > 0.0)) return kiln_fail(KILN_ERR_SHAPE, "input '%s' has scale %g; scales must be > 0", sc->name, s);
        int64_t d = x->shape.d[axes[i]];
        if (kiln_dim_known(d)) {
            double r = floor((double)d * s);
            if (!(r <= KILN_DIM_MAX))
                return kiln_fail(KILN_ERR_SHAPE, "input '%s': scale %g makes dim %" PRId64 " too large", sc->name, s, d);
            o->d[axes[i]] = (int64_t)r;
        }
        else if (s != 1.0)
            o->d[axes[i]] = KILN_DIM_UNKNOWN;
    }
    return KILN_OK;
}

kiln_status kiln_shape_Resize(const kiln_node *n, kiln_value *v)
{
    kiln_value *x = kiln_in(n, v, 0), *sc = kiln_in(n, v, 2), *sz = kiln_in(n, v, 3), *o = kiln_out(n, v, 0);
    if (!x || !o) return kiln_fail(KILN_ERR_SHAPE, "Resize needs input 'X' and an output");
    kiln_status st = resize_check_attrs(n, x->dtype);
    if (st != KILN_OK) return st;
    o->dtype = x->dtype;

    /* Opset 13 spells "sizes only" as an empty scales tensor or name. */
    int64_t nsc = input_len(sc), nsz = input_len(sz);
    if (nsc > 0 && nsz > 0)
        return kiln_fail(KILN_ERR_SHAPE, "inputs '%s' and '%s' are both given; Resize takes only one of scales and sizes",
                         sc->name, sz->name);
    if (nsc == 0 && nsz == 0) return kiln_fail(KILN_ERR_SHAPE, "Resize needs non-empty 'scales' or 'sizes'");
    const kiln_value *p = nsc != 0 && nsz <= 0 ? sc : nsz != 0 && nsc <= 0 ? sz : NULL; /* NULL: cannot tell */
    int64_t plen = p == sc ? nsc : nsz;

    const int64_t *axattr = n->params.resize.axes;
    int nax = n->params.resize.n_axes;
    int r = x->shape.rank;
    if (r < 0) {
        /* rank only from a full-rank parameter vector */
        o->shape.rank = nax == 0 && p && plen > 0 && plen <= KILN_MAX_RANK ? (int)plen : -1;
        for (int i = 0; i < o->shape.rank; i++) o->shape.d[i] = KILN_DIM_UNKNOWN;
        return KILN_OK;
    }
    int axes[KILN_MAX_RANK];
    int k = nax ? nax : r;
    if (nax > r) return kiln_fail(KILN_ERR_SHAPE, "Resize has %d axes for input '%s' of rank %d", nax, x->name, r);
    if (nax) {
        st = normalize_axes("Resize attribute 'axes'", axattr, nax, r, axes);
        if (st != KILN_OK) return st;
    } else {
        for (int i = 0; i < r; i++) axes[i] = i;
    }
    if (p && plen >= 0 && plen != k)
        return kiln_fail(KILN_ERR_SHAPE, "input '%s' has %" PRId64 " elements, expected %d (%s)", p->name, plen, k,
                         nax ? "one per axis" : "the rank of X");

    o->shape = x->shape;
    if (p && p->data) return p == sc ? resize_from_scales(x, sc, axes, k, &o->shape)
                                     : resize_from_sizes(n, x, sz, axes, k, &o->shape);
    for (int i = 0; i < k; i++) o->shape.d[axes[i]] = KILN_DIM_UNKNOWN;
    return KILN_OK;
}

/* Separable interpolation: each resized axis is one pass of `taps` multiply-
 * adds per element of that pass's output; nearest is one copy per element. */
double kiln_flops_Resize(const kiln_node *n, const kiln_value *v)
{
    const kiln_value *x = kiln_in(n, (kiln_value *)v, 0), *o = kiln_out(n, (kiln_value *)v, 0);
    double out = (double)kiln_shape_numel(&o->shape);
    kiln_resize_mode mode = n->params.resize.mode;
    if (mode == KILN_RESIZE_NEAREST || x->shape.rank != o->shape.rank) return out;
    double taps = mode == KILN_RESIZE_CUBIC ? 4.0 : 2.0, f = 0.0;
    for (int i = 0; i < o->shape.rank; i++)
        if (x->shape.d[i] != o->shape.d[i]) f += 2.0 * taps * out;
    return f > 0.0 ? f : out;
}

/* ---- Pad */

kiln_status kiln_shape_Pad(const kiln_node *n, kiln_value *v)
{
    kiln_value *x = kiln_in(n, v, 0), *pads = kiln_in(n, v, 1), *cv = kiln_in(n, v, 2), *axv = kiln_in(n, v, 3);
    kiln_value *o = kiln_out(n, v, 0);
    if (!x || !pads || !o) return kiln_fail(KILN_ERR_SHAPE, "Pad needs inputs 'data' and 'pads' and an output");
    kiln_pad_mode mode = n->params.pad.mode; /* checked by the parser (src/ir/params_resize.c) */
    if (cv && cv->dtype != x->dtype)
        return kiln_fail(KILN_ERR_SHAPE, "input '%s' is %s, expected %s like '%s'", cv->name, kiln_dtype_name(cv->dtype),
                         kiln_dtype_name(x->dtype), x->name);
    if (cv && input_len(cv) > 1)
        return kiln_fail(KILN_ERR_SHAPE, "input '%s' must be a scalar, has %" PRId64 " elements", cv->name, input_len(cv));
    o->dtype = x->dtype;
    o->shape = x->shape;
    int r = x->shape.rank;
    if (r < 0) return KILN_OK;

    int axes[KILN_MAX_RANK], k = r;
    bool axes_known = true;
    if (axv) {
        if (!axv->data) {
            axes_known = false;
        } else {
            int64_t ax[KILN_MAX_RANK];
            kiln_status st = kiln_value_ints(axv, ax, KILN_MAX_RANK, &k);
            if (st != KILN_OK) return st;
            st = normalize_axes("Pad input 'axes'", ax, k, r, axes);
            if (st != KILN_OK) return st;
        }
    } else {
        for (int i = 0; i < r; i++) axes[i] = i;
    }
    int64_t np = input_len(pads);
    if (axes_known && np >= 0 && np != 2 * k)
        return kiln_fail(KILN_ERR_SHAPE, "input '%s' has %" PRId64 " elements, expected %d (2 per padded axis)", pads->name,
                         np, 2 * k);
    if (!axes_known) {
        for (int i = 0; i < r; i++) o->shape.d[i] = KILN_DIM_UNKNOWN;
        return KILN_OK;
    }
    if (!pads->data) {
        for (int i = 0; i < k; i++) o->shape.d[axes[i]] = KILN_DIM_UNKNOWN;
        return KILN_OK;
    }
    int64_t pv[2 * KILN_MAX_RANK];
    int cnt;
    kiln_status st = kiln_value_ints(pads, pv, 2 * KILN_MAX_RANK, &cnt);
    if (st != KILN_OK) return st;
    bool wraps = mode != KILN_PAD_CONSTANT;
    for (int i = 0; i < k; i++) {
        int64_t b = pv[i], e = pv[k + i], d = x->shape.d[axes[i]];
        if (b == 0 && e == 0) continue; /* symbol passes through */
        if (!kiln_dim_known(d)) {
            o->shape.d[axes[i]] = KILN_DIM_UNKNOWN;
            continue;
        }
        /* negative pads crop first (ONNX Pad: "can be negative to remove"),
         * then the positive ones pad what is left */
        int64_t kept = d - (b < 0 ? -b : 0) - (e < 0 ? -e : 0);
        if (kept < 0)
            return kiln_fail(KILN_ERR_SHAPE, "input '%s' pads [%" PRId64 ", %" PRId64 "] crop more than axis %d has (%" PRId64 ")",
                             pads->name, b, e, axes[i], d);
        if (kept == 0 && wraps && (b > 0 || e > 0))
            return kiln_fail(KILN_ERR_SHAPE, "Pad mode '%s' cannot pad axis %d of '%s': nothing is left to repeat",
                             kiln_pad_mode_name(mode), axes[i], x->name);
        o->shape.d[axes[i]] = d + b + e;
    }
    return KILN_OK;
}
