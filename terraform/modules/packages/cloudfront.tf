# CloudFront serves the public tree: origin path /static, so no request can name a key outside
# it (config/ included), and the bucket policy grants this distribution static/* only.

resource "aws_cloudfront_origin_access_control" "public" {
  name                              = "${var.name}-repo"
  description                       = "CloudFront reads ${local.public_bucket}/${local.public_prefix}"
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

# One cache policy per object kind. The objects carry the same lifetimes as Cache-Control
# (src/cache_rules.rs); max_ttl caps what CloudFront keeps even if an object's metadata is off.
# Nothing varies by cookie, header or query string: the path names the object.

resource "aws_cloudfront_cache_policy" "immutable" {
  count       = var.existing_cache_policy_ids == null ? 1 : 0
  name        = "${var.name}-immutable"
  comment     = "packages and content-named metadata"
  min_ttl     = 0
  default_ttl = local.cache_ttl.immutable
  max_ttl     = local.cache_ttl.immutable
  parameters_in_cache_key_and_forwarded_to_origin {
    cookies_config {
      cookie_behavior = "none"
    }
    headers_config {
      header_behavior = "none"
    }
    query_strings_config {
      query_string_behavior = "none"
    }
  }
}

resource "aws_cloudfront_cache_policy" "index" {
  count       = var.existing_cache_policy_ids == null ? 1 : 0
  name        = "${var.name}-index"
  comment     = "signed indexes and their roots: short, revalidated"
  min_ttl     = 0
  default_ttl = local.cache_ttl.index
  max_ttl     = local.cache_ttl.index
  parameters_in_cache_key_and_forwarded_to_origin {
    cookies_config {
      cookie_behavior = "none"
    }
    headers_config {
      header_behavior = "none"
    }
    query_strings_config {
      query_string_behavior = "none"
    }
  }
}

resource "aws_cloudfront_cache_policy" "medium" {
  count       = var.existing_cache_policy_ids == null ? 1 : 0
  name        = "${var.name}-medium"
  comment     = "public keys and .repo files"
  min_ttl     = 0
  default_ttl = local.cache_ttl.medium
  max_ttl     = local.cache_ttl.medium
  parameters_in_cache_key_and_forwarded_to_origin {
    cookies_config {
      cookie_behavior = "none"
    }
    headers_config {
      header_behavior = "none"
    }
    query_strings_config {
      query_string_behavior = "none"
    }
  }
}

resource "aws_cloudfront_distribution" "cdn" {
  enabled             = true
  comment             = "${var.name} package repositories"
  is_ipv6_enabled     = true
  http_version        = "http2and3"
  price_class         = var.price_class
  aliases             = var.domain_names
  wait_for_deployment = var.wait_for_deployment
  tags                = var.tags

  origin {
    origin_id                = "public-tree"
    domain_name              = aws_s3_bucket.public.bucket_regional_domain_name
    origin_path              = "/${local.public_prefix}"
    origin_access_control_id = aws_cloudfront_origin_access_control.public.id
  }

  default_cache_behavior {
    target_origin_id       = "public-tree"
    allowed_methods        = ["GET", "HEAD"]
    cached_methods         = ["GET", "HEAD"]
    viewer_protocol_policy = var.viewer_protocol_policy
    cache_policy_id        = local.cache_policy_ids.immutable
    # Packages and indexes are compressed already.
    compress = false
  }

  dynamic "ordered_cache_behavior" {
    for_each = local.ordered_behaviours
    content {
      path_pattern           = ordered_cache_behavior.value.path_pattern
      target_origin_id       = "public-tree"
      allowed_methods        = ["GET", "HEAD"]
      cached_methods         = ["GET", "HEAD"]
      viewer_protocol_policy = var.viewer_protocol_policy
      cache_policy_id        = local.cache_policy_ids[ordered_cache_behavior.value.class]
      compress               = false
    }
  }

  # S3 answers 403 for a missing key (CloudFront may not list the bucket). Cache such answers
  # briefly only, so a file published right after a miss is served at once.
  custom_error_response {
    error_code            = 403
    error_caching_min_ttl = 10
  }
  custom_error_response {
    error_code            = 404
    error_caching_min_ttl = 10
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = length(var.domain_names) == 0
    acm_certificate_arn            = length(var.domain_names) > 0 ? var.acm_certificate_arn : null
    ssl_support_method             = length(var.domain_names) > 0 ? "sni-only" : null
    minimum_protocol_version       = length(var.domain_names) > 0 ? "TLSv1.2_2021" : "TLSv1"
  }

  lifecycle {
    precondition {
      condition     = length(var.domain_names) == 0 || var.acm_certificate_arn != null
      error_message = "domain_names needs acm_certificate_arn (a certificate in us-east-1 covering them)."
    }
  }
}
