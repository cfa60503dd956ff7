//! The OpenAPI document as a contract: every operation declares the error
//! statuses its code paths return, every name parameter carries the pattern
//! the server enforces (checked against the Rust parsers), and the seed's
//! health routes answer under `/api`. Schemathesis checks the running
//! server against the same document (`scripts/test-schemathesis`).

use axum::body::Body;
use axum::http::{Method, header};
use packages::api::names;
use packages::repo::{Arch, Org, Segment};
use serde_json::Value;

use crate::api::TestApp;

fn spec() -> Value {
    packages::api::openapi()
}

const METHODS: &[&str] = &["get", "put", "post", "delete", "head", "patch"];

/// Every operation: (method, path, operation).
fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            if METHODS.contains(&method.as_str()) {
                out.push((method.clone(), path.clone(), operation.clone()));
            }
        }
    }
    out
}

/// Whether the operation needs a token (the document's default security applies).
fn needs_token(operation: &Value) -> bool {
    match operation.get("security") {
        None => true,
        Some(security) => security.as_array().is_some_and(|s| {
            s.iter()
                .any(|r| r.as_object().is_some_and(|r| !r.is_empty()))
        }),
    }
}

#[test]
fn every_operation_declares_the_statuses_it_returns() {
    let spec = spec();
    let mut problems = Vec::new();
    for (method, path, operation) in operations(&spec) {
        let op = format!("{} {path}", method.to_uppercase());
        let responses = operation["responses"].as_object().expect("responses");
        let mut want: Vec<&str> = Vec::new();
        let params = operation["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let in_path = params.iter().filter(|p| p["in"] == "path").count();
        let in_query = params.iter().filter(|p| p["in"] == "query").count();
        if needs_token(&operation) {
            // The `Auth` extractor (401); every store read (500); every route
            // but the org listing checks the token's scope (403).
            want.extend(["401", "500"]);
            if path != "/api/v1/orgs" || method != "get" {
                want.push("403");
            }
        }
        if in_path > 0 {
            // Names are parsed (400); what they name may not exist (404).
            want.extend(["400", "404"]);
        }
        if in_query > 0 {
            want.push("400");
        }
        let body = &operation["requestBody"]["content"];
        if body.get("application/json").is_some() || body.get("multipart/form-data").is_some() {
            // Malformed (400), too large (413), wrong media type (415), wrong fields (422).
            want.extend(["400", "413", "415", "422"]);
        }
        for status in want {
            if !responses.contains_key(status) {
                problems.push(format!("{op}: no {status}"));
            }
        }
        for (status, response) in responses {
            if status.starts_with('2') || path.contains("/health/") || path == "/metrics" {
                continue;
            }
            let schema = &response["content"]["application/json"]["schema"]["$ref"];
            if schema != "#/components/schemas/ErrorBody" {
                problems.push(format!("{op}: {status} is not the {{code, message}} body"));
            }
        }
        for param in &params {
            let schema = &param["schema"];
            let named = [
                "org", "distro", "version", "repo", "arch", "package", "alias", "id",
            ]
            .contains(&param["name"].as_str().unwrap_or_default());
            let ruled = schema.get("pattern").is_some() || schema.get("enum").is_some();
            if (param["in"] == "path" || named) && !ruled {
                problems.push(format!("{op}: parameter {} has no pattern", param["name"]));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The body fields that name something carry the rules too.
    let schemas = &spec["components"]["schemas"];
    assert_eq!(
        schemas["NewOrg"]["properties"]["name"]["pattern"],
        names::org_pattern().as_str()
    );
    assert_eq!(
        schemas["RepoSpec"]["properties"]["architectures"]["items"]["pattern"],
        names::ARCH_PATTERN
    );
    assert!(
        schemas["NewToken"]["properties"]["distro"]["enum"]
            .as_array()
            .is_some_and(|e| e.contains(&Value::Null) && e.contains(&"alpine".into())),
        "{}",
        schemas["NewToken"]
    );
}

/// Whether Python's `re` (what schemathesis generates from) fully matches each value.
fn python_matches(pattern: &str, values: &[String]) -> Option<Vec<bool>> {
    let script = "import json, re, sys\n\
        d = json.load(sys.stdin)\n\
        r = re.compile(d['pattern'])\n\
        print(json.dumps([r.fullmatch(v) is not None for v in d['values']]))\n";
    let input = serde_json::json!({"pattern": pattern, "values": values}).to_string();
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python3 failed");
    Some(serde_json::from_slice(&out.stdout).expect("python's answer"))
}

/// Names to try: the edge cases of each rule, and pseudo-random strings over an
/// alphabet of the characters the rules treat differently.
fn samples() -> Vec<String> {
    let mut out: Vec<String> = [
        "acme",
        "a",
        "0",
        "a-b.c_d+e",
        "A",
        "a b",
        "-a",
        ".a",
        "a..b",
        "a.",
        "a.json",
        "a.pem",
        "a.pub",
        "a.apk",
        "a.gz",
        "a.deflate",
        "a.jsonx",
        "api",
        "orgs",
        "v1",
        "health",
        "metrics",
        "static",
        "config",
        "tokens",
        "admin",
        "openapi.json",
        "apis",
        "noarch",
        "noarchx",
        "x86_64",
        "aarch64",
        "armv7",
        "x86-64",
        "ppc64le",
        "é",
        "а",
        "a/b",
        "a%2f",
        "a:b",
        "",
        "pool",
        "dists",
        "hello-1.0-r0.apk",
        "hello~1",
        "a;b",
        "a\u{7f}",
        "a\tb",
        " a",
        "a ",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    out.push("a".repeat(64));
    out.push("a".repeat(65));
    out.push("a".repeat(32));
    out.push("a".repeat(33));
    out.push("a".repeat(128));
    out.push("a".repeat(129));
    let alphabet: Vec<char> = "az09._+-_A~:/ %é\u{1}".chars().collect();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..3000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (state % 9) as usize;
        let s: String = (0..len)
            .map(|i| alphabet[((state >> (i * 5)) % alphabet.len() as u64) as usize])
            .collect();
        out.push(s);
    }
    out
}

#[test]
fn names_patterns_agree_with_the_parsers() {
    let values = samples();
    fn org(v: &str) -> bool {
        Org::parse(v).is_ok()
    }
    fn version(v: &str) -> bool {
        Segment::parse("version", v).is_ok()
    }
    fn repo(v: &str) -> bool {
        Segment::parse("repo", v).is_ok()
    }
    fn arch(v: &str) -> bool {
        Arch::parse(v).is_ok()
    }
    fn package(v: &str) -> bool {
        Segment::parse("package", v).is_ok()
    }
    type Parser = fn(&str) -> bool;
    let rules: Vec<(String, Parser, bool)> = vec![
        (names::org_pattern(), org as Parser, true),
        (names::NAME_PATTERN.to_owned(), version as Parser, true),
        (names::NAME_PATTERN.to_owned(), repo as Parser, true),
        (names::ARCH_PATTERN.to_owned(), arch as Parser, true),
        // Declared narrower than accepted (printable ASCII): a match must parse.
        (names::PACKAGE_PATTERN.to_owned(), package as Parser, false),
    ];
    for (pattern, parses, exact) in rules {
        let Some(matches) = python_matches(&pattern, &values) else {
            assert!(
                std::env::var("PACKAGES_TEST_REQUIRE_TOOLS").as_deref() != Ok("1"),
                "python3 is missing"
            );
            eprintln!("skipped: python3 is missing");
            return;
        };
        for (value, matched) in values.iter().zip(matches) {
            let ok = parses(value);
            assert!(
                if exact { matched == ok } else { !matched || ok },
                "pattern {pattern} {} {value:?}, the parser {}",
                if matched { "matches" } else { "does not match" },
                if ok { "accepts it" } else { "refuses it" }
            );
        }
    }
}

#[tokio::test]
async fn the_seed_health_routes_answer_under_api() {
    let app = TestApp::new().await;
    let ping = app.get("/api/health/ping", None).await;
    ping.expect(200);
    assert_eq!(ping.text(), "pong");
    let ready = app.get("/api/health/ready", None).await;
    ready.expect(200);
    assert_eq!(ready.text(), "ready");
    let head = app
        .send(
            TestApp::request(Method::HEAD, "/api/health/ready", None)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    head.expect(200);
    assert!(head.headers.get(header::CONTENT_TYPE).is_some());
}
