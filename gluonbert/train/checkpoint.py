"""Atomic training checkpoints: params + optimizer states + loop state, and the best model.

A checkpoint is a directory written under a temporary name and renamed when complete (the
same `gluonbert.files.atomic_folder` as every writer uses); the
`LATEST` pointer file is replaced atomically afterwards, so an interrupted write never leaves a
checkpoint that looks valid.
"""
import json
import pickle
import os
import shutil
from collections.abc import Mapping
from typing import Any

import mxnet as mx
from mxnet import gluon
from mxnet.gluon import HybridBlock

from ..files import atomic_folder, staged_files, write_text
from ..model.config import BERTConfig
from ..errors import CheckpointMismatchError, DamagedFileError, mxnet_message
from .averaging import WeightAverage

MODEL_FILE, STATES_FILE, STATE_FILE = 'model.params', 'trainer.states', 'state.json'
# state.json's key for what the checkpoint was written by (see describe_model)
MODEL_RECORD = 'model'



def describe_model(net: HybridBlock, **extra: Any) -> dict:
    """What a checkpoint records about the net that wrote it: the block class, the backbone's
    architecture (its BERTConfig's architecture_fields: not dropout), the heads and pooling,
    and `extra` (e.g. the label set)."""
    bert = getattr(net, 'bert', net)
    config = getattr(bert, 'config', None)
    record = dict(block=type(net).__name__,
                  config={} if config is None else
                  {k: config[k] for k in BERTConfig.architecture_fields() if k in config})
    if getattr(net, 'pooling', None) is not None:
        record['pooling'] = net.pooling
    for head in ('use_pooler', 'use_decoder', 'use_classifier'):
        if hasattr(bert, head):
            record[head] = bool(getattr(bert, head))
    output_layer = getattr(net, 'classifier', None) if net is not bert else None
    if output_layer is not None and output_layer.weight.shape:
        record['num_outputs'] = output_layer.weight.shape[0]  # (outputs, units)
    record.update(extra)
    return record


def check_model_record(saved: Mapping[str, Any] | None, current: Mapping[str, Any],
                       path: str) -> None:
    """Refuse to resume checkpoint `path` (written by `saved`) into a net described by `current`,
    naming every difference with both sides."""
    if saved is None or current is None:
        return
    diffs = []
    for key in sorted(set(saved) | set(current)):
        if key == 'config':
            old, new = saved.get('config', {}), current.get('config', {})
            diffs += [f'{k}={old.get(k)!r} in the checkpoint, {new.get(k)!r} in this run'
                      for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        elif saved.get(key) != current.get(key):
            diffs.append(f'{key}={saved.get(key)!r} in the checkpoint, {current.get(key)!r} in '
                         'this run')
    if diffs:
        raise CheckpointMismatchError(
            f'cannot resume from {path}: it was written by another model ({"; ".join(diffs)}); '
            'rerun with the settings it was trained with, or start a new run in another '
            '--output-dir')


def load_parameters_file(net: HybridBlock, path: str,
                         ctx: mx.Context | list[mx.Context] | None = None,
                         what: str = 'parameters file') -> None:
    """net.load_parameters(path) with errors that name the file: a damaged file (DamagedFileError)
    or parameters that do not fit the net (CheckpointMismatchError), without MXNet's
    allow_missing hints, which mean nothing on a command line."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path}')
    try:
        net.load_parameters(path, ctx=ctx)
    except mx.base.MXNetError as err:
        raise DamagedFileError(f'cannot read {what} {path}: {mxnet_message(str(err))} (the file '
                               'is truncated or not an MXNet .params file; write it again)'
                               ) from None
    except (AssertionError, ValueError) as err:  # MXNet: a parameter missing / unexpected
        raise CheckpointMismatchError(
            f'{what} {path} does not fit this model (was it written with another model, head or '
            f'pooling?): {_without_mxnet_hints(err)}') from None


def _without_mxnet_hints(err):
    """MXNet's missing/unexpected-parameter message, without its 'Set allow_missing=True ...'
    advice and the list of every parameter name."""
    text = ' '.join(str(err).split())
    for hint in ('Set allow_missing=True', 'Set ignore_extra=True'):
        text = text.split(hint)[0]
    return text.strip().rstrip('.,') or type(err).__name__



class CheckpointManager:
    """Keeps the last `keep` checkpoints of a run under `<output_dir>/checkpoints/`."""

    def __init__(self, output_dir: str, keep: int = 1) -> None:
        if keep < 1:
            raise ValueError(f'keep={keep} must be >= 1: the latest checkpoint is always kept')
        self.root = os.path.join(output_dir, 'checkpoints')
        self.keep = keep
        os.makedirs(self.root, exist_ok=True)
        self.remove_partial()

    def remove_partial(self) -> None:
        """Delete what an interrupted save left: `.step-*` temporary folders and files."""
        for name in os.listdir(self.root):
            if name.startswith(('.step-', '.LATEST.')) or '.old-' in name:
                path = os.path.join(self.root, name)
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.remove(path)

    def save(self, step: int, net: HybridBlock, trainer: gluon.Trainer, state: dict[str, Any],
             average: WeightAverage | None = None) -> str:
        """Write checkpoint `step` (net params, trainer states, JSON-able `state` and the
        WeightAverage if any); returns its directory."""
        final = os.path.join(self.root, f'step-{step:08d}')
        with atomic_folder(final, overwrite=True) as tmp:
            net.save_parameters(os.path.join(tmp, MODEL_FILE))
            trainer.save_states(os.path.join(tmp, STATES_FILE))
            if average is not None:
                average.save(tmp)
            write_text(os.path.join(tmp, STATE_FILE), json.dumps(state))
        write_text(os.path.join(self.root, 'LATEST'), os.path.basename(final))
        for old in sorted(d for d in os.listdir(self.root) if d.startswith('step-'))[:-self.keep]:
            if old != os.path.basename(final):
                shutil.rmtree(os.path.join(self.root, old), ignore_errors=True)
        return final

    def latest(self) -> str | None:
        """Directory of the newest complete checkpoint, or None."""
        pointer = os.path.join(self.root, 'LATEST')
        if not os.path.isfile(pointer):
            return None
        with open(pointer, encoding='utf-8') as f:
            path = os.path.join(self.root, f.read().strip())
        return path if os.path.isfile(os.path.join(path, STATE_FILE)) else None

    def load(self, path: str, net: HybridBlock, trainer: gluon.Trainer,
             ctx: mx.Context | list[mx.Context],
             record: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Restore net params and trainer states from checkpoint `path`; returns its state.

        record (describe_model of this run's net): refuse a checkpoint written by another model
        (CheckpointMismatchError naming both sides); checkpoints from before records are
        loaded as they are."""
        with open(os.path.join(path, STATE_FILE), encoding='utf-8') as f:
            state = json.load(f)
        check_model_record(state.pop(MODEL_RECORD, None), record, path)
        load_parameters_file(net, os.path.join(path, MODEL_FILE), ctx, 'checkpoint parameters')
        try:
            trainer.load_states(os.path.join(path, STATES_FILE))
        except (mx.base.MXNetError, OSError, EOFError, ValueError, pickle.UnpicklingError) as err:
            raise DamagedFileError(f'cannot read the optimizer states {path}/{STATES_FILE}: '
                                   f'{mxnet_message(str(err))}; resume from an earlier checkpoint '
                                   'or start again without --resume') from None
        return state


def save_best(output_dir: str, net: HybridBlock, metrics: Mapping[str, float]) -> str:
    """Write `best.params` and `best.json` (the metrics that made it best) together: both are
    complete before either replaces the last best (best.params, which readers open, last)."""
    prefix = os.path.join(output_dir, 'best')
    with staged_files(prefix, ('.json', '.params')) as staged:
        net.save_parameters(staged + '.params')
        with open(staged + '.json', 'w', encoding='utf-8') as f:
            f.write(json.dumps(metrics, indent=2))
    return prefix + '.params'
