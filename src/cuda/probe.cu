// The CUDA toolchain probe: proves nvcc compiles and links into libkiln and
// reports what GPU (if any) the runtime sees. The CUDA backend proper lives
// beside it, one file per op family.
#include <cuda_runtime.h>

#include "cuda/cuda_probe.h"

__global__ static void kiln_probe_axpy(int n, float a, const float *x, float *y)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i] + y[i];
}

extern "C" int kiln_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); // clear the sticky "no device" error
        return 0;
    }
    return n;
}

extern "C" int kiln_cuda_probe_axpy(int n, float a, const float *x, float *y)
{
    float *dx = nullptr, *dy = nullptr;
    size_t bytes = (size_t)n * sizeof(float);
    int ok = cudaMalloc(&dx, bytes) == cudaSuccess && cudaMalloc(&dy, bytes) == cudaSuccess &&
             cudaMemcpy(dx, x, bytes, cudaMemcpyHostToDevice) == cudaSuccess &&
             cudaMemcpy(dy, y, bytes, cudaMemcpyHostToDevice) == cudaSuccess;
    if (ok) {
        kiln_probe_axpy<<<(n + 255) / 256, 256>>>(n, a, dx, dy);
        ok = cudaGetLastError() == cudaSuccess && cudaMemcpy(y, dy, bytes, cudaMemcpyDeviceToHost) == cudaSuccess;
    }
    cudaFree(dx);
    cudaFree(dy);
    return ok ? 0 : -1;
}
