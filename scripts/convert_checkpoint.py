#!/usr/bin/env python
"""Convert a BERT checkpoint (HuggingFace, Google TF, GluonNLP 0.10) to gluonbert or HF format.

Example: python scripts/convert_checkpoint.py path/to/hf_folder out/my_bert --to gluonbert
then `gluonbert.get_model('bert_12_768_12', pretrained='out/my_bert')`.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gluonbert.convert_command import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
