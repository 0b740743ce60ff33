"""Input side of BERT: vocabulary, tokenizer, transforms, batching, samplers and datasets."""
from . import batchify, utils
from .dataset import Splitter, TSVDataset
from .pretraining import PretrainingExample, PretrainingExampleBuilder, read_documents
from .readers import (FILE_FORMATS, ReaderError, TextDataset, file_format_of, read_csv,
                      read_jsonl, read_table, read_text, read_tsv, train_test_split)
from .sampler import FixedBucketSampler, SortedBucketSampler
from . import bert, sampler  # GluonNLP's gluonnlp.data.bert.glue and gluonnlp.data.sampler
from .sampler import (ConstWidthBucket, ExpWidthBucket, LinearWidthBucket, SortedSampler,
                      SplitSampler)
from .squad import (SquadExample, SquadFeatures, SquadTransform, gold_answers, predict_answers,
                    read_squad)
from .tasks import (COLA, IMDB, MRPC, SNLI, SST2, STSB, TASKS, Task, get_task, infer_task,
                    task_metrics)
from .tokenizer import BERTBasicTokenizer, BERTTokenizer, TokenizedText
from .transforms import (BERTSentenceTransform, ClassificationTransform, RegressionTransform,
                         SentenceFeatures, TruncationCounter, truncate_pair_lengths)
from .utils import Counter, count_tokens
from .vocab import BERTVocab, Vocab, as_vocab, bundled_vocab_path

__all__ = ['Splitter', 'TSVDataset', 'BERTVocab', 'bundled_vocab_path', 'BERTTokenizer',
           'TokenizedText',
           'BERTSentenceTransform', 'SentenceFeatures', 'ClassificationTransform',
           'RegressionTransform', 'TruncationCounter', 'truncate_pair_lengths', 'batchify',
           'FixedBucketSampler', 'SortedBucketSampler', 'ReaderError', 'TextDataset',
           'read_text', 'read_table', 'read_tsv', 'read_csv', 'read_jsonl', 'train_test_split',
           'Task', 'TASKS', 'get_task', 'SST2', 'MRPC', 'COLA', 'STSB', 'SNLI', 'IMDB',
           'SquadExample', 'SquadFeatures', 'SquadTransform', 'read_squad', 'predict_answers',
           'gold_answers', 'PretrainingExample', 'PretrainingExampleBuilder', 'read_documents',
           'Vocab', 'as_vocab', 'BERTBasicTokenizer', 'Counter', 'count_tokens', 'utils',
           'transforms']
__all__ += ['FILE_FORMATS', 'file_format_of', 'infer_task', 'task_metrics']
__all__ += ['bert', 'sampler', 'SortedSampler', 'SplitSampler', 'ConstWidthBucket',
            'LinearWidthBucket', 'ExpWidthBucket']
