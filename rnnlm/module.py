"""LanguageModel: the LightningModule that trains an RNNLanguageModel with teacher forcing.

Every hyperparameter it keeps is a plain type (the tokenizer as its JSON string, configs as dicts), so a
checkpoint alone rebuilds the model: LanguageModel.load_from_checkpoint(path).
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.loggers import WandbLogger

from rnnlm import rng
from rnnlm.data.batch import Batch
from rnnlm.data.tokenizer import special_ids, tokenizer_from_json
from rnnlm.errors import UserError
from rnnlm.loss import linear_cross_entropy
from rnnlm.metrics import CorpusNLL
from rnnlm.model import RNNLanguageModel

SPLITS = ("train", "val", "test")
log = logging.getLogger("rnnlm")


class LanguageModel(L.LightningModule):
    def __init__(
        self,
        tokenizer_json: str,
        model: dict[str, Any],
        optim: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
        tokenizer_cfg: dict[str, Any] | None = None,  # the settings that built it, to check a resume against
    ) -> None:
        super().__init__()
        # The tokenizer JSON is large: keep it in the checkpoint, out of the logger's hparams table.
        self.save_hyperparameters(logger=False)
        self.tokenizer = tokenizer_from_json(tokenizer_json)
        self.ids = special_ids(self.tokenizer)
        self.net = RNNLanguageModel(vocab_size=self.tokenizer.get_vocab_size(), **model)
        # One corpus-NLL accumulator per split (train_nll, val_nll, test_nll).
        for split in SPLITS:
            setattr(self, f"{split}_nll", CorpusNLL())
        # One dict of plain numbers per finished epoch (train/val ppl, tokens/s): results.json and the
        # sweep report plot it. Saved in checkpoints so a resumed run's history starts at epoch 0.
        self.history: list[dict[str, float]] = []
        # The training sums survive a mid-epoch checkpoint, so a resumed epoch's train/ppl is exact too.
        self.train_nll.persistent(True)
        # trainer.skip_nonfinite (set by train()): skip steps whose gradient is nan/inf instead of stopping.
        self.skip_nonfinite = False
        self.skipped_steps = 0
        self._pending_rng: dict | None = None
        self._batch_idx = 0

    def forward(self, inputs: torch.Tensor, hidden=None):
        return self.net(inputs, hidden)

    def summed_nll(self, batch: Batch) -> torch.Tensor:
        """Teacher-forced NLL summed over every non-pad target of the batch, in one fused RNN call."""
        features, _ = self.net.features(batch.inputs)
        decoder = self.net.decoder
        return linear_cross_entropy(
            features.flatten(0, 1), decoder.weight, decoder.bias, batch.targets.flatten(), self.ids["pad"]
        )

    def _step(self, batch: Batch, split: str) -> torch.Tensor:
        nll = self.summed_nll(batch)
        # A nan/inf batch (stopped or skipped at the gradient check) must not poison the epoch's sums;
        # torch.where keeps this free of a device sync.
        finite = torch.isfinite(nll)
        getattr(self, f"{split}_nll").update(torch.where(finite, nll, 0.0), finite.long() * batch.num_tokens)
        return nll / batch.num_tokens

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss = self._step(batch, "train")
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=batch.num_tokens)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def _log_corpus(self, split: str) -> None:
        metric = getattr(self, f"{split}_nll")
        nll = metric.compute()  # syncs the sums across DDP ranks
        metric.reset()
        self.log_dict({f"{split}/loss": nll.float(), f"{split}/ppl": nll.exp().float()}, prog_bar=split != "train")

    def on_train_epoch_start(self) -> None:
        # Lightning only forwards set_epoch to a *sampler*; our batch sampler reshuffles per epoch itself.
        batch_sampler = getattr(self.trainer.train_dataloader, "batch_sampler", None)
        if hasattr(batch_sampler, "set_epoch"):
            batch_sampler.set_epoch(self.current_epoch)

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        self._batch_idx = batch_idx
        if self._pending_rng is not None:
            # Restored here, just before the first resumed forward, not at load time: whatever runs in
            # between (the sanity check, opening the loader) must not shift the random stream of dropout.
            rng.restore(self._pending_rng)
            self._pending_rng = None
        # The sampler's position for mid-epoch checkpoints: batches up to this one count as trained on
        # (the loader itself runs ahead of training by its prefetch, so it cannot count for itself).
        batch_sampler = getattr(self.trainer.train_dataloader, "batch_sampler", None)
        if hasattr(batch_sampler, "consumed"):
            batch_sampler.consumed = batch_idx + 1

    def on_train_epoch_end(self) -> None:
        self._log_corpus("train")
        # One line per epoch for the log file and terminal (progress bars get overwritten). Validation
        # has already run when it ends the epoch, and callbacks logged tokens/s before this hook.
        m = self.trainer.callback_metrics
        keys = ("train/ppl", "val/ppl", "train/tokens_per_sec")
        self.history.append({"epoch": self.current_epoch, **{k: float(m[k]) for k in keys if k in m}})
        parts = [f"epoch {self.current_epoch}"]
        parts += [f"{k} {float(m[k]):.2f}" for k in ("train/ppl", "val/ppl") if k in m]
        if "train/tokens_per_sec" in m:
            parts.append(f"{float(m['train/tokens_per_sec']):.0f} tokens/s")
        if self.trainer.is_global_zero:
            log.info(" | ".join(parts))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rnnlm_history"] = list(self.history)
        checkpoint["rnnlm_rng"] = rng.capture()
        checkpoint["rnnlm_skipped_steps"] = self.skipped_steps
        for lg in self.trainer.loggers:  # so that a resumed run continues the same wandb run
            if isinstance(lg, WandbLogger):
                checkpoint["wandb_run_id"] = str(lg.version)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.history = list(checkpoint.get("rnnlm_history", []))
        self._pending_rng = checkpoint.get("rnnlm_rng")
        self.skipped_steps = int(checkpoint.get("rnnlm_skipped_steps", 0))
        state = checkpoint.get("state_dict", {})
        for key, value in self.train_nll.state_dict().items():  # checkpoints from before these sums were kept
            state.setdefault(f"train_nll.{key}", value)

    def on_validation_epoch_end(self) -> None:
        self._log_corpus("val")

    def on_test_epoch_end(self) -> None:
        self._log_corpus("test")

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        """Clip by global norm and log the pre-clip norm, which clipping computes anyway."""
        if gradient_clip_algorithm not in (None, "norm"):
            return super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        params = [p for p in self.parameters() if p.grad is not None]
        norm = torch.nn.utils.get_total_norm([p.grad for p in params])
        self.log("train/grad_norm", norm, on_step=True, on_epoch=False)
        # fp16's loss scaler expects inf gradients now and then and skips those steps itself.
        scaled = getattr(self.trainer.precision_plugin, "scaler", None) is not None
        if not scaled and not torch.isfinite(norm):  # after DDP's all-reduce: every rank decides alike
            self._nonfinite(params, float(norm))
            return
        if gradient_clip_val:
            torch.nn.utils.clip_grads_with_norm_(params, gradient_clip_val, norm)

    def _nonfinite(self, params: list[torch.nn.Parameter], norm: float) -> None:
        where = f"step {self.trainer.global_step} (epoch {self.current_epoch}, batch {self._batch_idx})"
        if self.skip_nonfinite:
            for p in params:
                p.grad = None  # the optimizer leaves parameters without a gradient untouched, moments included
            self.skipped_steps += 1
            log.warning("gradient norm %s at %s: step skipped (%d so far)", norm, where, self.skipped_steps)
            self.log("train/skipped_steps", float(self.skipped_steps), on_step=True, on_epoch=False)
            return
        ckpt = self.trainer.checkpoint_callback
        kept = (ckpt.last_model_path or ckpt.best_model_path) if ckpt is not None else ""
        raise UserError(
            f"training diverged: the gradient norm is {norm} at {where}; the last good checkpoint is "
            f"{kept or 'none yet (no epoch finished)'}: resume from it with a lower optim.lr or "
            "trainer.gradient_clip_val, or set trainer.skip_nonfinite=true to skip such steps."
        )

    def configure_optimizers(self):
        cfg = dict(self.hparams.optim or {"_target_": "torch.optim.Adam", "lr": 1e-3})
        optimizer = instantiate(cfg, params=self.parameters())
        if not self.hparams.scheduler:
            return optimizer
        sched_cfg = dict(self.hparams.scheduler)
        monitor = sched_cfg.pop("monitor", "val/ppl")
        scheduler = instantiate(sched_cfg, optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": monitor}}

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
