/* Parameter parsers of the index family: Einsum, GatherND, ScatterND,
 * Trilu, DepthToSpace, SpaceToDepth, OneHot (see src/ir/params.h), and the
 * split of an Einsum equation into its terms (kiln_einsum_terms,
 * src/ir/shape_index.h), which the parser runs once to check the equation
 * and kiln_einsum_plan again to resolve it against the inputs' shapes. */
#include "ir/shape_index.h"
#include "ir/ops.h"

#include <inttypes.h>
#include <string.h>

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---------------------------------------------------------------- Einsum */

#define EQ_MAX 512

static kiln_status parse_term(const char *eq, const char *s, int len, kiln_einsum_term *t)
{
    t->n = 0;
    t->ell = -1;
    for (int i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (i + 2 >= len || s[i + 1] != '.' || s[i + 2] != '.' || t->ell >= 0) goto bad_dots;
            t->ell = t->n;
            i += 2;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            if (t->n >= KILN_EINSUM_TERM_MAX)
                return kiln_fail(KILN_ERR_UNSUPPORTED, "equation '%s' has a term of more than %d letters", eq,
                                 KILN_EINSUM_TERM_MAX);
            t->lab[t->n++] = c;
        } else {
            return kiln_fail(KILN_ERR_SHAPE, "equation '%s' has character '%c' (letters, '...', ',' and '->' only)", eq, c);
        }
    }
    return KILN_OK;
bad_dots:
    return kiln_fail(KILN_ERR_SHAPE, "equation '%s' has a '.' outside one '...' per term", eq);
}

kiln_status kiln_einsum_terms(const char *raw, int n_in, kiln_einsum_term *in, kiln_einsum_term *out,
                              bool *explicit_out)
{
    if (!raw) return kiln_fail(KILN_ERR_SHAPE, "Einsum needs the string attribute 'equation'");
    if (n_in > KILN_EINSUM_MAX_IN)
        return kiln_fail(KILN_ERR_UNSUPPORTED, "Einsum of %d operands (kiln takes at most %d)", n_in, KILN_EINSUM_MAX_IN);
    char eq[EQ_MAX];
    int len = 0;
    for (const char *p = raw; *p; p++) {
        if (*p == ' ' || *p == '\t') continue;
        if (len >= EQ_MAX - 1) return kiln_fail(KILN_ERR_UNSUPPORTED, "equation of more than %d characters", EQ_MAX - 1);
        eq[len++] = *p;
    }
    eq[len] = 0;
    const char *arrow = strstr(eq, "->");
    *explicit_out = arrow != NULL;
    int lhs_len = arrow ? (int)(arrow - eq) : len;
    if (arrow && strstr(arrow + 2, "->")) return kiln_fail(KILN_ERR_SHAPE, "equation '%s' has two '->'", raw);
    int k = 0, start = 0;
    for (int i = 0; i <= lhs_len; i++) {
        if (i < lhs_len && eq[i] != ',') continue;
        if (k >= n_in)
            return kiln_fail(KILN_ERR_SHAPE, "equation '%s' has more terms than the node's %d inputs", raw, n_in);
        kiln_status st = parse_term(raw, eq + start, i - start, &in[k++]);
        if (st != KILN_OK) return st;
        start = i + 1;
    }
    if (k != n_in) return kiln_fail(KILN_ERR_SHAPE, "equation '%s' has %d terms for %d inputs", raw, k, n_in);
    if (arrow) {
        kiln_status st = parse_term(raw, arrow + 2, len - lhs_len - 2, out);
        if (st != KILN_OK) return st;
        for (int i = 0; i < out->n; i++)
            for (int j = 0; j < i; j++)
                if (out->lab[i] == out->lab[j])
                    return kiln_fail(KILN_ERR_SHAPE, "equation '%s' repeats '%c' in the output", raw, out->lab[i]);
    } else {
        /* implicit: '...' (when any term has it), then the letters that occur once, ASCII order */
        int count[128] = {0};
        bool ell = false;
        for (int i = 0; i < n_in; i++) {
            ell |= in[i].ell >= 0;
            for (int j = 0; j < in[i].n; j++) count[(int)in[i].lab[j]]++;
        }
        out->n = 0;
        out->ell = ell ? 0 : -1;
        for (int c = 0; c < 128; c++)
            if (count[c] == 1 && out->n < KILN_EINSUM_TERM_MAX) out->lab[out->n++] = (char)c;
    }
    return KILN_OK;
}

/* The equation is required; its syntax and its terms (one per input) are
 * checked here, once, naming the attribute. */
kiln_status kiln_params_Einsum(const kiln_node *n, kiln_params *p)
{
    const char *eq;
    kiln_status st = kiln_pa_string(n, "equation", NULL, &eq);
    if (st != KILN_OK) return st;
    if (!eq) return kiln_fail(KILN_ERR_FORMAT, "Einsum attribute 'equation' (a string) is required");
    kiln_einsum_term in[KILN_EINSUM_MAX_IN], out;
    bool explicit_out;
    if ((st = kiln_einsum_terms(eq, n->n_inputs, in, &out, &explicit_out)) != KILN_OK)
        return kiln_fail_prefix(st, "Einsum attribute 'equation': ");
    p->einsum.equation = eq;
    return KILN_OK;
}

/* ---------------------------------------------------------------- GatherND, ScatterND */

kiln_status kiln_params_GatherND(const kiln_node *n, kiln_params *p)
{
    p->gathernd.batch_dims = 0;
    return n->version >= 12 ? kiln_pa_int(n, "batch_dims", 0, &p->gathernd.batch_dims) : KILN_OK;
}

kiln_status kiln_params_ScatterND(const kiln_node *n, kiln_params *p)
{
    static const char *const names[] = {"none", "add", "mul", "max", "min"};
    p->scatternd.reduction = KILN_RED_NONE;
    if (n->version < 16) return KILN_OK; /* no attribute before ScatterND-16 */
    const char *s;
    kiln_status st = kiln_pa_string(n, "reduction", "none", &s);
    if (st != KILN_OK) return st;
    int have = n->version >= 18 ? COUNT(names) : KILN_RED_MAX;
    for (int i = 0; i < COUNT(names); i++) {
        if (strcmp(s, names[i])) continue;
        if (i >= have)
            return kiln_fail(KILN_ERR_UNSUPPORTED,
                             "ScatterND attribute 'reduction' is '%s', which is ScatterND-18's; this node is ScatterND-%d",
                             s, n->version);
        p->scatternd.reduction = (kiln_scatter_red)i;
        return KILN_OK;
    }
    return kiln_fail(KILN_ERR_UNSUPPORTED, "ScatterND attribute 'reduction' is '%s', not one of none, add, mul%s", s,
                     n->version >= 18 ? ", max, min" : "");
}

/* ---------------------------------------------------------------- Trilu, DepthToSpace, SpaceToDepth, OneHot */

kiln_status kiln_params_Trilu(const kiln_node *n, kiln_params *p) { return kiln_pa_bool(n, "upper", true, &p->trilu.upper); }

static kiln_status block(const kiln_node *n, kiln_params *p)
{
    kiln_block_params *b = &p->block;
    kiln_status st = kiln_pa_int_required(n, "blocksize", &b->blocksize);
    if (st != KILN_OK) return st;
    if (b->blocksize < 1 || b->blocksize > (1 << 20))
        return kiln_fail(KILN_ERR_UNSUPPORTED, "%s attribute 'blocksize' is %" PRId64 ", not a block size kiln takes (1 to %d)",
                         n->op_type, b->blocksize, 1 << 20);
    return KILN_OK;
}

kiln_status kiln_params_DepthToSpace(const kiln_node *n, kiln_params *p)
{
    static const char *const modes[] = {"DCR", "CRD"};
    kiln_status st = block(n, p);
    p->block.crd = false;
    if (st != KILN_OK || n->version < 11) return st; /* DepthToSpace-1 is DCR only */
    int mode;
    if ((st = kiln_pa_enum(n, "mode", 0, modes, COUNT(modes), &mode)) != KILN_OK) return st;
    p->block.crd = mode == 1;
    return KILN_OK;
}

kiln_status kiln_params_SpaceToDepth(const kiln_node *n, kiln_params *p)
{
    p->block.crd = false;
    return block(n, p);
}

kiln_status kiln_params_OneHot(const kiln_node *n, kiln_params *p) { return kiln_pa_int(n, "axis", -1, &p->axis.axis); }
