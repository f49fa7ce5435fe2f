resource "sentry_project" "flow" {
  organization = local.sentry_organization
  teams        = [var.sentry_team]
  name         = {{ cookiecutter.project_name | hcl_string }}
  slug         = local.sentry_project
  platform     = "python"

  # The Slack alert in alerts.tf replaces Sentry's default "email on every new issue".
  default_rules = false
}

data "sentry_key" "flow" {
  organization = sentry_project.flow.organization
  project      = sentry_project.flow.slug
  first        = true
}
