"""Training: AdamW, warmup/decay schedule, clipping, checkpoints and the loop over contexts."""
from .checkpoint import CheckpointManager
from .loop import NonFiniteLossError, TrainConfig, TrainingLoop
from .optimizer import AdamW, exclude_from_weight_decay
from .schedule import LinearWarmupDecay

__all__ = ['CheckpointManager', 'NonFiniteLossError', 'TrainConfig', 'TrainingLoop', 'AdamW',
           'exclude_from_weight_decay', 'LinearWarmupDecay']
