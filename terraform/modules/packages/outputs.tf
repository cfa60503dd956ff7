output "repository_base_url" {
  description = "Base URL of every repository: clients use BASE/<org>/alpine/<version>/<repo> (the CDN's origin path is /static)."
  value       = local.base_url
}

output "public_bucket" {
  description = "The bucket holding the public tree (static/)."
  value       = aws_s3_bucket.public.id
}

output "config_bucket" {
  description = "The bucket holding the private tree (config/): the public bucket itself when separate_config_bucket is false."
  value       = var.separate_config_bucket ? aws_s3_bucket.config[0].id : aws_s3_bucket.public.id
}

output "distribution_id" {
  description = "The CloudFront distribution (for invalidations)."
  value       = aws_cloudfront_distribution.cdn.id
}

output "distribution_domain_name" {
  description = "The distribution's own domain name (point a custom domain's CNAME or alias here)."
  value       = aws_cloudfront_distribution.cdn.domain_name
}

output "uploader_role_arn" {
  description = "Role for the upload service (and CI jobs that publish straight to the buckets)."
  value       = aws_iam_role.uploader.arn
}

output "uploader_policy_arn" {
  description = "The uploader's managed policy, to attach to other principals if needed."
  value       = aws_iam_policy.uploader.arn
}

output "serve_flags" {
  description = "Flags for `packages serve` (and every other command) on these buckets."
  value = join(" ", concat(
    ["--storage", "s3://${aws_s3_bucket.public.id}"],
    var.separate_config_bucket ? ["--config-storage", "s3://${aws_s3_bucket.config[0].id}"] : [],
    ["--public-url", local.base_url],
  ))
}

output "serve_env" {
  description = "The same settings as environment variables (plus AWS_REGION of the buckets)."
  value = merge(
    {
      PACKAGES_STORAGE    = "s3://${aws_s3_bucket.public.id}"
      PACKAGES_PUBLIC_URL = local.base_url
      AWS_REGION          = aws_s3_bucket.public.region
    },
    var.separate_config_bucket ? { PACKAGES_CONFIG_STORAGE = "s3://${aws_s3_bucket.config[0].id}" } : {},
  )
}
