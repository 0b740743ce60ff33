"""Classify sentences or sentence pairs with a model exported by finetune_classifier.py (or a
save_pretrained folder), or embed sentences; the same as the `gluonbert` command.

  python model_zoo/bert/predict.py predict --model-dir out/sst2/export "this movie is so great"
  python model_zoo/bert/predict.py predict --model-dir out/mrpc/export --text "A man plays." \
      --text-pair "Someone plays music." --json
  tail -n +2 MRPC/dev.tsv | cut -f4,5 | \
      python model_zoo/bert/predict.py predict --model-dir out/mrpc/export
  python model_zoo/bert/predict.py embed "A cat sits." "A kitten rests."   # prints the matrix
  python model_zoo/bert/predict.py embed --heatmap sim.png "A cat sits." "A kitten rests."
"""
import sys

from gluonbert.cli import main

if __name__ == '__main__':
    sys.exit(main())
