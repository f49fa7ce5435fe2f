"""Sentry monitoring for this flow. The template owns this package: see README, "Updates".

How a flow run is monitored, module by module:

- `startup`: `init_sentry()` reads the SENTRY_* variables, takes the DSN from SENTRY_DSN or
  else from the AWS SSM parameter named by SENTRY_DSN_SSM_PARAMETER_NAME, and starts the
  Sentry SDK once per process. It never raises: when anything is missing or fails, one
  warning says why, and the flow runs exactly as it would without monitoring.
- `flows`: `MonitoredFlow` gives the flow `report_flow_failure` and every task
  `report_task_failure`, so each task run that finally fails is reported once, from
  whatever process runs it. `init_base_flow` keeps the original upstream-task usage working.
- `events`: what every event carries (the flow run's and the task's tags, read from
  `prefect.context` when the event is captured; a link to the run in the Prefect UI), and
  which of Prefect's own error logs are dropped as duplicates.
- `scrubbing`: what never leaves the process: secret-looking keys, secret values and the
  credentials in URLs, wherever they appear in an event.
- `delivery`: sending without hurting the flow: one warning when Sentry does not take
  events, and a wait bounded by SENTRY_SHUTDOWN_TIMEOUT when a process ends.
- `crons`: Sentry Crons check-ins for a scheduled flow, so missed and crashed runs show.
- `__main__`: `python -m <package>.monitoring` (`make check-monitoring`) sends a test event.
"""

from .flows import MonitoredFlow, init_base_flow, report_flow_failure, report_task_failure
from .startup import get_ssm_parameter, init_sentry

__all__ = [
    "MonitoredFlow",
    "get_ssm_parameter",
    "init_base_flow",
    "init_sentry",
    "report_flow_failure",
    "report_task_failure",
]
