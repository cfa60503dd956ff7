# The uploader: what `packages serve` (the upload service) and CI jobs that publish straight to
# the store need, and nothing else. The code only gets, heads, puts, lists and deletes objects
# (src/storage/s3.rs), so these are the only actions granted:
#   - read/write/delete the public tree (static/*) of the public bucket;
#   - read/write/delete the private tree (the config bucket, or config/* of a shared bucket);
#   - list both buckets;
#   - in the public bucket also config/_probe/*: the store's conditional-write probe
#     (src/storage.rs) and `packages doctor` write and delete a scratch object there. CloudFront
#     never reaches it (origin path /static) and the bucket policy does not grant it.
# No bucket-level changes (policy, ACL, versioning), no other bucket, no other service.

locals {
  public_arn = aws_s3_bucket.public.arn
  config_arn = var.separate_config_bucket ? aws_s3_bucket.config[0].arn : aws_s3_bucket.public.arn
  config_objects = (var.separate_config_bucket
    ? ["${local.config_arn}/*"]
    : ["${local.public_arn}/${local.config_prefix}/*"]
  )
  probe_objects = var.separate_config_bucket ? ["${local.public_arn}/${local.config_prefix}/_probe/*"] : []

  uploader_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "PublicTree"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
        Resource = concat(["${local.public_arn}/${local.public_prefix}/*"], local.probe_objects)
      },
      {
        Sid      = "PrivateTree"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
        Resource = local.config_objects
      },
      {
        Sid      = "ListBoth"
        Effect   = "Allow"
        Action   = "s3:ListBucket"
        Resource = distinct([local.public_arn, local.config_arn])
      },
    ]
  }
}

resource "aws_iam_policy" "uploader" {
  name        = "${var.name}-uploader"
  description = "packages upload service and CI: write the public tree, read/write the private tree"
  policy      = jsonencode(local.uploader_policy)
  tags        = var.tags
}

resource "aws_iam_role" "uploader" {
  name = "${var.name}-uploader"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      length(var.uploader_trusted_services) > 0 ? [{
        Effect    = "Allow"
        Principal = { Service = var.uploader_trusted_services }
        Action    = "sts:AssumeRole"
      }] : [],
      length(var.uploader_trusted_arns) > 0 ? [{
        Effect    = "Allow"
        Principal = { AWS = var.uploader_trusted_arns }
        Action    = "sts:AssumeRole"
      }] : [],
    )
  })
  tags = var.tags

  lifecycle {
    precondition {
      condition     = length(var.uploader_trusted_services) + length(var.uploader_trusted_arns) > 0
      error_message = "The uploader role needs someone to trust: set uploader_trusted_services or uploader_trusted_arns."
    }
  }
}

resource "aws_iam_role_policy_attachment" "uploader" {
  role       = aws_iam_role.uploader.name
  policy_arn = aws_iam_policy.uploader.arn
}
