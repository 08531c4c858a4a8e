/* NumPy .npy files (format versions 1-3), C order only. */
#ifndef KILN_NPY_H
#define KILN_NPY_H

#include "kiln.h"

/* Reads `path` into *t (t->data malloc'd, the caller frees it with free()).
 * Refuses Fortran order, object arrays (pickles) and unknown dtypes with a
 * message naming the file. bf16 and f8e4m3 have no NumPy dtype: they are
 * written as f32 (exactly) and read back from f32 by kiln_npy_convert. */
kiln_status kiln_npy_read(const char *path, kiln_tensor *t);
/* Writes t to `path` through a temporary file renamed into place. */
kiln_status kiln_npy_write(const char *path, const kiln_tensor *t);
/* Converts t in place to dtype `to` when that is a lossless widening the CLI
 * allows (f32 -> bf16/f16/f8e4m3 for inputs the model declares so). */
kiln_status kiln_npy_convert(kiln_tensor *t, kiln_dtype to, const char *what);

#endif
