# Offline tests of the module: a mocked AWS provider, no server, no credentials.
#   cd terraform/modules/packages && terraform init && terraform test
# The cache lifetimes asserted here are the table of issue 11 item 1 (src/cache_rules.rs).

mock_provider "aws" {
  mock_resource "aws_cloudfront_distribution" {
    defaults = {
      arn         = "arn:aws:cloudfront::123456789012:distribution/EMOCK"
      domain_name = "dmock.cloudfront.net"
      id          = "EMOCK"
    }
  }
  mock_resource "aws_iam_policy" {
    defaults = { arn = "arn:aws:iam::123456789012:policy/mock" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/mock" }
  }
}

variables {
  name = "pkgs-test"
}

# Known bucket ARNs and names, so assertions can tell the two buckets apart.
override_resource {
  target = aws_s3_bucket.public
  values = {
    id                          = "pkgs-test-repo"
    arn                         = "arn:aws:s3:::pkgs-test-repo"
    bucket_regional_domain_name = "pkgs-test-repo.s3.eu-west-1.amazonaws.com"
    region                      = "eu-west-1"
  }
}

override_resource {
  target = aws_s3_bucket.config
  values = {
    id  = "pkgs-test-config"
    arn = "arn:aws:s3:::pkgs-test-config"
  }
}

override_resource {
  target = aws_cloudfront_cache_policy.immutable
  values = { id = "policy-immutable" }
}

override_resource {
  target = aws_cloudfront_cache_policy.index
  values = { id = "policy-index" }
}

override_resource {
  target = aws_cloudfront_cache_policy.medium
  values = { id = "policy-medium" }
}

run "private_store_is_unreachable" {
  command = apply

  assert {
    condition     = aws_s3_bucket.config[0].bucket != aws_s3_bucket.public.bucket
    error_message = "the private store must be a second bucket by default"
  }
  # CloudFront has one origin: the public bucket, under /static.
  assert {
    condition     = length(aws_cloudfront_distribution.cdn.origin) == 1
    error_message = "CloudFront must have exactly one origin"
  }
  assert {
    condition = alltrue([for o in aws_cloudfront_distribution.cdn.origin :
      o.origin_path == "/static" && o.domain_name == "pkgs-test-repo.s3.eu-west-1.amazonaws.com"
    && o.origin_access_control_id == aws_cloudfront_origin_access_control.public.id])
    error_message = "the only origin must be the public bucket, origin path /static, through origin access control"
  }
  # The bucket policy's only Allow: this distribution, GetObject, static/*.
  assert {
    condition = [for s in jsondecode(aws_s3_bucket_policy.public.policy).Statement :
      s.Principal == { Service = "cloudfront.amazonaws.com" } && s.Action == "s3:GetObject"
      && s.Resource == "arn:aws:s3:::pkgs-test-repo/static/*"
      && s.Condition.StringEquals["AWS:SourceArn"] == "arn:aws:cloudfront::123456789012:distribution/EMOCK"
    if s.Effect != "Deny"] == [true]
    error_message = "the public bucket policy may allow only this distribution to read static/*"
  }
  assert {
    condition     = length([for s in jsondecode(aws_s3_bucket_policy.config[0].policy).Statement : s if s.Effect != "Deny"]) == 0
    error_message = "the private store's policy must grant nothing"
  }
  assert {
    condition = alltrue([for b in [aws_s3_bucket_public_access_block.public, aws_s3_bucket_public_access_block.config[0]] :
    b.block_public_acls && b.block_public_policy && b.ignore_public_acls && b.restrict_public_buckets])
    error_message = "both buckets must block every kind of public access"
  }
  assert {
    condition = alltrue([for c in [aws_s3_bucket_ownership_controls.public, aws_s3_bucket_ownership_controls.config[0]] :
    one(c.rule).object_ownership == "BucketOwnerEnforced"])
    error_message = "ACLs must be disabled on both buckets"
  }
  assert {
    condition = alltrue([for e in [aws_s3_bucket_server_side_encryption_configuration.public, aws_s3_bucket_server_side_encryption_configuration.config[0]] :
    one(one(e.rule).apply_server_side_encryption_by_default).sse_algorithm == "AES256"])
    error_message = "both buckets must be encrypted"
  }
  assert {
    condition     = aws_s3_bucket_versioning.config[0].bucket == "pkgs-test-config" && one(aws_s3_bucket_versioning.config[0].versioning_configuration).status == "Enabled"
    error_message = "the private store must be versioned"
  }
  assert {
    condition     = aws_s3_bucket_lifecycle_configuration.config[0].bucket == "pkgs-test-config" && one(one(aws_s3_bucket_lifecycle_configuration.config[0].rule).noncurrent_version_expiration).noncurrent_days == 30
    error_message = "old versions in the private store expire after 30 days"
  }
  assert {
    condition     = output.serve_flags == "--storage s3://pkgs-test-repo --config-storage s3://pkgs-test-config --public-url https://dmock.cloudfront.net"
    error_message = "serve_flags: ${output.serve_flags}"
  }
  assert {
    condition     = output.repository_base_url == "https://dmock.cloudfront.net" && output.config_bucket == "pkgs-test-config" && output.public_bucket == "pkgs-test-repo"
    error_message = "outputs must name the URL and the buckets"
  }
  assert {
    condition     = output.serve_env.PACKAGES_CONFIG_STORAGE == "s3://pkgs-test-config" && output.serve_env.PACKAGES_STORAGE == "s3://pkgs-test-repo"
    error_message = "serve_env must name both stores"
  }
}

run "uploader_policy_is_scoped" {
  command = apply

  # Only object get/put/delete and bucket listing, and nothing with a wildcard action.
  assert {
    condition = alltrue(flatten([for s in jsondecode(aws_iam_policy.uploader.policy).Statement : [
      for a in flatten([s.Action]) : contains(["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"], a)
    ]]))
    error_message = "the uploader may only get, put, delete and list objects"
  }
  assert {
    condition     = alltrue([for s in jsondecode(aws_iam_policy.uploader.policy).Statement : s.Effect == "Allow" && !can(s.NotAction) && !can(s.NotResource)])
    error_message = "no NotAction/NotResource tricks"
  }
  # Object actions only on static/* and the probe in the public bucket, anything in the private one.
  assert {
    condition = sort(flatten([for s in jsondecode(aws_iam_policy.uploader.policy).Statement : flatten([s.Resource]) if s.Action != "s3:ListBucket"])) == sort([
      "arn:aws:s3:::pkgs-test-repo/static/*",
      "arn:aws:s3:::pkgs-test-repo/config/_probe/*",
      "arn:aws:s3:::pkgs-test-config/*",
    ])
    error_message = "uploader object grants must be exactly static/*, config/_probe/* (public bucket) and the private store"
  }
  assert {
    condition = sort(flatten([for s in jsondecode(aws_iam_policy.uploader.policy).Statement : flatten([s.Resource]) if s.Action == "s3:ListBucket"])) == sort([
      "arn:aws:s3:::pkgs-test-repo", "arn:aws:s3:::pkgs-test-config",
    ])
    error_message = "the uploader lists the two buckets and nothing else"
  }
  # Writes to the public bucket never include the private tree's real objects.
  assert {
    condition = alltrue([for r in flatten([for s in jsondecode(aws_iam_policy.uploader.policy).Statement : flatten([s.Resource])]) :
    !startswith(r, "arn:aws:s3:::pkgs-test-repo/config/") || r == "arn:aws:s3:::pkgs-test-repo/config/_probe/*"])
    error_message = "the uploader must not reach config/ in the public bucket beyond the probe"
  }
  assert {
    condition     = aws_iam_role_policy_attachment.uploader.policy_arn == aws_iam_policy.uploader.arn && output.uploader_role_arn == aws_iam_role.uploader.arn
    error_message = "the role carries the uploader policy and is an output"
  }
  assert {
    condition     = jsondecode(aws_iam_role.uploader.assume_role_policy).Statement[0].Principal.Service == ["ecs-tasks.amazonaws.com"]
    error_message = "by default only ECS tasks assume the uploader role"
  }
}

run "cache_ttls_per_kind" {
  command = apply

  # Issue 11 item 1: immutable a year, indexes a minute, keys and .repo files an hour.
  assert {
    condition = (aws_cloudfront_cache_policy.immutable[0].default_ttl == 31536000 && aws_cloudfront_cache_policy.immutable[0].max_ttl == 31536000
      && aws_cloudfront_cache_policy.index[0].default_ttl == 60 && aws_cloudfront_cache_policy.index[0].max_ttl == 60
    && aws_cloudfront_cache_policy.medium[0].default_ttl == 3600 && aws_cloudfront_cache_policy.medium[0].max_ttl == 3600)
    error_message = "cache TTLs must be immutable 31536000, index 60, medium 3600"
  }
  assert {
    condition     = alltrue([for p in [aws_cloudfront_cache_policy.immutable[0], aws_cloudfront_cache_policy.index[0], aws_cloudfront_cache_policy.medium[0]] : p.min_ttl == 0])
    error_message = "min_ttl 0: an object's own shorter Cache-Control always wins"
  }
  assert {
    condition     = one(aws_cloudfront_distribution.cdn.default_cache_behavior).cache_policy_id == "policy-immutable"
    error_message = "the default behaviour (packages, content-named files) must be immutable"
  }
  assert {
    condition = {
      for b in aws_cloudfront_distribution.cdn.ordered_cache_behavior : b.path_pattern => b.cache_policy_id
      } == {
      "*/APKINDEX.tar.gz" = "policy-index"
      "*/InRelease"       = "policy-index"
      "*/Release*"        = "policy-index"
      "*/repomd.xml*"     = "policy-index"
      "*.rsa.pub"         = "policy-medium"
      "*.asc"             = "policy-medium"
      "*.gpg"             = "policy-medium"
      "*.repo"            = "policy-medium"
    }
    error_message = "ordered behaviours: indexes and roots short, keys and .repo medium"
  }
  # First match wins: every index pattern comes before the key patterns (Release.gpg,
  # repomd.xml.asc are roots, not keys).
  assert {
    condition     = slice([for b in aws_cloudfront_distribution.cdn.ordered_cache_behavior : b.cache_policy_id], 0, 4) == ["policy-index", "policy-index", "policy-index", "policy-index"]
    error_message = "index behaviours must come first"
  }
  assert {
    condition = alltrue([for b in concat(aws_cloudfront_distribution.cdn.ordered_cache_behavior, aws_cloudfront_distribution.cdn.default_cache_behavior) :
    b.target_origin_id == "public-tree" && toset(b.allowed_methods) == toset(["GET", "HEAD"])])
    error_message = "every behaviour is read-only and goes to the public tree"
  }
}

run "one_shared_bucket_still_hides_config" {
  command = apply
  variables {
    separate_config_bucket = false
  }

  assert {
    condition     = length(aws_s3_bucket.config) == 0 && output.config_bucket == "pkgs-test-repo"
    error_message = "with one bucket, the private tree lives in the public bucket"
  }
  assert {
    condition = [for s in jsondecode(aws_s3_bucket_policy.public.policy).Statement :
    s.Resource if s.Effect != "Deny"] == ["arn:aws:s3:::pkgs-test-repo/static/*"]
    error_message = "CloudFront may still read static/* only"
  }
  assert {
    condition     = alltrue([for o in aws_cloudfront_distribution.cdn.origin : o.origin_path == "/static"])
    error_message = "origin path /static keeps config/ out of every URL"
  }
  assert {
    condition = sort(flatten([for s in jsondecode(aws_iam_policy.uploader.policy).Statement : flatten([s.Resource]) if s.Action != "s3:ListBucket"])) == sort([
      "arn:aws:s3:::pkgs-test-repo/static/*", "arn:aws:s3:::pkgs-test-repo/config/*",
    ])
    error_message = "with one bucket the uploader gets static/* and config/*"
  }
  assert {
    condition     = !strcontains(output.serve_flags, "--config-storage") && !contains(keys(output.serve_env), "PACKAGES_CONFIG_STORAGE")
    error_message = "no --config-storage with one bucket"
  }
  assert {
    condition     = aws_s3_bucket_versioning.config[0].bucket == "pkgs-test-repo"
    error_message = "the shared bucket is versioned (it holds the private tree)"
  }
}

run "custom_domain" {
  command = apply
  variables {
    domain_names        = ["pkgs.example.com"]
    acm_certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
  }

  assert {
    condition     = output.repository_base_url == "https://pkgs.example.com" && strcontains(output.serve_flags, "--public-url https://pkgs.example.com")
    error_message = "the custom domain is the base URL"
  }
  assert {
    condition = (one(aws_cloudfront_distribution.cdn.viewer_certificate).acm_certificate_arn == "arn:aws:acm:us-east-1:123456789012:certificate/abc"
      && one(aws_cloudfront_distribution.cdn.viewer_certificate).ssl_support_method == "sni-only"
    && length(aws_cloudfront_distribution.cdn.aliases) == 1 && contains(aws_cloudfront_distribution.cdn.aliases, "pkgs.example.com"))
    error_message = "the distribution serves the domain with the certificate"
  }
}

run "existing_cache_policies" {
  command = apply
  variables {
    existing_cache_policy_ids = { immutable = "ext-imm", index = "ext-idx", medium = "ext-med" }
  }

  assert {
    condition     = length(aws_cloudfront_cache_policy.index) == 0 && one(aws_cloudfront_distribution.cdn.default_cache_behavior).cache_policy_id == "ext-imm"
    error_message = "given policies are used, none created"
  }
  assert {
    condition     = [for b in aws_cloudfront_distribution.cdn.ordered_cache_behavior : b.cache_policy_id if b.path_pattern == "*/APKINDEX.tar.gz"] == ["ext-idx"]
    error_message = "indexes use the given index policy"
  }
}

run "domain_needs_certificate" {
  command = plan
  variables {
    domain_names = ["pkgs.example.com"]
  }
  expect_failures = [aws_cloudfront_distribution.cdn]
}

run "bad_name_rejected" {
  command = plan
  variables {
    name = "Bad_Name"
  }
  expect_failures = [var.name]
}

run "certificate_must_be_in_us_east_1" {
  command = plan
  variables {
    domain_names        = ["pkgs.example.com"]
    acm_certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
  }
  expect_failures = [var.acm_certificate_arn]
}
