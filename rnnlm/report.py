"""`python -m rnnlm.report <multirun folder>`: the sweep report (rnnlm/sweeps/report.py)."""

import sys

from rnnlm.sweeps.report import main

if __name__ == "__main__":
    sys.exit(main())
