"""`python -m benchmarks`: every part, or those of `--parts`; the page (run.py)."""

import sys
import time

from .harness import progress
from .run import main

started = time.perf_counter()
status = main(sys.argv[1:])
progress(f"done in {time.perf_counter() - started:.0f} s")
sys.exit(status)
