"""The TrainingLoop's state: where the run is, its best evaluation, its history; saved in each
checkpoint's state.json (its keys are this dataclass's saved fields)."""
import dataclasses


@dataclasses.dataclass
class LoopState:
    """Progress of one fit(): the saved fields are state.json's keys, in this order."""
    epoch: int = 0  # epochs completed
    batch: int = 0  # batches of the current epoch consumed
    step: int = 0  # optimizer steps made
    best: float = None  # the best value of the monitored metric
    best_metrics: dict = None  # all metrics of the best evaluation
    bad_evals: int = 0  # evaluations in a row without improvement (early stopping)
    history: list = dataclasses.field(default_factory=list)  # {step, loss, lr} / {step, eval}
    stopped: str = None  # why the run stopped before its last epoch (early stop)
    total_steps: int = None  # the lr schedule's length (a resumed run may change it)
    # not saved: the step of the last finite loss read-out; a checkpoint before it was
    # followed by a finite loss (with keep_checkpoints=1 the only candidate is the latest one)
    finite_loss_step: int = dataclasses.field(default=0, metadata={'saved': False})

    def to_dict(self) -> dict:
        """The saved fields -> a JSON-able dict (state.json's loop keys, fit()'s summary)."""
        return {field.name: getattr(self, field.name) for field in _saved_fields()}

    @classmethod
    def from_dict(cls, saved: dict) -> 'LoopState':
        """The loop state of a state.json dict; its other keys (host RNG, loss scale, model
        record) are the caller's, and a missing key keeps its default (older checkpoints)."""
        return cls(**{field.name: saved[field.name] for field in _saved_fields()
                      if field.name in saved})


def _saved_fields():
    return [field for field in dataclasses.fields(LoopState) if field.metadata.get('saved', True)]
