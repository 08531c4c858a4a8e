/* The plan container: header, section table, checksum, whether this kiln
 * can run a plan, and the atomic file write every plan (and every cache
 * entry) goes through. */
#include "plan/plan.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sha256.h"
#include "runtime/backend.h"

_Static_assert(sizeof(void *) != 8 || sizeof(kiln_build_options) == 64, "kiln_build_options must stay 64 bytes");
_Static_assert(KILN_PLAN_OFF_SECTIONS + KILN_PLAN_MAX_SECTIONS * 24 <= KILN_PLAN_HEADER_SIZE, "header overflow");

/* ------------------------------------------------------------ byte buffers */

void kiln_bytes_put(kiln_bytes *b, const void *data, size_t n)
{
    if (b->failed) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
}

void kiln_bytes_u32(kiln_bytes *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    kiln_bytes_put(b, x, 4);
}

void kiln_bytes_u64(kiln_bytes *b, uint64_t v)
{
    kiln_bytes_u32(b, (uint32_t)v);
    kiln_bytes_u32(b, (uint32_t)(v >> 32));
}

void kiln_bytes_str(kiln_bytes *b, const char *s)
{
    if (!s) {
        kiln_bytes_u32(b, 0xffffffffu);
        return;
    }
    size_t n = strlen(s);
    kiln_bytes_u32(b, (uint32_t)n);
    kiln_bytes_put(b, s, n);
}

void kiln_bytes_align(kiln_bytes *b, size_t a)
{
    static const uint8_t zero[KILN_PLAN_ALIGN];
    while (b->len % a && !b->failed) kiln_bytes_put(b, zero, a - b->len % a > sizeof zero ? sizeof zero : a - b->len % a);
}

uint32_t kiln_read_u32(kiln_reader *r)
{
    if (r->bad || r->len - r->off < 4) {
        r->bad = true;
        return 0;
    }
    uint32_t v = kiln_le32(r->p + r->off);
    r->off += 4;
    return v;
}

uint64_t kiln_read_u64(kiln_reader *r)
{
    uint64_t lo = kiln_read_u32(r);
    return lo | (uint64_t)kiln_read_u32(r) << 32;
}

const void *kiln_read_bytes(kiln_reader *r, size_t n)
{
    if (r->bad || r->len - r->off < n) {
        r->bad = true;
        return NULL;
    }
    const void *p = r->p + r->off;
    r->off += n;
    return p;
}

const char *kiln_read_str(kiln_reader *r, kiln_arena *a)
{
    uint32_t n = kiln_read_u32(r);
    if (n == 0xffffffffu || r->bad) return NULL;
    const char *p = kiln_read_bytes(r, n);
    if (!p) return NULL;
    char *s = kiln_arena_alloc(a, (size_t)n + 1);
    if (!s) {
        r->bad = true;
        return NULL;
    }
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* ------------------------------------------------------------------ header */

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_le64(uint8_t *p, uint64_t v)
{
    put_le32(p, (uint32_t)v);
    put_le32(p + 4, (uint32_t)(v >> 32));
}

static void put_field(uint8_t *p, const char *s, size_t cap)
{
    size_t n = strnlen(s, cap - 1);
    memcpy(p, s, n); /* the rest stays zero: always NUL-terminated */
}

static void get_field(const uint8_t *p, char *s, size_t cap)
{
    memcpy(s, p, cap);
    s[cap - 1] = '\0';
}

kiln_status kiln_plan_assemble(const kiln_plan_info *info, uint8_t **out, size_t *size)
{
    *out = NULL;
    if (info->n_sections > KILN_PLAN_MAX_SECTIONS) return kiln_fail(KILN_ERR_INTERNAL, "too many plan sections");
    uint64_t total = KILN_PLAN_HEADER_SIZE;
    for (int i = 0; i < info->n_sections; i++)
        total = (total + KILN_PLAN_ALIGN - 1) / KILN_PLAN_ALIGN * KILN_PLAN_ALIGN + info->sections[i].size;
    uint8_t *b = calloc(1, (size_t)total);
    if (!b) return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of host memory for a plan of %llu bytes", (unsigned long long)total);
    memcpy(b + KILN_PLAN_OFF_MAGIC, KILN_PLAN_MAGIC, 8);
    put_le32(b + KILN_PLAN_OFF_FORMAT, KILN_PLAN_FORMAT);
    put_le32(b + KILN_PLAN_OFF_HEADER, KILN_PLAN_HEADER_SIZE);
    put_le64(b + KILN_PLAN_OFF_SIZE, total);
    put_le32(b + KILN_PLAN_OFF_BACKEND, (uint32_t)info->backend);
    put_le32(b + KILN_PLAN_OFF_PRECISION, (uint32_t)info->precision);
    put_le64(b + KILN_PLAN_OFF_WORKSPACE, info->workspace);
    put_le32(b + KILN_PLAN_OFF_NSECT, (uint32_t)info->n_sections);
    put_field(b + KILN_PLAN_OFF_MODEL, info->id.model, 64);
    put_field(b + KILN_PLAN_OFF_VERSION, info->id.version, 32);
    put_field(b + KILN_PLAN_OFF_PREC_NAME, info->id.precision, 16);
    put_field(b + KILN_PLAN_OFF_ARCH, info->id.arch, 16);
    put_field(b + KILN_PLAN_OFF_KILN, info->id.kiln_version, 16);
    put_field(b + KILN_PLAN_OFF_OPTHASH, info->id.options_hash, 16);
    memcpy(b + KILN_PLAN_OFF_MODEL_SHA, info->model_sha, 32);
    uint64_t off = KILN_PLAN_HEADER_SIZE;
    for (int i = 0; i < info->n_sections; i++) {
        off = (off + KILN_PLAN_ALIGN - 1) / KILN_PLAN_ALIGN * KILN_PLAN_ALIGN;
        uint8_t *e = b + KILN_PLAN_OFF_SECTIONS + 24 * i;
        put_field(e, info->sections[i].tag, 9);
        put_le64(e + 8, off);
        put_le64(e + 16, info->sections[i].size);
        if (info->sections[i].size) memcpy(b + off, info->sections[i].data, (size_t)info->sections[i].size);
        off += info->sections[i].size;
    }
    uint8_t sha[32];
    kiln_sha256(b, (size_t)total, sha); /* checksum field is still zero */
    memcpy(b + KILN_PLAN_OFF_SHA, sha, 32);
    *out = b;
    *size = (size_t)total;
    return KILN_OK;
}

kiln_status kiln_plan_parse(const uint8_t *b, size_t size, const char *what, kiln_plan_info *info)
{
    memset(info, 0, sizeof *info);
    if (size < 8 || memcmp(b, KILN_PLAN_MAGIC, 8) != 0)
        return kiln_fail(KILN_ERR_FORMAT, "%s: not a kiln plan (no KILNPLAN magic)", what);
    if (size < KILN_PLAN_HEADER_SIZE)
        return kiln_fail(KILN_ERR_FORMAT, "%s: truncated plan: %zu bytes, shorter than its %d-byte header", what,
                         size, KILN_PLAN_HEADER_SIZE);
    info->format = kiln_le32(b + KILN_PLAN_OFF_FORMAT);
    if (info->format != KILN_PLAN_FORMAT)
        return kiln_fail(KILN_ERR_VERSION, "%s: plan format %u; this kiln (%s) reads format %d: rebuild the plan",
                         what, info->format, kiln_version_string(), KILN_PLAN_FORMAT);
    uint64_t total = kiln_le64(b + KILN_PLAN_OFF_SIZE);
    if (total != size)
        return kiln_fail(KILN_ERR_FORMAT, "%s: %s plan: the header says %llu bytes, the file has %zu", what,
                         total > size ? "truncated" : "corrupt", (unsigned long long)total, size);
    uint8_t want[32], got[32];
    memcpy(want, b + KILN_PLAN_OFF_SHA, 32);
    kiln_sha256_ctx s;
    static const uint8_t zero[32];
    kiln_sha256_init(&s);
    kiln_sha256_update(&s, b, KILN_PLAN_OFF_SHA);
    kiln_sha256_update(&s, zero, 32);
    kiln_sha256_update(&s, b + KILN_PLAN_OFF_SHA + 32, size - KILN_PLAN_OFF_SHA - 32);
    kiln_sha256_final(&s, got);
    if (memcmp(want, got, 32) != 0) {
        char hw[17], hg[17];
        kiln_hex(want, 8, hw);
        kiln_hex(got, 8, hg);
        return kiln_fail(KILN_ERR_FORMAT, "%s: corrupt plan: checksum mismatch (header SHA-256 %s..., content %s...)",
                         what, hw, hg);
    }
    /* every fixed field the format defines (docs/plan-format.md): a header
     * resealed after an edit must still be one this kiln wrote */
    uint32_t hsize = kiln_le32(b + KILN_PLAN_OFF_HEADER), flags = kiln_le32(b + KILN_PLAN_OFF_FLAGS);
    if (hsize != KILN_PLAN_HEADER_SIZE)
        return kiln_fail(KILN_ERR_FORMAT, "%s: invalid plan header: header size %u, the format's is %d", what, hsize,
                         KILN_PLAN_HEADER_SIZE);
    if (flags != 0)
        return kiln_fail(KILN_ERR_FORMAT, "%s: invalid plan header: flags 0x%x, the format defines none", what, flags);
    for (size_t i = KILN_PLAN_OFF_RESERVED; i < KILN_PLAN_HEADER_SIZE; i++)
        if (b[i])
            return kiln_fail(KILN_ERR_FORMAT, "%s: invalid plan header: reserved byte %zu is not zero", what, i);
    info->backend = (kiln_backend)kiln_le32(b + KILN_PLAN_OFF_BACKEND);
    if (!kiln_backend_name(info->backend))
        return kiln_fail(KILN_ERR_FORMAT, "%s: invalid plan header: unknown backend %u", what,
                         kiln_le32(b + KILN_PLAN_OFF_BACKEND));
    uint32_t prec = kiln_le32(b + KILN_PLAN_OFF_PRECISION);
    info->precision = (kiln_precision)prec;
    info->workspace = kiln_le64(b + KILN_PLAN_OFF_WORKSPACE);
    if (info->workspace > KILN_PLAN_MAX_WORKSPACE)
        return kiln_fail(KILN_ERR_FORMAT, "%s: invalid plan header: workspace of %llu bytes (at most %llu)", what,
                         (unsigned long long)info->workspace, (unsigned long long)KILN_PLAN_MAX_WORKSPACE);
    get_field(b + KILN_PLAN_OFF_MODEL, info->id.model, 64);
    get_field(b + KILN_PLAN_OFF_VERSION, info->id.version, 32);
    get_field(b + KILN_PLAN_OFF_PREC_NAME, info->id.precision, 16);
    get_field(b + KILN_PLAN_OFF_ARCH, info->id.arch, 16);
    get_field(b + KILN_PLAN_OFF_KILN, info->id.kiln_version, 16);
    get_field(b + KILN_PLAN_OFF_OPTHASH, info->id.options_hash, 16);
    memcpy(info->model_sha, b + KILN_PLAN_OFF_MODEL_SHA, 32);
    const char *pname = prec <= KILN_PRECISION_TF32 ? kiln_precision_name(info->precision, info->backend) : NULL;
    if (!pname || strcmp(pname, info->id.precision) != 0)
        return kiln_fail(KILN_ERR_FORMAT, "%s: invalid plan header: precision %u (%s) but identity precision '%s'",
                         what, prec, pname ? pname : "unknown", info->id.precision);
    if (!info->id.model[0] || !info->id.arch[0] || !info->id.kiln_version[0])
        return kiln_fail(KILN_ERR_FORMAT, "%s: invalid plan header: the identity has no model, arch or kiln version",
                         what);
    uint32_t n = kiln_le32(b + KILN_PLAN_OFF_NSECT);
    if (n > KILN_PLAN_MAX_SECTIONS) return kiln_fail(KILN_ERR_FORMAT, "%s: plan has %u sections (at most %d)", what, n, KILN_PLAN_MAX_SECTIONS);
    info->n_sections = (int)n;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = b + KILN_PLAN_OFF_SECTIONS + 24 * i;
        kiln_plan_section *sec = &info->sections[i];
        memcpy(sec->tag, e, 8);
        sec->tag[8] = '\0';
        uint64_t off = kiln_le64(e + 8);
        sec->size = kiln_le64(e + 16);
        if (off < KILN_PLAN_HEADER_SIZE || off > size || sec->size > size - off)
            return kiln_fail(KILN_ERR_FORMAT, "%s: plan section '%s' lies outside the file", what, sec->tag);
        if (off % KILN_PLAN_ALIGN)
            return kiln_fail(KILN_ERR_FORMAT, "%s: plan section '%s' starts at %llu, not a multiple of %d", what,
                             sec->tag, (unsigned long long)off, KILN_PLAN_ALIGN);
        sec->data = b + off;
    }
    for (uint32_t i = n; i < KILN_PLAN_MAX_SECTIONS; i++)
        for (int k = 0; k < 24; k++)
            if (b[KILN_PLAN_OFF_SECTIONS + 24 * i + k])
                return kiln_fail(KILN_ERR_FORMAT, "%s: invalid plan header: unused section entry %u is not zero", what,
                                 i);
    return KILN_OK;
}

kiln_status kiln_plan_check_device(const kiln_plan_info *info, const char *what, int device)
{
    if (strcmp(info->id.kiln_version, kiln_version_string()) != 0)
        return kiln_fail(KILN_ERR_VERSION, "%s: plan built by kiln %s; this is kiln %s: rebuild it (kiln build)", what,
                         info->id.kiln_version, kiln_version_string());
    const kiln_backend_iface *be = kiln_backend_find(info->backend);
    if (!be) {
        const char *name = kiln_backend_name(info->backend);
        if (!name) return kiln_fail(KILN_ERR_FORMAT, "%s: plan for an unknown backend %d", what, (int)info->backend);
        return kiln_fail(KILN_ERR_UNSUPPORTED, "%s: plan for the %s backend (%s), which is not part of this build of kiln",
                         what, name, info->id.arch);
    }
    kiln_status st = kiln_backend_check_device(be, device);
    if (st != KILN_OK) return kiln_fail_prefix(st, "%s: ", what);
    const char *arch = kiln_backend_arch_of(info->backend, device);
    if (!arch)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "%s: device %d: the %s backend knows no architecture for it", what,
                         device, be->name);
    if (strcmp(info->id.arch, arch) == 0) return KILN_OK;
    if (device == 0)
        return kiln_fail(KILN_ERR_VERSION, "%s: plan built for architecture %s; this machine runs %s: rebuild it", what,
                         info->id.arch, arch);
    return kiln_fail(KILN_ERR_VERSION,
                     "%s: plan built for architecture %s; device %d is %s: build a plan on that device "
                     "(kiln_build_options.device = %d) or load this one onto a device of its architecture",
                     what, info->id.arch, device, arch, device);
}

kiln_status kiln_plan_check_runnable(const kiln_plan_info *info, const char *what)
{
    return kiln_plan_check_device(info, what, 0);
}

const kiln_plan_section *kiln_plan_find(const kiln_plan_info *info, const char *tag)
{
    for (int i = 0; i < info->n_sections; i++)
        if (!strcmp(info->sections[i].tag, tag)) return &info->sections[i];
    return NULL;
}

/* -------------------------------------------------------------------- files */


static const char *write_cause(int e)
{
    switch (e) {
    case ENOSPC: return "the disk is full";
    case EDQUOT: return "the disk quota is exceeded";
    case EFBIG: return "the file size limit is exceeded (disk full or RLIMIT_FSIZE)";
    case EACCES:
    case EPERM: return "no write permission";
    case EROFS: return "the file system is read-only";
    default: return strerror(e);
    }
}

kiln_status kiln_write_file_atomic(const char *path, const void *bytes, size_t size)
{
    static atomic_uint counter;
    char *dup = kiln_xstrdup(path);
    if (!dup) return KILN_ERR_OUT_OF_MEMORY;
    char dir[4096], tmp[4600];
    snprintf(dir, sizeof dir, "%s", dirname(dup));
    free(dup);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp.%ld.%u", dir, base, (long)getpid(), atomic_fetch_add(&counter, 1));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return kiln_fail(KILN_ERR_IO, "%s: cannot write: %s (folder '%s')", path, write_cause(errno), dir);
    const uint8_t *p = bytes;
    size_t done = 0;
    int err = 0;
    while (done < size) {
        ssize_t w = write(fd, p + done, size - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            err = w < 0 ? errno : ENOSPC;
            break;
        }
        done += (size_t)w;
    }
    if (!err && fsync(fd) != 0) err = errno;
    if (close(fd) != 0 && !err) err = errno;
    if (!err && rename(tmp, path) != 0) err = errno;
    if (err) {
        unlink(tmp);
        return kiln_fail(KILN_ERR_IO, "%s: cannot write %zu bytes: %s; nothing was written", path, size, write_cause(err));
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd); /* the rename itself becomes durable */
        close(dfd);
    }
    return KILN_OK;
}
