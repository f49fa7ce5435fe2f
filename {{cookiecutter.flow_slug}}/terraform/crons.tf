# Sentry Crons: the monitor that expects a check-in from every scheduled run, and opens
# an issue when a run is missed, fails or runs longer than its max_runtime; alerts.tf
# sends those issues to Slack. The flow's check-ins send the same settings
# (monitoring/crons.py): both read them from one file, which the project has when its
# flow has a schedule and Sentry Crons (the answers `schedule` and `sentry_crons`).

locals {
  sentry_crons_file = "${path.module}/../src/{{ cookiecutter.__package }}/deployment/sentry_crons.json"
  # The monitor's settings, or null when the project has no such file.
  sentry_crons = fileexists(local.sentry_crons_file) ? jsondecode(file(local.sentry_crons_file)) : null
}

data "sentry_team" "owner" {
  count        = local.sentry_crons == null ? 0 : 1
  organization = local.sentry_organization
  slug         = var.sentry_team
}

resource "sentry_cron_monitor" "flow" {
  count        = local.sentry_crons == null ? 0 : 1
  organization = sentry_project.flow.organization
  project      = sentry_project.flow.slug
  # Sentry makes the monitor's slug from its name, and a slug stays as it is: the
  # check-ins name the monitor by this slug.
  name        = local.sentry_crons.slug
  description = {{ ("Runs of the Prefect flow " ~ cookiecutter.flow_name ~ ", which check in when they start and when they end.") | hcl_string }}

  # New issues are assigned to the team that owns the project.
  owner = {
    team_id = data.sentry_team.owner[0].internal_id
  }

  schedule = {
    crontab = local.sentry_crons.schedule.value
  }
  timezone                = local.sentry_crons.timezone
  checkin_margin_minutes  = local.sentry_crons.checkin_margin
  max_runtime_minutes     = local.sentry_crons.max_runtime
  failure_issue_threshold = local.sentry_crons.failure_issue_threshold
  recovery_threshold      = local.sentry_crons.recovery_threshold

  lifecycle {
    precondition {
      condition     = local.sentry_crons.schedule.type == "crontab"
      error_message = "The schedule in ${local.sentry_crons_file} must be {\"type\": \"crontab\", \"value\": \"<cron>\"}."
    }
  }
}
