"""A GRU layer that trains fast on a CPU, and the choice of GRU layer by measurement.

On a CPU, ``nn.GRU`` runs its time loop as a chain of small operations that autograd records
one by one, and its backward pass replays them one by one.  ``FastGRU`` computes the same
function with a hand-written backward pass for a whole layer over a whole sequence
(``GRULayerFunction``): the input products of all time steps in one matrix product, one product
with ``W_hh`` per step, and the weight gradients as one product over all steps.  ``BF16FastGRU``
is the same layer with its matrix products in bfloat16.  A fused layer with a hand-written
backward pass is infrastructure, like ``nn.GRU`` (COURSE.md, principle 7); lab 04's exercise is
the GRU *cell*, and the optional appendix notebook derives this layer step by step.

``pick_gru_layer()`` returns the layer a lab should train with on this machine: ``nn.GRU`` on a
GPU (cuDNN's fused kernels are faster still), and on a CPU ``FastGRU`` or ``BF16FastGRU``,
whichever a short timing finds faster (bfloat16 only for a clear gain, and timed only where
bfloat16 matrix products are faster than float32 ones), with the times it measured.

Shapes: batch first outside, ``x (B, T, I)`` -> ``out (B, T, H)``, ``h_n (L, B, H)``; time major
inside a layer, ``x (T, B, I)``, so that every step reads and writes one contiguous block.
Parameters are ``nn.GRU``'s, rows stacked in its gate order r, z, n:
``weight_ih_l{k} (3H, I)``, ``weight_hh_l{k} (3H, H)``, ``bias_ih_l{k}``, ``bias_hh_l{k} (3H,)``.

The GRU step, as ``nn.GRU`` computes it (``*`` element-wise, ``σ`` the logistic sigmoid)::

    r_t = σ(x_t W_ir^T + b_ir + h_{t-1} W_hr^T + b_hr)
    z_t = σ(x_t W_iz^T + b_iz + h_{t-1} W_hz^T + b_hz)
    n_t = tanh(x_t W_in^T + b_in + r_t * (h_{t-1} W_hn^T + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}  =  n_t + z_t * (h_{t-1} - n_t)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from .runtime import budget
from .runtime import device as default_device

__all__ = [
    "BF16FastGRU",
    "FastGRU",
    "GRUChoice",
    "GRULayerFunction",
    "bfloat16_products_pay",
    "mm",
    "pass_seconds",
    "pick_gru_layer",
]

BF16_RULE = 0.8  # BF16FastGRU is picked only when a pass takes at most this fraction of FastGRU's time


def mm(a: torch.Tensor, b: torch.Tensor, add: torch.Tensor | None = None, out: torch.Tensor | None = None):
    """``add + a @ b`` in ``a``'s dtype (into ``out`` if given), the product computed in ``b``'s dtype.

    ``a (N, K)``, ``b (K, M)``, ``add`` broadcastable to ``(N, M)`` -> ``(N, M)``.  When ``b`` has
    ``a``'s dtype this is one ``torch.addmm``.  When ``b`` is bfloat16 (``BF16FastGRU``), ``a`` is
    rounded to bfloat16 too: the product's sums still run in float32, its result is rounded to
    bfloat16, and ``add``, in ``a``'s dtype, comes last.
    """
    if a.dtype == b.dtype:
        return torch.mm(a, b, out=out) if add is None else torch.addmm(add, a, b, out=out)
    product = a.to(b.dtype) @ b
    return product.to(a.dtype) if add is None else torch.add(add, product, out=out)


class GRULayerFunction(torch.autograd.Function):
    """One GRU layer over a whole sequence, time major, with a hand-written backward pass.

    ``forward(x, h0, W_ih, W_hh, b_ih, b_hh, matmul_dtype) -> (hs, h_T)``:
    ``x (T, B, I)`` the inputs, ``h0 (B, H)`` the initial state; ``W_ih (3H, I)``,
    ``W_hh (3H, H)``, ``b_ih (3H,)``, ``b_hh (3H,)`` with rows in ``nn.GRU``'s order r, z, n;
    ``matmul_dtype`` the dtype of the matrix products (``None``: ``x``'s; everything else stays
    in ``x``'s dtype).  Returns ``hs (T, B, H)``, the states h_1 .. h_T, and ``h_T (B, H)``.
    """

    @staticmethod
    def forward(ctx, x, h0, W_ih, W_hh, b_ih, b_hh, matmul_dtype=None):
        T, B, I = x.shape
        H = W_hh.shape[1]
        low = ctx.matmul_dtype = matmul_dtype or x.dtype  # the products' dtype: weights rounded to it once
        # The input half of every gate, for all T steps in one product: gi = x W_ih^T + b_ih.
        gi = mm(x.reshape(T * B, I), W_ih.t().to(low), add=b_ih).view(T, B, 3 * H)
        # h W_hh^T reads W_hh^T row by row: copy the transpose once, not a strided view at every step.
        W_hh_t = W_hh.t().contiguous().to(low)
        # Loop index t computes step t+1 of the equations: it reads hs[t] (= h_t) and writes hs[t+1];
        # gh[t], rz[t] and n[t] belong to that step.
        hs = x.new_empty(T + 1, B, H)  # hs[t] = h_t, with hs[0] = h_0
        gh = x.new_empty(T, B, 3 * H)  # gh[t] = h_{t-1} W_hh^T + b_hh
        rz = x.new_empty(T, B, 2 * H)  # rz[t] = [r_t, z_t]
        n = x.new_empty(T, B, H)  # n[t] = n_t
        hs[0] = h0
        for t in range(T):
            r_t, z_t = rz[t, :, :H], rz[t, :, H:]
            mm(hs[t], W_hh_t, add=b_hh, out=gh[t])  # gh_t = h_{t-1} W_hh^T + b_hh
            torch.add(gi[t, :, : 2 * H], gh[t, :, : 2 * H], out=rz[t]).sigmoid_()  # r_t, z_t
            torch.addcmul(gi[t, :, 2 * H :], r_t, gh[t, :, 2 * H :], out=n[t]).tanh_()  # n_t
            torch.lerp(n[t], hs[t], z_t, out=hs[t + 1])  # h_t = n_t + z_t (h_{t-1} - n_t)
        ctx.save_for_backward(x, W_ih, W_hh, hs, gh, rz, n)
        return hs[1:].clone(), hs[T].clone()  # copies: the caller may change them in place

    @staticmethod
    @once_differentiable
    def backward(ctx, d_hs, d_hT):
        """``d_hs (T, B, H)``: dL/dh_1 .. dL/dh_T from the layer above (or the decoder);
        ``d_hT (B, H)``: the gradient through the returned final state (zero when it is detached).
        Returns the gradients of ``x``, ``h0``, ``W_ih``, ``W_hh``, ``b_ih``, ``b_hh`` (and None)."""
        x, W_ih, W_hh, hs, gh, rz, n = ctx.saved_tensors
        T, B, I = x.shape
        H = W_hh.shape[1]
        low = ctx.matmul_dtype  # the products' dtype, as in the forward pass
        W_ih, W_hh = W_ih.to(low), W_hh.to(low)
        d_a, d_gh, dh0 = _backward_through_time(d_hs, d_hT, W_hh, hs, gh, rz, n)
        # The weights serve every step: their gradients are sums over t, one product over T*B rows.
        d_a_rows, d_gh_rows = d_a.view(T * B, 3 * H), d_gh.view(T * B, 3 * H)
        dx = mm(d_a_rows, W_ih).view(T, B, I)
        dW_ih = mm(d_a_rows.t(), x.reshape(T * B, I).to(low))
        dW_hh = mm(d_gh_rows.t(), hs[:T].reshape(T * B, H).to(low))  # with h_{t-1} for step t
        return dx, dh0, dW_ih, dW_hh, d_a_rows.sum(0), d_gh_rows.sum(0), None


def _backward_through_time(d_hs, d_hT, W_hh, hs, gh, rz, n):
    """The backward loop of ``GRULayerFunction``: from the last step to the first.

    Shapes as saved by the forward pass: ``hs (T+1, B, H)``, ``gh (T, B, 3H)``, ``rz (T, B, 2H)``,
    ``n (T, B, H)``; ``W_hh (3H, H)`` in the products' dtype.  Returns ``d_a (T, B, 3H)``, the
    gradients of the gate arguments ``[a_r, a_z, a_n]`` (= dL/d gi), ``d_gh (T, B, 3H)`` (=
    dL/d gh) and ``dh0 (B, H)``, dL/dh_0.  Delta, dL/dh_t, is carried from step to step.
    """
    T, B, H = n.shape
    # What does not depend on delta is computed for all T steps at once, before the loop.
    r, z = rz[..., :H], rz[..., H:]
    ds = rz * (1 - rz)  # the sigmoid's derivative s (1 - s), for s = [r_t, z_t]
    dn = 1 - n * n  # the tanh's derivative 1 - n_t^2
    h_minus_n = hs[:T] - n  # h_{t-1} - n_t
    d_a = n.new_empty(T, B, 3 * H)  # dL/d(gate arguments) [a_r, a_z, a_n] = dL/d gi
    d_gh = n.new_empty(T, B, 3 * H)  # dL/d gh = [dL/da_r, dL/da_z, r_t dL/da_n]
    dh = d_hT.clone()  # delta: dL/dh of the step being undone, summed over everything that uses it
    dh_prev = torch.empty_like(dh)
    for t in reversed(range(T)):
        d_ar, d_az, d_arz, d_an = d_gh[t, :, :H], d_gh[t, :, H : 2 * H], d_gh[t, :, : 2 * H], d_a[t, :, 2 * H :]
        dh.add_(d_hs[t])
        # h_t = n_t + z_t (h_{t-1} - n_t). d_az and d_ar first hold dL/dz_t and dL/dr_t; the
        # sigmoid's derivative then turns both into dL/da in place.
        torch.mul(dh, h_minus_n[t], out=d_az)  # dL/dz_t = dh (h_{t-1} - n_t)
        torch.mul(dh, z[t], out=dh_prev)  # dL/dh_{t-1}, direct path: dh z_t
        torch.sub(dh, dh_prev, out=d_an).mul_(dn[t])  # dL/da_n = dh (1 - z_t) (1 - n_t^2)
        torch.mul(d_an, gh[t, :, 2 * H :], out=d_ar)  # a_n = gi_n + r_t gh_n: dL/dr_t = dL/da_n gh_n
        d_arz.mul_(ds[t])  # [r_t, z_t] = sigmoid(a_rz): dL/da_rz = dL/d[r_t, z_t] s (1 - s)
        torch.mul(d_an, r[t], out=d_gh[t, :, 2 * H :])  # gh_n enters a_n times r_t
        mm(d_gh[t], W_hh, add=dh_prev, out=dh_prev)  # dL/dh_{t-1} = dh z_t + dL/dgh_t W_hh
        dh, dh_prev = dh_prev, dh
    d_a[..., : 2 * H] = d_gh[..., : 2 * H]  # gi_t and gh_t enter a_r and a_z alike
    return d_a, d_gh, dh


class FastGRU(nn.Module):
    """A drop-in ``nn.GRU(input_size, hidden_size, num_layers, batch_first=True, dropout=...)``.

    Same parameter names, shapes, initialisation and results as ``nn.GRU``, so a state dict moves
    freely between the two.  ``x (B, T, I)``, ``h0 (L, B, H)`` or None -> ``out (B, T, H)``,
    ``h_n (L, B, H)``.  Dropout acts between layers, in training only, as in ``nn.GRU``.
    """

    matmul_dtype = None  # the matrix products' dtype; None: the input's (BF16FastGRU changes it)

    def __init__(self, input_size, hidden_size, num_layers=1, batch_first=True, dropout=0.0):
        super().__init__()
        if not batch_first:
            raise ValueError("FastGRU takes batch-first input only: shape (batch, time, features)")
        self.input_size, self.hidden_size, self.num_layers, self.dropout = input_size, hidden_size, num_layers, dropout
        bound = 1 / math.sqrt(hidden_size)  # nn.GRU's initialisation: U(-1/sqrt(H), 1/sqrt(H))
        for k in range(num_layers):
            inputs = input_size if k == 0 else hidden_size
            for name, shape in [
                ("weight_ih", (3 * hidden_size, inputs)),
                ("weight_hh", (3 * hidden_size, hidden_size)),
                ("bias_ih", (3 * hidden_size,)),
                ("bias_hh", (3 * hidden_size,)),
            ]:
                setattr(self, f"{name}_l{k}", nn.Parameter(torch.empty(shape).uniform_(-bound, bound)))

    def forward(self, x, h0=None):
        """``x (B, T, I)``, ``h0 (L, B, H)`` or None (zeros) -> ``out (B, T, H)``, ``h_n (L, B, H)``."""
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"expected x of shape (batch, time, {self.input_size}), got {tuple(x.shape)}")
        B, L, H = x.shape[0], self.num_layers, self.hidden_size
        if h0 is None:
            h0 = x.new_zeros(L, B, H)
        elif tuple(h0.shape) != (L, B, H):
            raise ValueError(f"expected h0 of shape (num_layers, batch, hidden) = {(L, B, H)}, got {tuple(h0.shape)}")
        hs, h_n = x.transpose(0, 1).contiguous(), []  # time major inside
        for k in range(L):
            if k > 0:  # dropout between layers, in training only (as nn.GRU)
                hs = F.dropout(hs, self.dropout, self.training)
            params = (getattr(self, f"{name}_l{k}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            hs, h_T = GRULayerFunction.apply(hs, h0[k], *params, self.matmul_dtype)
            h_n.append(h_T)
        return hs.transpose(0, 1), torch.stack(h_n)


class BF16FastGRU(FastGRU):
    """``FastGRU`` with its matrix products in bfloat16 (8 significant bits instead of float32's 24).

    The weights, the state and every element-wise step stay in float32; only the inputs of each
    product are rounded, and each product's result.  Results agree with ``FastGRU`` to about 1%,
    and on CPUs with bfloat16 instructions the layer runs faster; ``pick_gru_layer`` takes it
    only where it measures so.
    """

    matmul_dtype = torch.bfloat16


class GRUChoice(NamedTuple):
    """What ``pick_gru_layer`` chose: the layer class, and the best seconds per forward and
    backward pass of each layer it timed (empty when it timed none, on a GPU)."""

    layer: type[nn.Module]
    seconds: dict[str, float]


def pass_seconds(
    layers: dict[str, nn.Module], x: torch.Tensor, repeats: int, timer: Callable[[], float] = time.perf_counter
) -> dict[str, float]:
    """The fastest of ``repeats`` forward and backward passes of each layer on ``x (B, T, I)``.

    The layers take turns, one pass each per round, so that a machine that slows down for a
    while slows them all down alike.  Returns ``{name: seconds}``.
    """
    best = dict.fromkeys(layers, math.inf)
    for _ in range(repeats):
        for name, layer in layers.items():
            start = timer()
            out, _ = layer(x)
            out.sum().backward()
            best[name] = min(best[name], timer() - start)
    return best


def bfloat16_products_pay(rows: int = 64, inner: int = 512, cols: int = 1536, repeats: int = 3) -> bool:
    """True when a ``(rows, inner) @ (inner, cols)`` product is faster in bfloat16 than in float32 here.

    ``BF16FastGRU`` gains only in its matrix products (its element-wise work is ``FastGRU``'s, plus
    the rounding), so where bfloat16 products are slower -- CPUs without bfloat16 instructions
    emulate them, many times slower -- it cannot win and is not worth timing.  Best of ``repeats``.
    """
    a, b = torch.ones(rows, inner), torch.ones(inner, cols)
    best = {}
    for dtype in (torch.float32, torch.bfloat16):
        x, w = a.to(dtype), b.to(dtype)
        x @ w  # warm-up
        best[dtype] = min(_seconds(lambda x=x, w=w: x @ w) for _ in range(repeats))
    return best[torch.bfloat16] < best[torch.float32]


def _seconds(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def pick_gru_layer(
    device=None,
    *,
    input_size: int = 64,
    hidden_size: int = 512,
    num_layers: int = 2,
    seq_len: int = 50,
    batch_size: int | None = None,
    repeats: int | None = None,
    try_bf16: bool | None = None,
    timer: Callable[[], float] = time.perf_counter,
) -> GRUChoice:
    """The GRU layer class to train with on ``device`` (default: ``labutils.device()``).

    On a GPU: ``nn.GRU``, untimed.  On a CPU: ``FastGRU`` and ``BF16FastGRU`` (same weights)
    are timed on a forward and backward pass over ``x (batch_size, seq_len, input_size)``
    (``pass_seconds``); ``BF16FastGRU`` is chosen only when its best pass takes at most
    ``BF16_RULE`` (4/5) of ``FastGRU``'s: rounding costs precision, so it must pay clearly.
    ``try_bf16=None`` times ``BF16FastGRU`` only where ``bfloat16_products_pay(batch_size,
    hidden_size, 3 * hidden_size)`` (else it is left out of ``seconds``); True or False decide.
    ``batch_size`` and ``repeats`` default to the budget's (small in CI).  The global random
    state is left as it was.  Returns ``GRUChoice(layer, seconds)``.
    """
    dev = torch.device(device) if device is not None else default_device()
    if dev.type != "cpu":
        return GRUChoice(nn.GRU, {})
    batch_size = batch_size or budget(full=64, ci=16)
    repeats = repeats or budget(full=8, ci=3)
    if try_bf16 is None:
        try_bf16 = bfloat16_products_pay(batch_size, hidden_size, 3 * hidden_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        layers = {"FastGRU": FastGRU(input_size, hidden_size, num_layers)}
        if try_bf16:
            layers["BF16FastGRU"] = BF16FastGRU(input_size, hidden_size, num_layers)
            layers["BF16FastGRU"].load_state_dict(layers["FastGRU"].state_dict())
        x = torch.randn(batch_size, seq_len, input_size, requires_grad=True)
        seconds = pass_seconds(layers, x, repeats, timer)
    fast_enough = try_bf16 and seconds["BF16FastGRU"] <= BF16_RULE * seconds["FastGRU"]
    return GRUChoice(BF16FastGRU if fast_enough else FastGRU, seconds)
