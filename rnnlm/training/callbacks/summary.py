"""The model summary a run prints: parameters per part of the network, instead of Lightning's table of
the LightningModule's attributes (with its metric states and a FLOPs column that reads 0 here)."""

from __future__ import annotations

import logging

from lightning.pytorch.callbacks import ModelSummary
from lightning.pytorch.utilities import rank_zero_only

from rnnlm.lightning_api import summary_max_depth

log = logging.getLogger("rnnlm")


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class ParameterSummary(ModelSummary):
    """A ModelSummary (so Lightning adds none of its own) that logs one line per part of `pl_module.net`."""

    def on_fit_start(self, trainer, pl_module) -> None:
        if summary_max_depth(self) != 0:
            self._log_parts(pl_module)

    @rank_zero_only
    def _log_parts(self, pl_module) -> None:
        net = pl_module.net
        total = pl_module.num_parameters
        cfg = pl_module.hparams.model
        log.info("model: %s, %s parameters (%.1f MB in fp32)", net.cell, f"{total:,}", total * 4 / 2**20)
        rows = [
            ("embedding", f"{net.embedding.num_embeddings:,} x {net.embedding.embedding_dim}", _count(net.embedding)),
            ("rnn", net.settings.shape(), _count(net.rnn)),
        ]
        if len(net.head):
            rows.append(("head", " -> ".join(str(s) for s in cfg.get("linear_hidden_sizes", [])), _count(net.head)))
        rows.append(("decoder", *_decoder(net, cfg)))
        for name, shape, count in rows:
            log.info("  %-9s %-32s %12s", name, shape, f"{count:,}")


def _decoder(net, cfg) -> tuple[str, int]:
    """The output layer's shape and its own parameters (a tied embedding's are counted once, as the embedding)."""
    if net.adaptive:
        tied = " (tied where the sizes allow)" if cfg.get("tie_weights") else ""
        vocab = net.embedding.num_embeddings
        shape = f"{net.decoder.softmax.in_features} -> {vocab:,} adaptive, clusters at {net.decoder.cutoffs}{tied}"
        return shape, _count(net.decoder)
    tied = net.decoder.weight is net.embedding.weight
    count = net.decoder.bias.numel() if tied else _count(net.decoder)
    return f"{net.decoder.in_features} -> {net.decoder.out_features:,}" + (" (tied: bias only)" if tied else ""), count
