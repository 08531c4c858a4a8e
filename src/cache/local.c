/* The local engine cache and kiln_build_or_load.
 *
 * One file per identity in the cache folder. Entries are written through
 * a temporary file + fsync + rename, so a reader sees a whole entry or
 * none. Builders of one identity serialize on a lock file (flock, which the
 * kernel releases when its owner dies: a lock left by a crashed process is
 * stale and taken over); the file holds the owner's pid for messages. A
 * corrupt entry is moved aside to NAME.corrupt-TIME and rebuilt. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "runtime/backend.h" /* kiln_engine_set_identity */

const char *kiln_engine_source_name(kiln_engine_source s)
{
    switch (s) {
    case KILN_SOURCE_BUILT: return "built";
    case KILN_SOURCE_LOCAL_CACHE: return "local_cache";
    case KILN_SOURCE_REMOTE: return "remote";
    }
    return "unknown";
}

static kiln_status mkdirs(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "cache folder path is too long");
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return kiln_fail(KILN_ERR_IO, "cache folder '%s': cannot create '%s': %s", path, buf,
                                 errno == EACCES ? "no write permission" : strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return kiln_fail(KILN_ERR_IO, "cache folder '%s' is not a folder", path);
    return KILN_OK;
}

kiln_status kiln_cache_dir(const kiln_build_options *o, char **out)
{
    if (!out) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_cache_dir: out is NULL");
    *out = NULL;
    char buf[PATH_MAX];
    const char *env;
    if (o && o->cache_dir && o->cache_dir[0])
        snprintf(buf, sizeof buf, "%s", o->cache_dir);
    else if ((env = getenv("KILN_CACHE_DIR")) && env[0])
        snprintf(buf, sizeof buf, "%s", env);
    else if ((env = getenv("XDG_CACHE_HOME")) && env[0])
        snprintf(buf, sizeof buf, "%s/kiln/engines", env);
    else if ((env = getenv("HOME")) && env[0])
        snprintf(buf, sizeof buf, "%s/.cache/kiln/engines", env);
    else
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "no cache folder: set KILN_CACHE_DIR (HOME is not set)");
    size_t l = strlen(buf);
    while (l > 1 && buf[l - 1] == '/') buf[--l] = '\0';
    kiln_status st = mkdirs(buf);
    if (st != KILN_OK) return st;
    *out = kiln_xstrdup(buf);
    return *out ? KILN_OK : KILN_ERR_OUT_OF_MEMORY;
}

/* ------------------------------------------------------------------ locks */

typedef struct cache_lock {
    int fd;
    char path[PATH_MAX];
} cache_lock;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int sweep_stale(const char *dir, kiln_sbuf *report);

static long lock_owner(int fd)
{
    char buf[64] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    return n > 0 ? strtol(buf, NULL, 10) : 0;
}

/* Takes the builder lock of one entry; waits for another builder up to
 * $KILN_CACHE_LOCK_TIMEOUT seconds (600). Returns false when it could not
 * (the caller then builds without it: the rename keeps entries whole). */
static bool lock_take(cache_lock *l, const char *dir, const char *name)
{
    snprintf(l->path, sizeof l->path, "%s/.%s.lock", dir, name);
    const char *env = getenv("KILN_CACHE_LOCK_TIMEOUT");
    double timeout = env ? atof(env) : 600, start = now_s();
    bool said = false;
    for (;;) {
        int fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            kiln_log(KILN_LOG_WARN, "cache: cannot create lock '%s': %s; building without it", l->path, strerror(errno));
            return false;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            /* the file we locked must still be the one under the name: a
             * previous owner unlinks it when done */
            struct stat a, b;
            if (fstat(fd, &a) == 0 && stat(l->path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
                long old = lock_owner(fd);
                if (old > 0 && old != (long)getpid() && !said)
                    kiln_log(KILN_LOG_INFO, "cache: stale lock of pid %ld on %s taken over", old, name);
                char pid[32];
                int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
                if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) { /* informational only */
                }
                l->fd = fd;
                return true;
            }
            close(fd);
            continue;
        }
        if (errno != EWOULDBLOCK && errno != EINTR) {
            kiln_log(KILN_LOG_WARN, "cache: cannot lock '%s': %s; building without it", l->path, strerror(errno));
            close(fd);
            return false;
        }
        if (!said) {
            kiln_log(KILN_LOG_INFO, "cache: pid %ld is building %s; waiting", lock_owner(fd), name);
            said = true;
        }
        close(fd);
        if (now_s() - start > timeout) {
            kiln_log(KILN_LOG_WARN, "cache: gave up waiting %.0f s for the builder of %s; building here too", timeout, name);
            return false;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void lock_release(cache_lock *l)
{
    unlink(l->path); /* while still held: a waiter that locked the old file notices and retries */
    close(l->fd);
}

/* ---------------------------------------------------------------- entries */

/* Moves a bad entry out of the way (it is kept for a post-mortem). */
static void move_aside(const char *path, const char *why)
{
    char aside[PATH_MAX + 64];
    snprintf(aside, sizeof aside, "%s.corrupt-%ld-%ld", path, (long)time(NULL), (long)getpid());
    if (rename(path, aside) == 0)
        kiln_log(KILN_LOG_WARN, "cache: %s; moved aside to %s and rebuilding", why, aside);
    else {
        kiln_log(KILN_LOG_WARN, "cache: %s; removing it (cannot move it aside: %s)", why, strerror(errno));
        unlink(path);
    }
}

/* Loads an entry: KILN_OK, KILN_ERR_NOT_FOUND (absent, or bad and moved
 * aside), or another error worth reporting. */
static kiln_status load_entry(const char *path, int device, kiln_engine **out)
{
    uint8_t *bytes;
    size_t size;
    kiln_status st = kiln_read_file(path, &bytes, &size);
    if (st == KILN_ERR_NOT_FOUND) return st;
    if (st != KILN_OK) return st;
    const char *base = strrchr(path, '/') + 1;
    kiln_plan_info info;
    char want[512];
    st = kiln_plan_parse(bytes, size, path, &info);
    if (st == KILN_OK) st = kiln_identity_file_name(&info.id, want, sizeof want);
    if (st == KILN_OK && strcmp(want, base) != 0)
        st = kiln_fail(KILN_ERR_FORMAT, "%s: the file name and the plan header disagree (header: %s)", path, want);
    /* a cached plan loads onto the GPU it was asked for (its identity
     * names that GPU's architecture) */
    if (st == KILN_OK) {
        st = kiln_engine_from_plan_device(bytes, size, path, device, out); /* takes bytes */
        /* sealed and named right, yet this kiln cannot read it (a plan of
         * another program format under the same kiln version): rebuilt */
        if (st != KILN_ERR_FORMAT && st != KILN_ERR_VERSION) return st;
        move_aside(path, kiln_last_error());
        return KILN_ERR_NOT_FOUND;
    }
    free(bytes);
    move_aside(path, kiln_last_error());
    return KILN_ERR_NOT_FOUND;
}

/* Downloads an entry, verifies it and puts it in the folder. */
static kiln_status fetch_entry(kiln_remote *r, const char *path, const char *name, int device, kiln_engine **out)
{
    uint8_t *bytes;
    size_t size;
    kiln_status st = kiln_remote_get(r, name, &bytes, &size);
    if (st != KILN_OK) return st;
    kiln_plan_info info;
    char want[512];
    st = kiln_plan_parse(bytes, size, name, &info);
    if (st == KILN_OK) st = kiln_identity_file_name(&info.id, want, sizeof want);
    if (st == KILN_OK && strcmp(want, name) != 0)
        st = kiln_fail(KILN_ERR_FORMAT, "%s: the object's name and its plan header disagree (header: %s)", name, want);
    if (st != KILN_OK) {
        free(bytes);
        return kiln_fail_prefix(st, "remote cache %s: ", kiln_remote_url(r));
    }
    st = kiln_write_file_atomic(path, bytes, size);
    if (!out) {
        free(bytes);
        return st;
    }
    if (st != KILN_OK) kiln_log(KILN_LOG_WARN, "cache: %s", kiln_last_error()); /* still usable from memory */
    return kiln_engine_from_plan_device(bytes, size, path, device, out);
}

static kiln_status build_engine(const char *model_path, const kiln_build_options *o, const kiln_identity *id,
                                kiln_engine **out)
{
    kiln_model *m;
    kiln_status st = kiln_model_load(model_path, &m);
    if (st != KILN_OK) return st;
    if (o->input_shapes && o->input_shapes[0]) {
        char *copy = kiln_xstrdup(o->input_shapes), *save = NULL;
        for (char *t = copy ? strtok_r(copy, ", ", &save) : NULL; t && st == KILN_OK; t = strtok_r(NULL, ", ", &save)) {
            char *colon = strrchr(t, ':');
            int rank = 0;
            int64_t dims[KILN_MAX_RANK];
            if (!colon) {
                st = kiln_fail(KILN_ERR_INVALID_ARGUMENT, "input shape '%s': expected NAME:DIMxDIM...", t);
                break;
            }
            *colon = '\0';
            if (!kiln_parse_dims(colon + 1, &rank, dims))
                st = kiln_fail(KILN_ERR_INVALID_ARGUMENT, "input shape for '%s': bad dims '%s'", t, colon + 1);
            if (st == KILN_OK) st = kiln_model_set_input_shape(m, t, rank, dims);
        }
        free(copy);
    }
    if (st == KILN_OK) st = kiln_engine_build(m, o, out);
    kiln_model_destroy(m);
    if (st == KILN_OK) kiln_engine_set_identity(*out, id);
    return st;
}

kiln_status kiln_build_or_load(const char *model_path, const kiln_build_options *o, kiln_engine **out,
                               kiln_engine_source *source)
{
    if (!out) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_build_or_load: out is NULL");
    *out = NULL;
    if (!model_path) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_build_or_load: model_path is NULL");
    kiln_build_options dflt;
    if (!o) {
        kiln_build_options_init(&dflt);
        o = &dflt;
    }
    kiln_engine_source src = KILN_SOURCE_BUILT;
    kiln_identity id;
    kiln_status st = kiln_identity_compute(model_path, o, &id, NULL);
    if (st != KILN_OK) return st;
    char name[512], path[PATH_MAX + 520];
    st = kiln_identity_file_name(&id, name, sizeof name);
    if (st != KILN_OK) return st;
    if (o->flags & KILN_BUILD_NO_CACHE) {
        st = build_engine(model_path, o, &id, out);
        if (st == KILN_OK && source) *source = KILN_SOURCE_BUILT;
        return st;
    }
    char *dir = NULL;
    st = kiln_cache_dir(o, &dir);
    if (st != KILN_OK) {
        /* no cache folder: still build, say why nothing is cached */
        kiln_log(KILN_LOG_WARN, "cache: %s; building without the cache", kiln_last_error());
        st = build_engine(model_path, o, &id, out);
        if (st == KILN_OK && source) *source = KILN_SOURCE_BUILT;
        return st;
    }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    sweep_stale(dir, NULL); /* what builds killed while writing left behind */
    bool force = o->flags & KILN_BUILD_FORCE_REBUILD;
    kiln_remote *remote = NULL;
    if (!(o->flags & KILN_BUILD_NO_REMOTE) && kiln_remote_open(&remote) != KILN_OK) remote = NULL;
    cache_lock lock;
    bool locked = false;
    kiln_engine *e = NULL;

    if (!force && (st = load_entry(path, o->device, &e)) == KILN_OK) {
        src = KILN_SOURCE_LOCAL_CACHE;
        goto done;
    }
    locked = lock_take(&lock, dir, name);
    /* whoever held the lock may have just built it */
    if (!force && (st = load_entry(path, o->device, &e)) == KILN_OK) {
        src = KILN_SOURCE_LOCAL_CACHE;
        goto done;
    }
    if (remote && !force) {
        st = fetch_entry(remote, path, name, o->device, &e);
        if (st == KILN_OK) {
            src = KILN_SOURCE_REMOTE;
            goto done;
        }
        if (st != KILN_ERR_NOT_FOUND) kiln_remote_warn(kiln_last_error());
    }
    kiln_log(KILN_LOG_INFO, "cache: building %s", name);
    st = build_engine(model_path, o, &id, &e);
    if (st != KILN_OK) goto done;
    src = KILN_SOURCE_BUILT;
    uint8_t *bytes = NULL;
    size_t size = 0;
    st = kiln_engine_to_plan(e, &bytes, &size);
    if (st != KILN_OK) goto done;
    if (kiln_write_file_atomic(path, bytes, size) != KILN_OK)
        kiln_log(KILN_LOG_WARN, "cache: %s; the engine was built but is not cached", kiln_last_error());
    if (locked) {
        lock_release(&lock);
        locked = false;
    }
    if (remote && kiln_remote_can_write(remote) && !(o->flags & KILN_BUILD_NO_UPLOAD)) {
        if (kiln_remote_put(remote, name, bytes, size) != KILN_OK) kiln_remote_warn(kiln_last_error());
    }
    free(bytes);
done:
    if (locked) lock_release(&lock);
    kiln_remote_close(remote);
    free(dir);
    if (st != KILN_OK) {
        kiln_engine_destroy(e);
        return st;
    }
    kiln_clear_error();
    *out = e;
    if (source) *source = src;
    return KILN_OK;
}

/* ---------------------------------------------------------------- managing */

/* A writer's temporary (".NAME.plan.tmp.PID.N", src/plan/container.c) whose
 * writer is gone: its process no longer exists on this machine and the file
 * has not changed for a minute (a process of another machine sharing the
 * folder keeps writing its file; a reused PID is caught by the age). A
 * build killed while writing its entry leaves one; nothing else would. */
static bool stale_temporary(const char *dir, const char *n, long *pid)
{
    const char *t = n[0] == '.' ? strstr(n, ".plan.tmp.") : NULL;
    if (!t) return false;
    char *end;
    errno = 0;
    long p = strtol(t + 10, &end, 10);
    if (errno || p <= 0 || *end != '.') return false;
    *pid = p;
    if (kill((pid_t)p, 0) == 0 || errno != ESRCH) return false; /* alive, or not ours to tell */
    char path[PATH_MAX + 256];
    snprintf(path, sizeof path, "%s/%s", dir, n);
    struct stat sb;
    return stat(path, &sb) == 0 && difftime(time(NULL), sb.st_mtime) > 60.0;
}

/* Removes the stale temporaries of dir, one line each into report (may be
 * NULL); returns how many. */
static int sweep_stale(const char *dir, kiln_sbuf *report)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        long pid;
        if (!stale_temporary(dir, de->d_name, &pid)) continue;
        char p[PATH_MAX + 256];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        bool gone = unlink(p) == 0;
        if (report)
            kiln_sbuf_printf(report, "STALE %s: a temporary of writer %ld, which is gone: %s\n", de->d_name, pid,
                             gone ? "removed" : strerror(errno));
        else if (gone)
            kiln_log(KILN_LOG_INFO, "cache: removed %s, a temporary of writer %ld, which is gone", p, pid);
        n += gone;
    }
    closedir(d);
    return n;
}

static bool is_entry(const char *n)
{
    size_t l = strlen(n);
    return n[0] != '.' && l > 5 && !strcmp(n + l - 5, ".plan");
}

kiln_status kiln_cache_list(const kiln_build_options *o, int remote, char **out)
{
    if (!out) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_cache_list: out is NULL");
    *out = NULL;
    kiln_sbuf b = {0};
    kiln_status st = KILN_OK;
    if (remote) {
        kiln_remote *r;
        st = kiln_remote_open(&r);
        if (st == KILN_ERR_NOT_FOUND)
            return kiln_fail(st, "no remote cache is configured: set KILN_REMOTE_URL (s3://bucket/prefix)");
        if (st != KILN_OK) return st;
        st = kiln_remote_list(r, &b);
        kiln_remote_close(r);
    } else {
        char *dir;
        st = kiln_cache_dir(o, &dir);
        if (st != KILN_OK) return st;
        DIR *d = opendir(dir);
        if (!d) {
            st = kiln_fail(KILN_ERR_IO, "%s: cannot list: %s", dir, strerror(errno));
        } else {
            struct dirent *de;
            while ((de = readdir(d))) {
                if (!is_entry(de->d_name)) continue;
                char p[PATH_MAX + 256];
                struct stat sb;
                snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
                if (stat(p, &sb) == 0) kiln_sbuf_printf(&b, "%s\t%lld\n", de->d_name, (long long)sb.st_size);
            }
            closedir(d);
            /* listed, then removed: a list is where a user looks */
            sweep_stale(dir, &b);
        }
        free(dir);
    }
    if (st != KILN_OK) {
        free(b.data);
        return st;
    }
    if (b.failed) {
        free(b.data);
        return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    *out = b.data ? b.data : kiln_xcalloc(1, 1);
    return *out ? KILN_OK : KILN_ERR_OUT_OF_MEMORY;
}

/* The cache folder, opened for listing; on failure nothing is left to free. */
static kiln_status open_cache_dir(const kiln_build_options *o, char **dir, DIR **d)
{
    kiln_status st = kiln_cache_dir(o, dir);
    if (st != KILN_OK) return st;
    *d = opendir(*dir);
    if (!*d) {
        st = kiln_fail(KILN_ERR_IO, "%s: cannot list: %s", *dir, strerror(errno));
        free(*dir);
        *dir = NULL;
    }
    return st;
}

kiln_status kiln_cache_remove(const kiln_build_options *o, const char *pattern, int *n_removed)
{
    if (n_removed) *n_removed = 0;
    char *dir;
    DIR *d;
    kiln_status st = open_cache_dir(o, &dir, &d);
    if (st != KILN_OK) return st;
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        bool entry = is_entry(nm);
        /* clearing everything also sweeps leftovers: moved-aside entries,
         * temporaries of dead writers */
        bool leftover = !pattern && (strstr(nm, ".plan.corrupt-") || (nm[0] == '.' && strstr(nm, ".plan.tmp.")));
        if (!(entry && (!pattern || fnmatch(pattern, nm, 0) == 0)) && !leftover) continue;
        char p[PATH_MAX + 256];
        snprintf(p, sizeof p, "%s/%s", dir, nm);
        if (unlink(p) != 0) {
            st = kiln_fail(KILN_ERR_IO, "%s: cannot remove: %s", p, strerror(errno));
            break;
        }
        n += entry;
    }
    closedir(d);
    free(dir);
    if (n_removed) *n_removed = n;
    return st;
}

kiln_status kiln_cache_verify(const kiln_build_options *o, char **report, int *n_bad)
{
    if (!report || !n_bad) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_cache_verify: NULL argument");
    *report = NULL;
    *n_bad = 0;
    char *dir;
    DIR *d;
    kiln_status st = open_cache_dir(o, &dir, &d);
    if (st != KILN_OK) return st;
    kiln_sbuf b = {0};
    sweep_stale(dir, &b);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!is_entry(de->d_name)) continue;
        char p[PATH_MAX + 256];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        uint8_t *bytes;
        size_t size;
        kiln_plan_info info;
        char want[512];
        st = kiln_read_file(p, &bytes, &size);
        if (st == KILN_OK) {
            st = kiln_plan_parse(bytes, size, de->d_name, &info);
            if (st == KILN_OK) st = kiln_identity_file_name(&info.id, want, sizeof want);
            if (st == KILN_OK && strcmp(want, de->d_name) != 0)
                st = kiln_fail(KILN_ERR_FORMAT, "%s: the file name and the plan header disagree (header: %s)", de->d_name, want);
            if (st == KILN_OK) st = kiln_plan_check_runnable(&info, de->d_name);
            free(bytes);
        }
        if (st == KILN_OK)
            kiln_sbuf_printf(&b, "ok %s\n", de->d_name);
        else {
            kiln_sbuf_printf(&b, "BAD %s: %s\n", de->d_name, kiln_last_error());
            (*n_bad)++;
        }
    }
    closedir(d);
    free(dir);
    kiln_clear_error();
    *report = b.data ? b.data : kiln_xcalloc(1, 1);
    return *report ? KILN_OK : KILN_ERR_OUT_OF_MEMORY;
}

kiln_status kiln_cache_push(const kiln_build_options *o, const char *pattern, int *n)
{
    if (n) *n = 0;
    kiln_remote *r;
    kiln_status st = kiln_remote_open(&r);
    if (st == KILN_ERR_NOT_FOUND) return kiln_fail(st, "no remote cache is configured: set KILN_REMOTE_URL (s3://bucket/prefix)");
    if (st != KILN_OK) return st;
    if (!kiln_remote_can_write(r)) {
        kiln_remote_close(r);
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "cache push needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
    }
    char *dir;
    st = kiln_cache_dir(o, &dir);
    DIR *d = st == KILN_OK ? opendir(dir) : NULL;
    if (st == KILN_OK && !d) st = kiln_fail(KILN_ERR_IO, "%s: cannot list: %s", dir, strerror(errno));
    struct dirent *de;
    while (d && st == KILN_OK && (de = readdir(d))) {
        if (!is_entry(de->d_name) || (pattern && fnmatch(pattern, de->d_name, 0) != 0)) continue;
        char p[PATH_MAX + 256];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        uint8_t *bytes;
        size_t size;
        kiln_plan_info info;
        st = kiln_read_file(p, &bytes, &size);
        if (st != KILN_OK) break;
        st = kiln_plan_parse(bytes, size, p, &info); /* never upload a corrupt entry */
        if (st == KILN_OK) st = kiln_remote_put(r, de->d_name, bytes, size);
        free(bytes);
        if (st == KILN_OK && n) (*n)++;
    }
    if (d) closedir(d);
    free(dir);
    kiln_remote_close(r);
    return st;
}

kiln_status kiln_cache_pull(const kiln_build_options *o, const char *pattern, int *n)
{
    if (n) *n = 0;
    kiln_remote *r;
    kiln_status st = kiln_remote_open(&r);
    if (st == KILN_ERR_NOT_FOUND) return kiln_fail(st, "no remote cache is configured: set KILN_REMOTE_URL (s3://bucket/prefix)");
    if (st != KILN_OK) return st;
    char *dir = NULL;
    kiln_sbuf list = {0};
    st = kiln_cache_dir(o, &dir);
    if (st == KILN_OK) st = kiln_remote_list(r, &list);
    for (char *line = list.data, *next; st == KILN_OK && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        char *tab = strchr(line, '\t');
        if (tab) *tab = '\0';
        if (!is_entry(line) || strchr(line, '/') || (pattern && fnmatch(pattern, line, 0) != 0)) continue;
        char p[PATH_MAX + 256];
        snprintf(p, sizeof p, "%s/%s", dir, line);
        st = fetch_entry(r, p, line, 0, NULL);
        if (st == KILN_OK && n) (*n)++;
    }
    free(list.data);
    free(dir);
    kiln_remote_close(r);
    return st;
}
