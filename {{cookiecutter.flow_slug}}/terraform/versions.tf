# The template owns this folder: the AWS and Sentry resources this flow needs, applied
# once by hand (see DEPLOY.md), then again whenever the template changes them.
#
# The state backend is in backend.tf, which is yours: template updates never change it.

terraform {
  required_version = ">= 1.10.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    sentry = {
      source  = "jianyuan/sentry"
      version = "~> 0.15.0"
    }
  }
}

provider "aws" {
  region = local.aws_region

  default_tags {
    tags = {
      flow        = local.name
      environment = local.environment
      team        = var.sentry_team
      managed-by  = "terraform"
    }
  }
}

# The token lives in SSM so that nobody types it: one per Sentry organization, with
# the project:write, team:read, org:read and alerts:write scopes.
data "aws_ssm_parameter" "sentry_token" {
  name            = var.sentry_token_parameter
  with_decryption = true
}

provider "sentry" {
  token    = data.aws_ssm_parameter.sentry_token.value
  base_url = var.sentry_base_url
}
