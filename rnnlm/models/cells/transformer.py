"""A causal decoder-only Transformer as a cell (pytorch/examples' word_language_model offers one beside its RNNs).

Widths in rnnlm's terms: model.embed_size is the model width (every residual stream and the output), model.hidden_size
the feed-forward width, model.heads the attention heads, model.num_layers the blocks. Pre-norm blocks (GPT-2):

    x = x + drop(W_o attention(LN(x))),   x = x + drop(W_2 drop(gelu(W_1 LN(x)))),   output = LN(x)

Positions are rotary (Su et al. 2021): they enter only as the distance between a query and a key, so nothing is
learned per position and there is no longest sequence. Each token attends to itself and the model.context - 1
tokens before it (a sliding window), whichever way the tokens arrive: a whole window at once (training, scoring),
window by window with the state (stream mode), or one token at a time (generation, a key/value cache). The state
is that cache: each layer's keys and values of the last context - 1 tokens (memory, as Transformer-XL keeps it,
detached between stream windows), and how many of those slots are filled, per row. In sentence mode the state
starts empty for each sentence, so a sentence attends within itself.

State layout, batch on dimension 1 like every cell's (base.py): (filled (1, batch), k_0, v_0, k_1, v_1, ...),
each k and v (context - 1, batch, embed_size), un-rotated (the rotation is applied at each call, by distance).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rnnlm.errors import UserError
from rnnlm.models.cells.base import Cell
from rnnlm.models.settings import NetworkSettings, optional_rate, positive, setting

ROTARY_BASE = 10_000.0


@dataclasses.dataclass(kw_only=True)
class TransformerSettings(NetworkSettings):
    embed_size: int = setting(200, positive, structural=True)  # the model width
    hidden_size: int = setting(800, positive, structural=True)  # the feed-forward width
    num_layers: int = setting(2, positive, structural=True)
    heads: int = setting(4, positive, structural=True)
    context: int = setting(128, positive, structural=True)  # tokens a token attends to, itself included
    dropout_hidden: float | None = setting(None, optional_rate)  # residual branches and feed-forward; null: dropout
    dropout_attention: float | None = setting(None, optional_rate)  # attention weights; null: model.dropout
    tie_weights: bool = setting(True, structural=True)

    @property
    def output_size(self) -> int:
        return self.embed_size

    def shape(self) -> str:
        return (f"{self.cell} {self.num_layers} x {self.embed_size} (feed-forward {self.hidden_size}, "
                f"{self.heads} heads, context {self.context})")  # fmt: skip

    def check_relations(self) -> None:
        width, heads = self.embed_size, self.heads
        if width % heads or (width // heads) % 2:
            fits = 2 * heads * max(1, round(width / (2 * heads)))
            raise UserError(
                f"model.embed_size={width} must split into model.heads={heads} heads of an even width (rotary "
                f"positions turn pairs of features): set model.embed_size={fits} or change model.heads."
            )
        if self.init_range is not None:
            raise UserError(f"model.init_range={self.init_range} sets every weight uniform, the layer norms' scales "
                            "too: drop it for model=transformer (its blocks set their own init).")  # fmt: skip
        super().check_relations()

    @classmethod
    def budget_widths(cls, model: dict[str, Any], step: int) -> dict[str, int]:
        """model.params scales the model width in steps that keep each head's width even, and the feed-forward
        width with it (at the configured ratio, 4 by default)."""
        given = {**cls.defaults(), **model}
        heads, ratio = given["heads"], given["hidden_size"] / given["embed_size"]
        width = 2 * heads * step
        return {"embed_size": width, "hidden_size": max(1, round(ratio * width))}


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (batch, heads, time, head width) turned by each position's angles (time, head width / 2)."""
    a, b = x.float().chunk(2, dim=-1)
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1).to(x.dtype)


class Block(nn.Module):
    def __init__(self, width: int, ff: int, heads: int, p_hidden: float, p_attention: float, layers: int) -> None:
        super().__init__()
        self.heads, self.p_hidden, self.p_attention = heads, p_hidden, p_attention
        self.norm_attention, self.norm_ff = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.out = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.ff_in, self.ff_out = nn.Linear(width, ff), nn.Linear(ff, width)
        for linear in (self.qkv, self.out, self.ff_in, self.ff_out):  # GPT-2's init: the residual writers smaller
            std = 0.02 / math.sqrt(2 * layers) if linear in (self.out, self.ff_out) else 0.02
            nn.init.normal_(linear.weight, 0.0, std)
            nn.init.zeros_(linear.bias)

    def heads_of(self, x: torch.Tensor) -> torch.Tensor:  # (batch, time, width) -> (batch, heads, time, head width)
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def forward(self, x, memory: tuple[torch.Tensor, torch.Tensor] | None, angles, mask):
        """x (batch, time, width); memory: the earlier tokens' keys and values (batch, slots, width) or None.
        Returns the new x and this call's keys and values (batch, time, width), un-rotated."""
        q, k, v = self.qkv(self.norm_attention(x)).chunk(3, dim=-1)
        keys, values = (k, v) if memory is None else (torch.cat([m.to(k.dtype), n], 1) for m, n in zip(memory, (k, v)))
        cos, sin = angles
        T = x.shape[1]
        q = rotate(self.heads_of(q), cos[-T:], sin[-T:])
        attended = F.scaled_dot_product_attention(
            q, rotate(self.heads_of(keys), cos, sin), self.heads_of(values),
            attn_mask=mask, is_causal=mask is None, dropout_p=self.p_attention if self.training else 0.0,
        )  # fmt: skip
        drop = self.p_hidden if self.training else 0.0
        x = x + F.dropout(self.out(attended.transpose(1, 2).flatten(2)), drop)
        x = x + F.dropout(self.ff_out(F.dropout(F.gelu(self.ff_in(self.norm_ff(x))), drop)), drop)
        return x, k, v


class TransformerStack(nn.Module):
    def __init__(self, settings: TransformerSettings) -> None:
        super().__init__()
        s = settings
        self.context, self.head_width = s.context, s.embed_size // s.heads
        p_hidden, p_attention = s.rate(s.dropout_hidden), s.rate(s.dropout_attention)
        width, layers = s.embed_size, s.num_layers
        self.blocks = nn.ModuleList(
            Block(width, s.hidden_size, s.heads, p_hidden, p_attention, layers) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(s.embed_size)
        inverse = ROTARY_BASE ** (-torch.arange(0, self.head_width, 2, dtype=torch.float32) / self.head_width)
        self.register_buffer("inverse_frequency", inverse, persistent=False)

    def angles(self, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        turns = torch.arange(length, device=device, dtype=torch.float32)[:, None] * self.inverse_frequency.to(device)
        return turns.cos(), turns.sin()

    def mask(self, slots: int, time: int, filled: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
        """Which keys each query sees (True: attend): itself and the context - 1 tokens before it, of those the
        memory holds. None where that is plain causal attention (no memory, a window within the context)."""
        if filled is None and time <= self.context:
            return None
        query = torch.arange(time, device=device)[:, None] + slots  # positions in [memory, this call]
        key = torch.arange(slots + time, device=device)[None]
        seen = (key <= query) & (query - key < self.context)
        if filled is None:
            return seen
        held = key >= slots - filled.to(device)[0, :, None]  # (batch, slots + time): the memory's filled slots
        return (seen[None] & held[:, None])[:, None]  # (batch, 1, time, keys)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, ...] | None = None):
        batch, time, _ = x.shape
        slots = self.context - 1
        filled, memories = None, [None] * len(self.blocks)
        if state is not None and slots:
            filled = state[0]
            pairs = zip(state[1::2], state[2::2])  # each layer's keys and values, (slots, batch, width)
            memories = [(k.transpose(0, 1), v.transpose(0, 1)) for k, v in pairs]
        held = slots if filled is not None else 0
        angles = self.angles(held + time, x.device)
        mask = self.mask(held, time, filled, x.device)
        kept: list[torch.Tensor] = []
        for block, memory in zip(self.blocks, memories):
            x, keys, values = block(x, memory, angles, mask)
            old_keys, old_values = memory or (None, None)
            kept += [self.remember(old_keys, keys), self.remember(old_values, values)]
        before = torch.zeros(1, batch, dtype=torch.long, device=x.device) if filled is None else filled
        return self.norm(x), ((before + time).clamp(max=slots), *kept)

    def remember(self, old: torch.Tensor | None, new: torch.Tensor) -> torch.Tensor:
        """The last context - 1 tokens' keys (or values) of the memory `old` and this call's `new`, both (batch,
        time, width), as (slots, batch, width), zeros where empty."""
        slots = self.context - 1
        recent = new if old is None else torch.cat([old.to(new.dtype), new], 1)
        recent = recent[:, -slots:] if slots else recent[:, :0]
        if recent.shape[1] < slots:
            recent = F.pad(recent, (0, 0, slots - recent.shape[1], 0))
        return recent.transpose(0, 1)


class Transformer(Cell):
    Settings = TransformerSettings

    @classmethod
    def build(cls, settings: TransformerSettings, input_size: int) -> nn.Module:
        return TransformerStack(settings)
