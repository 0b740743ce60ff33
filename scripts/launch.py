"""Start a multi-worker training cluster on this machine (loopback) or several hosts, and stop
every process of it on success, on any failure and on Ctrl-C. See gluonbert/launcher.py.

  python scripts/launch.py --backend dist_sync -n 2 -- \
      python model_zoo/bert/finetune_classifier.py --comm-backend dist_sync ...
  python scripts/launch.py --backend horovod -n 2 -- python ... --comm-backend horovod
  python scripts/launch.py --backend dist_sync -n 4 -H a:2,b:2 --launcher print -- python ...
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gluonbert.errors import run_main  # noqa: E402
from gluonbert.launcher import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(run_main(main, prog='launch.py'))
