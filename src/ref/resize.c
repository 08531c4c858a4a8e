/* Reference kernel: Resize (opsets 13, 18, 19).
 *
 * Semantics follow the ONNX operator spec and its reference implementation
 * (onnx/reference/ops/op_resize.py), which this mirrors step by step:
 *
 * - Every output coordinate y of an axis maps to an input coordinate x_ori
 *   through coordinate_transformation_mode, with scale = scales[i] (the f32
 *   value, used in f64) or sizes[i] / in[i], and the "output width"
 *   scale * in kept as a real number (align_corners and tf_crop_and_resize
 *   divide by output_width - 1, not by out - 1: with scales 0.6 on 4 pixels
 *   that is 1.4, not 1).
 * - The ratio of x_ori to its left neighbour lies in (0, 1]: an integer x_ori
 *   has ratio 1 and uses the pixel at x_ori as the right tap.
 * - Taps outside [0, in) read the edge pixel (edge padding); exclude_outside
 *   zeroes their weights instead and renormalizes.
 * - Antialias (Resize-18) widens the linear/cubic kernel by 1/scale when
 *   downscaling, and normalizes the weights.
 *
 * Linear and cubic are separable: one pass per resized axis, in ascending
 * axis order, on an f64 copy, narrowed back at the end (integer outputs are
 * rounded half to even and saturated, as the reference's saturate_cast).
 * Nearest is a pure gather, so it is exact for every element type. */
#include "ref/ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The attributes, parsed once (n->params.resize, src/ir/params_resize.c),
 * under this file's short names. */
typedef kiln_resize_mode rs_mode;
typedef kiln_resize_ctm rs_ctm;
typedef kiln_resize_nearest rs_nearest;
#define RS_NEAREST KILN_RESIZE_NEAREST
#define RS_LINEAR KILN_RESIZE_LINEAR
#define RS_CUBIC KILN_RESIZE_CUBIC
#define CT_HALF_PIXEL KILN_RESIZE_HALF_PIXEL
#define CT_HALF_PIXEL_SYM KILN_RESIZE_HALF_PIXEL_SYMMETRIC
#define CT_PYTORCH KILN_RESIZE_PYTORCH_HALF_PIXEL
#define CT_ALIGN KILN_RESIZE_ALIGN_CORNERS
#define CT_ASYM KILN_RESIZE_ASYMMETRIC
#define CT_TF_CROP KILN_RESIZE_TF_CROP_AND_RESIZE
#define NM_PREFER_FLOOR KILN_RESIZE_ROUND_PREFER_FLOOR
#define NM_PREFER_CEIL KILN_RESIZE_ROUND_PREFER_CEIL
#define NM_FLOOR KILN_RESIZE_FLOOR
#define NM_CEIL KILN_RESIZE_CEIL

typedef struct rs_cfg {
    rs_mode mode;
    rs_ctm ctm;
    rs_nearest nearest;
    double cubic_a, extrapolation;
    bool exclude_outside, antialias;
    int rank;
    int64_t in[KILN_MAX_RANK], out[KILN_MAX_RANK];
    double scale[KILN_MAX_RANK];
    double roi_lo[KILN_MAX_RANK], roi_hi[KILN_MAX_RANK];
} rs_cfg;

static void parse_attrs(const kiln_node *n, rs_cfg *c)
{
    const kiln_resize_params *p = &n->params.resize;
    c->mode = p->mode;
    c->ctm = p->ctm;
    c->nearest = p->nearest_mode;
    c->cubic_a = p->cubic_coeff_a;
    c->extrapolation = p->extrapolation_value;
    c->exclude_outside = p->exclude_outside;
    /* the spec defines antialias for linear and cubic only; nearest ignores it */
    c->antialias = p->antialias && c->mode != RS_NEAREST;
}

/* Per-axis scale and roi, expanded to full rank from scales / sizes / roi
 * given for `axes` (Resize-18) or for every axis. */
static kiln_status resolve_params(const kiln_node *n, kiln_value *v, rs_cfg *c)
{
    const kiln_value *x = kiln_in(n, v, 0), *roi = kiln_in(n, v, 1), *sc = kiln_in(n, v, 2), *sz = kiln_in(n, v, 3);
    const kiln_value *y = kiln_out(n, v, 0);
    int r = x->shape.rank;
    if (y->shape.rank != r) return kiln_fail(KILN_ERR_INTERNAL, "Resize output rank %d != input rank %d", y->shape.rank, r);
    c->rank = r;
    int axes[KILN_MAX_RANK];
    const int64_t *ax = n->params.resize.axes;
    int k = n->params.resize.n_axes;
    for (int i = 0; i < k; i++)
        if (kiln_axis(ax[i], r, &axes[i]) != KILN_OK) return kiln_fail(KILN_ERR_SHAPE, "Resize attribute 'axes' is out of range");
    if (!k) {
        k = r;
        for (int i = 0; i < r; i++) axes[i] = i;
    }
    for (int i = 0; i < r; i++) {
        c->in[i] = x->shape.d[i];
        c->out[i] = y->shape.d[i];
        c->scale[i] = 1.0;
        c->roi_lo[i] = 0.0;
        c->roi_hi[i] = 1.0;
    }
    int64_t nsc = sc ? kiln_shape_numel(&sc->shape) : 0;
    if (nsc > 0) {
        if (nsc != k) return kiln_fail(KILN_ERR_SHAPE, "input '%s' has %lld elements, expected %d", sc->name, (long long)nsc, k);
        for (int i = 0; i < k; i++) c->scale[axes[i]] = kiln_load_f64(sc->dtype, sc->data, i);
    } else {
        if (!sz || kiln_shape_numel(&sz->shape) != k)
            return kiln_fail(KILN_ERR_SHAPE, "Resize needs %d scales or sizes", k);
        for (int i = 0; i < k; i++) {
            int a = axes[i];
            if (c->in[a] == 0 && c->out[a] > 0)
                return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "input '%s' axis %d is empty and cannot be resized to %lld",
                                 x->name, a, (long long)c->out[a]);
            c->scale[a] = c->in[a] ? (double)kiln_load_i64(sz->dtype, sz->data, i) / (double)c->in[a] : 1.0;
        }
        /* keep_aspect_ratio_policy: one scale for all resized axes; the
         * output size the shape rule rounded from it is already in c->out */
        kiln_resize_aspect kar = n->params.resize.keep_aspect_ratio_policy;
        if (kar != KILN_RESIZE_STRETCH) {
            bool larger = kar == KILN_RESIZE_NOT_SMALLER;
            double s = c->scale[axes[0]];
            for (int i = 1; i < k; i++) s = larger ? fmax(s, c->scale[axes[i]]) : fmin(s, c->scale[axes[i]]);
            for (int i = 0; i < k; i++) c->scale[axes[i]] = s;
        }
    }
    if (c->ctm == CT_TF_CROP) {
        if (!roi || kiln_shape_numel(&roi->shape) != 2 * k)
            return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "tf_crop_and_resize needs 'roi' with %d values", 2 * k);
        for (int i = 0; i < k; i++) {
            c->roi_lo[axes[i]] = kiln_load_f64(roi->dtype, roi->data, i);
            c->roi_hi[axes[i]] = kiln_load_f64(roi->dtype, roi->data, k + i);
        }
    }
    return KILN_OK;
}

/* Input coordinate of output coordinate y on axis a (ONNX Resize,
 * coordinate_transformation_mode). *outside: tf_crop_and_resize sampled
 * outside the image, where the output is extrapolation_value. */
static double x_original(const rs_cfg *c, int a, int64_t y, bool *outside)
{
    double in = (double)c->in[a], s = c->scale[a], ow = s * in, yd = (double)y, x;
    *outside = false;
    switch (c->ctm) {
    case CT_ALIGN: return ow == 1.0 ? 0.0 : yd * (in - 1.0) / (ow - 1.0);
    case CT_ASYM: return yd / s;
    case CT_PYTORCH: return ow == 1.0 ? -0.5 : (yd + 0.5) / s - 0.5;
    case CT_HALF_PIXEL: return (yd + 0.5) / s - 0.5;
    case CT_HALF_PIXEL_SYM: {
        /* Resize-19: centres the (fractional) output window on the input
         * centre; differs from half_pixel only when in * scale is fractional */
        double offset = in / 2.0 * (1.0 - (double)c->out[a] / ow);
        return offset + (yd + 0.5) / s - 0.5;
    }
    case CT_TF_CROP: {
        double lo = c->roi_lo[a], hi = c->roi_hi[a];
        x = ow == 1.0 ? (hi - lo) * (in - 1.0) / 2.0 : yd * (hi - lo) * (in - 1.0) / (ow - 1.0);
        x += lo * (in - 1.0);
        *outside = x < 0.0 || x > in - 1.0;
        return x;
    }
    }
    return 0.0;
}

/* First tap of an even-sized window of n taps around x: the n input indices
 * nearest to x, ties going to the smaller index (the reference's
 * _get_neighbor on the edge-padded axis, with the pad of ceil(n/2)). */
static int64_t window_start(double x, int n)
{
    double xp = x + (double)(n / 2);
    double p = floor(xp);
    int64_t start = (int64_t)p - n / 2 + (xp == p ? 0 : 1);
    return start - n / 2;
}

static double cubic_kernel(double x, double a)
{
    x = fabs(x);
    if (x <= 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    return 0.0;
}

/* Number of taps per output sample on an axis of scale s. */
static int n_taps(const rs_cfg *c, double s)
{
    if (c->mode == RS_NEAREST) return 2;
    if (!c->antialias) return c->mode == RS_LINEAR ? 2 : 4;
    s = fmin(s, 1.0);
    double reach = c->mode == RS_LINEAR ? 1.0 : 2.0; /* kernel support, widened by 1/s */
    double start = floor(-reach / s) + 1.0;
    double n = 2.0 - 2.0 * start;
    return n > 1 << 20 ? -1 : (int)n;
}

/* Weights of the n taps for fractional position `ratio` in (0, 1]. */
static void tap_weights(const rs_cfg *c, double ratio, double s, int n, double *w)
{
    if (c->mode == RS_NEAREST) {
        bool right;
        if (ratio == 1.0) right = true; /* integer x_ori: that very pixel */
        else if (c->nearest == NM_PREFER_FLOOR) right = ratio > 0.5;
        else if (c->nearest == NM_PREFER_CEIL) right = ratio >= 0.5;
        else right = c->nearest == NM_CEIL;
        w[0] = right ? 0.0 : 1.0;
        w[1] = right ? 1.0 : 0.0;
        return;
    }
    if (!c->antialias) {
        if (c->mode == RS_LINEAR) {
            w[0] = 1.0 - ratio;
            w[1] = ratio;
        } else {
            for (int k = 0; k < 4; k++) w[k] = cubic_kernel((double)(k - 1) - ratio, c->cubic_a);
        }
        return;
    }
    /* antialias: the kernel evaluated at (tap - x) * scale, normalized */
    s = fmin(s, 1.0);
    int start = 1 - n / 2;
    double sum = 0.0;
    for (int k = 0; k < n; k++) {
        double t = ((double)(start + k) - ratio) * s;
        w[k] = c->mode == RS_LINEAR ? fmin(fmax(1.0 - fabs(t), 0.0), 1.0) : cubic_kernel(t, c->cubic_a);
        sum += w[k];
    }
    for (int k = 0; k < n; k++) w[k] /= sum;
}

/* Per-axis sampling table: for each output coordinate, n clamped input
 * indices and weights, or an extrapolation flag. */
typedef struct rs_taps {
    int n;
    int64_t *idx;
    double *w;
    unsigned char *extrap;
} rs_taps;

static void taps_free(rs_taps *t)
{
    free(t->idx);
    free(t->w);
    free(t->extrap);
}

static kiln_status taps_build(const rs_cfg *c, int a, rs_taps *t)
{
    int64_t in = c->in[a], out = c->out[a];
    int n = n_taps(c, c->scale[a]);
    if (n < 0) return kiln_fail(KILN_ERR_UNSUPPORTED, "Resize antialias scale %g on axis %d is too small", c->scale[a], a);
    t->n = n;
    t->idx = kiln_xmalloc((size_t)(out * n + 1) * sizeof *t->idx);
    t->w = kiln_xmalloc((size_t)(out * n + 1) * sizeof *t->w);
    t->extrap = kiln_xcalloc((size_t)out + 1, 1);
    if (!t->idx || !t->w || !t->extrap) return KILN_ERR_OUT_OF_MEMORY;
    for (int64_t y = 0; y < out; y++) {
        bool outside;
        double x = x_original(c, a, y, &outside);
        int64_t *ix = t->idx + y * n;
        double *w = t->w + y * n;
        if (outside) {
            t->extrap[y] = 1;
            for (int k = 0; k < n; k++) ix[k] = 0, w[k] = 0.0;
            continue;
        }
        double fl = floor(x);
        tap_weights(c, x == fl ? 1.0 : x - fl, c->scale[a], n, w);
        int64_t start = window_start(x, n);
        if (c->exclude_outside && c->mode != RS_NEAREST) {
            double sum = 0.0;
            for (int k = 0; k < n; k++) {
                int64_t j = start + k;
                if (j < 0 || j >= in) w[k] = 0.0;
                sum += w[k];
            }
            if (sum != 0.0)
                for (int k = 0; k < n; k++) w[k] /= sum;
        }
        for (int k = 0; k < n; k++) {
            int64_t j = start + k;
            ix[k] = j < 0 ? 0 : j >= in ? in - 1 : j;
        }
    }
    return KILN_OK;
}

/* One separable pass along an axis: src is [outer, in, inner], dst is
 * [outer, out, inner]. */
static void interp_pass(const double *src, double *dst, int64_t outer, int64_t in, int64_t out, int64_t inner,
                        const rs_taps *t, double extrap)
{
    for (int64_t o = 0; o < outer; o++) {
        const double *s = src + o * in * inner;
        double *d = dst + o * out * inner;
        for (int64_t y = 0; y < out; y++) {
            double *dr = d + y * inner;
            if (t->extrap[y]) {
                for (int64_t i = 0; i < inner; i++) dr[i] = extrap;
                continue;
            }
            const int64_t *ix = t->idx + y * t->n;
            const double *w = t->w + y * t->n;
            for (int64_t i = 0; i < inner; i++) dr[i] = 0.0;
            for (int k = 0; k < t->n; k++) {
                const double *sr = s + ix[k] * inner;
                double wk = w[k];
                for (int64_t i = 0; i < inner; i++) dr[i] += wk * sr[i];
            }
        }
    }
}


/* Round half to even and saturate, as the reference's saturate_cast (NaN,
 * which has no integer, becomes 0). */
static double to_int_range(double v, double lo, double hi)
{
    if (isnan(v)) return 0.0;
    v = nearbyint(v);
    return v < lo ? lo : v > hi ? hi : v;
}

static void narrow(kiln_dtype t, const double *src, void *dst, int64_t n)
{
    switch (t) {
    case KILN_U8: for (int64_t i = 0; i < n; i++) ((uint8_t *)dst)[i] = (uint8_t)to_int_range(src[i], 0, 255); break;
    case KILN_I8: for (int64_t i = 0; i < n; i++) ((int8_t *)dst)[i] = (int8_t)to_int_range(src[i], -128, 127); break;
    case KILN_I32:
        for (int64_t i = 0; i < n; i++) ((int32_t *)dst)[i] = (int32_t)to_int_range(src[i], -2147483648.0, 2147483647.0);
        break;
    case KILN_I64:
        /* the largest double below 2^63 is the top of the range */
        for (int64_t i = 0; i < n; i++)
            ((int64_t *)dst)[i] = (int64_t)to_int_range(src[i], -9223372036854775808.0, 9223372036854774784.0);
        break;
    default: kiln_narrow_f64(t, src, dst, n); break;
    }
}

/* An axis the interpolation leaves alone: same size, scale 1 (every mode
 * then maps y to y), and for tf_crop_and_resize the full roi. */
static bool axis_identity(const rs_cfg *c, int a)
{
    return c->scale[a] == 1.0 && c->in[a] == c->out[a] &&
           (c->ctm != CT_TF_CROP || (c->roi_lo[a] == 0.0 && c->roi_hi[a] == 1.0));
}

static kiln_status resize_interp(const rs_cfg *c, const kiln_value *x, kiln_value *y)
{
    int64_t cur[KILN_MAX_RANK];
    int64_t numel = kiln_shape_numel(&x->shape);
    for (int i = 0; i < c->rank; i++) cur[i] = c->in[i];
    double *buf = kiln_xmalloc((size_t)(numel + 1) * sizeof *buf);
    if (!buf) return KILN_ERR_OUT_OF_MEMORY;
    kiln_widen_f64(x->dtype, x->data, buf, numel);
    kiln_status st = KILN_OK;
    for (int a = 0; a < c->rank && st == KILN_OK; a++) {
        if (axis_identity(c, a)) continue;
        int64_t outer = 1, inner = 1;
        for (int i = 0; i < a; i++) outer *= cur[i];
        for (int i = a + 1; i < c->rank; i++) inner *= cur[i];
        rs_taps t = {0};
        st = taps_build(c, a, &t);
        double *next = st == KILN_OK ? kiln_xmalloc((size_t)(outer * c->out[a] * inner + 1) * sizeof *next) : NULL;
        if (st == KILN_OK && !next) st = KILN_ERR_OUT_OF_MEMORY;
        if (st == KILN_OK) {
            interp_pass(buf, next, outer, c->in[a], c->out[a], inner, &t, c->extrapolation);
            free(buf);
            buf = next;
            cur[a] = c->out[a];
        }
        taps_free(&t);
    }
    if (st == KILN_OK) narrow(y->dtype, buf, y->data, kiln_shape_numel(&y->shape));
    free(buf);
    return st;
}

/* Nearest: per-axis source index tables (-1: extrapolate), then a gather of
 * whole elements, whatever their type. */
static kiln_status resize_nearest(const rs_cfg *c, const kiln_value *x, kiln_value *y)
{
    int r = c->rank;
    size_t es = kiln_dtype_size(x->dtype);
    int64_t *tab[KILN_MAX_RANK] = {0};
    kiln_status st = KILN_OK;
    for (int a = 0; a < r && st == KILN_OK; a++) {
        tab[a] = kiln_xmalloc((size_t)(c->out[a] + 1) * sizeof(int64_t));
        if (!tab[a]) {
            st = KILN_ERR_OUT_OF_MEMORY;
            break;
        }
        for (int64_t o = 0; o < c->out[a]; o++) {
            bool outside;
            double xo = x_original(c, a, o, &outside);
            if (outside) {
                tab[a][o] = -1;
                continue;
            }
            double fl = floor(xo), w[2];
            tap_weights(c, xo == fl ? 1.0 : xo - fl, c->scale[a], 2, w);
            int64_t j = window_start(xo, 2) + (w[1] > 0.0 ? 1 : 0);
            tab[a][o] = j < 0 ? 0 : j >= c->in[a] ? c->in[a] - 1 : j;
        }
    }
    if (st == KILN_OK) {
        unsigned char fill[8] = {0};
        kiln_store_f64(x->dtype, fill, 0, c->extrapolation);
        int64_t stride[KILN_MAX_RANK], idx[KILN_MAX_RANK] = {0};
        int64_t s = 1;
        for (int a = r - 1; a >= 0; a--) stride[a] = s, s *= c->in[a];
        int64_t total = kiln_shape_numel(&y->shape);
        const unsigned char *src = x->data;
        unsigned char *dst = y->data;
        for (int64_t e = 0; e < total; e++) {
            int64_t off = 0;
            bool ext = false;
            for (int a = 0; a < r; a++) {
                int64_t j = tab[a][idx[a]];
                if (j < 0) ext = true;
                else off += j * stride[a];
            }
            memcpy(dst + (size_t)e * es, ext ? fill : src + (size_t)off * es, es);
            for (int a = r - 1; a >= 0; a--) {
                if (++idx[a] < c->out[a]) break;
                idx[a] = 0;
            }
        }
    }
    for (int a = 0; a < r; a++) free(tab[a]);
    return st;
}

kiln_status kiln_ref_Resize(const kiln_node *n, kiln_value *v)
{
    const kiln_value *x = kiln_in(n, v, 0);
    kiln_value *y = kiln_out(n, v, 0);
    rs_cfg c;
    parse_attrs(n, &c);
    kiln_status st = resolve_params(n, v, &c);
    if (st != KILN_OK) return st;
    if (kiln_shape_numel(&y->shape) == 0) return KILN_OK;
    return c.mode == RS_NEAREST ? resize_nearest(&c, x, y) : resize_interp(&c, x, y);
}
