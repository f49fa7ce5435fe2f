"""Run one command and report its wall time and its own peak memory as JSON.

    python -S -E launch.py RESULT.json -- COMMAND...

Why a launcher: on Linux a process's `ru_maxrss` starts from the peak RSS of the
process that spawned it (exec keeps the old memory's high-water mark), so a child of
the orchestrator, which grows to 100 MiB and more, would never report less. Spawned
from this small process, the command's `ru_maxrss` is its own (give or take this
launcher's ~10 MiB). The command inherits the working folder, the environment and the
standard streams; the launcher's own start-up is off the clock.
"""

import json
import os
import subprocess
import sys
import time


def main() -> int:
    result, separator, *command = sys.argv[1:]
    if separator != "--" or not command:
        raise SystemExit(__doc__)
    started = time.time()
    clock = time.perf_counter()
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - clock
    with open(result, "w") as output:
        json.dump(
            {
                "returncode": os.waitstatus_to_exitcode(status),
                "started": started,
                "seconds": seconds,
                "end": time.time(),
                "max_rss_kib": usage.ru_maxrss,
            },
            output,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
