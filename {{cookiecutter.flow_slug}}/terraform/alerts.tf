# Every new, regressed or escalating issue in the flow's Sentry project goes to Slack,
# with the tags that say where it came from.

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
  name              = {{ (cookiecutter.project_name ~ " errors to Slack") | hcl_string }}
  environment       = local.environment
  monitor_ids       = [data.sentry_project_error_monitor.flow.id]
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
