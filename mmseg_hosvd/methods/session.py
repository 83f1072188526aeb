"""Per-run state a fine-tuning method keeps while the hook trains."""
from torch import nn


class MethodSession:
    """Per-run state of a method that needs more than its modules.

    The hook that applied the method calls these at the matching MMEngine
    events, after its own work.
    """

    def before_train(self, runner, model: nn.Module) -> None:
        """Called once the model is converted (checkpoints loaded)."""

    def before_train_iter(self, runner, model: nn.Module,
                          data_batch=None) -> None:
        """Called before each training iteration, norms already frozen."""

    def calibrate(self, model: nn.Module, inputs, logger=None) -> bool:
        """Adds one batch to what the method measures before it trains.

        Training calls it from :meth:`before_train_iter` where a method
        needs it; a benchmark that runs steps without a runner calls it
        itself, on every method alike. The base does nothing: a method
        without a calibration is always calibrated.

        Args:
            model: The converted (unwrapped) segmentor, in training mode.
            inputs: A preprocessed image batch.
            logger: Where the method logs what it fixed, or None.

        Returns:
            Whether the method is calibrated (it needs no more batches).
        """
        return True


class SessionChain(MethodSession):
    """Sessions driven one after the other at each event (an allocation
    of the per-layer setting, then the method's own session, which reads
    the allocated values).

    Args:
        sessions: The sessions, in the order they act.
    """

    def __init__(self, sessions):
        self.sessions = list(sessions)

    def before_train(self, runner, model: nn.Module) -> None:
        """Each session's :meth:`~MethodSession.before_train`, in order."""
        for session in self.sessions:
            session.before_train(runner, model)

    def before_train_iter(self, runner, model: nn.Module,
                          data_batch=None) -> None:
        """Each session's :meth:`~MethodSession.before_train_iter`."""
        for session in self.sessions:
            session.before_train_iter(runner, model, data_batch)

    def calibrate(self, model: nn.Module, inputs, logger=None) -> bool:
        """Each session's :meth:`~MethodSession.calibrate`, in order;
        whether all are calibrated."""
        return all([s.calibrate(model, inputs, logger)
                    for s in self.sessions])
