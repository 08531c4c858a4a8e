/* Internals shared by the elementwise kernels (activation.c, binary.c,
 * cast.c): dtype conversion of runs of elements. Kernels compute in a few
 * "compute dtypes" (f32, f64, i64, bool) and convert other dtypes to and from
 * them a chunk at a time on the stack, so the hot loops never switch on the
 * dtype. */
#ifndef KILN_REF_ELEMENTWISE_H
#define KILN_REF_ELEMENTWISE_H

#include "ir/ir.h"

/* Elements per conversion chunk: small enough for 8-byte buffers on the stack. */
#define KILN_EW_CHUNK 512

/* Converts n elements of dtype st at src into dtype dt at dst with ONNX
 * Cast semantics (see cast.c); `saturate` applies to f8 destinations only.
 * src and dst must not overlap unless they are the same dtype and pointer. */
void kiln_ref_convert(kiln_dtype dt, void *dst, kiln_dtype st, const void *src, int64_t n, bool saturate);

/* f32 -> float8 e4m3fn by Cast-19's table: round to nearest even; with
 * `saturate`, out-of-range values and infinities become +-448, without it NaN. */
uint8_t kiln_ref_f32_to_f8e4m3(float f, bool saturate);

#endif
