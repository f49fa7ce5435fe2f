"""Sentry monitoring for this flow. The template owns this package: see README, "Updates".

How a flow run is monitored, module by module:

- `sentry_setup`: `init_sentry()` reads the SENTRY_* variables, takes the DSN from SENTRY_DSN or
  else from the AWS SSM parameter named by SENTRY_DSN_SSM_PARAMETER_NAME, and starts the
  Sentry SDK once per process, with `integration.PrefectIntegration`. It never raises:
  when anything is missing or fails, one warning says why, and the flow runs exactly as
  it would without monitoring.
- `state_handlers`: `MonitoredFlow` gives the flow `report_flow_failure` and every task
  `report_task_failure`, so each task run that finally fails is reported once, from
  whatever process runs it, as an unhandled error. `init_base_flow`, a task listed
  upstream of others, starts Sentry in a plain `Flow` too.
  Importing it runs every flow run and task run in a Sentry scope of its own, and
  reports a task that fails because one of its own state handlers raised.
- `budget`: at most SENTRY_MAX_EVENTS_PER_TASK events per task and flow run, then one
  event that counts the failures not sent.
- `integration`: `PrefectIntegration`, the SDK integration that registers `events`.
- `events`: what every event carries (the flow run's and the task's tags, read from
  `prefect.context` when the event is captured; a link to the run in the Prefect UI; the
  flow parameters, big ones summarised), and which of Prefect's own error logs are
  dropped as duplicates.
- `scrubbing`: what never leaves the process: secret-looking keys, secret values and the
  credentials in URLs, wherever they appear in an event.
- `transport`: sending without hurting the flow: one warning when Sentry does not take
  events, and a wait bounded by SENTRY_SHUTDOWN_TIMEOUT when a process ends, worker
  processes included (`deliver_before_exit`), never while a task runs.
- `crons`: Sentry Crons check-ins for a scheduled flow, so missed and crashed runs show.
- `sdk`: what differs between sentry-sdk 2.x and 3.x, found by asking the installed SDK.
- `__main__`: `python -m <package>.monitoring` (`make check-monitoring`) sends a test event.
"""

from .integration import PrefectIntegration
from .sentry_setup import get_ssm_parameter, init_sentry
from .state_handlers import MonitoredFlow, init_base_flow, report_flow_failure, report_task_failure
from .transport import deliver_before_exit

__all__ = [
    "MonitoredFlow",
    "PrefectIntegration",
    "deliver_before_exit",
    "get_ssm_parameter",
    "init_base_flow",
    "init_sentry",
    "report_flow_failure",
    "report_task_failure",
]
