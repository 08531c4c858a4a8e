/* kiln — command line: inspect, run, build, bench, compare, convert and cache. */
#include "kiln.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kiln <command> [options]        kiln <command> --help: the command's options\n"
            "\n"
            "commands:\n"
            "  inspect MODEL.onnx|MODEL.plan [--json] [--values] [--shapes NAME:DxDx..]\n"
            "                                      summarize a model (of a plan: what its header records)\n"
            "  run MODEL.onnx [--backend cuda|ref] [--precision fp32|tf32|fp16|bf16] [--input NAME=FILE.npy ...]\n"
            "      [--seed N] [--shapes NAME:DxD..] [--output-dir DIR] [--quiet]\n"
            "                                      run a model once, print and save its outputs\n"
            "  run MODEL.plan [--input NAME=FILE.npy ...] [--seed N] [--output-dir DIR] [--quiet]\n"
            "                                      run a saved plan (on the backend it was built for)\n"
            "  build MODEL.onnx [--backend cuda|ref] [--precision P | --fp32 | --tf32 | --fp16 | --bf16]\n"
            "      [-o OUT.plan] [--cache] [--force-rebuild] [--shapes NAME:DxD..]\n"
            "      [--minShapes|--optShapes|--maxShapes NAME:DxD..] [--report] [--model-version V] ...\n"
            "                                      build an engine and save it as a plan (default MODEL.plan)\n"
            "  bench MODEL.onnx|MODEL.plan [--backend cuda|ref] [--devices N,N..] [--threads N] [--streams N]\n"
            "      [--max-batch N --batch-delay-us N] [--iterations N] [--warmup N] [--verify] [--pinned]\n"
            "      [--json FILE] ...                latency and throughput, many threads, one or more GPUs\n"
            "  compare MODEL.onnx [--a cuda:fp16] [--b ref|cuda:fp32|onnxruntime] [--bisect] [--save DIR] ...\n"
            "                                      run two backends/precisions on the same inputs, per-output error;\n"
            "                                      --bisect: the first layer whose error exceeds the limit\n"
            "  convert MODEL.pt|SAVED_MODEL_DIR -o MODEL.onnx [--opset N] [--dynamic-batch]\n"
            "                                      export a PyTorch or TensorFlow model to ONNX (needs torch / tf2onnx)\n"
            "  cache ls [--remote] | rm PATTERN | clear | push | pull | verify | dir\n"
            "                                      manage the engine cache\n"
            "  version                             print kiln's version\n"
            "\n"
            "backends: cuda (the default) is kiln's engine for an NVIDIA GPU; ref is the plain-C reference\n"
            "executor on the CPU, used only when named: --backend ref on a machine without a GPU.\n"
            "\n"
            "exit status: 0 ok, 1 the model or data is at fault, 2 usage error\n");
}

static const char VERSION_USAGE[] = "usage: kiln version     print kiln's version\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        if (argc > 2 && strcmp(cmd, "help") == 0 && argv[2][0] != '-') {
            /* kiln help COMMAND: that command's usage */
            static char help_flag[] = "--help";
            char *help[] = {argv[0], argv[2], help_flag, NULL};
            return main(3, help);
        }
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        if (kiln_cli_help(argc - 2, argv + 2, VERSION_USAGE)) return 0;
        if (argc > 2) {
            fprintf(stderr, "kiln version: unexpected argument '%s'\n%s", argv[2], VERSION_USAGE);
            return 2;
        }
        printf("kiln %s\n", kiln_version_string());
        return 0;
    }
    if (!strcmp(cmd, "inspect")) return kiln_cmd_inspect(argc - 2, argv + 2);
    if (!strcmp(cmd, "run")) return kiln_cmd_run(argc - 2, argv + 2);
    if (!strcmp(cmd, "build")) return kiln_cmd_build(argc - 2, argv + 2);
    if (!strcmp(cmd, "cache")) return kiln_cmd_cache(argc - 2, argv + 2);
    if (!strcmp(cmd, "bench")) return kiln_cmd_bench(argc - 2, argv + 2);
    if (!strcmp(cmd, "compare")) return kiln_cmd_compare(argc - 2, argv + 2);
    if (!strcmp(cmd, "convert")) return kiln_cmd_convert(argc - 2, argv + 2);
    fprintf(stderr, "kiln: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
