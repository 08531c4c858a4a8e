/* Parameter parsers of the quantization ops (see src/ir/params.h):
 * QuantizeLinear and DequantizeLinear into kiln_quant_params; QLinearConv
 * and ConvInteger have Conv's attributes and parse as Conv does, so that
 * kiln_window_conv (src/ir/shape_conv.c) gives all three one geometry.
 * DynamicQuantizeLinear, QLinearMatMul and MatMulInteger have none. */
#include "ir/ops.h"

#include <inttypes.h>

/* An attribute holding an ONNX TensorProto.DataType (0: absent). Whether
 * kiln has that dtype, and whether it fits the op, is the shape rule's. */
static kiln_status dtype_attr(const kiln_node *n, const char *name, int *out)
{
    int64_t t;
    kiln_status st = kiln_pa_int(n, name, 0, &t);
    if (st != KILN_OK) return st;
    if (t < 0 || t >= 32)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "%s attribute '%s' is %" PRId64 ", not an ONNX data type kiln knows",
                         n->op_type, name, t);
    *out = (int)t;
    return KILN_OK;
}

/* Both ops: axis from 13 (version 10 has none: a 1-D scale there is read
 * along axis 1, see src/ir/shape_quant.c), block_size from 21. */
static kiln_status quant_common(const kiln_node *n, kiln_quant_params *q)
{
    kiln_status st = kiln_pa_int(n, "axis", 1, &q->axis);
    if (st != KILN_OK || n->version < 13) {
        q->axis = 1;
        return st;
    }
    if (n->version < 21) return KILN_OK;
    if ((st = kiln_pa_int(n, "block_size", 0, &q->block_size)) != KILN_OK) return st;
    if (q->block_size < 0)
        return kiln_fail(KILN_ERR_FORMAT, "%s attribute 'block_size' is %" PRId64 ", must be >= 0 (0: not blocked)",
                         n->op_type, q->block_size);
    return KILN_OK;
}

kiln_status kiln_params_QuantizeLinear(const kiln_node *n, kiln_params *p)
{
    kiln_quant_params *q = &p->quant;
    q->saturate = true;
    kiln_status st = quant_common(n, q);
    if (st == KILN_OK && n->version >= 19) st = kiln_pa_bool(n, "saturate", true, &q->saturate);
    if (st == KILN_OK && n->version >= 21) st = dtype_attr(n, "output_dtype", &q->output_dtype);
    if (st == KILN_OK && n->version >= 23) st = dtype_attr(n, "precision", &q->precision);
    return st;
}

kiln_status kiln_params_DequantizeLinear(const kiln_node *n, kiln_params *p)
{
    kiln_quant_params *q = &p->quant;
    kiln_status st = quant_common(n, q);
    if (st == KILN_OK && n->version >= 23) st = dtype_attr(n, "output_dtype", &q->output_dtype);
    return st;
}

kiln_status kiln_params_QLinearConv(const kiln_node *n, kiln_params *p) { return kiln_params_Conv(n, p); }
kiln_status kiln_params_ConvInteger(const kiln_node *n, kiln_params *p) { return kiln_params_Conv(n, p); }
