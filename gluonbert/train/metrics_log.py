"""metrics.jsonl: one JSON line per logged value (training loss and lr, every evaluation's
metrics, the final scores), appended as the run goes so a crashed run keeps what it logged."""
import json
import os

from ..files import write_text

METRICS_FILE = 'metrics.jsonl'


class MetricsLog:
    """Appends `{"step": .., "split": .., "name": .., "value": ..}` lines to
    `<folder>/metrics.jsonl`; a no-op without a folder (workers other than rank 0)."""

    def __init__(self, folder: str | None):
        self.path = os.path.join(folder, METRICS_FILE) if folder else None

    def append(self, step: int, split: str, metrics: dict) -> None:
        """One line per (name, value) of `metrics`, e.g. append(40, 'dev', {'accuracy': 0.9})."""
        if self.path is None:
            return
        with open(self.path, 'a', encoding='utf-8') as f:
            for name, value in metrics.items():
                f.write(json.dumps(dict(step=int(step), split=split, name=name,
                                        value=float(value))) + '\n')
            f.flush()

    def keep_until(self, step: int) -> None:
        """Drop the lines after `step`: a resumed run writes the steps after its checkpoint
        again, so the file keeps one line per step and metric."""
        if self.path is None or not os.path.isfile(self.path):
            return
        with open(self.path, encoding='utf-8') as f:
            lines = [line for line in f if line.strip() and json.loads(line)['step'] <= step]
        write_text(self.path, ''.join(lines))


def read_metrics(folder: str) -> list:
    """The lines of `<folder>/metrics.jsonl` as dicts ([] without the file)."""
    path = os.path.join(folder, METRICS_FILE)
    if not os.path.isfile(path):
        return []
    with open(path, encoding='utf-8') as f:
        return [json.loads(line) for line in f if line.strip()]
