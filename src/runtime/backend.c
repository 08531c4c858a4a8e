/* What kiln asks a backend about its devices and its identity, with the
 * host defaults of the members a backend leaves NULL (backend.h): one
 * device, 0; architecture "cpu"; no libraries; fp32 in the model's own
 * dtypes. */
#include "runtime/backend.h"

kiln_status kiln_backend_check_device(const kiln_backend_iface *be, int device)
{
    if (be->check_device) return be->check_device(device);
    if (device != 0)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "device %d: the %s backend runs on the CPU; device must be 0",
                         device, be->name);
    return KILN_OK;
}

const char *kiln_backend_arch_of(kiln_backend b, int device)
{
    const kiln_backend_iface *be = kiln_backend_find(b);
    if (!be) return NULL;
    return be->arch ? be->arch(device) : "cpu";
}

void kiln_backend_lib_versions(const kiln_backend_iface *be, char *buf, size_t cap)
{
    if (cap) buf[0] = '\0';
    if (be->lib_versions && cap) be->lib_versions(buf, cap);
}

kiln_precision kiln_backend_default_precision(const kiln_backend_iface *be)
{
    return be->default_precision != KILN_PRECISION_DEFAULT ? be->default_precision : KILN_PRECISION_FP32;
}

bool kiln_backend_builds(const kiln_backend_iface *be, kiln_precision p)
{
    if (p == KILN_PRECISION_DEFAULT) return true;
    unsigned set = be->precisions ? be->precisions : KILN_PRECISION_BIT(KILN_PRECISION_FP32);
    return (unsigned)p < 32 && (set & KILN_PRECISION_BIT(p));
}
