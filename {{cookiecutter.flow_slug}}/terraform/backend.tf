# This file is yours: template updates never change it (`[tool.cruft] skip` in
# pyproject.toml). It holds where Terraform keeps its state.
#
# The state holds the Sentry DSN (read from Sentry and written to SSM) and the Sentry
# token (read from SSM to configure the provider) in plain text. Keep it in an
# encrypted, access-controlled backend, e.g. an S3 bucket with encryption and
# versioning, and never commit a .tfstate file. Before the first apply, uncomment and
# name your bucket:
#
#   terraform {
#     backend "s3" {
#       bucket       = "my-terraform-state"
#       key          = "flows/{{ cookiecutter.__distribution }}/{{ cookiecutter.environment }}.tfstate"
#       region       = "{{ cookiecutter.aws_region }}"
#       encrypt      = true
#       use_lockfile = true
#     }
#   }
