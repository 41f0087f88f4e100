"""The linear recurrence h_t = a_t * h_{t-1} + b_t (elementwise) run over a whole window at once: the part of
minGRU, minLSTM and the QRNN that no matrix product can do, since h_t waits for h_{t-1}.

Two forms, the same numbers (tests/test_cell_forms.py):
- on a GPU, a doubling scan (Hillis and Steele 1986): after round k each position holds the composition of the
  last 2^k steps, (a, b) <- (a_t a_{t-d}, a_t b_{t-d} + b_t) for d = 1, 2, 4, ..., so a window of T steps
  takes ceil(log2 T) rounds of whole-tensor elementwise ops: few kernel launches, all of the GPU busy;
- on a CPU, one fused multiply-add per time step over (batch, size), forward and backward written out
  (`Stepped`), as AWD-LSTM's QRNN kernel does on a GPU: a CPU has few cores to fill, and the doubling scan's
  log2(T) passes over the whole window plus autograd's record of them cost 5-7x more at a training window's size.
Both work in linear space: only products of gates in (0, 1) and sums, so nothing overflows and any sign of b
is allowed. Feng et al. (2024) run these cells in log space (a cumsum and a logcumsumexp), which needs b > 0
(their g activation); measured here it was 4x slower than the doubling scan and about 70x further from the
step-by-step result in fp32 (docs/CELLS.md, python -m bench.scan).

The scan runs in fp32 (or fp64) whatever the autocast precision: bf16's 8-bit mantissa cannot hold a sum
over a window.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def wide(x: torch.Tensor) -> torch.Tensor:
    """x in fp32 if it is in a 16-bit float (autocast's output); fp32 and fp64 stay as they are."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def _later(x: torch.Tensor, d: int, fill: float) -> torch.Tensor:
    """x moved d steps later in time (dimension 1), the first d steps `fill`."""
    return F.pad(x[:, :-d], (0, 0, d, 0), value=fill)


def linear_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None) -> torch.Tensor:
    """h (batch, time, size) of h_t = a_t * h_{t-1} + b_t, from a and b (batch, time, size) and h0 (batch,
    size; None: zeros), in at least fp32."""
    with torch.autocast(a.device.type, enabled=False):
        a, b = wide(a), wide(b)
        h0 = torch.zeros_like(b[:, 0]) if h0 is None else wide(h0).to(b.dtype)
        return Stepped.apply(a, b, h0) if a.device.type == "cpu" else doubling_scan(a, b, h0)


def doubling_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    b = torch.cat([torch.addcmul(b[:, :1], a[:, :1], h0[:, None]), b[:, 1:]], dim=1)  # h0 folded into step 0
    steps, d = a.shape[1], 1
    while d < steps:
        b = torch.addcmul(b, a, _later(b, d, 0.0))
        if 2 * d < steps:  # the last round needs no longer products
            a = a * _later(a, d, 1.0)
        d *= 2
    return b


class Stepped(torch.autograd.Function):
    """The recurrence one fused op per step, over time-major copies (each step reads contiguous rows). Its
    gradient is the same recurrence run backwards: g_t = dL/dh_t + a_{t+1} g_{t+1}; dL/db_t = g_t,
    dL/da_t = g_t h_{t-1}, dL/dh0 = a_0 g_0."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        a, b = a.transpose(0, 1).contiguous(), b.transpose(0, 1).contiguous()
        h, out = h0, torch.empty_like(b)
        for t in range(a.shape[0]):
            h = torch.addcmul(b[t], a[t], h, out=out[t])
        ctx.save_for_backward(a, out, h0)
        return out.transpose(0, 1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        a, out, h0 = ctx.saved_tensors
        grad = grad.transpose(0, 1).contiguous()
        g = torch.empty_like(grad)
        acc = g[-1].copy_(grad[-1])
        for t in range(a.shape[0] - 2, -1, -1):
            acc = torch.addcmul(grad[t], a[t + 1], acc, out=g[t])
        before = torch.cat([h0[None], out[:-1]])
        return (g * before).transpose(0, 1), g.transpose(0, 1), a[0] * g[0]
