# The public bucket holds the public tree under static/ (and, with separate_config_bucket = false,
# the private tree under config/). It is private: only CloudFront reads it, and only static/.

resource "aws_s3_bucket" "public" {
  bucket        = local.public_bucket
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_public_access_block" "public" {
  bucket                  = aws_s3_bucket.public.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "public" {
  bucket = aws_s3_bucket.public.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "public" {
  bucket = aws_s3_bucket.public.id
  rule {
    # SSE-S3: CloudFront's origin access control reads it without a KMS key policy.
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_policy" "public" {
  bucket = aws_s3_bucket.public.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
      {
        # The only read grant: this distribution, the public tree.
        Sid       = "CloudFrontReadsPublicTree"
        Effect    = "Allow"
        Principal = { Service = "cloudfront.amazonaws.com" }
        Action    = "s3:GetObject"
        Resource  = "${aws_s3_bucket.public.arn}/${local.public_prefix}/*"
        Condition = {
          StringEquals = { "AWS:SourceArn" = aws_cloudfront_distribution.cdn.arn }
        }
      }],
      var.require_tls ? [{
        Sid       = "DenyPlainHttp"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.public.arn, "${aws_s3_bucket.public.arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      }] : [],
    )
  })
  # A bucket policy granting a service principal is not "public", but apply it after the block
  # so no window exists where a mistake could make the bucket public.
  depends_on = [aws_s3_bucket_public_access_block.public]
}

# The private store: signing keys, per-package records, tokens. Nobody but the uploader reads it.

resource "aws_s3_bucket" "config" {
  count         = var.separate_config_bucket ? 1 : 0
  bucket        = local.config_bucket
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_public_access_block" "config" {
  count                   = var.separate_config_bucket ? 1 : 0
  bucket                  = aws_s3_bucket.config[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "config" {
  count  = var.separate_config_bucket ? 1 : 0
  bucket = aws_s3_bucket.config[0].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "config" {
  count  = var.separate_config_bucket ? 1 : 0
  bucket = aws_s3_bucket.config[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_policy" "config" {
  count  = var.separate_config_bucket && var.require_tls ? 1 : 0
  bucket = aws_s3_bucket.config[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "DenyPlainHttp"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.config[0].arn, "${aws_s3_bucket.config[0].arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })
  depends_on = [aws_s3_bucket_public_access_block.config]
}

# Versioning where it helps recovery: the private tree cannot be rebuilt from anything else
# (the public tree can: `packages index rebuild` re-reads the packages). With one shared
# bucket, the whole bucket is versioned.
resource "aws_s3_bucket_versioning" "config" {
  count  = var.config_versioning ? 1 : 0
  bucket = var.separate_config_bucket ? aws_s3_bucket.config[0].id : aws_s3_bucket.public.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "config" {
  count  = var.config_versioning && var.config_noncurrent_days != null ? 1 : 0
  bucket = var.separate_config_bucket ? aws_s3_bucket.config[0].id : aws_s3_bucket.public.id
  rule {
    id     = "expire-old-versions"
    status = "Enabled"
    filter {
      prefix = ""
    }
    noncurrent_version_expiration {
      noncurrent_days = var.config_noncurrent_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 2
    }
  }
  depends_on = [aws_s3_bucket_versioning.config]
}
