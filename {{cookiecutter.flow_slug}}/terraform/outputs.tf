# Outputs of resources that only some run configs have live beside those resources.

output "sentry_dsn_parameter_name" {
  description = "SSM parameter holding the Sentry DSN; the image sets SENTRY_DSN_SSM_PARAMETER_NAME to it."
  value       = aws_ssm_parameter.sentry_dsn.name
}

output "sentry_dsn_kms_key_arn" {
  description = "Customer-managed KMS key that encrypts the Sentry DSN parameter."
  value       = aws_kms_key.sentry_dsn.arn
}

output "flow_policy_arn" {
  description = "IAM policy that lets the flow's role read and decrypt the DSN parameter, and nothing else."
  value       = aws_iam_policy.flow.arn
}

output "sentry_project_slug" {
  description = "Slug of the flow's Sentry project, where its releases and issues land."
  value       = sentry_project.flow.slug
}
