/* NumPy .npy reader and writer (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html). */
#include "npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

static const struct {
    const char *descr;
    kiln_dtype dt;
} DESCRS[] = {
    {"<f4", KILN_F32}, {"<f8", KILN_F64}, {"<f2", KILN_F16}, {"|u1", KILN_U8}, {"|i1", KILN_I8},
    {"<i4", KILN_I32}, {"<i8", KILN_I64}, {"|b1", KILN_BOOL}, {"<u1", KILN_U8}, {"<i1", KILN_I8},
    {"<b1", KILN_BOOL},
};

static int64_t numel(const kiln_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= t->dims[i];
    return n;
}

/* Finds the value after 'key': in the header dict; NULL if absent. */
static const char *dict_value(const char *h, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(h, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ' || *p == ':') p++;
    return p;
}

kiln_status kiln_npy_read(const char *path, kiln_tensor *t)
{
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "rb");
    if (!f) return kiln_fail(KILN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char pre[10];
    kiln_status st = KILN_OK;
    char *h = NULL;
    if (fread(pre, 1, 8, f) != 8 || memcmp(pre, "\x93NUMPY", 6)) {
        st = kiln_fail(KILN_ERR_FORMAT, "%s: not a NumPy .npy file (bad magic)", path);
        goto out;
    }
    size_t hlen;
    if (pre[6] == 1) {
        if (fread(pre + 8, 1, 2, f) != 2) goto truncated;
        hlen = pre[8] | (size_t)pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        unsigned char l[4];
        if (fread(l, 1, 4, f) != 4) goto truncated;
        hlen = l[0] | (size_t)l[1] << 8 | (size_t)l[2] << 16 | (size_t)l[3] << 24;
    } else {
        st = kiln_fail(KILN_ERR_FORMAT, "%s: .npy format version %d is not supported", path, pre[6]);
        goto out;
    }
    if (hlen > (1u << 20)) {
        st = kiln_fail(KILN_ERR_FORMAT, "%s: .npy header of %zu bytes is not plausible", path, hlen);
        goto out;
    }
    h = malloc(hlen + 1);
    if (!h || fread(h, 1, hlen, f) != hlen) goto truncated;
    h[hlen] = '\0';
    const char *d = dict_value(h, "descr"), *fo = dict_value(h, "fortran_order"), *sh = dict_value(h, "shape");
    if (!d || !fo || !sh || *d != '\'') {
        st = kiln_fail(KILN_ERR_FORMAT, "%s: .npy header lacks descr/fortran_order/shape", path);
        goto out;
    }
    if (!strncmp(fo, "True", 4)) {
        st = kiln_fail(KILN_ERR_FORMAT, "%s: Fortran-order arrays are not supported; save with np.ascontiguousarray", path);
        goto out;
    }
    char descr[16] = {0};
    const char *e = strchr(d + 1, '\'');
    if (!e || e - d - 1 >= (long)sizeof descr) {
        st = kiln_fail(KILN_ERR_FORMAT, "%s: .npy dtype description not understood", path);
        goto out;
    }
    memcpy(descr, d + 1, (size_t)(e - d - 1));
    for (size_t i = 0; i < sizeof DESCRS / sizeof DESCRS[0]; i++)
        if (!strcmp(descr, DESCRS[i].descr)) t->dtype = DESCRS[i].dt;
    if (!t->dtype) {
        st = kiln_fail(KILN_ERR_UNSUPPORTED,
                       "%s: .npy dtype '%s' is not supported (%s); use float32/float16/float64/int8/uint8/int32/int64/bool",
                       path, descr, descr[1] == 'O' ? "object arrays are pickles and are refused" : "unknown or big-endian");
        goto out;
    }
    if (*sh != '(') {
        st = kiln_fail(KILN_ERR_FORMAT, "%s: .npy shape not understood", path);
        goto out;
    }
    const char *p = sh + 1;
    while (*p && *p != ')') {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || t->rank >= KILN_MAX_RANK) {
            st = kiln_fail(KILN_ERR_FORMAT, "%s: .npy shape not understood or rank above %d", path, KILN_MAX_RANK);
            goto out;
        }
        t->dims[t->rank++] = v;
        p = end;
    }
    size_t bytes = (size_t)numel(t) * kiln_dtype_size(t->dtype);
    t->data = malloc(bytes ? bytes : 1);
    if (!t->data) {
        st = kiln_fail(KILN_ERR_OUT_OF_MEMORY, "%s: out of memory for %zu bytes", path, bytes);
        goto out;
    }
    if (fread(t->data, 1, bytes, f) != bytes) {
        free(t->data);
        t->data = NULL;
        goto truncated;
    }
    goto out;
truncated:
    st = kiln_fail(KILN_ERR_FORMAT, "%s: .npy file is truncated", path);
out:
    free(h);
    fclose(f);
    return st;
}

kiln_status kiln_npy_convert(kiln_tensor *t, kiln_dtype to, const char *what)
{
    if (t->dtype == to) return KILN_OK;
    bool ok = t->dtype == KILN_F32 && (to == KILN_BF16 || to == KILN_F16 || to == KILN_F8E4M3);
    if (!ok) return KILN_OK; /* left as is: the engine names the mismatch */
    int64_t n = numel(t);
    void *d = malloc((size_t)n * kiln_dtype_size(to) + 1);
    if (!d) return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    for (int64_t i = 0; i < n; i++) kiln_store_f64(to, d, i, ((float *)t->data)[i]);
    free(t->data);
    t->data = d;
    t->dtype = to;
    return KILN_OK;
}

kiln_status kiln_npy_write(const char *path, const kiln_tensor *t)
{
    const char *descr = NULL;
    kiln_dtype store = t->dtype;
    if (t->dtype == KILN_BF16 || t->dtype == KILN_F8E4M3) store = KILN_F32;
    for (size_t i = 0; i < sizeof DESCRS / sizeof DESCRS[0] && !descr; i++)
        if (DESCRS[i].dt == store) descr = DESCRS[i].descr;
    if (!descr) return kiln_fail(KILN_ERR_UNSUPPORTED, "%s: dtype %s cannot be written", path, kiln_dtype_name(t->dtype));
    char header[512];
    int n = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < t->rank; i++)
        n += snprintf(header + n, sizeof header - (size_t)n, "%lld,%s", (long long)t->dims[i],
                      i + 1 < t->rank ? " " : "");
    if (t->rank > 1) n--; /* numpy writes (2, 3) but (4,) */
    n += snprintf(header + n, sizeof header - (size_t)n, "), }");
    /* pad so that the data starts on a 64-byte boundary, ending in '\n' */
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return kiln_fail(KILN_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
    unsigned hl = (unsigned)(n + pad + 1);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
    bool ok = fwrite(pre, 1, 10, f) == 10 && fwrite(header, 1, (size_t)n, f) == (size_t)n;
    for (int i = 0; i < pad && ok; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    int64_t cnt = numel(t);
    if (store != t->dtype) {
        for (int64_t i = 0; i < cnt && ok; i++) {
            float v = (float)kiln_load_f64(t->dtype, t->data, i);
            ok = fwrite(&v, 4, 1, f) == 1;
        }
    } else if (cnt) {
        size_t bytes = (size_t)cnt * kiln_dtype_size(t->dtype);
        ok = ok && fwrite(t->data, 1, bytes, f) == bytes;
    }
    ok = (fflush(f) == 0) && ok;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return kiln_fail(KILN_ERR_IO, "%s: cannot write: %s", path, strerror(e));
    }
    return KILN_OK;
}
