// Device-side helpers shared by the cuda backend's kernels: conversions
// between storage dtypes and the f32 every kernel computes in, the
// activations of fused epilogues, and the strided walk of kc_iter.
#ifndef KILN_CUDA_KC_DEVICE_CUH
#define KILN_CUDA_KC_DEVICE_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "cuda/kc.h"

// ---- storage dtype <-> f32 (integers convert like C casts)
__device__ __forceinline__ float kc_f32(float x) { return x; }
__device__ __forceinline__ float kc_f32(__half x) { return __half2float(x); }
__device__ __forceinline__ float kc_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float kc_f32(int64_t x) { return (float)x; }
__device__ __forceinline__ float kc_f32(int32_t x) { return (float)x; }
__device__ __forceinline__ float kc_f32(int8_t x) { return (float)x; }
__device__ __forceinline__ float kc_f32(uint8_t x) { return (float)x; }
__device__ __forceinline__ float kc_f32(bool x) { return x ? 1.f : 0.f; }

template <typename T> __device__ __forceinline__ T kc_from_f32(float x);
template <> __device__ __forceinline__ float kc_from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ __half kc_from_f32<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 kc_from_f32<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <> __device__ __forceinline__ int64_t kc_from_f32<int64_t>(float x) { return (int64_t)x; }
template <> __device__ __forceinline__ int32_t kc_from_f32<int32_t>(float x) { return (int32_t)x; }
template <> __device__ __forceinline__ int8_t kc_from_f32<int8_t>(float x) { return (int8_t)x; }
template <> __device__ __forceinline__ uint8_t kc_from_f32<uint8_t>(float x) { return (uint8_t)x; }
template <> __device__ __forceinline__ bool kc_from_f32<bool>(float x) { return x != 0.f; }

// ---- dtype dispatch for the kernels that compute in f32 on f32/f16/bf16
// storage: f(kc::tag<T>()) with T the view dtype's storage type
namespace kc {
template <typename T> struct tag {
    using type = T;
};

inline bool is_float_dt(kiln_dtype t) { return t == KILN_F32 || t == KILN_F16 || t == KILN_BF16; }

template <typename F> kiln_status with_float(kiln_dtype dt, F &&f)
{
    switch (dt) {
    case KILN_F32: return f(tag<float>());
    case KILN_F16: return f(tag<__half>());
    case KILN_BF16: return f(tag<__nv_bfloat16>());
    default: return kiln_fail(KILN_ERR_INTERNAL, "dtype %s reached a float kernel", kiln_dtype_name(dt));
    }
}
} // namespace kc

// ---- activations (kc_act): a and b are the activation's parameters
// expf, not __expf: fp32 engines are held to 1e-4 of the f32 reference
__device__ __forceinline__ float kc_sigmoid(float x) { return 1.f / (1.f + expf(-x)); }

__device__ __forceinline__ float kc_act_apply(float x, int act, float a, float b)
{
    switch (act) {
    case KC_ACT_RELU: return fmaxf(x, 0.f);
    case KC_ACT_SIGMOID: return kc_sigmoid(x);
    case KC_ACT_SILU: return x * kc_sigmoid(x);
    case KC_ACT_TANH: return tanhf(x);
    case KC_ACT_HARDSIGMOID: return fmaxf(0.f, fminf(1.f, a * x + b));
    case KC_ACT_HARDSWISH: return x * fmaxf(0.f, fminf(1.f, x * (1.f / 6.f) + 0.5f));
    case KC_ACT_LEAKY: return x >= 0.f ? x : a * x;
    case KC_ACT_CLIP: return fminf(fmaxf(x, a), b);
    case KC_ACT_GELU: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
    case KC_ACT_GELU_TANH: return 0.5f * x * (1.f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
    default: return x;
    }
}

// ---- kc_iter: offsets (elements) of every operand for linear index i.
// IndexT is int32_t when it.n < 2^31 (faster division), else int64_t.
template <typename IndexT, int NOPS>
__device__ __forceinline__ void kc_iter_offsets(const kc_iter &it, IndexT i, IndexT (&off)[NOPS])
{
#pragma unroll
    for (int j = 0; j < NOPS; j++) off[j] = 0;
    for (int k = it.rank - 1; k >= 0; k--) {
        IndexT dk = (IndexT)it.d[k];
        IndexT c = i % dk;
        i /= dk;
#pragma unroll
        for (int j = 0; j < NOPS; j++) off[j] += c * (IndexT)it.s[j][k];
    }
}

#endif
