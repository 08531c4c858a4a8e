/* What the vision GPU tests (test_vision_cuda_pre.c, _post.c) share:
 * checked CUDA calls, deterministic random data, device outputs with a
 * guard after them that must stay untouched. Include only where
 * KILN_HAVE_CUDA is defined, after testutil.h and <cuda_runtime.h>. */
#ifndef KILN_TEST_VISION_CUDA_UTIL_H
#define KILN_TEST_VISION_CUDA_UTIL_H

#define GUARD 256 /* bytes after each device output that must stay untouched */

static cudaStream_t stream;

#define CK(call)                                                                            \
    do {                                                                                    \
        cudaError_t ck_ = (call);                                                           \
        if (ck_ != cudaSuccess) fail_msg("%s: %s", #call, cudaGetErrorString(ck_));          \
    } while (0)

/* xorshift32: deterministic bytes and floats of every test */
static uint32_t rnd(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static float rnd_f(uint32_t *s, float lo, float hi) { return lo + (hi - lo) * (float)(rnd(s) >> 8) / 16777216.0f; }

/* Device buffer of `bytes` plus GUARD, all 0xff (NaN in f32 and f16). */
static void *dev_out(size_t bytes)
{
    void *d = NULL;
    CK(cudaMalloc(&d, bytes + GUARD));
    CK(cudaMemset(d, 0xff, bytes + GUARD));
    return d;
}

static void *dev_copy(const void *h, size_t bytes)
{
    void *d = NULL;
    CK(cudaMalloc(&d, bytes ? bytes : 1));
    if (bytes) CK(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    return d;
}

/* The device output after the stream's work, its guard checked. */
static void *fetch(const void *d, size_t bytes)
{
    CK(cudaStreamSynchronize(stream));
    CK(cudaGetLastError());
    uint8_t *h = malloc(bytes + GUARD);
    assert_non_null(h);
    CK(cudaMemcpy(h, d, bytes + GUARD, cudaMemcpyDeviceToHost));
    for (size_t i = bytes; i < bytes + GUARD; i++)
        if (h[i] != 0xff) fail_msg("byte %zu past the output's end (%zu bytes) was written", i - bytes, bytes);
    return h;
}

#endif
