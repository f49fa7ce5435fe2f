"""`make check-monitoring`: send one test event the way a flow run would, and say if it arrived.

The DSN comes from the same variables and the same SSM parameter as in a flow run
(`sentry_setup.init_sentry`). Exit status 0 when Sentry took the event; 1 otherwise, after the
warning that says why.
"""

from __future__ import annotations

import sys

import sentry_sdk

from .sentry_setup import init_sentry
from .transport import flush

MESSAGE = "Monitoring check: {package} reaches Sentry. Resolve this issue at will."


def main() -> int:
    """Send the test event; print its id. Return the exit status."""
    if not init_sentry():
        print("Monitoring is off: see the warning above.", file=sys.stderr)
        return 1
    package = (__package__ or "monitoring").split(".")[0]
    # One issue for every check, however many times it runs.
    event_id = sentry_sdk.capture_message(
        MESSAGE.format(package=package), level="info", fingerprint=["monitoring-check", package]
    )
    if not flush():
        print(f"Test event {event_id} did not reach Sentry: see above.", file=sys.stderr)
        return 1
    print(f"Sentry took test event {event_id}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
