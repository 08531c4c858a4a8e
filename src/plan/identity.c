/* Engine identity: {model}_{version}_{precision}_{arch}_{kilnversion}
 * [_{optionshash}].plan. The model version is the first 8 hex digits of the
 * SHA-256 over the ONNX file and the external data files it names
 * (kiln_onnx_digest). The backend gives its architecture, its library
 * versions and its default precision through its table. Used by plans
 * (engine_plan.c) and by the cache above them (src/cache). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sha256.h"
#include "onnx/onnx.h"
#include "plan/plan.h"
#include "runtime/backend.h"

static const char *precision_text(kiln_precision p)
{
    switch (p) {
    case KILN_PRECISION_DEFAULT: return NULL;
    case KILN_PRECISION_FP32: return "fp32";
    case KILN_PRECISION_FP16: return "fp16";
    case KILN_PRECISION_BF16: return "bf16";
    case KILN_PRECISION_INT8: return "int8";
    case KILN_PRECISION_FP8: return "fp8";
    case KILN_PRECISION_TF32: return "tf32";
    }
    return NULL;
}

const char *kiln_precision_name(kiln_precision p, kiln_backend b)
{
    if (p != KILN_PRECISION_DEFAULT) return precision_text(p);
    const kiln_backend_iface *be = kiln_backend_find(b);
    /* a backend this build lacks: its default is not known here, and the
     * identity fails on the missing backend anyway */
    return precision_text(be ? kiln_backend_default_precision(be) : KILN_PRECISION_FP32);
}

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
    char libs[128] = "";
    const kiln_backend_iface *be = kiln_backend_find(o->backend);
    if (be) kiln_backend_lib_versions(be, libs, sizeof libs);
    if ((!o->input_shapes || !o->input_shapes[0]) && !o->workspace_bytes && (!o->profile || !o->profile[0]) && !rtc &&
        !libs[0])
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
    /* a plan's tactics may name what one version of a library offers
     * (cuda: cuDNN engines, cuBLASLt algorithms) */
    if (libs[0]) kiln_sbuf_printf(&b, ";%s", libs);
    uint8_t d[32];
    kiln_sha256(b.data ? b.data : "", b.len, d);
    free(b.data);
    kiln_hex(d, 4, out);
}

kiln_status kiln_identity_compute(const char *model_path, const kiln_build_options *o, kiln_identity *id, uint8_t sha[32])
{
    memset(id, 0, sizeof *id);
    if (sha) memset(sha, 0, 32);
    const char *prec = kiln_precision_name(o->precision, o->backend);
    if (!prec) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "unknown precision %d", (int)o->precision);
    const kiln_backend_iface *be = kiln_backend_find(o->backend);
    if (!be) return kiln_backend_missing(o->backend);
    if (!kiln_backend_builds(be, o->precision))
        return be->precisions ? kiln_fail(KILN_ERR_UNSUPPORTED, "the %s backend does not build precision %s", be->name,
                                          prec)
                              : kiln_fail(KILN_ERR_UNSUPPORTED,
                                          "the %s backend computes in the model's own dtypes: precision %s is not "
                                          "available (use fp32)",
                                          be->name, prec);
    kiln_status st = kiln_backend_check_device(be, o->device);
    if (st != KILN_OK) return st;
    /* the plan is for the device it is built on */
    const char *arch = kiln_backend_arch_of(o->backend, o->device);
    if (!arch)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "device %d: the %s backend knows no architecture for it", o->device,
                         be->name);
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
        st = kiln_onnx_digest(model_path, d);
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
