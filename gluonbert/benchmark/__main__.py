"""`python -m gluonbert.benchmark`: the benchmark's command line."""
from .cli import entry

entry('python -m gluonbert.benchmark')
