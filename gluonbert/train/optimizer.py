"""AdamW and BERTAdam: decoupled weight decay on MXNet's fused `contrib.adamw_update` kernel.

`correct_bias=True` (default) is torch.optim.AdamW's update; False is Google BERT's
AdamWeightDecay (and GluonNLP's BERTAdam), which has no bias correction. The gradient is scaled
by `rescale_grad * grad_scale`, where `grad_scale` is an optional NDArray (e.g. the global-norm
clipping factor) so clipping needs no host sync; a non-finite or zero factor makes the fused
kernel skip the update, so one bad batch cannot corrupt the weights or the moments.
BERTAdam is GluonNLP 0.10's optimizer of that name: AdamW(correct_bias=False) that also updates
several parameters in one multi-tensor kernel call (MXNET_OPTIMIZER_AGGREGATION_SIZE at a time).
"""
import math
import os
import warnings
from typing import Any

import mxnet as mx
import numpy as np
from mxnet import nd
from mxnet.gluon import Block
from mxnet.optimizer import Optimizer


@mx.optimizer.register
class AdamW(Optimizer):
    """Decoupled-weight-decay Adam: w -= lr * (m_hat / (sqrt(v_hat) + eps) + wd * w)."""

    def __init__(self, learning_rate: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-6, correct_bias: bool = True, **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.correct_bias = correct_bias
        self.grad_scale = None  # optional NDArray (1,) multiplied into rescale_grad
        self._scales = {}  # (rescale_grad, id(grad_scale), context) -> NDArray, for one step

    def __getstate__(self):
        state = super().__getstate__()  # without param_dict: the Parameters (and their Trainer)
        state.update(grad_scale=None, _scales={})  # per-step arrays are not optimizer state
        return state

    def create_state(self, index: int, weight: nd.NDArray) -> tuple[nd.NDArray, nd.NDArray]:
        """(mean, variance) moments shaped like the weight."""
        return (nd.zeros(weight.shape, weight.context, dtype=weight.dtype),
                nd.zeros(weight.shape, weight.context, dtype=weight.dtype))

    def create_state_multi_precision(self, index: int, weight: nd.NDArray) -> tuple:
        """fp16 weights keep an fp32 master copy when multi_precision is on."""
        if self.multi_precision and weight.dtype == np.float16:
            master = weight.astype(np.float32)
            return self.create_state(index, master), master
        return self.create_state(index, weight)

    def _rescale(self, context):
        """rescale_grad * grad_scale on `context`, built once per step and context."""
        key = (self.rescale_grad, id(self.grad_scale), context)
        if key not in self._scales:
            scale = nd.full((1,), self.rescale_grad, ctx=context)
            if self.grad_scale is not None:
                scale = scale * self.grad_scale.as_in_context(context)
            # keep only this step's entries (a new grad_scale array arrives every step); the
            # entry holds grad_scale itself so its id cannot be reused while it is cached
            self._scales = {k: v for k, v in self._scales.items() if k[:2] == key[:2]}
            self._scales[key] = (self.grad_scale, scale)
        return self._scales[key][1]

    def _step_args(self, index):
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        epsilon, lr_scale = self.epsilon, 1.0
        if self.correct_bias:
            # m_hat/(sqrt(v_hat)+eps) == c * m/(sqrt(v) + eps*sqrt(1-b2^t)),
            # c = sqrt(1-b2^t)/(1-b1^t)
            t = self._index_update_count[index]
            root = math.sqrt(1 - self.beta2 ** t)
            lr_scale, epsilon = root / (1 - self.beta1 ** t), self.epsilon * root
        kwargs = dict(lr=lr_scale, eta=lr, wd=wd, beta1=self.beta1, beta2=self.beta2,
                      epsilon=epsilon)
        if self.clip_gradient:
            kwargs['clip_gradient'] = self.clip_gradient
        return kwargs

    def update(self, index: int | list[int], weight: nd.NDArray | list[nd.NDArray],
               grad: nd.NDArray | list[nd.NDArray], state: Any) -> None:
        """One AdamW step for one parameter."""
        mean, var = state
        nd.contrib.adamw_update(weight, grad, mean, var, self._rescale(weight.context),
                                out=weight, **self._step_args(index))

    def update_multi_precision(self, index: int | list[int], weight: nd.NDArray | list[nd.NDArray],
                               grad: nd.NDArray | list[nd.NDArray], state: Any) -> None:
        """Like update, with an fp32 master copy for fp16 weights."""
        if not (self.multi_precision and weight.dtype == np.float16):
            return self.update(index, weight, grad, state)
        (mean, var), master = state
        nd.contrib.mp_adamw_update(weight, grad, mean, var, master,
                                   self._rescale(weight.context), out=weight,
                                   **self._step_args(index))
        return None


@mx.optimizer.register
class BERTAdam(AdamW):
    """Google BERT's Adam as GluonNLP 0.10's `BERTAdam`: no bias correction, decoupled decay.

    m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2; w -= lr * (m / (sqrt(v) + eps) + wd * w), where
    g = clip(grad * rescale_grad, clip_gradient). Registered as 'bertadam' for gluon.Trainer.
    """

    def __init__(self, learning_rate: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-6, **kwargs: Any) -> None:
        if 'correct_bias' in kwargs:
            raise TypeError('BERTAdam never corrects the bias; for bias correction use '
                            "AdamW(correct_bias=True) ('adamw')")
        super().__init__(learning_rate=learning_rate, beta1=beta1, beta2=beta2, epsilon=epsilon,
                         correct_bias=False, **kwargs)
        size = os.getenv('MXNET_OPTIMIZER_AGGREGATION_SIZE', '4')
        try:
            self.aggregate_num = max(1, min(50, int(size)))
        except ValueError:
            raise ValueError(f'MXNET_OPTIMIZER_AGGREGATION_SIZE must be an integer; got {size!r}'
                             ) from None

    def create_state_multi_precision(self, index: int, weight: nd.NDArray) -> tuple:
        """(mean, variance), with an fp32 master copy for fp16 weights under multi_precision."""
        if weight.dtype == np.float16 and not self.multi_precision:
            warnings.warn('BERTAdam on float16 weights without multi_precision=True accumulates '
                          'the moments in float16: expect poor accuracy or slow convergence; '
                          'pass multi_precision=True', stacklevel=2)
        return super().create_state_multi_precision(index, weight)

    def update(self, index: int | list[int], weight: nd.NDArray | list[nd.NDArray],
               grad: nd.NDArray | list[nd.NDArray], state: Any) -> None:
        """One step for one parameter, or for lists of them (indices, weights, grads, states)."""
        if not isinstance(index, (list, tuple)):
            index, weight, grad, state = [index], [weight], [grad], [state]
        return self._update_many(index, weight, grad, state, multi_precision=False)

    def update_multi_precision(self, index: int | list[int], weight: nd.NDArray | list[nd.NDArray],
                               grad: nd.NDArray | list[nd.NDArray], state: Any) -> None:
        """Like update, with fp32 master copies for fp16 weights under multi_precision."""
        if not isinstance(index, (list, tuple)):
            index, weight, grad, state = [index], [weight], [grad], [state]
        multi = bool(self.multi_precision) and weight[0].dtype == np.float16
        return self._update_many(index, weight, grad, state, multi_precision=multi)

    def _update_many(self, indices, weights, grads, states, multi_precision):
        """aggregate_num parameters per multi-tensor kernel call; as GluonNLP, a single parameter
        also takes that kernel unless aggregation is off (its rounding differs from adamw's)."""
        dense = all(w.stype == 'default' and g.stype == 'default'
                    for w, g in zip(weights, grads))
        # float16 weights without an fp32 master copy: GluonNLP's multi-tensor call crashed (a
        # float32 rescale_grad) and the kernel in float16 gives NaNs, so they go one by one
        half = not multi_precision and weights[0].dtype == np.float16
        if self.aggregate_num <= 1 or not dense or half:
            single = super().update_multi_precision if multi_precision else super().update
            for args in zip(indices, weights, grads, states):
                single(*args)
            return None
        indices = list(indices)
        self._update_count(indices)
        lrs, wds = self._get_lrs(indices), self._get_wds(indices)
        rescale = self._rescale(weights[0].context)
        options = dict(beta1=self.beta1, beta2=self.beta2, epsilon=self.epsilon)
        if self.clip_gradient:
            options['clip_gradient'] = self.clip_gradient
        for start in range(0, len(indices), self.aggregate_num):
            part = slice(start, start + self.aggregate_num)
            outs, count = list(weights[part]), len(indices[part])
            # lrs=1 and etas=lr: the schedule's rate scales the step and the decay alike
            options.update(out=outs, size=count, lrs=[1.0] * count, wds=wds[part],
                           etas=lrs[part])
            if multi_precision:
                moments, masters = zip(*states[part])
                means, variances = zip(*moments)
                nd.contrib.multi_mp_adamw_update(outs, grads[part], means, variances, masters,
                                                 rescale, **options)
            else:
                means, variances = zip(*states[part])
                nd.contrib.multi_adamw_update(outs, grads[part], means, variances, rescale,
                                              **options)
        return None


def exclude_from_weight_decay(block: Block) -> list[str]:
    """Set wd_mult=0 on LayerNorm gamma/beta and every bias (BERT's rule); returns their names."""
    names = []
    for name, param in block.collect_params().items():
        if name.endswith(('_gamma', '_beta', '_bias', 'bias')):
            param.wd_mult = 0.0
            names.append(name)
    return names
