# The module applied to moto (an AWS emulator on loopback) by scripts/test-terraform:
# plan, apply, an IAM check of the uploader policy, destroy. moto has no CloudFront cache-policy
# API, so the module is given existing policy ids (AWS's managed CachingOptimized and
# CachingDisabled; moto does not check them). CloudFront semantics (paths, TTLs) are covered by
# the mocked tests in modules/packages/tests/ instead.

terraform {
  required_version = ">= 1.7"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 6.0"
    }
  }
}

variable "endpoint" {
  description = "moto's URL, e.g. http://127.0.0.1:45123"
  type        = string
}

variable "name" {
  description = "Resource name prefix."
  type        = string
  default     = "tf-moto"
}

variable "separate_config_bucket" {
  description = "Two buckets (default) or one."
  type        = bool
  default     = true
}

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true
  endpoints {
    s3         = var.endpoint
    iam        = var.endpoint
    sts        = var.endpoint
    cloudfront = var.endpoint
  }
}

module "packages" {
  source = "../modules/packages"

  name                   = var.name
  separate_config_bucket = var.separate_config_bucket
  force_destroy          = true
  require_tls            = false # moto serves plain HTTP
  # Versioning off on moto: destroying a versioned bucket holding delete markers (which the
  # CLI's publish leaves) hangs moto 5.2.5 (HTTP 500, the provider retries for 10+ minutes;
  # seen in this project's terraform probe). Versioning and its lifecycle rule are covered
  # by the mocked tests in ../modules/packages/tests/ instead.
  config_versioning   = false
  wait_for_deployment = false
  existing_cache_policy_ids = {
    immutable = "658327ea-f89d-4fab-a63d-7e88639e58f6"
    index     = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    medium    = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
  }
}

output "public_bucket" {
  description = "The public bucket."
  value       = module.packages.public_bucket
}

output "config_bucket" {
  description = "The private bucket."
  value       = module.packages.config_bucket
}

output "uploader_policy_arn" {
  description = "The uploader policy."
  value       = module.packages.uploader_policy_arn
}

output "serve_flags" {
  description = "Flags for packages serve."
  value       = module.packages.serve_flags
}
