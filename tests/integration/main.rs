//! Integration tests: one binary, a module per area.
//!
//! S3 backends come from `scripts/test-servers.sh start` (see `docs/testing.md`);
//! tests on a backend whose variables are missing are skipped, unless
//! `PACKAGES_TEST_REQUIRE_S3=1`.

#[macro_use]
mod support;

mod alpine;
mod api;
mod apt_client;
mod apt_harness;
mod audit;
mod audit_expire;
mod bad_input;
mod browse;
mod cdn;
mod cli;
mod cli_remote;
mod cli_store;
mod companions;
mod concurrency;
mod crash;
mod crash_points;
mod crash_serve;
mod deb;
mod deb_api;
mod deb_race;
mod dnf_client;
mod dnf_harness;
mod doctor;
mod group_commit;
mod hostile_http;
mod import;
mod index_limits;
mod keys;
mod openapi;
mod quota;
mod repos;
mod retention;
mod rpm;
mod rpm_api;
mod rpm_crash;
mod rpm_dnf;
mod rpm_gc;
mod rpm_race;
mod rpm_race_dnf;
mod serve;
mod settings;
mod storage;
mod store_v1;
mod tokens;
mod verify;
mod version_alias;
mod version_alias_upkeep;
mod watchdog;
