/* The remote engine cache on an S3-compatible store, through libcurl and
 * its SigV4 signing (CURLOPT_AWS_SIGV4). libcurl is loaded with dlopen only
 * when a remote is configured, so kiln runs where it is absent.
 *
 *   KILN_REMOTE_URL   s3://bucket/prefix
 *   KILN_S3_ENDPOINT  http(s)://host:port (default https://s3.$AWS_REGION.amazonaws.com)
 *   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION (us-east-1)
 *   KILN_S3_TIMEOUT   seconds for one request (300); KILN_S3_RETRIES (3)
 *   KILN_S3_MAX_SPEED bytes per second per transfer (0: unlimited)
 *
 * Objects are addressed path-style: {endpoint}/{bucket}/{prefix}/{name}. */
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"
#include "core/sha256.h"

/* the libcurl functions kiln uses, resolved at run time */
static struct {
    void *lib;
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_perform)(CURL *);
    void (*easy_cleanup)(CURL *);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    const char *(*easy_strerror)(CURLcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    char *error; /* why loading failed, NULL if it worked */
} curl;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_load(void)
{
    static char why[512];
    const char *names[] = {"libcurl.so.4", "libcurl-gnutls.so.4", "libcurl.so"};
    for (size_t i = 0; i < sizeof names / sizeof *names && !curl.lib; i++) curl.lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!curl.lib) {
        snprintf(why, sizeof why, "libcurl is not installed (dlopen libcurl.so.4: %s); the remote cache needs it", dlerror());
        curl.error = why;
        return;
    }
#define SYM(field, name)                                                                                              \
    do {                                                                                                              \
        *(void **)&curl.field = dlsym(curl.lib, name);                                                               \
        if (!curl.field) {                                                                                            \
            snprintf(why, sizeof why, "libcurl lacks %s", name);                                                     \
            curl.error = why;                                                                                         \
            return;                                                                                                   \
        }                                                                                                             \
    } while (0)
    SYM(global_init, "curl_global_init");
    SYM(easy_init, "curl_easy_init");
    SYM(easy_setopt, "curl_easy_setopt");
    SYM(easy_perform, "curl_easy_perform");
    SYM(easy_cleanup, "curl_easy_cleanup");
    SYM(easy_getinfo, "curl_easy_getinfo");
    SYM(easy_strerror, "curl_easy_strerror");
    SYM(slist_append, "curl_slist_append");
    SYM(slist_free_all, "curl_slist_free_all");
#undef SYM
    if (curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(why, sizeof why, "curl_global_init failed");
        curl.error = why;
    }
}

struct kiln_remote {
    char url[1024];      /* s3://bucket/prefix, for messages */
    char endpoint[512];
    char bucket[256];
    char prefix[512];    /* no leading or trailing '/' */
    char region[64];
    char userpwd[512];   /* key:secret, empty without credentials */
    char token[2048];
    char sigv4[128];
    long timeout_s;
    int retries;
    long long max_speed;
};

void kiln_remote_warn(const char *what)
{
    static atomic_flag warned = ATOMIC_FLAG_INIT;
    kiln_log(atomic_flag_test_and_set(&warned) ? KILN_LOG_INFO : KILN_LOG_WARN,
             "%s (continuing without the remote cache)", what);
}

kiln_status kiln_remote_open(kiln_remote **out)
{
    *out = NULL;
    const char *url = getenv("KILN_REMOTE_URL");
    if (!url || !url[0]) return KILN_ERR_NOT_FOUND;
    if (strncmp(url, "s3://", 5) != 0)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "KILN_REMOTE_URL '%s': expected s3://bucket/prefix", url);
    kiln_remote *r = kiln_xcalloc(1, sizeof *r);
    if (!r) return KILN_ERR_OUT_OF_MEMORY;
    snprintf(r->url, sizeof r->url, "%s", url);
    const char *b = url + 5, *slash = strchr(b, '/');
    size_t bl = slash ? (size_t)(slash - b) : strlen(b);
    if (!bl || bl >= sizeof r->bucket) {
        free(r);
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "KILN_REMOTE_URL '%s': no bucket name", url);
    }
    memcpy(r->bucket, b, bl);
    if (slash) {
        snprintf(r->prefix, sizeof r->prefix, "%s", slash + 1);
        size_t l = strlen(r->prefix);
        while (l && r->prefix[l - 1] == '/') r->prefix[--l] = '\0';
    }
    const char *region = getenv("AWS_REGION");
    if (!region || !region[0]) region = getenv("AWS_DEFAULT_REGION");
    snprintf(r->region, sizeof r->region, "%s", region && region[0] ? region : "us-east-1");
    const char *ep = getenv("KILN_S3_ENDPOINT");
    if (ep && ep[0])
        snprintf(r->endpoint, sizeof r->endpoint, "%s", ep);
    else
        snprintf(r->endpoint, sizeof r->endpoint, "https://s3.%s.amazonaws.com", r->region);
    size_t el = strlen(r->endpoint);
    while (el && r->endpoint[el - 1] == '/') r->endpoint[--el] = '\0';
    const char *key = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY"), *tok = getenv("AWS_SESSION_TOKEN");
    if (key && key[0] && secret && secret[0]) snprintf(r->userpwd, sizeof r->userpwd, "%s:%s", key, secret);
    if (tok && tok[0]) snprintf(r->token, sizeof r->token, "x-amz-security-token: %s", tok);
    snprintf(r->sigv4, sizeof r->sigv4, "aws:amz:%s:s3", r->region);
    const char *t = getenv("KILN_S3_TIMEOUT"), *n = getenv("KILN_S3_RETRIES");
    r->timeout_s = t && atol(t) > 0 ? atol(t) : 300;
    r->retries = n && atoi(n) >= 0 ? atoi(n) : 3;
    const char *ms = getenv("KILN_S3_MAX_SPEED");
    r->max_speed = ms ? atoll(ms) : 0;
    pthread_once(&curl_once, curl_load);
    if (curl.error) {
        kiln_status st = kiln_fail(KILN_ERR_UNSUPPORTED, "remote cache %s: %s", r->url, curl.error);
        free(r);
        return st;
    }
    *out = r;
    return KILN_OK;
}

void kiln_remote_close(kiln_remote *r) { free(r); }
bool kiln_remote_can_write(const kiln_remote *r) { return r->userpwd[0] != '\0'; }
const char *kiln_remote_url(const kiln_remote *r) { return r->url; }

/* ------------------------------------------------------------- transfers */

typedef struct body {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} body;

static size_t on_write(char *data, size_t size, size_t n, void *user)
{
    body *b = user;
    size_t add = size * n;
    if (b->len + add > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1 << 16;
        while (cap < b->len + add) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return 0;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, add);
    b->len += add;
    return add;
}

typedef struct upload {
    const uint8_t *p;
    size_t len, off;
} upload;

static size_t on_read(char *dst, size_t size, size_t n, void *user)
{
    upload *u = user;
    size_t take = size * n < u->len - u->off ? size * n : u->len - u->off;
    memcpy(dst, u->p + u->off, take);
    u->off += take;
    return take;
}

/* The <Code> of an S3 error document ("" when there is none). */
static void s3_code(const body *b, char *code, size_t cap)
{
    code[0] = '\0';
    if (!b->p || !b->len) return;
    const char *s = memmem(b->p, b->len, "<Code>", 6);
    if (!s) return;
    s += 6;
    const char *e = memmem(s, b->len - (size_t)(s - (const char *)b->p), "</Code>", 7);
    if (!e || (size_t)(e - s) >= cap) return;
    memcpy(code, s, (size_t)(e - s));
    code[e - s] = '\0';
}

/* One request with retries. method "GET"/"PUT"; query may be NULL; for PUT,
 * `up` is the payload. On KILN_OK *resp holds the body (caller frees p). */
static kiln_status request(kiln_remote *r, const char *method, const char *key, const char *query, const void *up,
                           size_t up_len, body *resp)
{
    char url[4096];
    const char *what = key ? key : "(list)";
    snprintf(url, sizeof url, "%s/%s%s%s%s%s", r->endpoint, r->bucket, key ? "/" : "", key ? key : "",
             query ? "?" : "", query ? query : "");
    uint8_t d[32];
    char hex[65], sha_hdr[128];
    kiln_sha256(up ? up : "", up ? up_len : 0, d);
    kiln_hex(d, 32, hex);
    snprintf(sha_hdr, sizeof sha_hdr, "x-amz-content-sha256: %s", hex);
    kiln_status st = KILN_OK;
    char first[1024] = ""; /* the first failure, when a retry fails differently */
    for (int attempt = 0;; attempt++) {
        memset(resp, 0, sizeof *resp);
        CURL *h = curl.easy_init();
        if (!h) return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "curl_easy_init failed");
        struct curl_slist *hdrs = NULL;
        if (r->userpwd[0]) {
            hdrs = curl.slist_append(hdrs, sha_hdr);
            if (r->token[0]) hdrs = curl.slist_append(hdrs, r->token);
        }
        upload u = {up, up_len, 0};
        char errbuf[CURL_ERROR_SIZE] = {0};
        curl.easy_setopt(h, CURLOPT_URL, url);
        curl.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl.easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        curl.easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
        curl.easy_setopt(h, CURLOPT_TIMEOUT, r->timeout_s);
        curl.easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L); /* a stalled transfer is cut after 30 s */
        curl.easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);
        if (r->max_speed > 0) {
            curl.easy_setopt(h, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)r->max_speed);
            curl.easy_setopt(h, CURLOPT_MAX_SEND_SPEED_LARGE, (curl_off_t)r->max_speed);
        }
        curl.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
        curl.easy_setopt(h, CURLOPT_WRITEDATA, resp);
        if (hdrs) curl.easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        if (r->userpwd[0]) {
            curl.easy_setopt(h, CURLOPT_AWS_SIGV4, r->sigv4);
            curl.easy_setopt(h, CURLOPT_USERPWD, r->userpwd);
        }
        if (!strcmp(method, "PUT")) {
            curl.easy_setopt(h, CURLOPT_UPLOAD, 1L);
            curl.easy_setopt(h, CURLOPT_READFUNCTION, on_read);
            curl.easy_setopt(h, CURLOPT_READDATA, &u);
            curl.easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)up_len);
        }
        CURLcode rc = curl.easy_perform(h);
        long code = 0;
        curl.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        curl.easy_cleanup(h);
        curl.slist_free_all(hdrs);
        bool retry = false, bucket_missing = false;
        char s3[128];
        s3_code(resp, s3, sizeof s3);
        if (resp->oom) {
            st = kiln_fail(KILN_ERR_OUT_OF_MEMORY, "remote cache %s: out of host memory receiving %s", r->url, what);
        } else if (rc != CURLE_OK) {
            retry = true;
            if (rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING)
                st = kiln_fail(KILN_ERR_IO, "remote cache %s: %s %s: transfer cut short: %s", r->url, method, what,
                               errbuf[0] ? errbuf : curl.easy_strerror(rc));
            else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_OPERATION_TIMEDOUT)
                st = kiln_fail(KILN_ERR_IO, "remote cache %s: cannot reach the endpoint %s: %s", r->url, r->endpoint,
                               errbuf[0] ? errbuf : curl.easy_strerror(rc));
            else
                st = kiln_fail(KILN_ERR_IO, "remote cache %s: %s %s failed: %s", r->url, method, what,
                               errbuf[0] ? errbuf : curl.easy_strerror(rc));
        } else if (code >= 200 && code < 300) {
            st = KILN_OK;
        } else if (code == 404 && !strcmp(s3, "NoSuchBucket")) {
            st = kiln_fail(KILN_ERR_NOT_FOUND, "remote cache %s: the bucket '%s' does not exist at %s", r->url, r->bucket,
                           r->endpoint);
            bucket_missing = true; /* not a missing object: a configuration error */
        } else if (code == 404) {
            st = kiln_fail(KILN_ERR_NOT_FOUND, "remote cache %s: no object %s", r->url, what);
        } else if (code == 403 || code == 401) {
            const char *hint = !strcmp(s3, "SignatureDoesNotMatch") ? "the secret key is wrong (check AWS_SECRET_ACCESS_KEY)"
                               : !strcmp(s3, "InvalidAccessKeyId") ? "the access key is unknown (check AWS_ACCESS_KEY_ID)"
                               : !r->userpwd[0] ? "no credentials are set (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
                                                : "access denied for these credentials";
            st = kiln_fail(KILN_ERR_IO, "remote cache %s: %s %s refused (HTTP %ld%s%s): %s", r->url, method, what,
                           code, s3[0] ? " " : "", s3, hint);
        } else {
            retry = code >= 500 || code == 429;
            st = kiln_fail(KILN_ERR_IO, "remote cache %s: %s %s: HTTP %ld%s%s", r->url, method, what, code,
                           s3[0] ? " " : "", s3);
        }
        if (st == KILN_OK) return st;
        free(resp->p);
        resp->p = NULL;
        if (bucket_missing) {
            return KILN_ERR_IO; /* keep the message, but not "object absent" */
        }
        if (!retry || attempt >= r->retries) {
            if (attempt > 0 && first[0] && !strstr(kiln_last_error(), first)) {
                char last[1024];
                snprintf(last, sizeof last, "%s", kiln_last_error());
                return kiln_fail(st, "%s (after %d attempts; the first: %s)", last, attempt + 1, first);
            }
            return st;
        }
        if (!first[0]) {
            const char *m = kiln_last_error(), *colon = strstr(m, ": "); /* drop the "remote cache URL" prefix */
            snprintf(first, sizeof first, "%s", colon ? colon + 2 : m);
        }
        /* backoff: 0.2 s, 0.4 s, 0.8 s, ... */
        long ms = 200L << attempt;
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        kiln_log(KILN_LOG_DEBUG, "remote cache: retrying in %ld ms: %s", ms, kiln_last_error());
        nanosleep(&ts, NULL);
    }
}

static void object_key(const kiln_remote *r, const char *name, char *key, size_t cap)
{
    snprintf(key, cap, "%s%s%s", r->prefix, r->prefix[0] ? "/" : "", name);
}

kiln_status kiln_remote_get(kiln_remote *r, const char *name, uint8_t **out, size_t *size)
{
    *out = NULL;
    *size = 0;
    char key[1024];
    object_key(r, name, key, sizeof key);
    body b;
    kiln_status st = request(r, "GET", key, NULL, NULL, 0, &b);
    if (st != KILN_OK) return st;
    *out = b.p ? b.p : kiln_xcalloc(1, 1);
    *size = b.len;
    return *out ? KILN_OK : KILN_ERR_OUT_OF_MEMORY;
}

kiln_status kiln_remote_put(kiln_remote *r, const char *name, const void *bytes, size_t size)
{
    char key[1024];
    object_key(r, name, key, sizeof key);
    body b;
    kiln_status st = request(r, "PUT", key, NULL, bytes, size, &b);
    free(b.p);
    if (st == KILN_OK) kiln_log(KILN_LOG_INFO, "remote cache: uploaded %s to %s", name, r->url);
    return st;
}

static const char *xml_field(const char *s, const char *end, const char *tag, char *out, size_t cap)
{
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *a = memmem(s, (size_t)(end - s), open, strlen(open));
    if (!a) return NULL;
    a += strlen(open);
    const char *b = memmem(a, (size_t)(end - a), close, strlen(close));
    if (!b || (size_t)(b - a) >= cap) return NULL;
    memcpy(out, a, (size_t)(b - a));
    out[b - a] = '\0';
    return b + strlen(close);
}

kiln_status kiln_remote_list(kiln_remote *r, kiln_sbuf *out)
{
    /* keys are [A-Za-z0-9._-/]: the query needs no escaping. Pages continue
     * with start-after (a key), not an opaque continuation token that would. */
    char after[1024] = "";
    for (int page = 0; page < 100000; page++) {
        char query[2600];
        snprintf(query, sizeof query, "list-type=2&prefix=%s%s%s%s", r->prefix, r->prefix[0] ? "/" : "",
                 after[0] ? "&start-after=" : "", after);
        body b;
        kiln_status st = request(r, "GET", NULL, query, NULL, 0, &b);
        if (st == KILN_ERR_NOT_FOUND) st = KILN_ERR_IO;
        if (st != KILN_OK) return st;
        const char *p = (const char *)b.p, *end = p + b.len;
        for (const char *c = p; c && c < end;) {
            const char *obj = memmem(c, (size_t)(end - c), "<Contents>", 10);
            if (!obj) break;
            const char *oend = memmem(obj, (size_t)(end - obj), "</Contents>", 11);
            if (!oend) break;
            char key[1024], sz[64] = "0";
            if (xml_field(obj, oend, "Key", key, sizeof key)) {
                xml_field(obj, oend, "Size", sz, sizeof sz);
                const char *nm = strrchr(key, '/') ? strrchr(key, '/') + 1 : key;
                kiln_sbuf_printf(out, "%s\t%s\n", nm, sz);
                snprintf(after, sizeof after, "%s", key);
            }
            c = oend + 11;
        }
        char trunc[16] = "false";
        if (p) xml_field(p, end, "IsTruncated", trunc, sizeof trunc);
        free(b.p);
        if (strcmp(trunc, "true") != 0 || !after[0]) break;
    }
    return KILN_OK;
}
