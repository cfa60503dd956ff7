# Root example: package repositories on AWS behind CloudFront, optionally on your own domain.
#
#   terraform init && terraform apply -var name=acme-pkgs
#   terraform output serve_flags      # the flags for `packages serve`
#
# See docs/aws.md for the whole walk-through (five steps from here to `apk add`).

provider "aws" {
  region = var.region
}

# CloudFront only uses certificates from us-east-1.
provider "aws" {
  alias  = "us_east_1"
  region = "us-east-1"
}

module "packages" {
  source = "./modules/packages"

  name                   = var.name
  separate_config_bucket = var.separate_config_bucket
  domain_names           = var.domain_name == null ? [] : [var.domain_name]
  acm_certificate_arn    = var.domain_name == null ? null : aws_acm_certificate_validation.cdn[0].certificate_arn
  uploader_trusted_arns  = var.uploader_trusted_arns
  tags                   = var.tags
}

# --- optional custom domain ------------------------------------------------------------------

resource "aws_acm_certificate" "cdn" {
  count             = var.domain_name == null ? 0 : 1
  provider          = aws.us_east_1
  domain_name       = var.domain_name
  validation_method = "DNS"
  tags              = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

# With a Route 53 zone the certificate is validated and the domain pointed at CloudFront here;
# without one, create the records shown by `terraform output certificate_validation_records`
# at your DNS provider while `apply` waits.
resource "aws_route53_record" "validation" {
  for_each = var.domain_name == null || var.route53_zone_id == null ? {} : {
    for o in aws_acm_certificate.cdn[0].domain_validation_options : o.domain_name => o
  }
  zone_id = var.route53_zone_id
  name    = each.value.resource_record_name
  type    = each.value.resource_record_type
  records = [each.value.resource_record_value]
  ttl     = 300
}

resource "aws_acm_certificate_validation" "cdn" {
  count                   = var.domain_name == null ? 0 : 1
  provider                = aws.us_east_1
  certificate_arn         = aws_acm_certificate.cdn[0].arn
  validation_record_fqdns = var.route53_zone_id == null ? null : [for r in aws_route53_record.validation : r.fqdn]
}

resource "aws_route53_record" "cdn" {
  for_each = var.domain_name == null || var.route53_zone_id == null ? toset([]) : toset(["A", "AAAA"])
  zone_id  = var.route53_zone_id
  name     = var.domain_name
  type     = each.key
  alias {
    name                   = module.packages.distribution_domain_name
    zone_id                = "Z2FDTNDATAQYW2" # CloudFront's fixed hosted zone
    evaluate_target_health = false
  }
}
