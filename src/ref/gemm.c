/* Cache-blocked f32 GEMM in plain C, after the BLIS/GotoBLAS structure:
 *
 *   for jc (NC columns of B)          B block  KC x NC  packed in NR-wide panels (L3)
 *     for pc (KC rows of B)
 *       for ic (MC rows of A)         A block  MC x KC  packed in MR-tall panels (L2)
 *         for jr, ir                  micro-kernel: MR x NR of C in registers,
 *                                     streaming one A and one B panel (L1)
 *
 * The micro-kernel is plain C whose fixed-size inner loop gcc -O2
 * vectorizes; on x86-64 it is also compiled for x86-64-v3 (AVX2) and picked
 * at load time through target_clones, which is where most of the speed comes
 * from. Packing zero-pads partial panels, so the kernel never branches on
 * edges: the edge handling is in the (cheap) write-back of the tile.
 *
 * Also here: the naive f64 GEMM and the f32 staging helpers (gemm.h). */
#include "ref/gemm.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MR 6
#define NR 16
#define KC 256
#define MC 144 /* multiple of MR: an A block of MC x KC floats (144 KiB) stays in L2 */
#define NC 4096 /* multiple of NR */

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define __SANITIZE_THREAD__ 1
#endif
#endif
/* not under ThreadSanitizer: the ifunc resolver runs during relocation,
 * before the TSan runtime is up, and its instrumented entry crashes */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_THREAD__)
#define KILN_GEMM_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define KILN_GEMM_CLONES
#endif

/* acc = sum over p < kc of a[p][0..MR) (outer) b[p][0..NR): the packed
 * panels are read strictly sequentially. The j loop has a constant trip
 * count that is a multiple of every vector width, so it vectorizes with
 * neither peeling nor a remainder, and the MR x NR accumulators stay in
 * registers (12 ymm with AVX2). */
KILN_GEMM_CLONES
static void micro_kernel(int64_t kc, const float *restrict a, const float *restrict b, float *restrict out)
{
    float acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = 0.0f;
    for (int64_t p = 0; p < kc; p++) {
        for (int i = 0; i < MR; i++) {
            float ai = a[i];
            for (int j = 0; j < NR; j++) acc[i][j] += ai * b[j];
        }
        a += MR;
        b += NR;
    }
    memcpy(out, acc, sizeof acc);
}

/* A[ic.., pc..] (mc x kc) into MR-tall panels: panel r holds rows
 * r*MR..r*MR+MR, column-by-column (MR consecutive floats per p). */
static void pack_a(int64_t mc, int64_t kc, const float *A, int64_t rsa, int64_t csa, float *dst)
{
    for (int64_t r = 0; r < mc; r += MR) {
        int64_t mr = mc - r < MR ? mc - r : MR;
        const float *src = A + r * rsa;
        for (int64_t p = 0; p < kc; p++) {
            int64_t i = 0;
            for (; i < mr; i++) dst[i] = src[i * rsa + p * csa];
            for (; i < MR; i++) dst[i] = 0.0f;
            dst += MR;
        }
    }
}

/* B[pc.., jc..] (kc x nc) into NR-wide panels, row-by-row (NR consecutive
 * floats per p); a contiguous row (csb == 1) is a plain copy. */
static void pack_b(int64_t kc, int64_t nc, const float *B, int64_t rsb, int64_t csb, float *dst)
{
    for (int64_t c = 0; c < nc; c += NR) {
        int64_t nr = nc - c < NR ? nc - c : NR;
        const float *src = B + c * csb;
        for (int64_t p = 0; p < kc; p++) {
            const float *row = src + p * rsb;
            if (csb == 1 && nr == NR) {
                memcpy(dst, row, NR * sizeof(float));
            } else {
                int64_t j = 0;
                for (; j < nr; j++) dst[j] = row[j * csb];
                for (; j < NR; j++) dst[j] = 0.0f;
            }
            dst += NR;
        }
    }
}

/* C tile (mr x nr valid of MR x NR) = alpha * tile + beta * C. */
static void write_tile(const float *tile, int64_t mr, int64_t nr, float alpha, float beta, float *C, int64_t ldc)
{
    for (int64_t i = 0; i < mr; i++) {
        const float *t = tile + i * NR;
        float *c = C + i * ldc;
        if (beta == 0.0f)
            for (int64_t j = 0; j < nr; j++) c[j] = alpha * t[j];
        else if (beta == 1.0f)
            for (int64_t j = 0; j < nr; j++) c[j] += alpha * t[j];
        else
            for (int64_t j = 0; j < nr; j++) c[j] = alpha * t[j] + beta * c[j];
    }
}

typedef struct gemm_job {
    int64_t m, n, k;
    float alpha, beta;
    const float *A, *B;
    int64_t rsa, csa, rsb, csb, ldc;
    float *C;
    float *abuf, *bbuf; /* this job's packing buffers */
} gemm_job;

static void gemm_serial(const gemm_job *j)
{
    float tile[MR * NR];
    if (j->k == 0) {
        /* empty sum: C = beta * C */
        for (int64_t i = 0; i < j->m; i++)
            for (int64_t c = 0; c < j->n; c++)
                j->C[i * j->ldc + c] = j->beta == 0.0f ? 0.0f : j->beta * j->C[i * j->ldc + c];
        return;
    }
    for (int64_t jc = 0; jc < j->n; jc += NC) {
        int64_t nc = j->n - jc < NC ? j->n - jc : NC;
        for (int64_t pc = 0; pc < j->k; pc += KC) {
            int64_t kc = j->k - pc < KC ? j->k - pc : KC;
            float beta = pc == 0 ? j->beta : 1.0f;
            pack_b(kc, nc, j->B + pc * j->rsb + jc * j->csb, j->rsb, j->csb, j->bbuf);
            for (int64_t ic = 0; ic < j->m; ic += MC) {
                int64_t mc = j->m - ic < MC ? j->m - ic : MC;
                pack_a(mc, kc, j->A + ic * j->rsa + pc * j->csa, j->rsa, j->csa, j->abuf);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    int64_t nr = nc - jr < NR ? nc - jr : NR;
                    const float *bp = j->bbuf + jr * kc;
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        int64_t mr = mc - ir < MR ? mc - ir : MR;
                        micro_kernel(kc, j->abuf + ir * kc, bp, tile);
                        write_tile(tile, mr, nr, j->alpha, beta, j->C + (ic + ir) * j->ldc + jc + jr, j->ldc);
                    }
                }
            }
        }
    }
}

static void *gemm_thread(void *arg)
{
    gemm_serial(arg);
    return NULL;
}

static int g_threads;
static pthread_once_t g_threads_once = PTHREAD_ONCE_INIT;

static void init_threads(void)
{
    int n = 1;
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
#else
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    if (c > 0) n = (int)c;
#endif
    g_threads = n < 1 ? 1 : n > 8 ? 8 : n;
}

int kiln_gemm_threads(void)
{
    pthread_once(&g_threads_once, init_threads);
    return g_threads;
}

#define MAX_THREADS 8
/* Below this many multiply-adds per thread, starting a thread costs more
 * than it saves (~50 us of thread start against ~0.5 ms of work). */
#define MIN_MACS_PER_THREAD (1 << 22)

static size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

kiln_status kiln_sgemm(int64_t m, int64_t n, int64_t k, float alpha, const float *A, int64_t rsa, int64_t csa,
                       const float *B, int64_t rsb, int64_t csb, float beta, float *C, int64_t ldc)
{
    if (m <= 0 || n <= 0) return KILN_OK;
    double macs = (double)m * (double)n * (double)k;
    int nt = kiln_gemm_threads();
    while (nt > 1 && macs / nt < MIN_MACS_PER_THREAD) nt--;
    /* split the larger of m and n: late conv layers have n = 7*7 and m in the
     * thousands, fully-connected ones the other way round */
    bool split_m = m >= n;
    int64_t unit = split_m ? MR : NR, total = split_m ? m : n;
    int64_t units = (total + unit - 1) / unit;
    if (nt > units) nt = (int)units;

    gemm_job jobs[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    bool started[MAX_THREADS] = {false};
    int64_t nmax = n < NC ? n : NC;
    size_t abytes = round_up((size_t)MC * KC * sizeof(float), 64);
    size_t bbytes = round_up((size_t)round_up((size_t)nmax, NR) * KC * sizeof(float), 64);
    kiln_status st = KILN_OK;
    int64_t start = 0;
    for (int t = 0; t < nt; t++) {
        int64_t cnt = units / nt + (t < units % nt);
        int64_t lo = start * unit, hi = (start + cnt) * unit < total ? (start + cnt) * unit : total;
        start += cnt;
        gemm_job *j = &jobs[t];
        *j = (gemm_job){.m = m, .n = n, .k = k, .alpha = alpha, .beta = beta, .A = A, .B = B, .rsa = rsa,
                        .csa = csa, .rsb = rsb, .csb = csb, .ldc = ldc, .C = C};
        if (split_m) {
            j->m = hi - lo;
            j->A = A + lo * rsa;
            j->C = C + lo * ldc;
        } else {
            j->n = hi - lo;
            j->B = B + lo * csb;
            j->C = C + lo;
        }
        j->abuf = aligned_alloc(64, abytes);
        j->bbuf = aligned_alloc(64, bbytes);
        if (!j->abuf || !j->bbuf) st = kiln_fail(KILN_ERR_OUT_OF_MEMORY, "gemm: cannot allocate packing buffers");
    }
    if (st == KILN_OK) {
        for (int t = 1; t < nt; t++) started[t] = pthread_create(&tid[t], NULL, gemm_thread, &jobs[t]) == 0;
        gemm_serial(&jobs[0]);
        for (int t = 1; t < nt; t++) {
            if (started[t])
                pthread_join(tid[t], NULL);
            else
                gemm_serial(&jobs[t]); /* no thread to be had: do its share here */
        }
    }
    for (int t = 0; t < nt; t++) {
        free(jobs[t].abuf);
        free(jobs[t].bbuf);
    }
    return st;
}

void kiln_dgemm(int64_t m, int64_t n, int64_t k, double alpha, const double *A, int64_t rsa, int64_t csa,
                const double *B, int64_t rsb, int64_t csb, double beta, double *C, int64_t ldc)
{
    for (int64_t i = 0; i < m; i++) {
        double *c = C + i * ldc;
        for (int64_t j = 0; j < n; j++) c[j] = beta == 0.0 ? 0.0 : beta * c[j];
        /* i-p-j order: the inner loop runs along a row of B and of C */
        for (int64_t p = 0; p < k; p++) {
            double a = alpha * A[i * rsa + p * csa];
            const double *b = B + p * rsb;
            for (int64_t j = 0; j < n; j++) c[j] += a * b[j * csb];
        }
    }
}

/* ---- f32 staging */

bool kiln_f32_computable(kiln_dtype t) { return t == KILN_F32 || t == KILN_F16 || t == KILN_BF16; }

float *kiln_f32_acquire(kiln_dtype t, const void *data, int64_t count)
{
    if (t == KILN_F32) return (float *)data;
    float *f = kiln_xmalloc((size_t)(count > 0 ? count : 1) * sizeof(float));
    if (!f) return NULL;
    const uint16_t *h = data;
    if (t == KILN_F16)
        for (int64_t i = 0; i < count; i++) f[i] = kiln_f16_to_f32(h[i]);
    else
        for (int64_t i = 0; i < count; i++) f[i] = kiln_bf16_to_f32(h[i]);
    return f;
}

void kiln_f32_release(const void *data, float *f)
{
    if (f != data) free(f);
}

float *kiln_f32_scratch(kiln_dtype t, void *out, int64_t count)
{
    if (t == KILN_F32) return out;
    return kiln_xmalloc((size_t)(count > 0 ? count : 1) * sizeof(float));
}

void kiln_f32_commit(kiln_dtype t, void *out, float *f, int64_t count)
{
    if (t == KILN_F32 || !f) return;
    uint16_t *h = out;
    if (t == KILN_F16)
        for (int64_t i = 0; i < count; i++) h[i] = kiln_f32_to_f16(f[i]);
    else
        for (int64_t i = 0; i < count; i++) h[i] = kiln_f32_to_bf16(f[i]);
    free(f);
}
