"""Atomic training checkpoints: params + optimizer states + loop state, and the best model.

A checkpoint is a directory written under a temporary name and renamed when complete (the
same `atomic_folder` as the converters use); the
`LATEST` pointer file is replaced atomically afterwards, so an interrupted write never leaves a
checkpoint that looks valid.
"""
import json
import os
import shutil

from ..convert.common import atomic_folder

MODEL_FILE, STATES_FILE, STATE_FILE = 'model.params', 'trainer.states', 'state.json'


def atomic_write_text(path, text):
    """Write `text` to `path` via a temporary file and rename."""
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class CheckpointManager:
    """Keeps the last `keep` checkpoints of a run under `<output_dir>/checkpoints/`."""

    def __init__(self, output_dir, keep=1):
        if keep < 1:
            raise ValueError('keep={} must be >= 1: the latest checkpoint is always kept'.format(
                keep))
        self.root = os.path.join(output_dir, 'checkpoints')
        self.keep = keep
        os.makedirs(self.root, exist_ok=True)

    def save(self, step, net, trainer, state, average=None):
        """Write checkpoint `step` (net params, trainer states, JSON-able `state` and the
        WeightAverage if any); returns its directory."""
        final = os.path.join(self.root, 'step-{:08d}'.format(step))
        with atomic_folder(final, overwrite=True) as tmp:
            net.save_parameters(os.path.join(tmp, MODEL_FILE))
            trainer.save_states(os.path.join(tmp, STATES_FILE))
            if average is not None:
                average.save(tmp)
            atomic_write_text(os.path.join(tmp, STATE_FILE), json.dumps(state))
        atomic_write_text(os.path.join(self.root, 'LATEST'), os.path.basename(final))
        for old in sorted(d for d in os.listdir(self.root) if d.startswith('step-'))[:-self.keep]:
            if old != os.path.basename(final):
                shutil.rmtree(os.path.join(self.root, old), ignore_errors=True)
        return final

    def latest(self):
        """Directory of the newest complete checkpoint, or None."""
        pointer = os.path.join(self.root, 'LATEST')
        if not os.path.isfile(pointer):
            return None
        with open(pointer, encoding='utf-8') as f:
            path = os.path.join(self.root, f.read().strip())
        return path if os.path.isfile(os.path.join(path, STATE_FILE)) else None

    def load(self, path, net, trainer, ctx):
        """Restore net params and trainer states from checkpoint `path`; returns its state."""
        try:
            net.load_parameters(os.path.join(path, MODEL_FILE), ctx=ctx)
        except (AssertionError, ValueError) as err:  # MXNet: a parameter missing / unexpected
            raise ValueError('cannot resume from {}: its parameters do not fit this model (was '
                             'it written with another model, head or pooling?): {}'.format(
                                 path, err)) from err
        trainer.load_states(os.path.join(path, STATES_FILE))
        with open(os.path.join(path, STATE_FILE), encoding='utf-8') as f:
            return json.load(f)


def save_best(output_dir, net, metrics):
    """Atomically write `best.params` and `best.json` (the metrics that made it best)."""
    path = os.path.join(output_dir, 'best.params')
    net.save_parameters(path + '.tmp')
    os.replace(path + '.tmp', path)
    atomic_write_text(os.path.join(output_dir, 'best.json'), json.dumps(metrics, indent=2))
    return path
