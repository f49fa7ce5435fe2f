# The flow reads its Sentry DSN from this parameter at start-up (monitoring/sentry_setup.py), so the
# DSN is in no image, no run config and no Prefect Cloud metadata.

resource "aws_kms_key" "sentry_dsn" {
  description             = "Encrypts the Sentry DSN of ${local.name}"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  # The account's default key policy: access is then granted by IAM policies, like
  # aws_iam_policy.flow in iam.tf.
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministersKeyThroughIam"
        Effect    = "Allow"
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
    ]
  })
}

resource "aws_kms_alias" "sentry_dsn" {
  name          = "alias/${local.name}-sentry-dsn"
  target_key_id = aws_kms_key.sentry_dsn.key_id
}

resource "aws_ssm_parameter" "sentry_dsn" {
  name        = local.sentry_dsn_parameter
  description = "Sentry DSN of ${local.name}, read by the flow at start-up"
  type        = "SecureString"
  key_id      = aws_kms_key.sentry_dsn.arn
  value       = data.sentry_key.flow.dsn["public"]
}
