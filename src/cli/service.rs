//! `packages serve`, `doctor` and `gc`: run the service, check the stores,
//! delete expired files.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::output::print_json;
use crate::publish::Publisher;
use crate::serve::{self, ServiceConfig};
use crate::stores::Stores;
use crate::tokens::Tokens;

/// `packages serve ...`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, env = "PACKAGES_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Serve only the public tree, no API
    #[arg(long, env = "PACKAGES_NO_API")]
    pub no_api: bool,
    /// Largest request body (an upload), in MiB
    #[arg(long, env = "PACKAGES_MAX_BODY_MIB", default_value_t = serve::DEFAULT_MAX_BODY >> 20)]
    pub max_body_mib: u64,
    /// Longest time a request (upload included) may take, in seconds
    #[arg(long, env = "PACKAGES_REQUEST_TIMEOUT_SECS", default_value_t = serve::DEFAULT_REQUEST_TIMEOUT.as_secs())]
    pub request_timeout_secs: u64,
    /// How long token look-ups are cached, in seconds (a revocation takes effect within this time; 0: no cache)
    #[arg(long, env = "PACKAGES_TOKEN_CACHE_SECS", default_value_t = crate::tokens::DEFAULT_CACHE_TTL.as_secs())]
    pub token_cache_secs: u64,
    /// Where uploads are staged while they arrive (default: the system's temporary directory)
    #[arg(long, env = "PACKAGES_UPLOAD_DIR")]
    pub upload_dir: Option<PathBuf>,
    /// The public base URL clients use (bucket website or CDN): at start-up, refuse to run if the private tree is readable through it
    #[arg(long, env = "PACKAGES_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// How often to delete files of removed packages whose grace period is over, in seconds (0: never)
    #[arg(long, env = "PACKAGES_GC_INTERVAL_SECS", default_value_t = 3600)]
    pub gc_interval_secs: u64,
    /// A reverse proxy in front sets `X-Forwarded-For`: the audit log records the client address it reports (never set this when clients reach the service directly: they could name any address)
    #[arg(long, env = "PACKAGES_TRUST_PROXY")]
    pub trust_proxy: bool,
    /// The periodic gc deletes audit records older than this many days (at least 1; default: keep them for good)
    #[arg(long, env = "PACKAGES_AUDIT_KEEP_DAYS", value_parser = clap::value_parser!(u64).range(1..))]
    pub audit_keep_days: Option<u64>,
    #[command(flatten)]
    pub limits: crate::config::ServerLimitArgs,
}

/// Runs `packages doctor`.
pub(super) async fn doctor(stores: &Stores, public_url: Option<&str>, json: bool) -> Result<()> {
    let report = crate::doctor::diagnose(stores, public_url).await;
    if json {
        print_json(&report)?;
    } else {
        for (tree, r) in [
            ("public", Some(&report.public)),
            ("private", report.private.as_ref()),
        ] {
            let Some(r) = r else { continue };
            println!("{tree} store: {}", r.store);
            match &r.error {
                None => println!("  reachable, credentials ok"),
                Some(e) => println!("  NOT reachable: {e}"),
            }
            if let Some(c) = r.conditional_writes {
                println!(
                    "  conditional writes: {}",
                    if c {
                        "yes"
                    } else {
                        "no (ignored by this store)"
                    }
                );
            }
            if let Some(s) = r.clock_skew_seconds {
                println!("  clock skew: {s:+.0} s");
            }
        }
        if report.private.is_none() {
            println!("private tree: same store, under config/");
        }
        for g in &report.guarantees {
            println!("- {g}");
        }
        match (&report.private_tree_exposed, public_url) {
            (Some(url), _) => println!(
                "PRIVATE TREE EXPOSED at {url}: {}",
                crate::doctor::EXPOSURE_FIX
            ),
            (None, Some(url)) => println!("private tree not readable through {url}"),
            (None, None) => {
                println!("(give --public-url to check that the private tree is not public)")
            }
        }
    }
    if !report.healthy() {
        bail!("the store is not ready for publishing (see above)");
    }
    Ok(())
}

/// What the service checks before it starts: the store answers, which
/// guarantees hold, and (given the public URL) that the private tree is not public.
async fn startup_check(stores: &Stores, public_url: Option<&str>) -> Result<()> {
    let report = crate::doctor::diagnose(stores, public_url).await;
    for r in [Some(&report.public), report.private.as_ref()]
        .into_iter()
        .flatten()
    {
        if let Some(e) = &r.error {
            bail!("{}: not usable: {e}", r.store);
        }
        tracing::info!(
            store = %r.store,
            conditional_writes = ?r.conditional_writes,
            clock_skew_seconds = ?r.clock_skew_seconds,
            "store checked"
        );
    }
    for g in &report.guarantees {
        tracing::info!("{g}");
    }
    if let Some(url) = &report.private_tree_exposed {
        bail!(
            "refusing to start: {url} serves the private tree: {}",
            crate::doctor::EXPOSURE_FIX
        );
    }
    Ok(())
}

/// Runs `packages serve`.
pub(super) async fn serve(stores: Stores, args: ServeArgs) -> Result<()> {
    let limits = args.limits.limits()?;
    startup_check(&stores, args.public_url.as_deref()).await?;
    crate::leftovers::clean_logged(
        &stores,
        args.upload_dir.as_deref(),
        Duration::from_secs(args.request_timeout_secs),
    );
    if args.no_api {
        let listener = bind(args.listen).await?;
        eprintln!(
            "serving the public tree of {} on http://{}",
            stores.public().describe(),
            listener.local_addr()?
        );
        return serve::run_public(stores, listener, limits)
            .await
            .with_context(|| format!("cannot serve on {}", args.listen));
    }
    let max_body = args
        .max_body_mib
        .checked_mul(1 << 20)
        .context("--max-body-mib is too large")?;
    if let Some(dir) = &args.upload_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create the upload directory", dir.display()))?;
    }
    let config = ServiceConfig {
        max_body,
        request_timeout: Duration::from_secs(args.request_timeout_secs),
        token_cache_ttl: Duration::from_secs(args.token_cache_secs),
        upload_dir: args.upload_dir.clone(),
        gc_interval: (args.gc_interval_secs > 0)
            .then(|| Duration::from_secs(args.gc_interval_secs)),
        trust_proxy: args.trust_proxy,
        audit_keep_days: args.audit_keep_days,
    };
    let tokens = Tokens::new(stores.clone(), Duration::ZERO);
    if !tokens.has_admin().await? {
        eprintln!("no admin token yet: create one with `packages admin init`");
    }
    let listener = bind(args.listen).await?;
    eprintln!(
        "serving the API and the public tree of {} on http://{}",
        stores.public().describe(),
        listener.local_addr()?
    );
    serve::run_service(stores, config, listener, limits)
        .await
        .with_context(|| format!("cannot serve on {}", args.listen))
}

/// Binds the listening socket, so that "serving on" is said only once it is bound.
async fn bind(listen: SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))
}

/// Runs `packages gc`.
pub(super) async fn gc(publisher: &Publisher, json: bool) -> Result<()> {
    let cleaned = crate::leftovers::clean(
        publisher.stores(),
        None,
        crate::serve::DEFAULT_REQUEST_TIMEOUT,
    )
    .context("cannot clean crash leftovers")?;
    eprintln!("{} crash leftover(s) deleted", cleaned.len());
    let deleted = publisher.gc().await?;
    if json {
        print_json(&deleted)
    } else {
        for key in &deleted {
            println!("deleted {key}");
        }
        eprintln!("{} expired file(s) deleted", deleted.len());
        Ok(())
    }
}
