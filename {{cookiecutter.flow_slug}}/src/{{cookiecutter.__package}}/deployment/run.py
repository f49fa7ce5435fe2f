"""Run the flow once, here, and exit non-zero when the run does not succeed.

`make run`, the image's default command and, with no Prefect backend, the platform's
scheduler all start the flow this way:

    python -m {{ cookiecutter.__package }}.deployment.run [--param name=value ...]

A value is read as JSON when it is JSON (`--param limit=10`), else as text.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional


def parse_parameters(pairs: List[str]) -> Dict[str, Any]:
    parameters: Dict[str, Any] = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise SystemExit(f"--param {pair!r}: write name=value, e.g. --param day=2024-01-31")
        try:
            parameters[name] = json.loads(value)
        except ValueError:
            parameters[name] = value
    return parameters


def main(argv: Optional[List[str]] = None) -> int:
    """Run the flow once; 0 when the run succeeded, 1 when it did not."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    parameters = parse_parameters(parser.parse_args(argv).param)

    from ..flow import flow  # here, not at the top: flow.py imports this package

    state = flow.run(parameters=parameters, run_on_schedule=False)
    if state.is_successful():
        return 0
    print(f"The flow run ended {type(state).__name__}: {state.message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
