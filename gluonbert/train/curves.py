"""Loss and dev-metric curves of a run, saved as a PNG."""
from collections.abc import Mapping, Sequence
from typing import Any

from ..files import write_with


def save_curves(history: Sequence[Mapping[str, Any]], path: str) -> str:
    """Plot training loss (and every eval metric) against the step; write `path` atomically."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    losses = [(h['step'], h['loss']) for h in history if 'loss' in h]
    evals = [(h['step'], h['eval']) for h in history if 'eval' in h]
    names = list(evals[0][1]) if evals else []
    fig, axes = plt.subplots(1, 1 + bool(names), figsize=(6 + 5 * bool(names), 4), squeeze=False)
    if losses:
        axes[0][0].plot(*zip(*losses), marker='.')
    axes[0][0].set(xlabel='step', ylabel='training loss', title='loss')
    if names:
        for name in names:
            axes[0][1].plot([s for s, _ in evals], [m[name] for _, m in evals], marker='o',
                            label=name)
        axes[0][1].set(xlabel='step', title='dev metrics')
        axes[0][1].legend()
    fig.tight_layout()
    write_with(path, lambda temp: fig.savefig(temp, dpi=90), suffix='.png')
    plt.close(fig)
    return path
