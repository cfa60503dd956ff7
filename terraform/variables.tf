variable "name" {
  description = "Prefix of every resource name (the buckets are NAME-repo and NAME-config)."
  type        = string
}

variable "region" {
  description = "Region of the buckets and the IAM resources' API calls."
  type        = string
  default     = "eu-west-1"
}

variable "separate_config_bucket" {
  description = "Keep the private tree in a bucket of its own (recommended)."
  type        = bool
  default     = true
}

variable "domain_name" {
  description = "Custom domain for the repositories, e.g. pkgs.example.com (optional)."
  type        = string
  default     = null
}

variable "route53_zone_id" {
  description = "Route 53 zone of domain_name: validates the certificate and points the domain at CloudFront (optional)."
  type        = string
  default     = null
}

variable "uploader_trusted_arns" {
  description = "Principals that may assume the uploader role besides ECS tasks, e.g. a CI runner's role."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
