/* Requests for the concurrency tests (test_concurrency.c, test_multi.c):
 * NV single-row inputs of symbolic.onnx ([batch,3,8,8] -> [batch,10]),
 * their single-threaded results, and requests of a few rows made of them
 * whose results can be checked row by row. */
#ifndef KILN_TEST_REQUESTS_H
#define KILN_TEST_REQUESTS_H

#include "kiln.h"

#define NV 64   /* distinct single-row inputs */
#define ROW 192 /* 3x8x8 floats */
#define OUT 10  /* output row */
#define MAXR 3  /* rows per batched request */

extern float g_in[NV][ROW];
extern float g_ref[NV][OUT]; /* single-threaded results, one row each */

/* Fills g_in (variant v from seed v + seed0) and runs each alone on e into
 * g_ref, failing the test on any error. */
void kt_requests_init(kiln_engine *e, unsigned seed0);

/* A request of `rows` rows made of variants v, v+1, ... */
typedef struct req {
    float in[MAXR][ROW];
    float out[MAXR][OUT];
    kiln_tensor tin, tout;
    int v, rows;
} req;

void req_make(req *r, int v, int rows);
/* 0 when the request got exactly its own rows */
int req_check(const req *r);

#endif
