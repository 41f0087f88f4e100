"""WeightAveraging: runs the module's weight average (rnnlm.training.averaging) through a fit: started at its
epoch, swapped in for validation and test, and AWD-LSTM's trigger (and
stop) read from each validation's loss. The LightningModule adds it itself (configure_callbacks), so any
Trainer gets it; the update after each optimizer step, saving and loading stay with the module, which must do
them before any callback saves a checkpoint."""

from __future__ import annotations

import logging

import lightning as L

log = logging.getLogger("rnnlm")


class WeightAveraging(L.Callback):
    def on_train_epoch_start(self, trainer, pl_module) -> None:
        pl_module.averaging.on_epoch_start(pl_module.net, trainer.current_epoch)

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        pl_module.averaging.swap_in(pl_module.net)

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        pl_module.averaging.swap_in(pl_module.net)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        pl_module.averaging.swap_out(pl_module.net)  # the sums are in: the module logs them after this hook

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        pl_module.averaging.swap_out(pl_module.net)

    def on_validation_end(self, trainer, pl_module) -> None:
        """After the module logged val/loss, before a checkpoint is saved (Lightning runs checkpointing last)."""
        if trainer.sanity_checking or trainer.state.fn != "fit" or "val/loss" not in trainer.callback_metrics:
            return
        averaging, epoch = pl_module.averaging, trainer.current_epoch
        event = averaging.after_validation(pl_module.net, epoch, float(trainer.callback_metrics["val/loss"]))
        if event == "started":
            log.info(
                "validation loss is worse than the best before the last %d epochs: averaging the weights from epoch "
                "%d on (NT-ASGD); validation, checkpoints and test use the average", averaging.nonmono, epoch + 1,
            )  # fmt: skip
        elif event == "stop":  # every rank saw the same synced loss, so all stop together
            log.info("validation loss is worse than the best before the last %d epochs: stopping (module."
                     "averaging.stop)", averaging.nonmono)  # fmt: skip
            trainer.should_stop = True
