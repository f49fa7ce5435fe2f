"""What an SSM endpoint that never answers costs a flow start: `init_sentry()`'s seconds.

The DSN is read from SSM at an endpoint on 127.0.0.1 that accepts connections and
never answers (endpoints.BlackHole), as a hung AWS endpoint or a dropped route would.
Each sample is a fresh process (as each flow run and each Dask worker is one) that
times `monitoring.init_sentry()` alone; the table gives the median and the most, and
how many connections the endpoint took (each one a try botocore made).

    uv run python -m benchmarks.ssm_start [--repeats 3] [--project BAKED_PROJECT]

`--project` measures a baked project already synced (its .venv), e.g. one of another
commit's template; without it, a project is baked and synced from this template.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from baking import clean_environment

from .endpoints import BlackHole
from .harness import median, round_robin
from .projects import DEFAULT_PACKAGE, synced_project
from .report import Table, text_table

CHILD = """
import json, time
from {package}.monitoring import init_sentry

began = time.perf_counter()
on = init_sentry()
print(json.dumps({{"seconds": time.perf_counter() - began, "on": on}}))
"""


def hanging_ssm(python: Path, project: Path, repeats: int) -> tuple[Table, dict]:
    """The table, and the figures: median and most seconds, tries per start."""
    code = CHILD.format(package=DEFAULT_PACKAGE)

    def measure(_: str) -> dict:
        endpoint = BlackHole().start()
        try:
            env = clean_environment(
                AWS_ENDPOINT_URL=endpoint.url,
                AWS_ACCESS_KEY_ID="benchmark",
                AWS_SECRET_ACCESS_KEY="benchmark",
                AWS_DEFAULT_REGION="eu-west-1",
                AWS_EC2_METADATA_DISABLED="true",
                SENTRY_DSN_SSM_PARAMETER_NAME="/benchmark/sentry-dsn",
                SENTRY_REGION="eu-west-1",
                SENTRY_ENVIRONMENT="benchmark",
                SENTRY_RELEASE="benchmark",
            )
            completed = subprocess.run(
                [str(python), "-c", code], cwd=project, env=env, capture_output=True, text=True
            )
            if completed.returncode != 0:
                raise SystemExit(f"the child failed:\n{completed.stderr[-3000:]}")
            result = json.loads(completed.stdout.strip().splitlines()[-1])
            result["tries"] = len(endpoint._held)
            return result
        finally:
            endpoint.stop()

    [samples] = round_robin(["hanging SSM"], repeats, measure, "ssm start").values()
    if any(sample["on"] for sample in samples):
        raise SystemExit("Sentry started although SSM never answered: not this benchmark")
    seconds = [sample["seconds"] for sample in samples]
    figures = {
        "median": median(seconds),
        "most": max(seconds),
        "tries": median([sample["tries"] for sample in samples]),
    }
    table = Table(
        title=f"init_sentry() with an SSM endpoint that never answers ({repeats} fresh processes)",
        columns=["What", "Figure"],
        rows=[
            ["seconds, median", f"{figures['median']:.2f} s"],
            ["seconds, most", f"{figures['most']:.2f} s"],
            ["tries botocore started (median)", f"{figures['tries']:.0f}"],
        ],
    )
    return table, figures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ssm_start", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--project", type=Path, help="a baked project with its .venv synced")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    with synced_project(args.project, args.keep, "template-benchmarks-ssm-") as (project, python):
        table, _ = hanging_ssm(python, project, args.repeats)
    print("\n" + text_table(table))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
