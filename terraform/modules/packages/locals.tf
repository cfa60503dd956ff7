locals {
  # Cache lifetimes per object kind, in seconds. THE SAME VALUES ARE DEFINED ON THE RUST SIDE in
  # src/cache_rules.rs (IMMUTABLE_MAX_AGE, INDEX_MAX_AGE, REVALIDATE_MAX_AGE, MEDIUM_MAX_AGE),
  # which sets them as each object's Cache-Control; tests/integration/cdn.rs fails when the two
  # disagree.
  cache_ttl = {
    # Package files and content-named metadata (by-hash/, repodata/<sha>-...): never change.
    immutable = 31536000
    # Signed indexes and their roots: short, so a new package shows up within a minute.
    index = 60
    # Roots with a detached signature and that signature (repomd.xml + repomd.xml.asc, Release +
    # Release.gpg): their objects say `max-age=0, no-cache`, which the index policy honours (its
    # min_ttl is 0), so CloudFront asks the bucket on every request and never serves one half of
    # a publish with the other half of another. No policy of its own: they match the index
    # patterns below.
    revalidate = 0
    # Public keys and .repo files: change only when a key is rotated.
    medium = 3600
  }

  # CloudFront cannot see an object's kind, only its path: these patterns (ordered behaviours,
  # first match wins) pick the cache policy. Everything else gets the immutable policy, but
  # CloudFront still honours a shorter Cache-Control stored with the object.
  index_path_patterns = [
    "*/APKINDEX.tar.gz",
    "*/InRelease",
    "*/Release*",
    "*/repomd.xml*",
  ]
  medium_path_patterns = [
    "*.rsa.pub",
    "*.asc",
    "*.gpg",
    "*.repo",
  ]
  ordered_behaviours = concat(
    [for p in local.index_path_patterns : { path_pattern = p, class = "index" }],
    [for p in local.medium_path_patterns : { path_pattern = p, class = "medium" }],
  )

  public_bucket = "${var.name}-repo"
  config_bucket = var.separate_config_bucket ? "${var.name}-config" : local.public_bucket

  # Key prefixes, as src/repo.rs builds them.
  public_prefix = "static"
  config_prefix = "config"

  cache_policy_ids = var.existing_cache_policy_ids != null ? var.existing_cache_policy_ids : {
    immutable = aws_cloudfront_cache_policy.immutable[0].id
    index     = aws_cloudfront_cache_policy.index[0].id
    medium    = aws_cloudfront_cache_policy.medium[0].id
  }

  base_url = "https://${length(var.domain_names) > 0 ? var.domain_names[0] : aws_cloudfront_distribution.cdn.domain_name}"
}
