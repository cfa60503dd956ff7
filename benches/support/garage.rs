//! The Garage that `scripts/test-servers.sh start` runs, for benches that run the `packages`
//! binary against it.

/// Garage's S3 endpoint and credentials, from `PACKAGES_TEST_GARAGE_*`.
pub struct Garage {
    endpoint: String,
    bucket: String,
    access_key: String,
    secret_key: String,
    region: String,
}

impl Garage {
    /// Garage when `PACKAGES_TEST_GARAGE_*` is set; otherwise says so and gives `None`.
    pub fn from_env() -> Option<Self> {
        let var = |name: &str| std::env::var(format!("PACKAGES_TEST_GARAGE_{name}")).ok();
        let found = (|| {
            Some(Self {
                endpoint: var("ENDPOINT")?,
                bucket: var("BUCKET")?,
                access_key: var("ACCESS_KEY")?,
                secret_key: var("SECRET_KEY")?,
                region: var("REGION").unwrap_or_else(|| "us-east-1".into()),
            })
        })();
        if found.is_none() {
            println!(
                "garage   skipped: PACKAGES_TEST_GARAGE_* not set (eval \"$(scripts/test-servers.sh start)\")"
            );
        }
        found
    }

    /// `--storage` for a prefix of its own: `<tag>-<pid>` in the bucket.
    pub fn storage(&self, tag: &str) -> String {
        format!("s3://{}/{tag}-{}", self.bucket, std::process::id())
    }

    /// The environment the binary reads the endpoint and credentials from.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.clone()),
            ("AWS_REGION", self.region.clone()),
        ]
    }
}
