"""Learning-rate schedule: linear warmup to the peak, then linear decay to zero."""
from mxnet.lr_scheduler import LRScheduler


class LinearWarmupDecay(LRScheduler):
    """lr(t) = peak * t / warmup for t < warmup, then peak * (total - t) / (total - warmup).

    t counts optimizer updates starting at 1 for the first update, as MXNet's optimizers do;
    the value at update t equals HuggingFace's get_linear_schedule_with_warmup at step t - 1.
    """

    def __init__(self, peak_lr: float, total_steps: int, warmup_steps: int = 0) -> None:
        if total_steps <= 0:
            raise ValueError(f'total_steps={total_steps} must be positive')
        if not 0 <= warmup_steps <= total_steps:
            raise ValueError(f'warmup_steps={warmup_steps} must be in [0, '
                             f'total_steps={total_steps}]')
        super().__init__(base_lr=peak_lr)
        self.total_steps, self.warmup_steps = total_steps, warmup_steps

    def __call__(self, num_update: int) -> float:
        step = num_update - 1  # the number of updates already applied
        if step < self.warmup_steps:
            return self.base_lr * step / max(1, self.warmup_steps)
        remaining = self.total_steps - step
        return self.base_lr * max(0.0, remaining / max(1, self.total_steps - self.warmup_steps))
