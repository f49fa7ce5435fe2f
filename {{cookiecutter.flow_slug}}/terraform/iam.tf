# What the flow itself may do in AWS: read its Sentry DSN, nothing more. Attach this
# policy to whatever identity runs the flow (DEPLOY.md says which for this project).

data "aws_iam_policy_document" "flow" {
  statement {
    sid       = "ReadSentryDsn"
    actions   = ["ssm:GetParameter"]
    resources = [aws_ssm_parameter.sentry_dsn.arn]
  }

  statement {
    sid       = "DecryptSentryDsn"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.sentry_dsn.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["ssm.${local.aws_region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_policy" "flow" {
  name        = "${local.name}-flow"
  description = "Lets the ${local.name} flow read its Sentry DSN from SSM"
  policy      = data.aws_iam_policy_document.flow.json
}
