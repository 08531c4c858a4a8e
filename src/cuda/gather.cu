// Gather, GatherElements and Tile of the cuda backend: the ops that read
// their input through indices or wrapped coordinates. Element moves,
// conversions and messages are shared with tensor.cu through
// tensor_util.cuh.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cuda/tensor_util.cuh"

extern "C" {
#include "ir/shape_tensor.h"
}

namespace {

// ---- Gather and GatherElements as one strided walk of three operands in
// the output's memory order: the output, the index tensor seen at the
// output's dims (stride 0 where it does not vary), and the data tensor with
// its gathered axis at stride 0 (the base); the element read is
// base + index * stride of the axis. An index outside [-dim, dim-1] is
// clamped: a kernel cannot fail per element (the reference reports it).
template <class M, class IdxT, class IndexT>
__global__ void __launch_bounds__(THREADS) gather_kernel(const __grid_constant__ kc_iter it, const char *in, char *out,
                                                         const IdxT *idx, int64_t dim, int64_t sax, M mv)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < it.n; i += step) {
        IndexT off[3];
        kc_iter_offsets<IndexT, 3>(it, (IndexT)i, off);
        int64_t k = (int64_t)idx[off[1]];
        if (k < 0) k += dim;
        k = k < 0 ? 0 : k >= dim ? dim - 1 : k;
        mv(out, (int64_t)off[0], in, (int64_t)off[2] + k * sax);
    }
}

kiln_status gather_launch(const kc_launch *L, const kc_view *data, const kc_view *idx_base, const kc_view *idx,
                          int64_t dim, int64_t sax)
{
    const kc_view *y = &L->out[0];
    if (idx->dt != KILN_I64 && idx->dt != KILN_I32)
        return node_fail(L, KILN_ERR_UNSUPPORTED, "indices of dtype %s (int32 or int64 only)", kiln_dtype_name(idx->dt));
    if (dim <= 0) return node_fail(L, KILN_ERR_INVALID_ARGUMENT, "indices into an empty axis");
    if (!data->p || !y->p || !idx->p) return node_fail(L, KILN_ERR_INTERNAL, "a tensor is not on the device");
    kc_iter it;
    const kc_view *ops[3] = {y, idx_base, data};
    kiln_status st = kc_iter_make(3, ops, &it);
    if (st != KILN_OK) return named(L, st);
    bool fits = iter_fits32(it);
    return named(L, with_mover(data->dt, y->dt, [&](auto mv) {
        using M = decltype(mv);
        const char *in = static_cast<const char *>(data->p);
        char *out = static_cast<char *>(y->p);
        unsigned g = grid_for(it.n);
        if (idx->dt == KILN_I64) {
            const int64_t *ix = static_cast<const int64_t *>(idx->p);
            if (fits)
                gather_kernel<M, int64_t, int32_t><<<g, THREADS, 0, L->stream>>>(it, in, out, ix, dim, sax, mv);
            else
                gather_kernel<M, int64_t, int64_t><<<g, THREADS, 0, L->stream>>>(it, in, out, ix, dim, sax, mv);
        } else {
            const int32_t *ix = static_cast<const int32_t *>(idx->p);
            if (fits)
                gather_kernel<M, int32_t, int32_t><<<g, THREADS, 0, L->stream>>>(it, in, out, ix, dim, sax, mv);
            else
                gather_kernel<M, int32_t, int64_t><<<g, THREADS, 0, L->stream>>>(it, in, out, ix, dim, sax, mv);
        }
        return kc_check_launch(L->n->op_type);
    }));
}

// ---- Tile: output coordinate c along dim k reads input coordinate
// c mod d_k. Dims are walked in the output's memory order.
struct tile_params {
    int rank;
    int64_t n;
    int64_t od[KILN_MAX_RANK], os[KILN_MAX_RANK], id[KILN_MAX_RANK], is[KILN_MAX_RANK];
};

template <class M>
__global__ void __launch_bounds__(THREADS) tile_kernel(const __grid_constant__ tile_params P, const char *in, char *out,
                                                       M mv)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < P.n; i += step) {
        int64_t t = i, io = 0, oo = 0;
        for (int k = P.rank - 1; k >= 0; k--) {
            int64_t c = t % P.od[k];
            t /= P.od[k];
            oo += c * P.os[k];
            io += (c < P.id[k] ? c : c % P.id[k]) * P.is[k];
        }
        mv(out, oo, in, io);
    }
}

// Gather whose indices live on the host only (computed from shapes): one
// kc_copy per index, of the data's slice at that index into its place.
kiln_status gather_host_indices(const kc_launch *L, int axis)
{
    const kc_view *x = &L->in[0], *y = &L->out[0];
    const kiln_value *iv = kiln_in(L->n, const_cast<kiln_value *>(L->v), 1);
    if (!iv || !iv->data) return node_fail(L, KILN_ERR_INTERNAL, "indices are neither on the device nor known");
    int q = iv->shape.rank, r = x->rank;
    int64_t nidx = kiln_shape_numel(&iv->shape), dim = x->d[axis];
    if (nidx > 4096)
        return node_fail(L, KILN_ERR_UNSUPPORTED, "%lld host-only indices (at most 4096)", (long long)nidx);
    kc_view xs, ys;
    memset(&xs, 0, sizeof xs);
    memset(&ys, 0, sizeof ys);
    xs.dt = x->dt;
    ys.dt = y->dt;
    for (int k = 0; k < r; k++) {
        if (k == axis) continue;
        xs.d[xs.rank] = x->d[k];
        xs.s[xs.rank++] = x->s[k];
        int ky = k < axis ? k : k + q - 1; // y's dim of the same data dim
        ys.d[ys.rank] = y->d[ky];
        ys.s[ys.rank++] = y->s[ky];
    }
    for (int64_t j = 0; j < nidx; j++) {
        int64_t k = kiln_load_i64(iv->dtype, iv->data, j);
        if (k < -dim || k >= dim)
            return node_fail(L, KILN_ERR_INVALID_ARGUMENT, "indices '%s' has %lld at position %lld, outside [%lld, %lld]",
                             iv->name, (long long)k, (long long)j, (long long)-dim, (long long)(dim - 1));
        if (k < 0) k += dim;
        int64_t t = j, off = 0;
        for (int tq = q - 1; tq >= 0; tq--) {
            off += (t % iv->shape.d[tq]) * y->s[axis + tq];
            t /= iv->shape.d[tq];
        }
        xs.p = elem_ptr(x, k * x->s[axis]);
        ys.p = elem_ptr(y, off);
        kiln_status st = copy_named(L, &xs, &ys);
        if (st != KILN_OK) return st;
    }
    return KILN_OK;
}

} // namespace

// Gather-13: out[i.., j.., k..] = data[i.., indices[j..], k..].
extern "C" kiln_status kiln_cuda_Gather(const kc_launch *L)
{
    const kc_view *x = &L->in[0], *ix = &L->in[1], *y = &L->out[0];
    int r = x->rank, axis;
    kiln_status st = kiln_axis(L->n->params.axis.axis, r, &axis);
    if (st != KILN_OK) return named(L, st);
    const kiln_value *iv = kiln_in(L->n, const_cast<kiln_value *>(L->v), 1);
    if (!ix->p && !iv) return node_fail(L, KILN_ERR_INTERNAL, "indices are missing");
    int q = ix->p ? ix->rank : iv->shape.rank;
    const int64_t *qd = ix->p ? ix->d : iv->shape.d;
    if (y->rank != r + q - 1) return node_fail(L, KILN_ERR_INTERNAL, "output rank %d, expected %d", y->rank, r + q - 1);
    for (int k = 0; k < y->rank; k++) {
        int64_t want = k < axis ? x->d[k] : k < axis + q ? qd[k - axis] : x->d[k - q + 1];
        if (y->d[k] != want)
            return node_fail(L, KILN_ERR_INTERNAL, "output dim %d is %lld, expected %lld", k, (long long)y->d[k],
                             (long long)want);
    }
    if (kc_view_numel(y) == 0) return KILN_OK;
    if (!ix->p) return gather_host_indices(L, axis);
    kc_view vi, vb;
    memset(&vi, 0, sizeof vi);
    memset(&vb, 0, sizeof vb);
    vi.p = ix->p;
    vi.dt = ix->dt;
    vb.p = x->p;
    vb.dt = x->dt;
    vi.rank = vb.rank = y->rank;
    for (int k = 0; k < y->rank; k++) {
        vi.d[k] = vb.d[k] = y->d[k];
        bool is_idx = k >= axis && k < axis + q;
        vi.s[k] = is_idx ? ix->s[k - axis] : 0;
        vb.s[k] = k < axis ? x->s[k] : is_idx ? 0 : x->s[k - q + 1];
    }
    return gather_launch(L, &vb, &vi, ix, x->d[axis], x->s[axis]);
}

// GatherElements-13: out[i..] = data[i.. with i_axis = indices[i..]].
extern "C" kiln_status kiln_cuda_GatherElements(const kc_launch *L)
{
    const kc_view *x = &L->in[0], *ix = &L->in[1], *y = &L->out[0];
    int r = x->rank, axis;
    kiln_status st = kiln_axis(L->n->params.axis.axis, r, &axis);
    if (st != KILN_OK) return named(L, st);
    if (ix->rank != r || y->rank != r)
        return node_fail(L, KILN_ERR_INTERNAL, "indices rank %d, output rank %d, data rank %d", ix->rank, y->rank, r);
    for (int k = 0; k < r; k++) {
        if (y->d[k] != ix->d[k]) return node_fail(L, KILN_ERR_INTERNAL, "output dim %d differs from the indices'", k);
        if (k != axis && ix->d[k] > x->d[k]) return node_fail(L, KILN_ERR_SHAPE, "indices dim %d exceeds the data's", k);
    }
    if (kc_view_numel(y) == 0) return KILN_OK;
    if (!ix->p) return node_fail(L, KILN_ERR_UNSUPPORTED, "indices that are not on the device");
    kc_view vb = *x;
    for (int k = 0; k < r; k++) vb.d[k] = y->d[k];
    vb.s[axis] = 0;
    return gather_launch(L, &vb, ix, ix, x->d[axis], x->s[axis]);
}

// Tile: each output dim is repeats x the input dim (the output's dims say
// how many; Tile's repeats, when known here, must agree).
extern "C" kiln_status kiln_cuda_Tile(const kc_launch *L)
{
    const kc_view *x = &L->in[0], *y = &L->out[0];
    int r = x->rank;
    if (y->rank != r) return node_fail(L, KILN_ERR_INTERNAL, "output rank %d, input rank %d", y->rank, r);
    const kiln_value *rv = kiln_in(L->n, const_cast<kiln_value *>(L->v), 1);
    int64_t reps[KILN_MAX_RANK];
    int nrep = 0;
    bool have_reps = rv && rv->data && kiln_value_ints(rv, reps, KILN_MAX_RANK, &nrep) == KILN_OK && nrep == r;
    int64_t n = kc_view_numel(y);
    for (int k = 0; k < r; k++) {
        if (x->d[k] == 0 ? y->d[k] != 0 : y->d[k] % x->d[k] != 0)
            return node_fail(L, KILN_ERR_INTERNAL, "output dim %d (%lld) is not a multiple of the input's (%lld)", k,
                             (long long)y->d[k], (long long)x->d[k]);
        if (have_reps && y->d[k] != x->d[k] * reps[k])
            return node_fail(L, KILN_ERR_INTERNAL, "output dim %d is %lld, not %lld x %lld", k, (long long)y->d[k],
                             (long long)x->d[k], (long long)reps[k]);
    }
    if (n == 0) return KILN_OK;
    if (!x->p || !y->p) return node_fail(L, KILN_ERR_INTERNAL, "a tensor is not on the device");
    // dims of the output ordered by its strides, largest first (stores
    // coalesce for any layout); dims of 1 dropped
    tile_params P;
    memset(&P, 0, sizeof P);
    P.n = n;
    for (int k = 0; k < r; k++) {
        if (y->d[k] == 1) continue;
        int pos = P.rank++;
        while (pos > 0 && P.os[pos - 1] < y->s[k]) {
            P.od[pos] = P.od[pos - 1];
            P.os[pos] = P.os[pos - 1];
            P.id[pos] = P.id[pos - 1];
            P.is[pos] = P.is[pos - 1];
            pos--;
        }
        P.od[pos] = y->d[k];
        P.os[pos] = y->s[k];
        P.id[pos] = x->d[k];
        P.is[pos] = x->s[k];
    }
    if (P.rank == 0) {
        P.rank = 1;
        P.od[0] = P.id[0] = 1;
    }
    return named(L, with_mover(x->dt, y->dt, [&](auto mv) {
        tile_kernel<decltype(mv)><<<grid_for(n), THREADS, 0, L->stream>>>(P, static_cast<const char *>(x->p),
                                                                          static_cast<char *>(y->p), mv);
        return kc_check_launch("Tile");
    }));
}

// ConstantOfShape-9: every element is the 'value' tensor's one element
