"""GluonNLP 0.10 as a peer: its BERTModel holding gluonbert's weights, and its fine-tuning head."""
import mxnet as mx

from ..convert import assign_parameters
from ..convert.gluonnlp import to_gluonnlp_params
from .gluonbert_peer import HEADS, mx_inputs
from .inputs import make_inputs


def gluonnlp_model(config: dict, vocab, arrays: dict | None = None) -> mx.gluon.Block:
    """GluonNLP 0.10's BERTModel with pooler: get_model('bert_12_768_12') with the shape of
    `config` (gluonbert hyperparameters); `arrays` (gluonbert names) become its weights."""
    import gluonnlp
    shape = {key: config[key] for key in ('num_layers', 'units', 'hidden_size', 'num_heads',
                                          'max_length', 'dropout', 'activation',
                                          'layer_norm_eps', 'token_type_vocab_size')}
    net, _ = gluonnlp.model.get_model(
        'bert_12_768_12', dataset_name=None, vocab=vocab, pretrained=False,
        hparam_allow_override=True, embed_size=config['units'], **HEADS, **shape)
    net.initialize(mx.init.Normal(0.02))
    net(*mx_inputs(make_inputs(len(vocab), 1, 4, 0), 'float32'))  # finish deferred shapes
    if arrays is not None:
        assign_parameters(net, to_gluonnlp_params(arrays, config['num_heads']), source='gluonbert')
    return net


def gluonnlp_classifier(nlp_net: mx.gluon.Block, head: mx.gluon.Block | None = None) -> tuple:
    """GluonNLP's BERTClassifier (2 classes, dropout 0.1) with mx Trainer 'adam'; `head` (a
    Dense) gives its output layer the same weights."""
    import gluonnlp
    classifier = gluonnlp.model.BERTClassifier(nlp_net, num_classes=2, dropout=0.1)
    classifier.classifier.initialize(mx.init.Normal(0.02))
    classifier(*mx_inputs(make_inputs(10, 1, 4, 0), 'float32'))  # finish deferred shapes
    if head is not None:
        classifier.classifier[-1].weight.set_data(head.weight.data())
        classifier.classifier[-1].bias.set_data(head.bias.data())
    classifier.hybridize(static_alloc=True, static_shape=True)
    trainer = mx.gluon.Trainer(classifier.collect_params(), 'adam',
                               dict(learning_rate=2e-5, epsilon=1e-6, wd=0.01),
                               update_on_kvstore=False)
    return classifier, trainer
