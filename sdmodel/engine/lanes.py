"""The fused kernel in SIMD lanes: the model's scalar code rewritten to advance ``LANES`` runs at once.

The scalar kernel (:mod:`sdmodel.engine.kernel`) runs one parameter set per thread; each
evaluation is some thousand scalar operations and a few dozen calls of the C library's ``exp``
and ``log``, which LLVM cannot vectorise without Intel's SVML. Here the generated functions
``_keval``, ``_kstage`` and ``_kmon`` are rewritten (on their syntax tree) as one loop over
``LANES`` runs whose values lie in a single flat buffer ``Z`` (row ``r`` of lane ``l`` at
``Z[r * LANES + l]``: the states, parameters, series, unknowns, residuals and the monitor's two
largest entries), so that LLVM's loop vectoriser turns the whole evaluation into vector
instructions: one buffer and constant offsets leave it no aliasing to check at run time, which
it refuses for a loop of so few iterations. ``exp``, ``log``, ``logaddexp`` and ``tanh`` become
the branch-free functions of :data:`VMATH` (Cody-Waite reduction and a polynomial, plain float
and integer arithmetic: within about one ulp of numpy's, the same infinities, zeros and NaNs),
``x**-1`` a division and ``x**2`` a product.

A model whose code uses anything else (a Newton block, a linear system, a lookup table, another
function or power) has no lane kernel: :func:`lane_source` returns None and the scalar kernel
runs it. No ``fastmath``: every operation rounds as in the scalar code, so the two kernels differ
only where the functions of :data:`VMATH` and the C library's round differently in the last bit.
"""

from __future__ import annotations

import ast

#: runs per lane block: 8 doubles fill an AVX-512 register, two AVX2 ones
LANES = 8

#: the branch-free functions of the lane kernel (numba source; ``CACHE`` is replaced as in the runtime)
VMATH = """
_VJIT = dict(cache=CACHE, error_model="numpy", nogil=True)
# numba's own inlining is slow (seconds per call site of bsr); LLVM inlines the small functions by
# itself, all but these two, which the loop must not call (a call stops its vectorisation)
_VJITI = dict(_VJIT, inline="always")
_VSHIFT = 6755399441055744.0  # 1.5 * 2**52: adding it rounds to an integer held in the low bits
_VSBITS = np.int64(0x4338000000000000)
_VINVLN2 = 1.4426950408889634
_VLN2HI = 6.93147180369123816490e-01  # ln 2 split: n * _VLN2HI is exact for |n| < 2**11
_VLN2LO = 1.90821492927058770002e-10


@njit(**_VJIT)
def _vbits(x):
    return np.float64(x).view(np.int64)


@njit(**_VJIT)
def _vflt(i):
    return np.int64(i).view(np.float64)


@njit(**_VJIT)
def _vexp_parts(x):
    # exp(x) = (1 + q) * 2**n with q = exp(r) - 1, r = x - n ln 2, |r| <= ln 2 / 2 (Taylor to r**13)
    k = x * _VINVLN2 + _VSHIFT
    n = _vbits(k) - _VSBITS
    nf = k - _VSHIFT
    r = (x - nf * _VLN2HI) - nf * _VLN2LO
    q = r + r * r * (0.5 + r * (1.6666666666666666e-01 + r * (4.1666666666666664e-02 + r * (
        8.3333333333333332e-03 + r * (1.3888888888888889e-03 + r * (1.9841269841269841e-04 + r * (
            2.4801587301587302e-05 + r * (2.7557319223985893e-06 + r * (2.7557319223985888e-07 + r * (
                2.5052108385441720e-08 + r * (2.0876756987868100e-09 + r * 1.6059043836821613e-10)))))))))))
    return q, n


@njit(**_VJIT)
def _vexp(x):
    xc = 710.0 if x > 710.0 else x  # NaN stays NaN; beyond +-710 the result is inf or 0 anyway
    xc = -746.0 if xc < -746.0 else xc
    q, n = _vexp_parts(xc)
    n1 = n >> 1  # two exact scalings: 2**n alone is out of range near overflow and underflow
    return ((1.0 + q) * _vflt((n1 + 1023) << 52)) * _vflt((n - n1 + 1023) << 52)


@njit(**_VJIT)
def _vexpm1(x):
    # exp(x) - 1 for x in [-50, 45] (clamped): 2**n q + (2**n - 1), each scaling exact
    xc = 45.0 if x > 45.0 else x
    xc = -50.0 if xc < -50.0 else xc
    q, n = _vexp_parts(xc)
    n1 = n >> 1
    s1 = _vflt((n1 + 1023) << 52)
    s2 = _vflt((n - n1 + 1023) << 52)
    return (q * s1) * s2 + ((s1 * s2) - 1.0)


@njit(**_VJIT)
def _vlog(x):
    # fdlibm's e_log.c without branches: x = 2**e m, m in [sqrt(2)/2, sqrt(2)), f = m - 1
    sub = x < 2.2250738585072014e-308
    xs = x * 18014398509481984.0 if sub else x  # subnormals scaled by 2**54
    b = _vbits(xs)
    e = ((b >> 52) & 0x7FF) - 1023 - (54 if sub else 0)
    mb = (b & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000
    big = mb > 0x3FF6A09E667F3BCD
    mb = (mb - 0x0010000000000000) if big else mb
    e = e + 1 if big else e
    f = _vflt(mb) - 1.0
    ef = np.float64(e)
    s = f / (2.0 + f)
    z = s * s
    R = z * (6.666666666666735130e-01 + z * (3.999999999940941908e-01 + z * (2.857142874366239149e-01 + z * (
        2.222219843214978396e-01 + z * (1.818357216161805012e-01 + z * (
            1.531383769920937332e-01 + z * 1.479819860511658591e-01))))))
    hfsq = 0.5 * f * f
    y = ef * _VLN2HI - ((hfsq - (s * (hfsq + R) + ef * _VLN2LO)) - f)
    y = x + x if not (x < np.inf) else y  # inf and NaN
    y = -np.inf if x == 0.0 else y
    y = np.nan if x < 0.0 else y
    return y


@njit(**_VJITI)
def _vlog1p(u):
    w = 1.0 + u
    d = w - 1.0
    lw = _vlog(w)
    y = lw + (u - d) / w  # the rounding of 1 + u corrected to first order
    y = u if d == 0.0 else y
    y = u if not (w < np.inf) else y
    y = lw if w <= 0.0 else y  # -1: -inf; below: NaN
    return y


@njit(**_VJIT)
def _vtanh(x):
    a = abs(x)
    em = _vexpm1(2.0 * (22.0 if a > 22.0 else a))
    t = em / (em + 2.0)
    t = 1.0 if a > 22.0 else t
    t = x if x != x else t
    return -t if _vbits(x) < 0 else t  # odd, -0.0 included


@njit(**_VJITI)
def _vlogaddexp(x, y):
    # numpy's npy_logaddexp: equal arguments (infinities) first, else the larger plus log1p(exp(-|x - y|))
    d = x - y
    m = x if d > 0.0 else y
    r = m + _vlog1p(_vexp(-abs(d)))
    r = x + 0.6931471805599453 if x == y else r
    r = d if (d != d and x != y) else r
    return r


@njit(**_VJIT)
def _vmin(a, b):
    return a if (a <= b or a != a) else b  # NaN-propagating, as np.minimum


@njit(**_VJIT)
def _vmax(a, b):
    return a if (a >= b or a != a) else b
"""

#: the driver of the lane kernel: :func:`sdmodel.engine.kernel._krun`'s arguments and results, the
#: runs taken ``LANES`` at a time (the last block padded with copies of the last run)
DRIVER = """
@njit(parallel=True, **_JIT)
def _kvrun(P, S0, tg, Xg, Xh, Xe, save_pos, mode, dt, didx, src, gidx, o_kind, o_idx, kinds, shift, nU, n_res, keep,
           V, Rmax, Zmax, worst, worst_row, Rs, Zs, failed_at, bad_code, R0, Z0):
    W = _VW
    B = P.shape[0]
    nS = _VNS
    nP = _VNP
    nX = _VNX
    n = tg.shape[0]
    nO = o_idx.shape[0]
    oP = nS
    oX = oP + nP
    oU = oX + nX
    oR = oU + _VNU
    oZ = oR + _VNR
    rows = oZ + 2
    from_start = False
    for i in range(n_res):
        if shift[i] != 0:
            from_start = True
    for blk in prange((B + W - 1) // W):
        Z = np.zeros(rows * W)
        Y = np.zeros(rows * W)  # the Runge-Kutta stages
        k1 = np.empty(nS * W)
        k2 = np.empty(nS * W)
        k3 = np.empty(nS * W)
        st = np.empty(nS * W)
        acc = np.empty(W)
        r = np.zeros(max(n_res, 1))
        failed = np.zeros(W, dtype=np.bool_)
        for l in range(W):
            b = min(blk * W + l, B - 1)
            for i in range(nS):
                Z[i * W + l] = S0[b, i]
            for i in range(nP):
                Z[(oP + i) * W + l] = P[b, i]
                Y[(oP + i) * W + l] = P[b, i]
        for k in range(n):
            t = tg[k]
            for i in range(nX):
                xv = Xg[k, i]
                for l in range(W):
                    Z[(oX + i) * W + l] = xv
            _kveval(t, dt, Z)
            j = save_pos[k]
            if j >= 0 or (k == 0 and from_start):
                _kvmon(t, dt, Z)
            for l in range(W):
                b = blk * W + l
                if b >= B:
                    break
                if k == 0 and from_start:
                    for i in range(n_res):
                        ri = Z[(oR + i) * W + l]
                        if shift[i] != 0 and np.isfinite(ri):
                            R0[b, i] = ri
                    Z0[b] = Z[(oZ + 1) * W + l]
                if j >= 0:
                    for i in range(n_res):
                        r[i] = Z[(oR + i) * W + l]
                    z0 = Z[oZ * W + l]
                    z1 = Z[(oZ + 1) * W + l]
                    if from_start:
                        for i in range(n_res):
                            if shift[i] == 1 or (shift[i] == 2 and k == 0):
                                r[i] -= R0[b, i]
                    for o in range(nO):
                        V[b, j, o] = Z[o_idx[o] * W + l] if o_kind[o] == 0 else Z[(oU + o_idx[o]) * W + l]
                    for i in range(n_res):
                        Rmax[b, i] = _kfmax(Rmax[b, i], abs(r[i]))
                    Zmax[b, 0] = _kfmax(Zmax[b, 0], z0)
                    Zmax[b, 1] = _kfmax(Zmax[b, 1], z1)
                    if n_res > 0:
                        worst[b, j], worst_row[b, j] = _kworst(r, Zmax, b, kinds, n_res)
                    if keep:
                        for i in range(n_res):
                            Rs[b, j, i] = r[i]
                        Zs[b, j, 0] = z0
                        Zs[b, j, 1] = z1
            for l in range(W):
                acc[l] = 0.0
            for i in range(nU):  # branch-free: 0 * x is NaN exactly when x is not finite
                for l in range(W):
                    acc[l] += 0.0 * Z[(oU + i) * W + l]
            for l in range(W):
                b = blk * W + l
                if b < B and not failed[l] and acc[l] != 0.0:
                    for i in range(nU):
                        if not np.isfinite(Z[(oU + i) * W + l]):
                            failed[l] = True
                            failed_at[b] = t
                            bad_code[b] = i
                            break
            if k == n - 1:
                break
            if mode == 2:
                for i in range(nS):
                    for l in range(W):
                        st[i * W + l] = Z[(oU + src[i]) * W + l]
                for i in range(nS * W):
                    Z[i] = st[i]
            elif mode == 0:
                for i in range(nS):
                    o = (oU + didx[i]) * W
                    for l in range(W):
                        Z[i * W + l] = Z[i * W + l] + dt * Z[o + l]
            else:
                h = dt / 2
                for i in range(nX):
                    xv = Xh[k, i]
                    for l in range(W):
                        Y[(oX + i) * W + l] = xv
                for i in range(nS):
                    o = (oU + didx[i]) * W
                    for l in range(W):
                        k1[i * W + l] = Z[o + l]
                        Y[i * W + l] = Z[i * W + l] + h * k1[i * W + l]
                _kvstage(t + h, dt, Y)
                for i in range(nS):
                    o = (oU + didx[i]) * W
                    for l in range(W):
                        k2[i * W + l] = Y[o + l]
                        Y[i * W + l] = Z[i * W + l] + h * k2[i * W + l]
                _kvstage(t + h, dt, Y)
                for i in range(nS):
                    o = (oU + didx[i]) * W
                    for l in range(W):
                        k3[i * W + l] = Y[o + l]
                        Y[i * W + l] = Z[i * W + l] + dt * k3[i * W + l]
                for i in range(nX):
                    xv = Xe[k, i]
                    for l in range(W):
                        Y[(oX + i) * W + l] = xv
                _kvstage(t + dt, dt, Y)
                w6 = dt / 6.0
                for i in range(nS):
                    o = (oU + didx[i]) * W
                    for l in range(W):
                        q = i * W + l
                        Z[q] = Z[q] + w6 * (k1[q] + 2.0 * k2[q] + 2.0 * k3[q] + Y[o + l])
            for l in range(W):
                acc[l] = 0.0
            for i in range(nS):
                for l in range(W):
                    acc[l] += 0.0 * Z[i * W + l]
            for l in range(W):
                b = blk * W + l
                if b < B and not failed[l] and acc[l] != 0.0:
                    for i in range(nS):
                        if not np.isfinite(Z[i * W + l]):
                            failed[l] = True
                            failed_at[b] = t + dt
                            bad_code[b] = nU + i
                            break
"""

#: numpy functions of the generated code and their lane versions (None: the same, already vectorisable)
_CALLS = {
    "exp": "_vexp",
    "log": "_vlog",
    "logaddexp": "_vlogaddexp",
    "tanh": "_vtanh",
    "minimum": "_vmin",
    "maximum": "_vmax",
    "sqrt": None,
    "abs": None,
}
#: the runtime's own scalar helpers: branches LLVM turns into selects
_HELPERS = {"_kstep", "_kheaviside", "_knanmax", "abs"}
_CONSTANTS = {"nan", "inf", "pi", "e"}
_ARRAYS = ("s", "p", "x", "u", "r", "z")


class _Unsupported(Exception):
    pass


class _Lanes(ast.NodeTransformer):
    """One generated function as the body of the lane loop; raises :class:`_Unsupported` on anything
    it does not know to vectorise."""

    def __init__(self, rows: dict[str, int]):
        self.rows = rows

    def generic_visit(self, node):
        ok = (
            ast.Expression,
            ast.Assign,
            ast.Name,
            ast.Constant,
            ast.BinOp,
            ast.UnaryOp,
            ast.Compare,
            ast.BoolOp,
            ast.IfExp,
            ast.Load,
            ast.Store,
            ast.operator,
            ast.unaryop,
            ast.cmpop,
            ast.boolop,
        )
        if not isinstance(node, ok):
            raise _Unsupported(type(node).__name__)
        return super().generic_visit(node)

    def visit_Assign(self, node):
        if len(node.targets) != 1:
            raise _Unsupported("assignment")
        return self.generic_visit(node)

    def visit_Subscript(self, node):
        name = node.value.id if isinstance(node.value, ast.Name) else None
        if name not in self.rows or not isinstance(node.slice, ast.Constant) or type(node.slice.value) is not int:
            raise _Unsupported("subscript")
        index = ast.BinOp(
            ast.Constant((self.rows[name] + node.slice.value) * LANES), ast.Add(), ast.Name("_l", ast.Load())
        )
        return ast.Subscript(value=ast.Name("Z", ast.Load()), slice=index, ctx=node.ctx)

    def visit_Attribute(self, node):
        if isinstance(node.value, ast.Name) and node.value.id == "np" and node.attr in _CONSTANTS:
            return node
        raise _Unsupported("attribute")

    def visit_Call(self, node):
        f = node.func
        if node.keywords:
            raise _Unsupported("keywords")
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "np" and f.attr in _CALLS:
            new = _CALLS[f.attr]
            if new is not None:
                node.func = ast.Name(new, ast.Load())
        elif not (isinstance(f, ast.Name) and f.id in _HELPERS):
            raise _Unsupported("call")
        node.args = [self.visit(a) for a in node.args]
        return node

    def visit_BinOp(self, node):
        node.left, node.right = self.visit(node.left), node.right
        if isinstance(node.op, ast.Pow):
            e = node.right
            sign, c = (-1.0, e.operand) if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.USub) else (1.0, e)
            if not isinstance(c, ast.Constant) or not isinstance(c.value, int | float):
                raise _Unsupported("power")
            v = sign * c.value
            if v == -1.0:  # exact either way: pow(x, -1) and 1 / x are both x's reciprocal rounded once
                return ast.BinOp(ast.Constant(1.0), ast.Div(), node.left)
            if v == 2.0:
                return ast.BinOp(node.left, ast.Mult(), node.left)
            raise _Unsupported("power")
        node.right = self.visit(node.right)
        return node


def _sizes(fns: dict[str, ast.FunctionDef]) -> dict[str, int]:
    """How many states, parameters, series, unknowns and residuals the functions index (their preambles
    load every state, parameter and series; ``_kmon`` every unknown and every residual)."""
    n = dict.fromkeys(_ARRAYS, 0)
    for fn in fns.values():
        for node in ast.walk(fn):
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in n:
                if isinstance(node.slice, ast.Constant) and type(node.slice.value) is int:
                    n[node.value.id] = max(n[node.value.id], node.slice.value + 1)
    return n


def lane_source(kernel_source: str) -> str | None:
    """The lane kernel's functions (``_kveval``, ``_kvstage``, ``_kvmon``) and its layout constants for
    the driver, or None where the model's code has anything the lanes do not vectorise."""
    tree = ast.parse(kernel_source)
    fns = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    alias = any(
        isinstance(n, ast.Assign) and isinstance(n.value, ast.Name) and n.value.id == "_keval" for n in tree.body
    )
    if "_keval" not in fns or "_kmon" not in fns or ("_kstage" not in fns and not alias):
        return None
    n = _sizes(fns)
    rows, at = {}, 0
    for a in ("s", "p", "x", "u", "r"):
        rows[a] = at
        at += n[a]
    rows["z"] = at
    out = [
        f"_VW = {LANES}",
        f"_VNS = {n['s']}",
        f"_VNP = {n['p']}",
        f"_VNX = {n['x']}",
        f"_VNU = {n['u']}",
        f"_VNR = {n['r']}",
    ]
    for name, new in (("_keval", "_kveval"), ("_kstage", "_kvstage"), ("_kmon", "_kvmon")):
        if name not in fns:
            out.append("\n_kvstage = _kveval")
            continue
        fn = fns[name]
        try:
            body = [_Lanes(rows).visit(stmt) for stmt in fn.body]
        except _Unsupported:
            return None
        loop = ast.For(
            target=ast.Name("_l", ast.Store()),
            iter=ast.Call(ast.Name("range", ast.Load()), [ast.Constant(LANES)], []),
            body=body,
            orelse=[],
        )
        fn.name, fn.body, fn.decorator_list = new, [loop], []
        fn.args = ast.arguments(
            posonlyargs=[], args=[ast.arg("t"), ast.arg("dt"), ast.arg("Z")], kwonlyargs=[], kw_defaults=[], defaults=[]
        )
        out.append("\n\n@njit(**_JIT)\n" + ast.unparse(ast.fix_missing_locations(fn)))
    return "\n".join(out) + "\n"


__all__ = ["DRIVER", "LANES", "VMATH", "lane_source"]
