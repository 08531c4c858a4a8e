// Pad on the GPU (opsets 13, 18 with the axes input, 19 with wrap): modes
// constant, reflect, edge, wrap, negative pads cropping first, as the
// reference kernel (src/ref/pad.c) does them.
//
// One thread per output element, walked in the output's memory order. Each
// axis maps its output coordinate to a source coordinate with the ref's
// axis_table rule, computed in place: 32-bit arithmetic, and a modulo only
// for the elements in a reflect or wrap border. Elements are copied as bits
// when the views share a dtype (any dtype), converted through f32 between
// float dtypes otherwise.
#include <stdint.h>
#include <string.h>

#include <type_traits>

#include "cuda/kc_device.cuh"

namespace {

constexpr int MAXR = KILN_MAX_RANK;
constexpr int BLOCK = 256;

// the mode, parsed once (n->params.pad, src/ir/params_resize.c)
enum {
    PAD_CONSTANT = KILN_PAD_CONSTANT,
    PAD_REFLECT = KILN_PAD_REFLECT,
    PAD_EDGE = KILN_PAD_EDGE,
    PAD_WRAP = KILN_PAD_WRAP
};

using kc::is_float_dt;
using kc::tag;
using kc::with_float;

struct pad_params {
    int64_t total;
    int rank, mode;
    uint64_t fill_bits;   // constant_value stored as the output dtype
    // per dim, in the output's memory order (slowest first):
    int64_t yd[MAXR], ys[MAXR], xs[MAXR];
    int lo[MAXR];         // first input index kept (negative head pad crops)
    int kept[MAXR];       // input indices kept
    int pb[MAXR];         // positive head pad
};

// Source coordinate of output coordinate o on an axis; -1: the constant.
__device__ __forceinline__ int src_index(int mode, int o, int lo, int kept, int pb)
{
    int j = o - pb;
    if (j >= 0 && j < kept) return lo + j;
    switch (mode) {
    case PAD_CONSTANT: return -1;
    case PAD_EDGE: j = j < 0 ? 0 : kept - 1; break;
    case PAD_WRAP:
        j %= kept;
        if (j < 0) j += kept;
        break;
    default: // PAD_REFLECT: mirrored without repeating the edge, periodically
        if (kept == 1) {
            j = 0;
        } else {
            int period = 2 * (kept - 1);
            j %= period;
            if (j < 0) j += period;
            if (j >= kept) j = period - j;
        }
        break;
    }
    return lo + j;
}

template <typename Tout, typename Tin> __device__ __forceinline__ Tout pad_copy(Tin v)
{
    if constexpr (std::is_same<Tin, Tout>::value)
        return v;
    else
        return kc_from_f32<Tout>(kc_f32(v));
}

template <typename Tin, typename Tout, typename IndexT>
__global__ void __launch_bounds__(BLOCK) pad_kernel(const pad_params p, const Tin *__restrict__ x, Tout *__restrict__ y)
{
    IndexT i = (IndexT)blockIdx.x * (IndexT)BLOCK + (IndexT)threadIdx.x;
    if (i >= (IndexT)p.total) return;
    int64_t xo = 0, yo = 0;
    bool constant = false;
    IndexT rem = i;
#pragma unroll
    for (int q = MAXR - 1; q >= 0; q--) {
        if (q >= p.rank) continue;
        IndexT d = (IndexT)p.yd[q], c = rem % d;
        rem /= d;
        int j = src_index(p.mode, (int)c, p.lo[q], p.kept[q], p.pb[q]);
        yo += (int64_t)c * p.ys[q];
        if (j < 0) constant = true;
        else xo += (int64_t)j * p.xs[q];
    }
    if (constant) {
        Tout f;
        memcpy(&f, &p.fill_bits, sizeof f);
        y[yo] = f;
    } else {
        y[yo] = pad_copy<Tout>(x[xo]);
    }
}

template <typename Tin, typename Tout>
kiln_status pad_launch(const pad_params &p, const kc_view *x, const kc_view *y, cudaStream_t s)
{
    int64_t blocks = (p.total + BLOCK - 1) / BLOCK;
    if (blocks > INT32_MAX) return kiln_fail(KILN_ERR_UNSUPPORTED, "Pad: %lld output elements", (long long)p.total);
    const Tin *xp = static_cast<const Tin *>(x->p);
    Tout *yp = static_cast<Tout *>(y->p);
    if (p.total <= (int64_t)INT32_MAX - 4 * BLOCK)
        pad_kernel<Tin, Tout, int32_t><<<(unsigned)blocks, BLOCK, 0, s>>>(p, xp, yp);
    else
        pad_kernel<Tin, Tout, int64_t><<<(unsigned)blocks, BLOCK, 0, s>>>(p, xp, yp);
    return kc_check_launch("Pad");
}

kiln_status pad_run(const kc_launch *L)
{
    const kiln_node *n = L->n;
    kiln_value *v = const_cast<kiln_value *>(L->v);
    const kc_view *x = &L->in[0], *y = &L->out[0];
    const kiln_value *pads = kiln_in(n, v, 1), *cv = kiln_in(n, v, 2), *axv = kiln_in(n, v, 3);
    int mode = (int)n->params.pad.mode;
    if (!pads || !pads->data)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (Pad): 'pads' must be known before the run", n->name);
    if (axv && !axv->data)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (Pad): 'axes' must be known before the run", n->name);
    if (cv && kiln_shape_numel(&cv->shape) >= 1 && !cv->data)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (Pad): 'constant_value' must be known before the run", n->name);

    int r = x->rank, axes[MAXR], k = r;
    if (y->rank != r)
        return kiln_fail(KILN_ERR_INTERNAL, "node '%s' (Pad): output rank %d, input rank %d", n->name, y->rank, r);
    if (axv) {
        int64_t ax[MAXR];
        kiln_status st = kiln_value_ints(axv, ax, MAXR, &k);
        if (st != KILN_OK) return kiln_fail_prefix(st, "node '%s' (Pad): ", n->name);
        for (int i = 0; i < k; i++)
            if (kiln_axis(ax[i], r, &axes[i]) != KILN_OK)
                return kiln_fail(KILN_ERR_SHAPE, "node '%s' (Pad): axis %lld is out of range for rank %d", n->name,
                                 (long long)ax[i], r);
    } else {
        for (int i = 0; i < r; i++) axes[i] = i;
    }
    int64_t pv[2 * MAXR], b[MAXR] = {0}, e[MAXR] = {0};
    int cnt;
    kiln_status st = kiln_value_ints(pads, pv, 2 * MAXR, &cnt);
    if (st != KILN_OK) return kiln_fail_prefix(st, "node '%s' (Pad): ", n->name);
    if (cnt != 2 * k)
        return kiln_fail(KILN_ERR_SHAPE, "node '%s' (Pad): input '%s' has %d elements, expected %d", n->name, pads->name,
                         cnt, 2 * k);
    for (int i = 0; i < k; i++) b[axes[i]] = pv[i], e[axes[i]] = pv[k + i];

    bool same = x->dt == y->dt && kiln_dtype_size(x->dt) > 0;
    if (!same && !(is_float_dt(x->dt) && is_float_dt(y->dt)))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (Pad): %s input, %s output is not supported on the GPU", n->name,
                         kiln_dtype_name(x->dt), kiln_dtype_name(y->dt));

    pad_params p = {};
    p.rank = r;
    p.mode = mode;
    p.total = kc_view_numel(y);
    // constant_value in the output's dtype: its own bytes when the dtypes
    // agree, converted otherwise (an f16 engine's f32 Pad); all-zero bytes
    // are 0 in every dtype
    unsigned char fill[8] = {0};
    if (cv && kiln_shape_numel(&cv->shape) >= 1) {
        if (cv->dtype == y->dt)
            memcpy(fill, cv->data, kiln_dtype_size(y->dt));
        else
            kiln_store_f64(y->dt, fill, 0, kiln_load_f64(cv->dtype, cv->data, 0));
    }
    memcpy(&p.fill_bits, fill, sizeof fill);
    // output dims by stride, largest first: stores coalesce for any layout
    int walk[MAXR];
    for (int a = 0; a < r; a++) {
        int pos = a;
        while (pos > 0 && y->s[walk[pos - 1]] < y->s[a]) {
            walk[pos] = walk[pos - 1];
            pos--;
        }
        walk[pos] = a;
    }
    for (int q = 0; q < r; q++) {
        int a = walk[q];
        int64_t d = x->d[a], out = y->d[a];
        int64_t lo = b[a] < 0 ? -b[a] : 0, kept = d - lo - (e[a] < 0 ? -e[a] : 0);
        if (kept < 0 || out != d + b[a] + e[a] || (kept == 0 && mode != PAD_CONSTANT && out > 0))
            return kiln_fail(KILN_ERR_SHAPE, "node '%s' (Pad): pads [%lld, %lld] do not fit axis %d (%lld -> %lld)", n->name,
                             (long long)b[a], (long long)e[a], a, (long long)d, (long long)out);
        if (d > INT32_MAX / 2 || out > INT32_MAX / 2 || b[a] > INT32_MAX / 2 || b[a] < -(int64_t)(INT32_MAX / 2))
            return kiln_fail(KILN_ERR_UNSUPPORTED, "node '%s' (Pad): axis %d is too large for the GPU kernel", n->name, a);
        p.yd[q] = out;
        p.ys[q] = y->s[a];
        p.xs[q] = x->s[a];
        p.lo[q] = (int)lo;
        p.kept[q] = (int)kept;
        p.pb[q] = (int)(b[a] > 0 ? b[a] : 0);
    }
    if (p.total == 0) return KILN_OK;
    if (!x->p || !y->p) return kiln_fail(KILN_ERR_INTERNAL, "node '%s' (Pad): X or Y is not on the device", n->name);

    if (same) {
        switch (kiln_dtype_size(x->dt)) {
        case 1: return pad_launch<uint8_t, uint8_t>(p, x, y, L->stream);
        case 2: return pad_launch<uint16_t, uint16_t>(p, x, y, L->stream);
        case 4: return pad_launch<uint32_t, uint32_t>(p, x, y, L->stream);
        default: return pad_launch<uint64_t, uint64_t>(p, x, y, L->stream);
        }
    }
    return with_float(x->dt, [&](auto ti) {
        return with_float(y->dt, [&](auto to) {
            using Tin = typename decltype(ti)::type;
            using Tout = typename decltype(to)::type;
            return pad_launch<Tin, Tout>(p, x, y, L->stream);
        });
    });
}

} // namespace

extern "C" kiln_status kiln_cuda_Pad(const kc_launch *L) { return pad_run(L); }
