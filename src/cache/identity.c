/* Engine identity: {model}_{version}_{precision}_{arch}_{kilnversion}
 * [_{optionshash}].plan. The model version is the first 8 hex digits of the
 * SHA-256 over the ONNX file and the external data files it names. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "core/sha256.h"
#include "kiln_onnx.pb-c.h"

const char *kiln_precision_name(kiln_precision p, kiln_backend b)
{
    switch (p) {
    case KILN_PRECISION_DEFAULT: return b == KILN_BACKEND_REF ? "fp32" : "fp16";
    case KILN_PRECISION_FP32: return "fp32";
    case KILN_PRECISION_FP16: return "fp16";
    case KILN_PRECISION_BF16: return "bf16";
    case KILN_PRECISION_INT8: return "int8";
    case KILN_PRECISION_FP8: return "fp8";
    case KILN_PRECISION_TF32: return "tf32";
    }
    return NULL;
}

#ifdef KILN_HAVE_CUDA
const char *kiln_cuda_arch_of(int device); /* src/cuda/runtime.c: "sm_90" of that GPU, NULL without it */
void kiln_cuda_lib_versions(unsigned *cudnn, unsigned *cublaslt); /* src/cuda/runtime.c */
#endif

const char *kiln_backend_arch_of(kiln_backend b, int device)
{
    if (b == KILN_BACKEND_REF) return "cpu";
#ifdef KILN_HAVE_CUDA
    if (b == KILN_BACKEND_CUDA) return kiln_cuda_arch_of(device);
#else
    (void)device;
#endif
    return NULL;
}

/* GPU 0, the default device of kiln_build_options and kiln_engine_load */
const char *kiln_backend_arch(kiln_backend b) { return kiln_backend_arch_of(b, 0); }

/* Names go into file names and object keys: [A-Za-z0-9.-] (and '_' in the
 * model name), anything else becomes '-'. */
static void sanitize(const char *in, char *out, size_t cap, bool underscore)
{
    size_t i = 0;
    for (; in[i] && i + 1 < cap; i++) {
        char c = in[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
                  (underscore && c == '_');
        out[i] = ok ? c : '-';
    }
    out[i] = '\0';
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void kiln_options_hash(const kiln_build_options *o, char out[16])
{
    out[0] = '\0';
    bool rtc = (o->flags & KILN_BUILD_RUNTIME_COMPILE) != 0;
    unsigned dnn = 0, lt = 0;
#ifdef KILN_HAVE_CUDA
    if (o->backend == KILN_BACKEND_CUDA) kiln_cuda_lib_versions(&dnn, &lt);
#endif
    if ((!o->input_shapes || !o->input_shapes[0]) && !o->workspace_bytes && (!o->profile || !o->profile[0]) && !rtc &&
        !dnn)
        return;
    /* canonical text: shapes sorted by input, then the workspace */
    kiln_sbuf b = {0};
    if (o->input_shapes && o->input_shapes[0]) {
        char *copy = kiln_xstrdup(o->input_shapes), *save = NULL;
        char *items[256];
        int n = 0;
        for (char *t = copy ? strtok_r(copy, ", ", &save) : NULL; t && n < 256; t = strtok_r(NULL, ", ", &save)) items[n++] = t;
        qsort(items, (size_t)n, sizeof *items, cmp_str);
        kiln_sbuf_printf(&b, "shapes=");
        for (int i = 0; i < n; i++) kiln_sbuf_printf(&b, "%s%s", i ? "," : "", items[i]);
        free(copy);
    }
    kiln_sbuf_printf(&b, ";workspace=%llu", (unsigned long long)o->workspace_bytes);
    /* the profile changes the plan (memory sized for max, tactics timed at opt) */
    if (o->profile && o->profile[0]) kiln_sbuf_printf(&b, ";profile=%s", o->profile);
    if (rtc) kiln_sbuf_printf(&b, ";runtime-compile");
    /* a cuda plan's tactics name engines of one cuDNN and cuBLASLt */
    if (dnn) kiln_sbuf_printf(&b, ";cudnn=%u;cublaslt=%u", dnn, lt);
    uint8_t d[32];
    kiln_sha256(b.data ? b.data : "", b.len, d);
    free(b.data);
    kiln_hex(d, 4, out);
}

static kiln_status hash_file(kiln_sha256_ctx *s, const char *path, const char *model)
{
    FILE *f = fopen(path, "rb");
    if (!f) return kiln_fail(KILN_ERR_IO, "%s: cannot read external data '%s': %s", model, path, strerror(errno));
    static _Thread_local unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) kiln_sha256_update(s, buf, n);
    int err = ferror(f);
    fclose(f);
    return err ? kiln_fail(KILN_ERR_IO, "%s: read error in '%s'", model, path) : KILN_OK;
}

static void add_location(const KilnOnnx__TensorProto *t, const char **locs, int *n, int cap)
{
    if (!t || !t->has_data_location || t->data_location != KILN_ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) return;
    for (size_t k = 0; k < t->n_external_data; k++) {
        const KilnOnnx__StringStringEntryProto *e = t->external_data[k];
        if (e->key && e->value && !strcmp(e->key, "location") && *n < cap) locs[(*n)++] = e->value;
    }
}

/* SHA-256 over the ONNX bytes, then each external data file (sorted by
 * name, each once) as "\0name\0" + contents. */
static kiln_status model_sha(const char *path, uint8_t out[32])
{
    uint8_t *bytes;
    size_t size;
    kiln_status st = kiln_read_file(path, &bytes, &size);
    if (st != KILN_OK) return st;
    kiln_sha256_ctx s;
    kiln_sha256_init(&s);
    kiln_sha256_update(&s, bytes, size);
    KilnOnnx__ModelProto *m = kiln_onnx__model_proto__unpack(NULL, size, bytes);
    if (!m) {
        free(bytes);
        return kiln_fail(KILN_ERR_FORMAT, "%s: not a readable ONNX model (protobuf parse failed)", path);
    }
    int cap = 4096, n = 0;
    const char **locs = kiln_xcalloc((size_t)cap, sizeof *locs);
    if (!locs) st = KILN_ERR_OUT_OF_MEMORY;
    if (locs && m->graph) {
        for (size_t i = 0; i < m->graph->n_initializer; i++) add_location(m->graph->initializer[i], locs, &n, cap);
        for (size_t i = 0; i < m->graph->n_node; i++)
            for (size_t k = 0; k < m->graph->node[i]->n_attribute; k++) add_location(m->graph->node[i]->attribute[k]->t, locs, &n, cap);
    }
    if (n) {
        qsort(locs, (size_t)n, sizeof *locs, cmp_str);
        char *dup = kiln_xstrdup(path);
        char *slash = dup ? strrchr(dup, '/') : NULL;
        const char *dir = slash ? (*slash = '\0', dup) : ".";
        for (int i = 0; i < n && st == KILN_OK && dup; i++) {
            if (i && !strcmp(locs[i], locs[i - 1])) continue;
            char file[PATH_MAX];
            snprintf(file, sizeof file, "%s/%s", dir[0] ? dir : "/", locs[i]);
            kiln_sha256_update(&s, "", 1);
            kiln_sha256_update(&s, locs[i], strlen(locs[i]) + 1);
            st = hash_file(&s, file, path);
        }
        free(dup);
    }
    free(locs);
    kiln_onnx__model_proto__free_unpacked(m, NULL);
    free(bytes);
    if (st == KILN_OK) kiln_sha256_final(&s, out);
    return st;
}

kiln_status kiln_identity_compute(const char *model_path, const kiln_build_options *o, kiln_identity *id, uint8_t sha[32])
{
    memset(id, 0, sizeof *id);
    if (sha) memset(sha, 0, 32);
    const char *prec = kiln_precision_name(o->precision, o->backend);
    if (!prec) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "unknown precision %d", (int)o->precision);
    if (o->backend == KILN_BACKEND_REF && strcmp(prec, "fp32") != 0)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "the ref backend computes in the model's own dtypes: precision %s is not "
                                               "available (use fp32)", prec);
    if (o->backend == KILN_BACKEND_REF && o->device != 0)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "device %d: the ref backend runs on the CPU; device must be 0",
                         o->device);
    /* the plan is for the GPU it is built on */
    const char *arch = kiln_backend_arch_of(o->backend, o->device);
#ifdef KILN_HAVE_CUDA
    if (!arch && o->device != 0 && kiln_backend_arch_of(o->backend, 0))
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "device %d: the CUDA runtime sees no such GPU", o->device);
#endif
    if (!arch)
        return kiln_fail(KILN_ERR_UNSUPPORTED,
#ifdef KILN_HAVE_CUDA
                         "the cuda backend needs an NVIDIA GPU and the CUDA runtime sees none; use the ref "
                         "backend explicitly (--backend ref) on machines without one");
#else
                         "the cuda backend is not part of this build of kiln (built without CUDA); use the ref "
                         "backend explicitly (--backend ref)");
#endif
    const char *base = strrchr(model_path, '/') ? strrchr(model_path, '/') + 1 : model_path;
    char name[64];
    if (o->model_name && o->model_name[0])
        snprintf(name, sizeof name, "%s", o->model_name);
    else {
        snprintf(name, sizeof name, "%s", base);
        size_t l = strlen(name);
        if (l > 5 && !strcmp(name + l - 5, ".onnx")) name[l - 5] = '\0';
        if (l > 5 && !strcmp(name + l - 5, ".plan")) name[l - 5] = '\0';
    }
    sanitize(name, id->model, sizeof id->model, true);
    if (!id->model[0]) snprintf(id->model, sizeof id->model, "model");
    if (o->model_version && o->model_version[0])
        sanitize(o->model_version, id->version, sizeof id->version, false);
    else {
        uint8_t d[32];
        kiln_status st = model_sha(model_path, d);
        if (st != KILN_OK) return st;
        kiln_hex(d, 4, id->version);
        if (sha) memcpy(sha, d, 32);
    }
    snprintf(id->precision, sizeof id->precision, "%s", prec);
    snprintf(id->arch, sizeof id->arch, "%s", arch);
    snprintf(id->kiln_version, sizeof id->kiln_version, "%s", kiln_version_string());
    kiln_options_hash(o, id->options_hash);
    return KILN_OK;
}

kiln_status kiln_identity_file_name(const kiln_identity *id, char *buf, size_t cap)
{
    if (!id || !buf) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_identity_file_name: NULL argument");
    int n = snprintf(buf, cap, "%s_%s_%s_%s_%s%s%s.plan", id->model, id->version, id->precision, id->arch, id->kiln_version,
                     id->options_hash[0] ? "_" : "", id->options_hash);
    if (n < 0 || (size_t)n >= cap)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_identity_file_name: buffer of %zu bytes is too small", cap);
    return KILN_OK;
}

kiln_status kiln_model_identity(const char *model_path, const kiln_build_options *o, kiln_identity *out)
{
    if (!model_path || !out) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_model_identity: NULL argument");
    kiln_build_options d;
    if (!o) {
        kiln_build_options_init(&d);
        o = &d;
    }
    return kiln_identity_compute(model_path, o, out, NULL);
}

static bool all(const char *s, size_t n, const char *set)
{
    if (!n) return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr(set, s[i])) return false;
    return true;
}

bool kiln_identity_name_shaped(const char *base)
{
    size_t len = strlen(base);
    if (len < 6 || strcmp(base + len - 5, ".plan") != 0) return false;
    char buf[512];
    if (len - 5 >= sizeof buf) return false;
    memcpy(buf, base, len - 5);
    buf[len - 5] = '\0';
    char *tok[64];
    int n = 0;
    for (char *p = buf, *save = NULL, *t = strtok_r(p, "_", &save); t && n < 64; t = strtok_r(NULL, "_", &save)) tok[n++] = t;
    int i = n - 1;
    if (i >= 0 && strlen(tok[i]) == 8 && all(tok[i], 8, "0123456789abcdef")) i--; /* options hash */
    /* kiln version x.y.z */
    if (i < 0) return false;
    {
        int dots = 0;
        for (const char *c = tok[i]; *c; c++) dots += *c == '.';
        if (dots != 2 || !all(tok[i], strlen(tok[i]), "0123456789.")) return false;
        i--;
    }
    if (i >= 0 && !strcmp(tok[i], "cpu"))
        i--;
    else if (i >= 1 && !strcmp(tok[i - 1], "sm") && all(tok[i], strlen(tok[i]), "0123456789abcdef"))
        i -= 2;
    else
        return false;
    static const char *const precs[] = {"fp32", "fp16", "bf16", "int8", "fp8"};
    bool prec = false;
    for (size_t k = 0; i >= 0 && k < sizeof precs / sizeof *precs; k++) prec |= !strcmp(tok[i], precs[k]);
    return prec && i >= 2; /* model and version before it */
}
