locals {
  # Baked into the image, the run config and the workflows as well: change them by
  # regenerating the project from the template, never here alone.
  environment          = {{ cookiecutter.environment | hcl_string }}
  aws_region           = {{ cookiecutter.aws_region | hcl_string }}
  sentry_organization  = {{ cookiecutter.sentry_organization | hcl_string }}
  sentry_project       = {{ cookiecutter.__distribution | hcl_string }}
  sentry_dsn_parameter = {{ cookiecutter.__sentry_dsn_parameter | hcl_string }}

  # Prefix for the names of AWS resources.
  name = {{ (cookiecutter.__distribution ~ "-" ~ cookiecutter.environment) | hcl_string }}
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}
