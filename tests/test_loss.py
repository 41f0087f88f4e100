"""The fused output layer + cross-entropy gives F.cross_entropy's loss and gradients."""

import pytest
import torch
import torch.nn.functional as F

from rnnlm.models import loss as loss_module
from rnnlm.models.loss import linear_cross_entropy

PAD = 0


def _inputs(bias: bool = True, n: int = 37, d: int = 12, v: int = 50):
    g = torch.Generator().manual_seed(0)
    h = torch.randn(n, d, generator=g, requires_grad=True)
    w = (torch.randn(v, d, generator=g) * 0.3).requires_grad_()
    b = torch.randn(v, generator=g).requires_grad_() if bias else None
    t = torch.randint(1, v, (n,), generator=g)
    t[[0, 5, 6, n - 1]] = PAD  # ignored rows, one of them in the last block
    return h, w, b, t


def _grads(loss, tensors):
    loss.backward()
    grads = [None if x is None else x.grad.clone() for x in tensors]
    for x in tensors:
        if x is not None:
            x.grad = None
    return grads


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("block_elements", [8 * 50, 1 << 20])  # blocks of 7 or 8 rows; one block
def test_matches_cross_entropy_fp32(monkeypatch, bias, block_elements):
    monkeypatch.setattr(loss_module, "CPU_BLOCK_ELEMENTS", block_elements)
    monkeypatch.setattr(loss_module, "CPU_CAST_BLOCK_ELEMENTS", block_elements)
    h, w, b, t = _inputs(bias)
    tensors = [h, w, b]
    want = F.cross_entropy(F.linear(h, w, b), t, ignore_index=PAD, reduction="sum")
    want_grads = _grads(want * 0.7, tensors)  # a scale on the loss reaches every gradient
    got = linear_cross_entropy(h, w, b, t, PAD)
    assert got.dtype == torch.float32 and got.shape == ()
    torch.testing.assert_close(got, want)
    for got_g, want_g in zip(_grads(got * 0.7, tensors), want_grads, strict=True):
        if want_g is None:
            assert got_g is None
        else:
            torch.testing.assert_close(got_g, want_g)


def test_ignored_rows_get_no_gradient():
    h, w, b, t = _inputs()
    linear_cross_entropy(h, w, b, t, PAD).backward()
    assert (h.grad[t == PAD] == 0).all() and (h.grad[t != PAD] != 0).any()


def test_bf16_autocast_matches_the_unfused_path(monkeypatch):
    monkeypatch.setattr(loss_module, "CPU_CAST_BLOCK_ELEMENTS", 20 * 300)  # 4 blocks of 16 rows
    h, w, b, t = _inputs(n=64, d=32, v=300)
    tensors = [h, w, b]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = F.linear(h, w, b)
    want = F.cross_entropy(logits.float(), t, ignore_index=PAD, reduction="sum")
    want_grads = _grads(want, tensors)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = linear_cross_entropy(h, w, b, t, PAD)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-3)  # the same bf16 logits, fp32 softmax
    for got_g, want_g, x in zip(_grads(got, tensors), want_grads, tensors, strict=True):
        assert got_g.dtype == x.dtype
        torch.testing.assert_close(got_g, want_g, rtol=2e-2, atol=1e-2)  # a bf16 step is 2^-7 near 1


def test_without_gradients_only_the_loss():
    h, w, b, t = _inputs()
    with torch.no_grad():
        got = linear_cross_entropy(h, w, b, t, PAD)
    assert not got.requires_grad
    torch.testing.assert_close(got, F.cross_entropy(F.linear(h, w, b), t, ignore_index=PAD, reduction="sum"))


def test_tied_weights_sum_both_gradients():
    emb = torch.nn.Embedding(50, 12)
    ids = torch.randint(1, 50, (4, 9))
    tensors = [emb.weight]
    features = emb(ids).flatten(0, 1).tanh()
    want = F.cross_entropy(F.linear(features, emb.weight), ids.flatten().roll(1), reduction="sum")
    want_grads = _grads(want, tensors)
    features = emb(ids).flatten(0, 1).tanh()
    got = linear_cross_entropy(features, emb.weight, None, ids.flatten().roll(1), -100)
    torch.testing.assert_close(_grads(got, tensors)[0], want_grads[0])


def test_blocks_are_nearly_equal_and_cover_every_row():
    assert loss_module.blocks(37, 50, "cpu", torch.float32) == [(0, 37)]
    parts = loss_module.blocks(2000, 10_000, "cpu", torch.float32)  # 838 rows at most: 3 blocks
    assert parts == [(0, 666), (666, 1333), (1333, 2000)]
    assert loss_module.blocks(2000, 10_000, "cuda", torch.bfloat16) == [(0, 2000)]
    assert loss_module.blocks(0, 10_000, "cpu", torch.float32) == [(0, 0)]
