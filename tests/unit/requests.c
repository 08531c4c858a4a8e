/* The concurrency tests' requests (requests.h). */
#include "requests.h"

#include <string.h>

#include "testutil.h"

float g_in[NV][ROW];
float g_ref[NV][OUT];

void kt_requests_init(kiln_engine *e, unsigned seed0)
{
    kiln_context *c;
    assert_kiln_ok(kiln_context_create(e, &c));
    for (int v = 0; v < NV; v++) {
        kt_fill_uniform(g_in[v], ROW, (unsigned)v + seed0, -1, 1);
        kiln_tensor in = {.name = "input", .dtype = KILN_F32, .rank = 4, .dims = {1, 3, 8, 8}, .data = g_in[v]};
        int n;
        const kiln_tensor *out;
        assert_kiln_ok(kiln_context_run(c, 1, &in, &n, &out));
        assert_int_equal(n, 1);
        memcpy(g_ref[v], out[0].data, sizeof g_ref[v]);
    }
    kiln_context_destroy(c);
}

void req_make(req *r, int v, int rows)
{
    r->v = v;
    r->rows = rows;
    for (int k = 0; k < rows; k++) memcpy(r->in[k], g_in[(v + k) % NV], sizeof r->in[k]);
    memset(r->out, 0xff, sizeof r->out);
    r->tin = (kiln_tensor){.name = "input", .dtype = KILN_F32, .rank = 4, .dims = {rows, 3, 8, 8}, .data = r->in};
    r->tout = (kiln_tensor){.dtype = KILN_F32, .rank = 2, .dims = {rows, OUT}, .data = r->out};
}

int req_check(const req *r)
{
    if (r->tout.rank != 2 || r->tout.dims[0] != r->rows || r->tout.dims[1] != OUT) return 1;
    for (int k = 0; k < r->rows; k++)
        if (memcmp(r->out[k], g_ref[(r->v + k) % NV], sizeof r->out[k])) return 1;
    return 0;
}
