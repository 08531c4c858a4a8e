/* cuDNN graph (backend) API descriptors with kiln's errors
 * (conv_graph_desc.c), for the graph API conv path (conv_graph.c). Each
 * failure is KILN_ERR_DEVICE naming the call and `what`. */
#ifndef KILN_CUDA_CONV_GRAPH_DESC_H
#define KILN_CUDA_CONV_GRAPH_DESC_H

#include <cudnn.h>

#include "cuda/kc.h"

/* cudnnBackendDestroyDescriptor; NULL is nothing. */
void kc_bd_destroy(cudnnBackendDescriptor_t d);
kiln_status kc_bd_set(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
                      int64_t n, const void *v, const char *what);
kiln_status kc_bd_get(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
                      int64_t want, int64_t *got, void *v, const char *what);
/* the attribute's name in the message */
#define KC_BD_SET(d, name, type, n, v) kc_bd_set((d), (name), (type), (n), (v), #name)
#define KC_BD_GET(d, name, type, want, got, v) kc_bd_get((d), (name), (type), (want), (got), (v), #name)
kiln_status kc_bd_create(cudnnBackendDescriptorType_t type, cudnnBackendDescriptor_t *out, const char *what);
kiln_status kc_bd_finalize(cudnnBackendDescriptor_t d, const char *what);
/* Sets h's cuDNN handle as attribute `name` of d; a refusal is logged, not
 * an error (conv_graph_desc.c says why). */
void kc_bd_set_handle(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name, kc_handles *h);

#endif
