/* kiln cache ls [--remote] | rm PATTERN | clear | push [PATTERN] | pull [PATTERN] | verify | dir
 * [--cache-dir DIR] */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char CACHE_USAGE[] =
    "usage: kiln cache ls [--remote]         list entries (name, bytes)\n"
    "       kiln cache rm PATTERN            remove local entries matching a shell pattern\n"
    "       kiln cache clear                 remove every local entry\n"
    "       kiln cache push [PATTERN]        upload local entries to $KILN_REMOTE_URL\n"
    "       kiln cache pull [PATTERN]        download remote entries (checksums verified)\n"
    "       kiln cache verify                check every local entry's checksum\n"
    "       kiln cache dir                   print the cache folder\n"
    "  options: --cache-dir DIR\n";

int kiln_cmd_cache(int argc, char **argv)
{
    kiln_build_options o;
    kiln_build_options_init(&o);
    const char *sub = NULL, *arg = NULL;
    int remote = 0;
    if (kiln_cli_help(argc, argv, CACHE_USAGE)) return 0;
    kiln_cli_args p = KILN_CLI_ARGS("cache", CACHE_USAGE, argc, argv);
    for (; p.i < argc && !p.rc; p.i++) {
        const char *a = argv[p.i];
        if (kiln_cli_value(&p, "--cache-dir", &o.cache_dir))
            continue;
        if (kiln_cli_flag(&p, "--remote"))
            remote = 1;
        else if (a[0] == '-')
            kiln_cli_usage_error(&p, "unexpected argument '%s'", a);
        else if (!sub)
            sub = a;
        else if (!arg)
            arg = a;
        else
            kiln_cli_usage_error(&p, "unexpected argument '%s'", a);
    }
    if (p.rc) return p.rc;
    if (!sub) {
        fputs(CACHE_USAGE, stderr);
        return 2;
    }
    kiln_status st;
    int n = 0;
    if (!strcmp(sub, "ls") || !strcmp(sub, "list")) {
        char *text = NULL;
        st = kiln_cache_list(&o, remote, &text);
        if (st != KILN_OK) return kiln_cli_fail(st);
        fputs(text, stdout);
        kiln_free(text);
        return 0;
    }
    if (!strcmp(sub, "dir")) {
        char *dir = NULL;
        st = kiln_cache_dir(&o, &dir);
        if (st != KILN_OK) return kiln_cli_fail(st);
        printf("%s\n", dir);
        kiln_free(dir);
        return 0;
    }
    if (!strcmp(sub, "rm")) {
        if (!arg) {
            fprintf(stderr, "kiln cache rm: give a PATTERN (kiln cache clear removes everything)\n");
            return 2;
        }
        st = kiln_cache_remove(&o, arg, &n);
        if (st != KILN_OK) return kiln_cli_fail(st);
        printf("removed %d entr%s\n", n, n == 1 ? "y" : "ies");
        return 0;
    }
    if (!strcmp(sub, "clear")) {
        st = kiln_cache_remove(&o, NULL, &n);
        if (st != KILN_OK) return kiln_cli_fail(st);
        printf("removed %d entr%s\n", n, n == 1 ? "y" : "ies");
        return 0;
    }
    if (!strcmp(sub, "push") || !strcmp(sub, "pull")) {
        st = !strcmp(sub, "push") ? kiln_cache_push(&o, arg, &n) : kiln_cache_pull(&o, arg, &n);
        if (st != KILN_OK) return kiln_cli_fail(st);
        printf("%s %d entr%s\n", !strcmp(sub, "push") ? "uploaded" : "downloaded", n, n == 1 ? "y" : "ies");
        return 0;
    }
    if (!strcmp(sub, "verify")) {
        char *report = NULL;
        st = kiln_cache_verify(&o, &report, &n);
        if (st != KILN_OK) return kiln_cli_fail(st);
        fputs(report, stdout);
        kiln_free(report);
        if (n) fprintf(stderr, "kiln: %d bad entr%s\n", n, n == 1 ? "y" : "ies");
        return n ? 1 : 0;
    }
    fprintf(stderr, "kiln cache: unknown subcommand '%s'\n%s", sub, CACHE_USAGE);
    return 2;
}
