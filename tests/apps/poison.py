"""A test callback: make one training batch's forward produce nan, as a numerical blow-up would."""

import lightning as L


class NanAt(L.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step != self.step:
            return

        def once(module, args, output):
            handle.remove()
            return output * float("nan")

        handle = pl_module.net.embedding.register_forward_hook(once)
