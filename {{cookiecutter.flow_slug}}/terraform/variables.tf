# Inputs for this stack. Defaults come from the answers the project was generated
# with; the ones without a default go in terraform.tfvars (DEPLOY.md, step 2).

variable "sentry_team" {
  description = "Slug of the Sentry team that owns the project."
  type        = string
  default     = {{ cookiecutter.sentry_team | hcl_string }}

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_-]{0,49}$", var.sentry_team))
    error_message = "The sentry_team must be a Sentry slug, e.g. data-platform."
  }
}

variable "sentry_base_url" {
  description = "Sentry API URL; change it only for a self-hosted Sentry."
  type        = string
  default     = "https://sentry.io/api/"

  validation {
    condition     = can(regex("^https://.+/api/$", var.sentry_base_url))
    error_message = "The sentry_base_url must look like https://sentry.example.com/api/."
  }
}

variable "sentry_token_parameter" {
  description = "Name of the SSM SecureString parameter that holds a Sentry auth token for Terraform."
  type        = string
  default     = {{ ("/" ~ cookiecutter.environment ~ "/sentry-token") | hcl_string }}

  validation {
    condition     = can(regex("^/[A-Za-z0-9_./-]+$", var.sentry_token_parameter))
    error_message = "The sentry_token_parameter must be an SSM parameter path, e.g. /production/sentry-token."
  }
}

variable "slack_workspace" {
  description = "Name of the Slack workspace as connected in Sentry (Settings > Integrations > Slack)."
  type        = string

  validation {
    condition     = length(trimspace(var.slack_workspace)) > 0
    error_message = "The slack_workspace must be the name of the Slack workspace connected to Sentry."
  }
}

variable "slack_channel" {
  description = "Slack channel that receives the flow's Sentry alerts."
  type        = string
  default     = {{ cookiecutter.slack_channel | hcl_string }}

  validation {
    condition     = can(regex("^#[a-z0-9][a-z0-9_-]{0,79}$", var.slack_channel))
    error_message = "The slack_channel must be a channel name starting with #, e.g. #data-alerts."
  }
}

variable "alert_frequency_minutes" {
  description = "Minimum minutes between two Slack alerts for the same Sentry issue."
  type        = number
  default     = 30

  validation {
    condition     = var.alert_frequency_minutes >= 5 && var.alert_frequency_minutes <= 1440
    error_message = "The alert_frequency_minutes must be between 5 and 1440 (one day)."
  }
}
