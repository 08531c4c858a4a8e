/* The descriptors of cuDNN's graph (backend) API, created, set, read and
 * finalized with kiln's errors (conv_graph_desc.h): the plumbing below the
 * graph API conv path (conv_graph.c). */
#include <stdint.h>
#include <stdio.h>

#include <cudnn.h>

#include "cuda/conv_common.h"
#include "cuda/conv_graph_desc.h"
#include "cuda/kc.h"

typedef cudnnBackendDescriptor_t bdesc;

void kc_bd_destroy(bdesc d)
{
    if (d) cudnnBackendDestroyDescriptor(d);
}

kiln_status kc_bd_set(bdesc d, cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t n,
                      const void *v, const char *what)
{
    cudnnStatus_t s = cudnnBackendSetAttribute(d, name, type, n, v);
    if (s == CUDNN_STATUS_SUCCESS) return KILN_OK;
    char msg[128];
    snprintf(msg, sizeof msg, "cudnnBackendSetAttribute(%s)", what);
    return kc_dnn_check(s, msg);
}

kiln_status kc_bd_get(bdesc d, cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t want,
                      int64_t *got, void *v, const char *what)
{
    cudnnStatus_t s = cudnnBackendGetAttribute(d, name, type, want, got, v);
    if (s == CUDNN_STATUS_SUCCESS) return KILN_OK;
    char msg[128];
    snprintf(msg, sizeof msg, "cudnnBackendGetAttribute(%s)", what);
    return kc_dnn_check(s, msg);
}

kiln_status kc_bd_create(cudnnBackendDescriptorType_t type, bdesc *out, const char *what)
{
    *out = NULL;
    char msg[128];
    snprintf(msg, sizeof msg, "cudnnBackendCreateDescriptor(%s)", what);
    return kc_dnn_check(cudnnBackendCreateDescriptor(type, out), msg);
}

kiln_status kc_bd_finalize(bdesc d, const char *what)
{
    char msg[128];
    snprintf(msg, sizeof msg, "cudnnBackendFinalize(%s)", what);
    return kc_dnn_check(cudnnBackendFinalize(d), msg);
}

/* The graph and the plan name the cuDNN handle (its device). cuDNN 9's
 * headers mark these attributes deprecated, in favour of device properties;
 * the versions kiln runs on take them. Should a later one refuse them,
 * finalizing says what is missing, so a refusal here is not an error. */
void kc_bd_set_handle(bdesc d, cudnnBackendAttributeName_t name, kc_handles *h)
{
    cudnnHandle_t dnn = (cudnnHandle_t)h->cudnn;
    if (cudnnBackendSetAttribute(d, name, CUDNN_TYPE_HANDLE, 1, &dnn) != CUDNN_STATUS_SUCCESS)
        kiln_log(KILN_LOG_DEBUG, "cuDNN refuses a handle attribute (%d) of the graph API", (int)name);
}
