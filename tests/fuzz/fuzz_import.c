/* libFuzzer target: any bytes given to the importer must give a model or a
 * clean error, never a crash, a leak or undefined behaviour. */
#include <stddef.h>
#include <stdint.h>

#include "kiln.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        kiln_set_log_level(KILN_LOG_ERROR);
        quiet = 1;
    }
    kiln_model *m = NULL;
    /* no base folder: external data is refused, the fuzzer cannot read files */
    if (kiln_model_load_memory(data, size, "fuzz.onnx", NULL, &m) == KILN_OK) {
        char *report = NULL;
        if (kiln_model_report(m, KILN_REPORT_JSON_VALUES, &report) == KILN_OK) kiln_free(report);
        kiln_model_destroy(m);
    }
    return 0;
}
