/* Reference kernels: Conv, ConvTranspose, BatchNormalization.
 *
 * f32 (and f16/bf16 staged through f32) Conv is im2col + kiln_sgemm: per
 * image and group, Y_g[M/g x out] = W_g[M/g x C/g*k] * col[C/g*k x out]; a
 * 1x1, stride 1, unpadded conv needs no im2col at all (col is X). Depthwise
 * convs (C/group == 1) run as a direct loop instead: a GEMM with one row
 * would waste most of the micro-kernel. ConvTranspose is the adjoint:
 * col = W_g^T * X_g, then col2im scatter-adds col into Y. f64 runs direct
 * loops (no f64 GEMM kernel worth the code; f64 convs are rare).
 *
 * All of them walk "taps": for one kernel offset, output position o reads
 * input position o * stride + kernel_offset * dilation - pad_begin (and
 * ConvTranspose writes output position i * stride + ... from input i). The
 * tap_map below turns that into rows of the innermost axis with a valid
 * range [lo, hi), so the inner loops have no bounds checks. */
#include "ref/ref.h"

#include "ir/shape_conv.h"
#include "ref/gemm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- taps */

typedef struct tap_map {
    int nsp;
    int64_t it[KILN_MAX_SPATIAL];   /* extents iterated over (the "from" side) */
    int64_t tgt[KILN_MAX_SPATIAL];  /* extents of the side addressed through the tap */
    int64_t stride[KILN_MAX_SPATIAL];
    int64_t base[KILN_MAX_SPATIAL]; /* target = from * stride + base, for the current tap */
    int64_t row_len;                /* it[nsp - 1] */
    int64_t rows;                   /* product of it[0 .. nsp - 1) */
    int64_t lo, hi;                 /* innermost `from` range whose target is in bounds */
} tap_map;

static int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

static void tap_init(tap_map *m, const kiln_window *w, const int64_t *it, const int64_t *tgt)
{
    m->nsp = w->nsp;
    m->rows = 1;
    for (int i = 0; i < w->nsp; i++) {
        m->it[i] = it[i];
        m->tgt[i] = tgt[i];
        m->stride[i] = w->stride[i];
        if (i < w->nsp - 1) m->rows *= it[i];
    }
    m->row_len = it[w->nsp - 1];
}

/* Selects kernel offset `kidx` (row-major over w->kernel). */
static void tap_set(tap_map *m, const kiln_window *w, int64_t kidx)
{
    for (int i = m->nsp - 1; i >= 0; i--) {
        int64_t k = kidx % w->kernel[i];
        kidx /= w->kernel[i];
        m->base[i] = k * w->dilation[i] - w->pad_begin[i];
    }
    /* 0 <= j * s + base < tgt  <=>  ceil(-base / s) <= j <= floor((tgt - 1 - base) / s) */
    int last = m->nsp - 1;
    int64_t s = m->stride[last], b = m->base[last];
    int64_t lo = -floor_div(b, s), hi = floor_div(m->tgt[last] - 1 - b, s) + 1;
    if (lo < 0) lo = 0;
    if (hi > m->row_len) hi = m->row_len;
    m->lo = lo;
    m->hi = hi > lo ? hi : lo;
}

/* Sets *t to the offset in the target tensor (row-major over tgt) that
 * innermost index 0 of iteration row r maps to (it may lie before the row:
 * only [lo, hi) is in bounds). False when r maps outside the target on an
 * outer axis. */
static bool tap_row(const tap_map *m, int64_t r, int64_t *t)
{
    int64_t off = 0, scale = m->tgt[m->nsp - 1];
    for (int i = m->nsp - 2; i >= 0; i--) {
        int64_t j = r % m->it[i];
        r /= m->it[i];
        int64_t p = j * m->stride[i] + m->base[i];
        if (p < 0 || p >= m->tgt[i]) return false;
        off += p * scale;
        scale *= m->tgt[i];
    }
    *t = off + m->base[m->nsp - 1];
    return true;
}

/* ---- geometry of one call */

typedef struct conv_geom {
    kiln_window w;
    int64_t batch, c, m, group, cg, mg; /* C/group, M/group */
    int64_t in_sp, out_sp, ksz;         /* spatial sizes and kernel size */
} conv_geom;

static kiln_status conv_geom_init(const kiln_node *n, kiln_value *v, bool transpose, conv_geom *g)
{
    const kiln_value *x = kiln_in(n, v, 0), *w = kiln_in(n, v, 1), *y = kiln_out(n, v, 0);
    int nsp = x->shape.rank - 2;
    int64_t k[KILN_MAX_SPATIAL];
    for (int i = 0; i < nsp; i++) k[i] = w->shape.d[i + 2];
    kiln_status st = transpose ? kiln_window_convtranspose(n, &x->shape, k, &g->w) : kiln_window_conv(n, &x->shape, k, &g->w);
    if (st != KILN_OK) return st;
    g->batch = x->shape.d[0];
    g->c = x->shape.d[1];
    g->m = y->shape.d[1];
    g->group = n->params.conv.group;
    /* the shape rule checked what was known at build time; with symbolic
     * channels the run-time shapes are checked here, before any indexing */
    int64_t wc = transpose ? w->shape.d[0] : w->shape.d[1] * g->group;
    int64_t wm = transpose ? w->shape.d[1] * g->group : w->shape.d[0];
    if (g->group < 1 || wc != g->c || wm != g->m || g->m % g->group || g->c % g->group)
        return kiln_fail(KILN_ERR_SHAPE, "input '%s' has %lld channels and output %lld, weight '%s' and group %lld disagree",
                         x->name, (long long)g->c, (long long)g->m, w->name, (long long)g->group);
    const kiln_value *b = kiln_in(n, v, 2);
    if (b && kiln_shape_numel(&b->shape) != g->m)
        return kiln_fail(KILN_ERR_SHAPE, "bias '%s' has %lld values, expected %lld", b->name,
                         (long long)kiln_shape_numel(&b->shape), (long long)g->m);
    g->cg = g->c / g->group;
    g->mg = g->m / g->group;
    g->in_sp = g->out_sp = g->ksz = 1;
    for (int i = 0; i < nsp; i++) {
        g->in_sp *= x->shape.d[i + 2];
        g->out_sp *= y->shape.d[i + 2];
        g->ksz *= k[i];
        if (y->shape.d[i + 2] != g->w.out[i])
            return kiln_fail(KILN_ERR_INTERNAL, "output '%s' axis %d is %lld, the window gives %lld", y->name, i + 2,
                             (long long)y->shape.d[i + 2], (long long)g->w.out[i]);
    }
    return KILN_OK;
}

static bool is_pointwise(const conv_geom *g)
{
    for (int i = 0; i < g->w.nsp; i++)
        if (g->w.kernel[i] != 1 || g->w.stride[i] != 1 || g->w.pad_begin[i] || g->w.pad_end[i]) return false;
    return true;
}

/* ---- direct loops, for f32 depthwise and for f64: y (one output channel)
 * += w[c, kidx] * x (one input channel) over every tap. A small macro keeps
 * one loop body for both element types. */

#define DIRECT_CONV_TAPS(T, y, x, wt, g, tm)                                                  \
    for (int64_t kidx = 0; kidx < (g)->ksz; kidx++) {                                        \
        T wv = (wt)[kidx];                                                                    \
        tap_set(tm, &(g)->w, kidx);                                                           \
        int64_t s = (tm)->stride[(tm)->nsp - 1];                                              \
        for (int64_t r = 0; r < (tm)->rows; r++) {                                            \
            int64_t t;                                                                        \
            if (!tap_row(tm, r, &t)) continue;                                                \
            T *yr = (y) + r * (tm)->row_len;                                                  \
            for (int64_t j = (tm)->lo; j < (tm)->hi; j++) yr[j] += wv * (x)[t + j * s];       \
        }                                                                                     \
    }

static void conv_depthwise_f32(const conv_geom *g, const float *x, const float *w, float *y)
{
    tap_map tm;
    tap_init(&tm, &g->w, g->w.out, g->w.in);
    for (int64_t b = 0; b < g->batch; b++)
        for (int64_t oc = 0; oc < g->m; oc++) {
            const float *xc = x + (b * g->c + oc / g->mg) * g->in_sp;
            float *yc = y + (b * g->m + oc) * g->out_sp;
            memset(yc, 0, (size_t)g->out_sp * sizeof *yc);
            DIRECT_CONV_TAPS(float, yc, xc, w + oc * g->ksz, g, &tm)
        }
}

static void conv_direct_f64(const conv_geom *g, const double *x, const double *w, double *y)
{
    tap_map tm;
    tap_init(&tm, &g->w, g->w.out, g->w.in);
    for (int64_t b = 0; b < g->batch; b++)
        for (int64_t oc = 0; oc < g->m; oc++) {
            double *yc = y + (b * g->m + oc) * g->out_sp;
            memset(yc, 0, (size_t)g->out_sp * sizeof *yc);
            for (int64_t ci = 0; ci < g->cg; ci++) {
                const double *xc = x + (b * g->c + oc / g->mg * g->cg + ci) * g->in_sp;
                DIRECT_CONV_TAPS(double, yc, xc, w + (oc * g->cg + ci) * g->ksz, g, &tm)
            }
        }
}

/* ConvTranspose, f64: every input position scatters into the output. */
static void convtranspose_direct_f64(const conv_geom *g, const double *x, const double *w, double *y)
{
    tap_map tm;
    tap_init(&tm, &g->w, g->w.in, g->w.out);
    memset(y, 0, (size_t)(g->batch * g->m * g->out_sp) * sizeof *y);
    for (int64_t b = 0; b < g->batch; b++)
        for (int64_t ci = 0; ci < g->c; ci++) {
            const double *xc = x + (b * g->c + ci) * g->in_sp;
            int64_t grp = ci / g->cg;
            for (int64_t ol = 0; ol < g->mg; ol++) {
                double *yc = y + (b * g->m + grp * g->mg + ol) * g->out_sp;
                const double *wk = w + (ci * g->mg + ol) * g->ksz;
                for (int64_t kidx = 0; kidx < g->ksz; kidx++) {
                    double wv = wk[kidx];
                    tap_set(&tm, &g->w, kidx);
                    int64_t s = tm.stride[tm.nsp - 1];
                    for (int64_t r = 0; r < tm.rows; r++) {
                        int64_t t;
                        if (!tap_row(&tm, r, &t)) continue;
                        const double *xr = xc + r * tm.row_len;
                        for (int64_t j = tm.lo; j < tm.hi; j++) yc[t + j * s] += wv * xr[j];
                    }
                }
            }
        }
}

/* ---- im2col / col2im (f32) */

/* col[(ci * ksz + kidx) * out_sp + o] = x[ci][o * s + k * d - pad], 0 outside. */
static void im2col(const conv_geom *g, const float *x, float *col)
{
    tap_map tm;
    tap_init(&tm, &g->w, g->w.out, g->w.in);
    for (int64_t ci = 0; ci < g->cg; ci++) {
        const float *xc = x + ci * g->in_sp;
        for (int64_t kidx = 0; kidx < g->ksz; kidx++) {
            float *dst = col + (ci * g->ksz + kidx) * g->out_sp;
            tap_set(&tm, &g->w, kidx);
            int64_t s = tm.stride[tm.nsp - 1];
            for (int64_t r = 0; r < tm.rows; r++, dst += tm.row_len) {
                int64_t t;
                if (!tap_row(&tm, r, &t)) {
                    memset(dst, 0, (size_t)tm.row_len * sizeof *dst);
                    continue;
                }
                for (int64_t j = 0; j < tm.lo; j++) dst[j] = 0.0f;
                if (s == 1)
                    memcpy(dst + tm.lo, xc + t + tm.lo, (size_t)(tm.hi - tm.lo) * sizeof *dst);
                else
                    for (int64_t j = tm.lo; j < tm.hi; j++) dst[j] = xc[t + j * s];
                for (int64_t j = tm.hi; j < tm.row_len; j++) dst[j] = 0.0f;
            }
        }
    }
}

/* y[oc][i * s + k * d - pad] += col[(oc * ksz + kidx) * in_sp + i], for the
 * mg output channels of one group. */
static void col2im(const conv_geom *g, const float *col, float *y)
{
    tap_map tm;
    tap_init(&tm, &g->w, g->w.in, g->w.out);
    for (int64_t oc = 0; oc < g->mg; oc++) {
        float *yc = y + oc * g->out_sp;
        for (int64_t kidx = 0; kidx < g->ksz; kidx++) {
            const float *src = col + (oc * g->ksz + kidx) * g->in_sp;
            tap_set(&tm, &g->w, kidx);
            int64_t s = tm.stride[tm.nsp - 1];
            for (int64_t r = 0; r < tm.rows; r++, src += tm.row_len) {
                int64_t t;
                if (!tap_row(&tm, r, &t)) continue;
                for (int64_t j = tm.lo; j < tm.hi; j++) yc[t + j * s] += src[j];
            }
        }
    }
}

static void add_bias_f32(const conv_geom *g, const float *bias, float *y)
{
    for (int64_t b = 0; b < g->batch; b++)
        for (int64_t oc = 0; oc < g->m; oc++) {
            float bv = bias[oc], *yc = y + (b * g->m + oc) * g->out_sp;
            for (int64_t i = 0; i < g->out_sp; i++) yc[i] += bv;
        }
}

static void add_bias_f64(const conv_geom *g, const double *bias, double *y)
{
    for (int64_t b = 0; b < g->batch; b++)
        for (int64_t oc = 0; oc < g->m; oc++) {
            double bv = bias[oc], *yc = y + (b * g->m + oc) * g->out_sp;
            for (int64_t i = 0; i < g->out_sp; i++) yc[i] += bv;
        }
}

static kiln_status conv_f32(const conv_geom *g, const float *x, const float *w, float *y)
{
    if (g->cg == 1 && g->group > 1) {
        conv_depthwise_f32(g, x, w, y);
        return KILN_OK;
    }
    int64_t kdim = g->cg * g->ksz;
    bool direct = is_pointwise(g);
    float *col = NULL;
    if (!direct && !(col = kiln_xmalloc((size_t)(kdim * g->out_sp) * sizeof *col))) return KILN_ERR_OUT_OF_MEMORY;
    kiln_status st = KILN_OK;
    for (int64_t b = 0; b < g->batch && st == KILN_OK; b++)
        for (int64_t grp = 0; grp < g->group && st == KILN_OK; grp++) {
            const float *xg = x + (b * g->c + grp * g->cg) * g->in_sp;
            if (!direct) im2col(g, xg, col);
            st = kiln_sgemm(g->mg, g->out_sp, kdim, 1.0f, w + grp * g->mg * kdim, kdim, 1, direct ? xg : col, g->out_sp,
                            1, 0.0f, y + (b * g->m + grp * g->mg) * g->out_sp, g->out_sp);
        }
    free(col);
    return st;
}

static kiln_status convtranspose_f32(const conv_geom *g, const float *x, const float *w, float *y)
{
    int64_t rows = g->mg * g->ksz;
    float *col = kiln_xmalloc((size_t)(rows * g->in_sp) * sizeof *col);
    if (!col) return KILN_ERR_OUT_OF_MEMORY;
    memset(y, 0, (size_t)(g->batch * g->m * g->out_sp) * sizeof *y);
    kiln_status st = KILN_OK;
    for (int64_t b = 0; b < g->batch && st == KILN_OK; b++)
        for (int64_t grp = 0; grp < g->group && st == KILN_OK; grp++) {
            /* W_g is cg x (mg * ksz) row-major; A = W_g^T through strides */
            st = kiln_sgemm(rows, g->in_sp, g->cg, 1.0f, w + grp * g->cg * rows, 1, rows,
                            x + (b * g->c + grp * g->cg) * g->in_sp, g->in_sp, 1, 0.0f, col, g->in_sp);
            if (st == KILN_OK) col2im(g, col, y + (b * g->m + grp * g->mg) * g->out_sp);
        }
    free(col);
    return st;
}

/* Stages X, W, B (f16/bf16 through f32) and runs the f32 or f64 body. */
static kiln_status conv_run(const kiln_node *n, kiln_value *v, bool transpose)
{
    kiln_value *x = kiln_in(n, v, 0), *w = kiln_in(n, v, 1), *bias = kiln_in(n, v, 2), *y = kiln_out(n, v, 0);
    conv_geom g;
    kiln_status st = conv_geom_init(n, v, transpose, &g);
    if (st != KILN_OK) return st;
    int64_t ny = kiln_shape_numel(&y->shape);
    if (ny == 0) return KILN_OK;
    if (x->dtype == KILN_F64) {
        if (transpose)
            convtranspose_direct_f64(&g, x->data, w->data, y->data);
        else
            conv_direct_f64(&g, x->data, w->data, y->data);
        if (bias) add_bias_f64(&g, bias->data, y->data);
        return KILN_OK;
    }
    if (!kiln_f32_computable(x->dtype))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "input '%s' is %s", x->name, kiln_dtype_name(x->dtype));
    float *xf = kiln_f32_acquire(x->dtype, x->data, kiln_shape_numel(&x->shape));
    float *wf = kiln_f32_acquire(w->dtype, w->data, kiln_shape_numel(&w->shape));
    float *bf = bias ? kiln_f32_acquire(bias->dtype, bias->data, kiln_shape_numel(&bias->shape)) : NULL;
    float *yf = kiln_f32_scratch(y->dtype, y->data, ny);
    if (!xf || !wf || (bias && !bf) || !yf) {
        st = KILN_ERR_OUT_OF_MEMORY;
    } else {
        st = transpose ? convtranspose_f32(&g, xf, wf, yf) : conv_f32(&g, xf, wf, yf);
        if (st == KILN_OK && bf) add_bias_f32(&g, bf, yf);
    }
    kiln_f32_release(x->data, xf);
    kiln_f32_release(w->data, wf);
    if (bias) kiln_f32_release(bias->data, bf);
    if (st == KILN_OK)
        kiln_f32_commit(y->dtype, y->data, yf, ny);
    else
        kiln_f32_release(y->data, yf);
    return st;
}

kiln_status kiln_ref_Conv(const kiln_node *n, kiln_value *v) { return conv_run(n, v, false); }

kiln_status kiln_ref_ConvTranspose(const kiln_node *n, kiln_value *v) { return conv_run(n, v, true); }

/* ---- BatchNormalization, inference: y = (x - mean) / sqrt(var + epsilon) * scale + B,
 * folded per channel into y = x * a + b with a and b computed in f64. The
 * parameters may have another float dtype than X (opset 15's T1/T2). */
kiln_status kiln_ref_BatchNormalization(const kiln_node *n, kiln_value *v)
{
    kiln_value *x = kiln_in(n, v, 0), *y = kiln_out(n, v, 0);
    kiln_value *scale = kiln_in(n, v, 1), *bias = kiln_in(n, v, 2), *mean = kiln_in(n, v, 3), *var = kiln_in(n, v, 4);
    double eps = n->params.batchnorm.epsilon;
    int64_t batch = x->shape.d[0], c = x->shape.d[1], sp = 1;
    for (int i = 2; i < x->shape.rank; i++) sp *= x->shape.d[i];
    int64_t total = batch * c * sp;
    double *ab = kiln_xmalloc((size_t)(2 * c + 1) * sizeof *ab);
    if (!ab) return KILN_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < c; i++) {
        double a = kiln_load_f64(scale->dtype, scale->data, i) / sqrt(kiln_load_f64(var->dtype, var->data, i) + eps);
        ab[2 * i] = a;
        ab[2 * i + 1] = kiln_load_f64(bias->dtype, bias->data, i) - kiln_load_f64(mean->dtype, mean->data, i) * a;
    }
    kiln_status st = KILN_OK;
    if (x->dtype == KILN_F64) {
        const double *xd = x->data;
        double *yd = y->data;
        for (int64_t b = 0; b < batch; b++)
            for (int64_t ch = 0; ch < c; ch++) {
                int64_t off = (b * c + ch) * sp;
                for (int64_t i = 0; i < sp; i++) yd[off + i] = xd[off + i] * ab[2 * ch] + ab[2 * ch + 1];
            }
    } else {
        float *xf = kiln_f32_acquire(x->dtype, x->data, total);
        float *yf = kiln_f32_scratch(y->dtype, y->data, total);
        if (!xf || !yf) {
            st = KILN_ERR_OUT_OF_MEMORY;
        } else {
            for (int64_t b = 0; b < batch; b++)
                for (int64_t ch = 0; ch < c; ch++) {
                    float a = (float)ab[2 * ch], bb = (float)ab[2 * ch + 1];
                    int64_t off = (b * c + ch) * sp;
                    for (int64_t i = 0; i < sp; i++) yf[off + i] = xf[off + i] * a + bb;
                }
        }
        kiln_f32_release(x->data, xf);
        if (st == KILN_OK)
            kiln_f32_commit(y->dtype, y->data, yf, total);
        else
            kiln_f32_release(y->data, yf);
    }
    free(ab);
    return st;
}
