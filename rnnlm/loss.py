"""The output layer and its cross-entropy in one pass: summed NLL of `features @ weight.T + bias`.

Why not `F.cross_entropy(decoder(features))`: with a 10k-word vocabulary the logits of a batch are a
(tokens x vocab) matrix of ~28 MB that the unfused path writes and reads five times (logits, log-softmax,
the NLL's zero-filled gradient, the log-softmax backward, the bias gradient's sum). Here the logits are
made a block of rows at a time, small enough to stay in cache, and each block is turned into its
gradient (softmax minus one-hot) at once; the backward is then just the two matrix products. On a
2-core CPU this takes a training step of LSTM 2x200 from ~90 to ~70% of its time in matrix products
(bench/README numbers in docs/BENCHMARKS.md). The result is the same NLL and gradients to rounding.

Under autocast the products run in the autocast dtype (bf16 on CPU) as `nn.Linear` would, while the
softmax of each block is computed in fp32.
"""

from __future__ import annotations

import torch

# Logit elements per block on CPU: 4 MB of fp32 (~100 rows of a 10k vocabulary), which stays in the
# caches; measured on 2 cores: 2^19-2^21 elements alike, 2^16 (6 rows) slower than no blocks at all.
CPU_BLOCK_ELEMENTS = 1 << 20
# On GPUs memory is fast and each block costs kernel launches: use one block up to this size.
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


def block_rows(vocab_size: int, device: str) -> int:
    budget = CPU_BLOCK_ELEMENTS if device == "cpu" else GPU_BLOCK_ELEMENTS
    return max(8, budget // max(vocab_size, 1))


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, features, weight, bias, targets, ignore_index, dtype):
        needs_grad = any(ctx.needs_input_grad[:3])
        with torch.autocast(features.device.type, enabled=False):
            h, w = features.to(dtype), weight.to(dtype)
            b = bias.to(dtype) if bias is not None else None
            n, vocab = h.shape[0], w.shape[0]
            keep = targets != ignore_index
            safe_targets = torch.where(keep, targets, 0)
            total = torch.zeros((), dtype=torch.float32, device=h.device)
            # Softmax minus one-hot of every row, in the product dtype: the backward's only input.
            grad_logits = torch.empty(n, vocab, dtype=dtype, device=h.device) if needs_grad else None
            with_bias = needs_grad and b is not None
            grad_bias = torch.zeros(vocab, dtype=torch.float32, device=h.device) if with_bias else None
            step = block_rows(vocab, h.device.type)
            # fp32 blocks are made in place in grad_logits; other dtypes go through an fp32 copy.
            in_place = needs_grad and dtype == torch.float32
            for start in range(0, n, step):
                end = min(n, start + step)
                out = grad_logits[start:end] if in_place else None
                if b is None:
                    logits = torch.mm(h[start:end], w.t(), out=out)
                else:
                    logits = torch.addmm(b, h[start:end], w.t(), out=out)
                logits = logits.float()
                rows_keep, rows_targets = keep[start:end], safe_targets[start:end]
                target_logit = logits.gather(1, rows_targets[:, None]).squeeze(1)
                peak = logits.amax(1, keepdim=True)
                logits.sub_(peak).exp_()
                norm = logits.sum(1, keepdim=True)
                nll = peak.squeeze(1) + norm.log().squeeze(1) - target_logit
                total += torch.where(rows_keep, nll, 0.0).sum()
                if not needs_grad:
                    continue
                # softmax - one_hot(target), zero for ignored rows
                logits.mul_(torch.where(rows_keep[:, None], norm.reciprocal(), 0.0))
                logits[torch.arange(end - start, device=h.device), rows_targets] -= rows_keep.float()
                if not in_place:
                    grad_logits[start:end] = logits
                if grad_bias is not None:
                    grad_bias += logits.sum(0)
        if needs_grad:
            ctx.save_for_backward(h, w, grad_logits, grad_bias)
            ctx.dtypes = (features.dtype, weight.dtype, bias.dtype if bias is not None else None)
        return total

    @staticmethod
    def backward(ctx, grad_total):
        h, w, grad_logits, grad_bias = ctx.saved_tensors
        features_dtype, weight_dtype, bias_dtype = ctx.dtypes
        with torch.autocast(h.device.type, enabled=False):
            g = grad_total.to(grad_logits.dtype)
            grad_features = grad_weight = None
            if ctx.needs_input_grad[0]:
                grad_features = (grad_logits @ w).mul_(g).to(features_dtype)
            if ctx.needs_input_grad[1]:
                grad_weight = (grad_logits.t() @ h).mul_(g).to(weight_dtype)
            grad_b = None
            if grad_bias is not None and ctx.needs_input_grad[2]:
                grad_b = grad_bias.mul(grad_total).to(bias_dtype)
        return grad_features, grad_weight, grad_b, None, None, None
