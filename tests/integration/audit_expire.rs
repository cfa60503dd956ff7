//! Expiring the audit log (`packages gc --audit-keep-days N`, the service's
//! `--audit-keep-days`): records older than N days go, newer ones stay, the
//! expiry is itself recorded; without the setting nothing of the log goes.

use packages::audit::{self, AuditEvent, AuditQuery, AuditRecord, Target, action};
use packages::publish::Publisher;
use packages::repo::Org;
use packages::storage::{Payload, PutMode, PutOptions};
use packages::stores::Stores;

use crate::support::Ctx;

backend_tests!([local, garage, moto] old_records_go_with_gc_when_asked);
backend_tests!([local] the_cli_takes_the_setting_and_refuses_zero);

const DAY_NS: u64 = 86_400 * audit::time::NANOS;

/// Stores a copy of `record` as if written `days` ago; returns its key.
async fn plant(stores: &Stores, record: &AuditRecord, days: u64, n: u64) -> String {
    let mut old = record.clone();
    old.time_ns = audit::time::now_ns() - days * DAY_NS;
    old.id = format!("{:020}-{n:016x}", old.time_ns);
    old.time = audit::time::rfc3339_ns(old.time_ns);
    let key = audit::record_key(&old);
    stores
        .private()
        .put(
            &key,
            Payload::from(serde_json::to_vec(&old).unwrap()),
            &PutOptions::default(),
            PutMode::Create,
        )
        .await
        .unwrap();
    key
}

async fn everything(stores: &Stores) -> Vec<AuditRecord> {
    audit::list(
        stores,
        &AuditQuery {
            since: Some(0),
            limit: Some(audit::MAX_LIMIT),
            ..AuditQuery::default()
        },
    )
    .await
    .unwrap()
}

async fn old_records_go_with_gc_when_asked(ctx: Ctx) {
    let stores = ctx.shared().await;
    let publisher = Publisher::new(stores.clone()).with_actor(audit::Actor::service());
    let org = Org::parse("acme").unwrap();
    publisher.create_org(&org).await.unwrap();
    for i in 0..3 {
        let event = AuditEvent::new(action::QUOTA_SET, Target::org(&org)).detail("n", i);
        publisher.audit(event).await;
    }
    let recent = everything(&stores).await;
    assert_eq!(recent.len(), 4, "org.create and three quota.set");
    let very_old = plant(&stores, &recent[0], 400, 1).await;
    let old = plant(&stores, &recent[1], 40, 2).await;
    let young = plant(&stores, &recent[2], 20, 3).await;

    // Without the setting, gc leaves the log alone.
    let deleted = publisher.gc().await.unwrap();
    assert!(
        deleted.iter().all(|k| !k.contains("_audit/")),
        "{deleted:?}"
    );
    assert_eq!(everything(&stores).await.len(), 7);

    // Kept 30 days: the 400- and 40-day-old records go, the rest stays.
    let deleted = publisher
        .clone()
        .with_audit_keep_days(Some(30))
        .gc()
        .await
        .unwrap();
    let mut gone: Vec<&String> = deleted.iter().filter(|k| k.contains("_audit/")).collect();
    gone.sort();
    let mut want = vec![&very_old, &old];
    want.sort();
    assert_eq!(gone, want);
    let left = everything(&stores).await;
    let ids: Vec<&str> = left.iter().map(|r| r.id.as_str()).collect();
    for r in &recent {
        assert!(ids.contains(&r.id.as_str()), "{} kept", r.id);
    }
    assert!(
        left.iter().any(|r| audit::record_key(r) == young),
        "20 days old: kept"
    );
    let expired: Vec<&AuditRecord> = left
        .iter()
        .filter(|r| r.action == action::AUDIT_EXPIRE)
        .collect();
    assert_eq!(expired.len(), 1, "{left:#?}");
    assert_eq!(expired[0].details["records"], 2);
    assert_eq!(expired[0].details["keep_days"], 30);
    assert_eq!(expired[0].actor.kind, "service");
}

async fn the_cli_takes_the_setting_and_refuses_zero(ctx: Ctx) {
    let dir = ctx.temp_dir().join("store");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_packages"))
            .env_remove("PACKAGES_AUDIT_KEEP_DAYS")
            .env("RUST_LOG", "warn")
            .arg("--storage")
            .arg(&dir)
            .args(args)
            .output()
            .expect("run packages")
    };
    assert!(run(&["org", "create", "acme"]).status.success());
    let storage = packages::storage::Storage::local(
        packages::storage::LocalStore::open(&dir).expect("the store"),
    );
    let stores = Stores::shared(storage);
    let recent = everything(&stores).await;
    let old = plant(&stores, &recent[0], 10, 1).await;

    let refused = run(&["gc", "--audit-keep-days", "0"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--audit-keep-days"), "{stderr}");

    let out = run(&["--json", "gc", "--audit-keep-days", "7"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deleted: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(deleted, [old]);
    let left = everything(&stores).await;
    assert_eq!(
        left.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(),
        [action::AUDIT_EXPIRE, action::ORG_CREATE]
    );
    assert_eq!(left[0].actor.kind, "cli");
}
