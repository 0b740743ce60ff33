"""Print the results table (markdown) from the dev_metrics.json files of finished runs.

  python model_zoo/bert/collect_results.py out/results/mrpc-seed* out/results/sst2-full
Runs that differ only in their seed are grouped: mean and each seed's value are printed.
"""
import json
import os
import re
import sys


def main(run_dirs):
    """Group runs by name without the seed suffix; print one markdown row per group."""
    groups = {}
    for run in run_dirs:
        path = os.path.join(run, 'dev_metrics.json')
        if not os.path.isfile(path):
            print(f'skipping {run}: no dev_metrics.json (unfinished run?)',
                  file=sys.stderr)
            continue
        with open(path) as f:
            result = json.load(f)
        name = re.sub(r'-seed\d+$', '', os.path.basename(os.path.normpath(run)))
        groups.setdefault(name, []).append(result)
    print('| run | task | model | weights | train samples | dev samples | seeds | metric: mean '
          '(per seed) | train time per seed |')
    print('|---|---|---|---|---|---|---|---|---|')
    for name, results in sorted(groups.items()):
        first = results[0]
        metrics = []
        for metric in first['dev_metrics']:
            # bare names are fractions (shown as %); *_percent ones are percentages already
            scale = 1 if metric.endswith('_percent') else 100
            values = [scale * r['dev_metrics'][metric] for r in results]
            metrics.append('{} {:.2f} ({})'.format(metric, sum(values) / len(values),
                                                   ', '.join(f'{v:.2f}' for v in values)))
        seconds = ', '.join('{:.0f} s'.format(r.get('train_seconds', 0)) for r in results)
        print('| {} | {} | {} | {} | {} | {} | {} | {} | {} |'.format(
            name, first['task'], first['model'], first['dataset_name'] or first['pretrained'],
            first.get('train_samples', '-'), first['dev_samples'], len(results),
            '; '.join(metrics), seconds))


if __name__ == '__main__':
    main(sys.argv[1:])
