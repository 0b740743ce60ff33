"""GluonNLP 0.10's tutorial "Fine-tuning Sentence Pair Classification with BERT", as its users
wrote it, with `import gluonnlp as nlp` changed to `import gluonbert as nlp` and nothing else.

Run it in a folder holding MRPC's dev.tsv. The weights come through the tutorial's own get_model
line: Google's BERT-base from the HuggingFace Hub, converted once and cached
(tests/test_gluonnlp_tutorial.py runs it against a local Hub server).

One piece was never part of GluonNLP: the tutorial imported `BERTDatasetTransform` from the
`bert` folder of its download (`from bert import data`). Its work is done here with GluonNLP's
own `nlp.data.BERTSentenceTransform`, as users without that folder did.
"""
import random
import warnings

warnings.filterwarnings('ignore')

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

import gluonbert as nlp  # noqa: E402  (was: import gluonnlp as nlp)

nlp.utils.check_version('0.8.1')

np.random.seed(100)
random.seed(100)
mx.random.seed(10000)
ctx = mx.cpu()

bert_base, vocabulary = nlp.model.get_model('bert_12_768_12',
                                            dataset_name='book_corpus_wiki_en_uncased',
                                            pretrained=True, ctx=ctx, use_pooler=True,
                                            use_decoder=False, use_classifier=False)

bert_classifier = nlp.model.BERTClassifier(bert_base, num_classes=2, dropout=0.1)
# only need to initialize the classifier layer.
bert_classifier.classifier.initialize(init=mx.init.Normal(0.02), ctx=ctx)
bert_classifier.hybridize(static_alloc=True)

loss_function = mx.gluon.loss.SoftmaxCELoss()
loss_function.hybridize(static_alloc=True)
metric = mx.metric.Accuracy()

# Skip the first line, which is the schema; keep the two sentences and the label
data_train_raw = nlp.data.TSVDataset(filename='dev.tsv',
                                     field_separator=nlp.data.Splitter('\t'),
                                     num_discard_samples=1,
                                     field_indices=[3, 4, 0])

bert_tokenizer = nlp.data.BERTTokenizer(vocabulary, lower=True)
max_len = 128
all_labels = ['0', '1']
sentence_transform = nlp.data.BERTSentenceTransform(bert_tokenizer, max_len, pad=True, pair=True)
label_index = {label: i for i, label in enumerate(all_labels)}


def transform(sample):
    """(sentence a, sentence b, label) -> (token ids, valid length, segment ids, label id)."""
    token_ids, valid_length, segment_ids = sentence_transform(sample[:2])
    return token_ids, valid_length, segment_ids, np.array([label_index[sample[2]]], 'int32')


data_train = data_train_raw.transform(transform)
print('vocabulary used for tokenization = \n%s' % vocabulary)
print('%s token id = %s' % (vocabulary.cls_token, vocabulary[vocabulary.cls_token]))

batch_size = 32
lr = 5e-6
train_sampler = nlp.data.FixedBucketSampler(lengths=[int(item[1]) for item in data_train],
                                            batch_size=batch_size, shuffle=True)
bert_dataloader = mx.gluon.data.DataLoader(data_train, batch_sampler=train_sampler)

trainer = mx.gluon.Trainer(bert_classifier.collect_params(), 'adam',
                           {'learning_rate': lr, 'epsilon': 1e-9})
params = [p for p in bert_classifier.collect_params().values() if p.grad_req != 'null']

num_epochs = 3
for epoch_id in range(num_epochs):
    metric.reset()
    step_loss = 0
    for batch_id, (token_ids, valid_length, segment_ids, label) in enumerate(bert_dataloader):
        with mx.autograd.record():
            token_ids = token_ids.as_in_context(ctx)
            valid_length = valid_length.as_in_context(ctx)
            segment_ids = segment_ids.as_in_context(ctx)
            label = label.as_in_context(ctx)
            out = bert_classifier(token_ids, segment_ids, valid_length.astype('float32'))
            ls = loss_function(out, label).mean()
        ls.backward()
        trainer.allreduce_grads()
        nlp.utils.clip_grad_global_norm(params, 1)
        trainer.update(1)
        step_loss += ls.asscalar()
        metric.update([label], [out])
    print('[Epoch {}] loss={:.4f}, lr={:.7f}, acc={:.3f}'.format(
        epoch_id, step_loss / len(bert_dataloader), trainer.learning_rate, metric.get()[1]))

# Predict the first pairs
for i in range(4):
    ids, length, segments, _ = data_train[i]
    logits = bert_classifier(mx.nd.array([ids], ctx=ctx), mx.nd.array([segments], ctx=ctx),
                             mx.nd.array([length], ctx=ctx).astype('float32'))
    print('prediction {}: {} ({})'.format(i, all_labels[int(logits.argmax(axis=1).asscalar())],
                                          data_train_raw[i][0][:40]))
