"""The RMS statistics of the dynamic-evaluation rule: per parameter, the root mean square of training gradients,
gathered in one pass over at most `adapt.stats_tokens` training tokens and saved beside the checkpoint, so later
evaluations (and generate.py's scoring) reuse them.

As Krause et al.'s code gathers them: the network in eval mode, batches of `adapt.stats_batch_size` columns read in
segments of `adapt.segment` tokens (the state carried), each batch's mean NLL differentiated; a sentence-trained
model reads whole sentences from zeros instead, as many per batch as hold about the same number of tokens.
Those batch sizes set the gradients' scale, and the rule's learning rates are relative to it. The layout is how the
model was trained, whatever the evaluation reads, so eval.py's file serves generate.py's scoring either way.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnnlm.adapt.settings import AdaptSettings
from rnnlm.data.batch import SentenceDataset
from rnnlm.data.corpus import EncodedSplit
from rnnlm.data.stream import to_stream, train_columns
from rnnlm.files import WriteError, atomic_open
from rnnlm.models.rnn_lm import detach

log = logging.getLogger("rnnlm")


def statistics_path(ckpt_path: str | Path, settings: AdaptSettings, layout: str) -> Path:
    p = Path(ckpt_path).expanduser()
    s = settings
    return p.with_name(f"{p.name}.rms-{layout}-n{s.segment}-b{s.stats_batch_size}-t{s.stats_tokens}.pt")


def _checkpoint_id(ckpt_path: str | Path) -> list[int]:
    st = os.stat(Path(ckpt_path).expanduser())
    return [st.st_size, st.st_mtime_ns]


def _batches(split: EncodedSplit, ids: dict[str, int], layout: str, start: str, settings: AdaptSettings):
    """The statistics pass's batches: (inputs, targets, continues) on the host."""
    per = settings.stats_batch_size * settings.segment  # tokens per batch
    count = max(1, settings.stats_tokens // per)
    if layout == "stream":
        columns = train_columns(to_stream(split, ids["eos"]), settings.stats_batch_size)
        for s in range(0, min(columns.steps, count * settings.segment), settings.segment):
            window = slice(s, s + settings.segment)
            yield columns.inputs[:, window].long(), columns.targets[:, window].long(), s > 0
        return
    data = SentenceDataset(split, ids["pad"], ids[start], ids["eos"])
    ends = np.cumsum(split.lengths + 1)
    first = 0
    for _ in range(count):
        if first >= len(split):
            return
        before = ends[first] - (split.lengths[first] + 1)  # tokens in the sentences already read
        last = int(np.searchsorted(ends, before + per)) + 1  # the first sentences that hold `per` tokens
        batch = data.__getitems__(list(range(first, min(last, len(split)))))
        yield batch.inputs, batch.targets, False
        first = last


def fingerprint(split: EncodedSplit, settings: AdaptSettings) -> str:
    """Of the training tokens the pass reads (a different corpus or tokenizer gives different statistics)."""
    head = split.tokens[: settings.stats_tokens * 2]
    return hashlib.sha1(np.ascontiguousarray(head).tobytes()).hexdigest()


def gather(net: nn.Module, split: EncodedSplit, ids: dict[str, int], layout: str, start: str,
           settings: AdaptSettings) -> tuple[list[torch.Tensor], int]:  # fmt: skip
    """Each parameter's RMS training gradient and the number of tokens read."""
    params = list(net.parameters())
    device = params[0].device
    squares = [torch.zeros_like(p) for p in params]
    hidden, batches, tokens = None, 0, 0
    for inputs, targets, continues in _batches(split, ids, layout, start, settings):
        inputs, targets = inputs.to(device), targets.to(device)
        features, hidden = net.features(inputs, hidden if continues else None)
        loss = F.cross_entropy(net.scores(features).flatten(0, 1).float(), targets.flatten(), ignore_index=ids["pad"])
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        with torch.no_grad():
            for square, g in zip(squares, grads):
                if g is not None:
                    square.addcmul_(g, g)
        hidden = detach(hidden)
        batches += 1
        tokens += int((targets != ids["pad"]).sum())
    return [torch.sqrt(s / batches) for s in squares], tokens


def load_or_gather(ckpt_path: str | Path, net: nn.Module, split: EncodedSplit | None, ids: dict[str, int],
                   layout: str, start: str, settings: AdaptSettings) -> list[torch.Tensor] | None:  # fmt: skip
    """The saved statistics when they were gathered for this checkpoint (and, given `split`, this training text);
    else gathered from `split` and saved (None: there is no split to gather from)."""
    path = statistics_path(ckpt_path, settings, layout)
    names = [n for n, _ in net.named_parameters()]
    wanted = fingerprint(split, settings) if split is not None else None
    if path.is_file():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        same = saved.get("names") == names and saved.get("checkpoint") == _checkpoint_id(ckpt_path)
        if same and wanted in (None, saved.get("data")):
            log.info("RMS statistics read from %s (%d training tokens)", path, saved["tokens"])
            return saved["ms"]
        log.info("%s was gathered for another checkpoint or training text: gathering anew", path)
    if split is None:
        return None
    ms, tokens = gather(net, split, ids, layout, start, settings)
    log.info("RMS statistics gathered from %d training tokens", tokens)
    record = {"ms": [m.cpu() for m in ms], "names": names, "tokens": tokens, "data": wanted,
              "checkpoint": _checkpoint_id(ckpt_path)}  # fmt: skip
    try:
        with atomic_open(path, "wb") as f:
            torch.save(record, f)
        log.info("saved them to %s for later evaluations", path)
    except WriteError as err:
        log.warning("the RMS statistics could not be saved to %s (%s): later evaluations will gather them again",
                    path, err.cause)  # fmt: skip
    return ms
