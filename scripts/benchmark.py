"""gluonbert against HF transformers, GluonNLP 0.10 and the deployment runtimes, measured in the
same run on one machine: the command-line entry of `gluonbert.benchmark` (see its docstring).

    python scripts/benchmark.py --json out/benchmark.json
    python scripts/benchmark.py --models bert_2_128_2 --shapes 2x16 --repeats 1

The same as `python -m gluonbert.benchmark`; the optional peers need `pip install -e '.[bench]'`.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gluonbert.benchmark.cli import entry

if __name__ == '__main__':
    entry('scripts/benchmark.py')
