"""``ResdiagCallback`` for Lightning (``lightning.pytorch``): records gradient flow every ``every``
optimizer steps of ``Trainer.fit``.

    from resdiag.integrations.lightning import ResdiagCallback
    trainer = L.Trainer(callbacks=[ResdiagCallback(every=50, jsonl="resdiag.jsonl")])

A recorded step opens before the first micro-batch of the optimizer step (``on_train_batch_start``
at ``trainer.global_step``) and closes in ``on_before_optimizer_step``, after the last backward and
after Lightning has unscaled the gradients of a GradScaler (the boundary norms, hooked during the
scaled backward, are divided by the same scale). Values go to ``pl_module.log_dict`` (every logger
of the Trainer) and, on rank 0, to the JSON lines; the parameter keys are those of
``lightning.pytorch.utilities.grad_norm(pl_module, 2)``.
"""

from __future__ import annotations

from lightning.pytorch import Callback

from resdiag.integrations import Recorder, log_values


class ResdiagCallback(Recorder, Callback):
    """Takes the Monitor's options: every, features, blocks, jsonl, thresholds, ..."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        self.make_monitor(pl_module, self.jsonl)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        m = self.monitor
        if m is not None and not m.is_open and m.due(trainer.global_step):
            m.begin(trainer.global_step)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        m = self.monitor
        if m is None or not m.is_open:
            return
        rec = m.end(scaler=getattr(trainer.precision_plugin, "scaler", None), optimizer=optimizer)
        pl_module.log_dict(log_values(rec), on_step=True, on_epoch=False, sync_dist=False)
        # manual optimization steps several optimizers per batch (a GAN's D, then G), each a
        # global step: the next one, if due, opens now, not at the next batch
        if not pl_module.automatic_optimization and m.due(trainer.global_step + 1):
            m.begin(trainer.global_step + 1)

    def on_validation_start(self, trainer, pl_module) -> None:
        m = self.monitor  # a record opened early for the next manual-optimization step: not validation's
        if m is not None and m.is_open and not pl_module.automatic_optimization:
            m.abort()

    def on_train_end(self, trainer, pl_module) -> None:
        if self.monitor is not None:
            self.monitor.abort()  # a step that never reached its optimizer step
            self.monitor.close()
