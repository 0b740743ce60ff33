"""AdamW with decoupled weight decay on MXNet's fused `contrib.adamw_update` kernel.

`correct_bias=True` (default) is torch.optim.AdamW's update; False is Google BERT's
AdamWeightDecay (and GluonNLP's BERTAdam), which has no bias correction. The gradient is scaled
by `rescale_grad * grad_scale`, where `grad_scale` is an optional NDArray (e.g. the global-norm
clipping factor) so clipping needs no host sync; a non-finite or zero factor makes the fused
kernel skip the update, so one bad batch cannot corrupt the weights or the moments.
"""
import math

import mxnet as mx
import numpy as np
from mxnet import nd
from mxnet.optimizer import Optimizer


@mx.optimizer.register
class AdamW(Optimizer):
    """Decoupled-weight-decay Adam: w -= lr * (m_hat / (sqrt(v_hat) + eps) + wd * w)."""

    def __init__(self, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-6,
                 correct_bias=True, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.correct_bias = correct_bias
        self.grad_scale = None  # optional NDArray (1,) multiplied into rescale_grad
        self._scales = {}  # (rescale_grad, id(grad_scale), context) -> NDArray, for one step

    def __getstate__(self):
        state = super().__getstate__()  # without param_dict: the Parameters (and their Trainer)
        state.update(grad_scale=None, _scales={})  # per-step arrays are not optimizer state
        return state

    def create_state(self, index, weight):
        """(mean, variance) moments shaped like the weight."""
        return (nd.zeros(weight.shape, weight.context, dtype=weight.dtype),
                nd.zeros(weight.shape, weight.context, dtype=weight.dtype))

    def create_state_multi_precision(self, index, weight):
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
            # m_hat/(sqrt(v_hat)+eps) == c * m/(sqrt(v) + eps*sqrt(1-b2^t)), c = sqrt(1-b2^t)/(1-b1^t)
            t = self._index_update_count[index]
            root = math.sqrt(1 - self.beta2 ** t)
            lr_scale, epsilon = root / (1 - self.beta1 ** t), self.epsilon * root
        kwargs = dict(lr=lr_scale, eta=lr, wd=wd, beta1=self.beta1, beta2=self.beta2,
                      epsilon=epsilon)
        if self.clip_gradient:
            kwargs['clip_gradient'] = self.clip_gradient
        return kwargs

    def update(self, index, weight, grad, state):
        """One AdamW step for one parameter."""
        mean, var = state
        nd.contrib.adamw_update(weight, grad, mean, var, self._rescale(weight.context),
                                out=weight, **self._step_args(index))

    def update_multi_precision(self, index, weight, grad, state):
        """Like update, with an fp32 master copy for fp16 weights."""
        if not (self.multi_precision and weight.dtype == np.float16):
            return self.update(index, weight, grad, state)
        (mean, var), master = state
        nd.contrib.mp_adamw_update(weight, grad, mean, var, master,
                                   self._rescale(weight.context), out=weight,
                                   **self._step_args(index))
        return None


def exclude_from_weight_decay(block):
    """Set wd_mult=0 on LayerNorm gamma/beta and every bias (BERT's rule); returns their names."""
    names = []
    for name, param in block.collect_params().items():
        if name.endswith(('_gamma', '_beta', '_bias', 'bias')):
            param.wd_mult = 0.0
            names.append(name)
    return names
