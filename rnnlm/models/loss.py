"""The output layer and its cross-entropy in one pass: summed NLL of `features @ weight.T + bias`.

Why not `F.cross_entropy(decoder(features))`: with a 10k-word vocabulary the logits of a batch are a
(tokens x vocab) matrix of ~28 MB that the unfused path writes and reads five times (logits, log-softmax,
the NLL's zero-filled gradient, the log-softmax backward, the bias gradient's sum). Here each block of
logits is turned into its gradient (softmax minus one-hot) as soon as it is made, and the backward is
just the two matrix products. The result is the same NLL and gradients to rounding (tests/test_loss.py);
the output layer's forward + backward takes ~20% less time on a 2-core CPU (docs/BENCHMARKS.md).

Under autocast the products run in the autocast dtype (bf16 on CPU) as `nn.Linear` would, while the
softmax of each block is computed in fp32.
"""

from __future__ import annotations

import torch

# Logit elements per block on CPU. fp32 blocks are softmaxed where the product wrote them, and big ones
# run best (measured on 2 cores, LSTM 2x200 steps: 2^23 ~10% faster than 2^20); blocks of other dtypes
# go through an fp32 copy, which wants to stay in cache (bf16: 2^21-2^22 best, 2^24 ~10% slower).
CPU_BLOCK_ELEMENTS = 1 << 23
CPU_CAST_BLOCK_ELEMENTS = 1 << 21
# On GPUs memory is fast and each block costs kernel launches: one block up to this size.
GPU_BLOCK_ELEMENTS = 1 << 28


def linear_cross_entropy(
    features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor, ignore_index: int
) -> torch.Tensor:
    """Summed NLL (fp32 scalar) of `targets` (N,) under logits `features (N, D) @ weight (V, D).T + bias (V,)`.

    Rows whose target is `ignore_index` count for nothing, in the loss or the gradients.
    """
    device = features.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else features.dtype
    return _LinearCrossEntropy.apply(features, weight, bias, targets, ignore_index, dtype)


def blocks(rows: int, vocab_size: int, device: str, dtype: torch.dtype) -> list[tuple[int, int]]:
    """(start, end) of nearly equal blocks of rows, each within the device's element budget."""
    if device != "cpu":
        budget = GPU_BLOCK_ELEMENTS
    else:
        budget = CPU_BLOCK_ELEMENTS if dtype == torch.float32 else CPU_CAST_BLOCK_ELEMENTS
    most = max(8, budget // max(vocab_size, 1))
    count = max(1, -(-rows // most))
    bounds = [rows * i // count for i in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


class _LinearCrossEntropy(torch.autograd.Function):
    """Works on the transposed logits, (vocab, rows): `weight @ features.T` runs ~1.7x faster on CPU
    (MKL) than `features @ weight.T` for a few hundred rows and a 200-wide inner dimension, and the
    backward products read the transposed gradient as fast. Each block's softmax is then a reduction over
    dim 0, vectorised along the block's columns. Every block is its own contiguous tensor: products
    written into a column slice of one big matrix went through a hidden copy and ran ~2x slower."""

    @staticmethod
    def forward(ctx, features, weight, bias, targets, ignore_index, dtype):
        needs_grad = any(ctx.needs_input_grad[:3])
        with torch.autocast(features.device.type, enabled=False):
            h, w = features.to(dtype), weight.to(dtype)
            b = bias.to(dtype)[:, None] if bias is not None else None
            vocab, device = w.shape[0], h.device
            keep = targets != ignore_index
            safe_targets = torch.where(keep, targets, 0)
            total = torch.zeros((), dtype=torch.float32, device=device)
            bounds = blocks(h.shape[0], vocab, device.type, dtype)
            # (softmax - one-hot)^T of each block of rows, in the product dtype: the backward's only input.
            grad_blocks = []
            grad_bias = torch.zeros(vocab, dtype=torch.float32, device=device) if needs_grad and b is not None else None
            for start, end in bounds:
                rows_t = h[start:end].t()
                made = torch.mm(w, rows_t) if b is None else torch.addmm(b, w, rows_t)  # (vocab, block)
                logits = made.float()  # the same tensor in fp32; a copy for other dtypes
                cols = torch.arange(end - start, device=device)
                cols_keep, cols_targets = keep[start:end], safe_targets[start:end]
                target_logit = logits[cols_targets, cols]
                peak = logits.amax(0)
                logits.sub_(peak).exp_()
                norm = logits.sum(0)
                nll = peak + norm.log() - target_logit
                total += torch.where(cols_keep, nll, 0.0).sum()
                if not needs_grad:
                    continue
                # softmax - one_hot(target), zero for ignored rows
                logits.mul_(torch.where(cols_keep, norm.reciprocal(), 0.0))
                logits[cols_targets, cols] -= cols_keep.float()
                if grad_bias is not None:
                    grad_bias += logits.sum(1)
                if logits is not made:
                    made.copy_(logits)
                grad_blocks.append(made)
        if needs_grad:
            ctx.save_for_backward(h, w, grad_bias, *grad_blocks)
            ctx.bounds = bounds
            ctx.dtypes = (features.dtype, weight.dtype, bias.dtype if bias is not None else None)
        return total

    @staticmethod
    def backward(ctx, grad_total):
        h, w, grad_bias, *grad_blocks = ctx.saved_tensors
        features_dtype, weight_dtype, bias_dtype = ctx.dtypes
        with torch.autocast(h.device.type, enabled=False):
            g = grad_total.to(h.dtype)
            grad_features = grad_weight = grad_b = None
            if ctx.needs_input_grad[0]:
                grad_features = torch.cat([block.t() @ w for block in grad_blocks]).mul_(g).to(features_dtype)
            if ctx.needs_input_grad[1]:
                for (start, end), block in zip(ctx.bounds, grad_blocks, strict=True):
                    part = block @ h[start:end]
                    grad_weight = part.float() if grad_weight is None else grad_weight.add_(part)
                grad_weight = grad_weight.mul_(grad_total).to(weight_dtype)
            if grad_bias is not None and ctx.needs_input_grad[2]:
                grad_b = grad_bias.mul(grad_total).to(bias_dtype)
        return grad_features, grad_weight, grad_b, None, None, None
