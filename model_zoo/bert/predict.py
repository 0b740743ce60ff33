"""Classify sentences with a model exported by finetune_classifier.py, or embed them.

  python model_zoo/bert/predict.py predict --model-dir out/sst2/export "this movie is so great"
  python model_zoo/bert/predict.py embed --heatmap sim.png "A cat sits." "A kitten rests."
"""
import sys

from gluonbert.cli import main

if __name__ == '__main__':
    sys.exit(main())
