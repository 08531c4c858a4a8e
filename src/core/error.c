/* Thread-local error messages and the process-wide log sink. */
#include "core/core.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KILN_ERR_CAP 2048

static _Thread_local char err_msg[KILN_ERR_CAP];

const char *kiln_status_name(kiln_status s)
{
    switch (s) {
    case KILN_OK: return "KILN_OK";
    case KILN_ERR_INVALID_ARGUMENT: return "KILN_ERR_INVALID_ARGUMENT";
    case KILN_ERR_IO: return "KILN_ERR_IO";
    case KILN_ERR_FORMAT: return "KILN_ERR_FORMAT";
    case KILN_ERR_UNSUPPORTED: return "KILN_ERR_UNSUPPORTED";
    case KILN_ERR_SHAPE: return "KILN_ERR_SHAPE";
    case KILN_ERR_OUT_OF_MEMORY: return "KILN_ERR_OUT_OF_MEMORY";
    case KILN_ERR_DEVICE: return "KILN_ERR_DEVICE";
    case KILN_ERR_NOT_FOUND: return "KILN_ERR_NOT_FOUND";
    case KILN_ERR_VERSION: return "KILN_ERR_VERSION";
    case KILN_ERR_INTERNAL: return "KILN_ERR_INTERNAL";
    case KILN_ERR_CANCELLED: return "KILN_ERR_CANCELLED";
    }
    return "KILN_ERR_UNKNOWN";
}

const char *kiln_last_error(void) { return err_msg; }

void kiln_clear_error(void) { err_msg[0] = '\0'; }

kiln_status kiln_fail(kiln_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
    return s;
}

kiln_status kiln_fail_prefix(kiln_status s, const char *fmt, ...)
{
    char prefix[512], old[KILN_ERR_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err_msg, sizeof old);
    size_t n = strlen(prefix);
    if (n >= sizeof err_msg) n = sizeof err_msg - 1;
    memcpy(err_msg, prefix, n);
    size_t m = strlen(old);
    if (m > sizeof err_msg - 1 - n) m = sizeof err_msg - 1 - n;
    memcpy(err_msg + n, old, m);
    err_msg[n + m] = '\0';
    return s;
}

/* ---------------------------------------------------------------- logging */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static kiln_log_fn log_fn;
static void *log_user;
static int log_level = -1; /* -1: not read from the environment yet */

static int level_from_env(void)
{
    const char *e = getenv("KILN_LOG_LEVEL");
    if (!e) return KILN_LOG_WARN;
    if (!strcasecmp(e, "error")) return KILN_LOG_ERROR;
    if (!strcasecmp(e, "info")) return KILN_LOG_INFO;
    if (!strcasecmp(e, "debug")) return KILN_LOG_DEBUG;
    return KILN_LOG_WARN;
}

void kiln_set_log_callback(kiln_log_fn fn, void *user)
{
    pthread_mutex_lock(&log_lock);
    log_fn = fn;
    log_user = user;
    pthread_mutex_unlock(&log_lock);
}

void kiln_set_log_level(kiln_log_level level)
{
    pthread_mutex_lock(&log_lock);
    log_level = (int)level;
    pthread_mutex_unlock(&log_lock);
}

kiln_log_level kiln_get_log_level(void)
{
    pthread_mutex_lock(&log_lock);
    if (log_level < 0) log_level = level_from_env();
    int l = log_level;
    pthread_mutex_unlock(&log_lock);
    return (kiln_log_level)l;
}

void kiln_log(kiln_log_level level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warning", "info", "debug"};
    char msg[1024];
    pthread_mutex_lock(&log_lock);
    if (log_level < 0) log_level = level_from_env();
    int max = log_level;
    kiln_log_fn fn = log_fn;
    void *user = log_user;
    pthread_mutex_unlock(&log_lock);
    if ((int)level > max) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (fn)
        fn(level, msg, user);
    else
        fprintf(stderr, "kiln: %s: %s\n", names[level <= KILN_LOG_DEBUG ? level : KILN_LOG_DEBUG], msg);
}

uint32_t kiln_version(void)
{
    return KILN_VERSION_MAJOR * 10000u + KILN_VERSION_MINOR * 100u + KILN_VERSION_PATCH;
}

const char *kiln_version_string(void) { return KILN_VERSION_STRING; }
