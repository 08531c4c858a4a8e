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

kiln_engine *kt_build_ref(const char *path, kiln_model **model)
{
    if (!path) fail_msg("test model missing: run tests/models/gen.py (the gen fixture)");
    kiln_model *m = NULL;
    assert_kiln_ok(kiln_model_load(path, &m));
    kiln_build_options o;
    kiln_build_options_init(&o);
    o.backend = KILN_BACKEND_REF;
    kiln_engine *e = NULL;
    assert_kiln_ok(kiln_engine_build(m, &o, &e));
    if (model)
        *model = m;
    else
        kiln_model_destroy(m);
    return e;
}
