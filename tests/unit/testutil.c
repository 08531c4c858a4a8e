#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

char *kt_path(const char *rel)
{
    const char *root = getenv("KILN_TEST_DATA");
    char *p = malloc(4096);
    snprintf(p, 4096, "%s/%s", root ? root : "tests", rel);
    return p;
}

char *kt_model(const char *name)
{
    const char *root = getenv("KILN_TEST_GEN");
    char *p = malloc(4096);
    snprintf(p, 4096, "%s/%s", root ? root : "build/testmodels", name);
    if (access(p, R_OK) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

void kt_fill_uniform(float *x, size_t n, unsigned seed, float lo, float hi)
{
    uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = lo + (hi - lo) * (float)((s >> 40) & 0xffffff) / 16777216.0f;
    }
}
