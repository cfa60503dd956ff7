variable "name" {
  description = "Prefix of every resource name; the buckets are NAME-repo and NAME-config (lowercase letters, digits and hyphens, 3 to 40 characters)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$", var.name))
    error_message = "name must be 3 to 40 lowercase letters, digits or hyphens, not starting or ending with a hyphen."
  }
}

variable "separate_config_bucket" {
  description = "Keep the private tree (signing keys, records, tokens) in a bucket of its own (default). With false it lives under config/ in the public bucket, which CloudFront still never reaches (origin path /static)."
  type        = bool
  default     = true
}

variable "config_versioning" {
  description = "Version the private store, so an overwritten or deleted signing key, record or token can be recovered."
  type        = bool
  default     = true
}

variable "config_noncurrent_days" {
  description = "Days an overwritten version in the private store is kept (every publish overwrites the index state); null: forever (no lifecycle rule)."
  type        = number
  default     = 30

  validation {
    condition     = var.config_noncurrent_days == null || try(var.config_noncurrent_days >= 1, false)
    error_message = "config_noncurrent_days must be at least 1, or null."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete non-empty buckets (for tests; keep false in production)."
  type        = bool
  default     = false
}

variable "domain_names" {
  description = "Custom domain names for the CDN (optional); needs acm_certificate_arn."
  type        = list(string)
  default     = []
}

variable "acm_certificate_arn" {
  description = "ACM certificate (in us-east-1, as CloudFront requires) covering domain_names."
  type        = string
  default     = null

  validation {
    condition     = var.acm_certificate_arn == null || can(regex("^arn:aws[a-z-]*:acm:us-east-1:", var.acm_certificate_arn))
    error_message = "acm_certificate_arn must be an ACM certificate in us-east-1 (CloudFront uses only those)."
  }
}

variable "price_class" {
  description = "CloudFront price class."
  type        = string
  default     = "PriceClass_100"

  validation {
    condition     = contains(["PriceClass_100", "PriceClass_200", "PriceClass_All"], var.price_class)
    error_message = "price_class must be PriceClass_100, PriceClass_200 or PriceClass_All."
  }
}

variable "viewer_protocol_policy" {
  description = "What CloudFront does with plain HTTP requests. Package signatures protect the content either way; `allow-all` suits clients without CA certificates."
  type        = string
  default     = "redirect-to-https"

  validation {
    condition     = contains(["allow-all", "redirect-to-https", "https-only"], var.viewer_protocol_policy)
    error_message = "viewer_protocol_policy must be allow-all, redirect-to-https or https-only."
  }
}

variable "wait_for_deployment" {
  description = "Wait until the distribution is deployed (several minutes on AWS)."
  type        = bool
  default     = true
}

variable "existing_cache_policy_ids" {
  description = "Use these CloudFront cache policies instead of creating the three of this module (for emulators without the cache-policy API, or shared policies)."
  type = object({
    immutable = string
    index     = string
    medium    = string
  })
  default = null
}

variable "uploader_trusted_services" {
  description = "AWS services that may assume the uploader role (where the upload service runs)."
  type        = list(string)
  default     = ["ecs-tasks.amazonaws.com"]
}

variable "uploader_trusted_arns" {
  description = "IAM principals (accounts, roles, users) that may assume the uploader role, e.g. a CI runner's role."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "require_tls" {
  description = "Deny every request to the buckets that does not use TLS (turn off only for emulators on plain HTTP)."
  type        = bool
  default     = true
}
