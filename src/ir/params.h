/* Typed op parameters: each op's attributes, parsed once at import by its
 * kiln_params_<Op> (src/ir/params_*.c, named in the op table's params
 * column) into a struct of this union, kept in the node (kiln_node.params).
 * Shape rules, ref kernels, the builder and the cuda kernels read these
 * structs; none of them reads an ONNX attribute again for such an op. */
#ifndef KILN_IR_PARAMS_H
#define KILN_IR_PARAMS_H

#include <stdbool.h>
#include <stdint.h>

typedef union kiln_params {
    int64_t none; /* ops without typed parameters */
} kiln_params;

#endif
