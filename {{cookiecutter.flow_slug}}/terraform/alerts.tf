# Every new, regressed or escalating issue in the flow's Sentry project goes to Slack,
# with the tags that say where it came from: its errors, and the runs that its Sentry
# Crons monitor (crons.tf) saw missed, failed or running too long.

# The default error monitor Sentry creates with every project.
data "sentry_project_error_monitor" "flow" {
  organization = sentry_project.flow.organization
  project      = sentry_project.flow.slug
}

data "sentry_organization_integration" "slack" {
  organization = local.sentry_organization
  provider_key = "slack"
  name         = var.slack_workspace
}

resource "sentry_alert" "slack" {
  organization      = local.sentry_organization
  name              = {{ (cookiecutter.project_name ~ " errors and missed runs to Slack") | hcl_string }}
  environment       = local.environment
  monitor_ids       = concat([data.sentry_project_error_monitor.flow.id], sentry_cron_monitor.flow[*].id)
  frequency_minutes = var.alert_frequency_minutes

  trigger_conditions = [
    { first_seen_event = {} },
    { regression_event = {} },
    { reappeared_event = {} },
  ]

  action_filters = [
    {
      logic_type = "all"
      actions = [
        {
          slack = {
            integration_id = data.sentry_organization_integration.slack.id
            channel_name   = var.slack_channel
            tags           = "region,environment,release"
          }
        },
      ]
    },
  ]
}
