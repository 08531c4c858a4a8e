/* kiln — command line: inspect, run, build, cache and bench. */
#include "kiln.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kiln <command> [options]\n"
            "\n"
            "commands:\n"
            "  inspect MODEL.onnx [--json] [--shapes NAME:DxDx..]  summarize a model\n"
            "  run MODEL.onnx --backend ref [--input NAME=FILE.npy ...] [--seed N]\n"
            "      [--shapes NAME:DxD..] [--output-dir DIR]       run a model, print and save outputs\n"
            "  run MODEL.plan [--input NAME=FILE.npy ...]          run a saved plan (backend from the plan)\n"
            "  build MODEL.onnx --backend ref [--cache] [--force-rebuild] [-o OUT.plan]\n"
            "      [--shapes NAME:DxD..] [--model-version V]      build an engine (from the cache if there)\n"
            "  bench MODEL.onnx|MODEL.plan --backend ref [--threads N] [--streams N]\n"
            "      [--max-batch N --batch-delay-us N] [--iterations N] [--warmup N] [--verify]\n"
            "      [--shapes NAME:DxD..] [--json FILE]              latency and throughput, many threads\n"
            "  cache ls [--remote] | rm PATTERN | clear | push | pull | verify\n"
            "                                                      manage the engine cache\n"
            "  version                                             print kiln's version\n"
            "\n"
            "exit status: 0 ok, 1 the model or data is at fault, 2 usage error\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("kiln %s\n", kiln_version_string());
        return 0;
    }
    if (!strcmp(cmd, "inspect")) return kiln_cmd_inspect(argc - 2, argv + 2);
    if (!strcmp(cmd, "run")) return kiln_cmd_run(argc - 2, argv + 2);
    if (!strcmp(cmd, "build")) return kiln_cmd_build(argc - 2, argv + 2);
    if (!strcmp(cmd, "cache")) return kiln_cmd_cache(argc - 2, argv + 2);
    if (!strcmp(cmd, "bench")) return kiln_cmd_bench(argc - 2, argv + 2);
    fprintf(stderr, "kiln: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
