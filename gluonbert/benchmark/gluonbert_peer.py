"""gluonbert's own variants: fp32, int8, bf16, the optimize_for lever, and its fine-tuning step."""
import os
import sys

import mxnet as mx
import numpy as np

from .. import export_model, get_model, import_model, to_bfloat16
from ..convert.layout import block_to_canonical
from ..model import BERTClassifier
from ..precision import bfloat16_supported
from ..quantization import quantize
from ..train import AdamW
from .inputs import make_inputs

PRETRAINED = {'bert_6_384_12': 'all_minilm_l6_v2'}  # real weights, used when installed
HEADS = dict(use_pooler=True, use_decoder=False, use_classifier=False)
CALIB_BATCHES = 4


def randomize(net: mx.gluon.Block, seed: int) -> None:
    """Seeded random weights for every parameter: N(0, 0.02) as BERT initialises its matrices,
    and (unlike a plain initializer) for biases and LayerNorm too, gammas around 1, so the
    agreement check covers every tensor."""
    rng = np.random.RandomState(seed)
    for name, param in sorted(net.collect_params().items()):
        mean = 1.0 if name.endswith('gamma') else 0.0
        param.set_data(rng.normal(mean, 0.02, size=param.shape).astype('float32'))


def build_gluonbert(name: str, pretrained: bool = True, seed: int = 0, weights: bool = True,
                    for_training: bool = True) -> tuple:
    """(BERTModel with pooler, vocab, weights label): the real embedded weights when `pretrained`
    and the shape has some installed, else seeded random ones (`weights=False`: left as built).
    for_training=False: no gradient buffers (get_model's inference mode)."""
    dataset = PRETRAINED.get(name) if pretrained else None
    if dataset:
        try:
            net, vocab = get_model(name, dataset_name=dataset, pretrained=True,
                                   for_training=for_training, **HEADS)
            return net, vocab, f'pretrained {dataset}'
        except OSError as err:  # StoreError: the package with the weights is not installed
            print(f'note: {name} has no real weights here ({err}); using random ones',
                  file=sys.stderr)
    net, vocab = get_model(name, pretrained=False, for_training=for_training, **HEADS)
    if weights:
        randomize(net, seed)
    return net, vocab, f'random (seed {seed})'


def gluonbert_arrays(block: mx.gluon.Block) -> dict:
    """gluonbert canonical parameter name -> numpy array."""
    return block_to_canonical(block)[0]


def mx_inputs(inputs: tuple, length_dtype: str = 'int32') -> tuple:
    """numpy inputs -> MXNet NDArrays (ids and types int32; GluonNLP wants float lengths)."""
    ids, types, lengths = inputs
    return (mx.nd.array(ids, dtype='int32'), mx.nd.array(types, dtype='int32'),
            mx.nd.array(lengths, dtype=length_dtype))


def mx_runner(net: mx.gluon.Block, arrays: tuple):
    """A synchronous forward pass of an MXNet block; run(fetch=True) returns (sequence
    (batch, seq_len, units), pooled (batch, units))."""
    def run(fetch=False):
        outputs = net(*arrays)
        for output in outputs:
            output.wait_to_read()
        return [output.asnumpy() for output in outputs[:2]] if fetch else None
    return run


def optimized_model(net: mx.gluon.Block, folder: str, arrays: tuple) -> mx.gluon.Block:
    """The lever: gluonbert's exported graph re-imported and given to optimize_for(MKLDNN)."""
    prefix = os.path.join(folder, 'exported', 'model')
    if not os.path.isfile(prefix + '-symbol.json'):
        export_model(net, prefix, arrays, portable=False)  # as optimize_for_cpu: kernels kept
    block = import_model(prefix)
    block.optimize_for(*arrays, backend='MKLDNN', static_alloc=True, static_shape=True)
    return block


def int8_model(net: mx.gluon.Block, vocab_size: int, batch: int,
               seq_len: int) -> mx.gluon.Block:
    """gluonbert.quantization.quantize on CALIB_BATCHES random batches of the timed shape."""
    calib = [mx_inputs(make_inputs(vocab_size, batch, seq_len, 100 + i))
             for i in range(CALIB_BATCHES)]
    qnet = quantize(net, calib)
    qnet.hybridize(static_alloc=True, static_shape=True)
    return qnet


def bf16_unavailable() -> str | None:
    """Why gluonbert bf16 cannot run here, or None when MXNet's oneDNN has bf16 kernels."""
    if bfloat16_supported():
        return None
    return 'MXNet 1.9.1\'s oneDNN 2.4 has no bf16 kernels for this CPU (it needs AVX-512)'


def bf16_model(net: mx.gluon.Block, arrays: tuple) -> mx.gluon.Block:
    """gluonbert.to_bfloat16 of `net` (bf16 matmuls and GELU, attention, softmax and LayerNorm
    in fp32); float32 outputs."""
    return to_bfloat16(net, arrays)


def gluonbert_classifier(net: mx.gluon.Block) -> tuple:
    """gluonbert's BERTClassifier (2 classes, dropout 0.1) on `net`, hybridized, with AdamW."""
    classifier = BERTClassifier(net, num_classes=2, dropout=0.1)
    classifier.initialize_head()
    classifier.hybridize(static_alloc=True, static_shape=True)
    trainer = mx.gluon.Trainer(classifier.collect_params(),
                               AdamW(learning_rate=2e-5, epsilon=1e-6, wd=0.01),
                               update_on_kvstore=False)
    return classifier, trainer


def mx_train_step(block: mx.gluon.Block, trainer: mx.gluon.Trainer, arrays: tuple,
                  labels: mx.nd.NDArray):
    """One synchronous MXNet step: forward, softmax cross-entropy, backward, optimizer update."""
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()

    def step():
        with mx.autograd.record():
            loss = loss_fn(block(*arrays), labels).mean()
        loss.backward()
        trainer.step(1)
        mx.nd.waitall()
    return step
