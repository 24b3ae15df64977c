"""``ResdiagCallback`` for the HuggingFace ``transformers.Trainer``: records gradient flow every
``every`` optimizer steps of ``Trainer.train``.

    from resdiag.integrations.transformers import ResdiagCallback
    trainer = Trainer(model=model, args=args, train_dataset=ds)
    ResdiagCallback.attach(trainer, every=50, jsonl="resdiag.jsonl")
    trainer.train()

A recorded step is numbered as the Trainer numbers its logs: the update that takes
``state.global_step`` from k - 1 to k is step k, whose ``grad_norm`` the Trainer logs at step k. It
opens in ``on_step_begin`` (before its first micro-batch) and closes in ``on_pre_optimizer_step``,
i.e. after the last backward and
after the Trainer's gradient clipping (``max_grad_norm``; the Trainer logs the norm before
clipping as ``grad_norm``): the weight rows are the clipped gradient the optimizer applies, the
boundary norms are those of the backward. Values are added to the ``logs`` of the next ``on_log``,
the same log line as the Trainer's own ``grad_norm`` of that update when ``every`` is a multiple of
``logging_steps``
(every ``report_to`` integration receives them when the callback runs before them: ``attach``
puts it first) and, on rank 0, written to the JSON lines.
"""

from __future__ import annotations

from transformers import TrainerCallback

from resdiag.integrations import Recorder, log_values


class ResdiagCallback(Recorder, TrainerCallback):
    """Takes the Monitor's options: every, features, blocks, jsonl, thresholds, ..."""

    def __init__(self, every: int = 100, **kwargs):
        super().__init__(every, **kwargs)
        self._trainer = None
        self._pending: dict[str, float] = {}

    @classmethod
    def attach(cls, trainer, every: int = 100, **kwargs) -> ResdiagCallback:
        """Make a callback and put it first in ``trainer``'s callbacks, so that the reporting
        integrations see its values in ``on_log``; it also reads the Trainer's GradScaler."""
        callback = cls(every, **kwargs)
        callback._trainer = trainer
        trainer.callback_handler.callbacks.insert(0, callback)
        return callback

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.make_monitor(model, self.jsonl if state.is_world_process_zero else None)

    def on_step_begin(self, args, state, control, **kwargs):
        m, step = self.monitor, state.global_step + 1  # the Trainer's number for this update
        if m is not None and not m.is_open and m.due(step):
            m.begin(step, at_init=state.global_step == 0)

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        m = self.monitor
        if m is None or not m.is_open:
            return
        rec = m.end(scaler=self._scaler(), optimizer=kwargs.get("optimizer"))
        self._pending = log_values(rec)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is not None and self._pending and "loss" in logs:  # training logs only
            logs.update(self._pending)
            self._pending = {}

    def on_train_end(self, args, state, control, **kwargs):
        if self.monitor is not None:
            self.monitor.abort()
            self.monitor.close()

    def _scaler(self):
        accelerator = getattr(self._trainer, "accelerator", None)
        return getattr(accelerator, "scaler", None)
