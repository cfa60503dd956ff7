output "repository_base_url" {
  description = "Clients use BASE/<org>/alpine/<version>/<repo>."
  value       = module.packages.repository_base_url
}

output "public_bucket" {
  description = "The public tree's bucket."
  value       = module.packages.public_bucket
}

output "config_bucket" {
  description = "The private tree's bucket."
  value       = module.packages.config_bucket
}

output "uploader_role_arn" {
  description = "Role for the upload service and CI."
  value       = module.packages.uploader_role_arn
}

output "serve_flags" {
  description = "Flags for `packages serve` and every other command."
  value       = module.packages.serve_flags
}

output "serve_env" {
  description = "The same as environment variables."
  value       = module.packages.serve_env
}

output "distribution_id" {
  description = "The CloudFront distribution."
  value       = module.packages.distribution_id
}

output "certificate_validation_records" {
  description = "DNS records that validate the certificate (create them when not using Route 53)."
  value       = var.domain_name == null ? [] : aws_acm_certificate.cdn[0].domain_validation_options
}
