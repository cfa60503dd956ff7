//! The naming rules of [`crate::repo`] (and of tokens) as OpenAPI schemas:
//! every path and query parameter and every request-body field that names an
//! org, distro, version, repo, arch, package, suite alias or token gets the
//! `pattern` (or `enum`) the server enforces, so a client (or schemathesis)
//! knows before sending which names are refused with 400.
//!
//! Applied to the finished document ([`apply`]) by parameter and field name,
//! so a new route whose parameters use these names gets the rules without
//! repeating them. The patterns are ECMA-262 (JSON Schema) regular
//! expressions; the test `names_patterns_agree_with_the_parsers` in
//! `tests/integration/openapi.rs` checks each one against the Rust parser.

use serde_json::{Value, json};

use crate::repo::{Distro, Family, RESERVED_ORG_NAMES};

/// Org, version and repo names (`repo::check_name`): lowercase ASCII, a
/// letter or digit first, then letters, digits, `.`, `_`, `+` or `-`; at most
/// 64 bytes; no `..`; not ending like a file kept beside them.
pub const NAME_PATTERN: &str =
    r"^(?!.*\.\.)(?!.*\.(?:json|pem|pub|apk|gz|deflate)$)[a-z0-9][a-z0-9._+-]{0,63}$";

/// Arch names (`repo::Arch`): `[a-z0-9][a-z0-9_]*`, at most 32 bytes, not `noarch`.
pub const ARCH_PATTERN: &str = r"^(?!noarch$)[a-z0-9][a-z0-9_]{0,31}$";

/// A package name or file name in a removal (a `repo::Segment`): no `/`, `\`,
/// `%`, `?`, `#`, `*`, `"`, `<`, `>`, `|`, `:`, no leading `.`, no `..`, at
/// most 128 bytes. Declared as printable ASCII (package and file names of
/// every format are); other names are not refused with 400 but match nothing.
pub const PACKAGE_PATTERN: &str = r"^(?!\.)(?!.*\.\.)[A-Za-z0-9!$&'()+,.;=@\[\]^_`{}~-]{1,128}$";

/// A token id: the hex SHA-256 `token list` shows.
pub const TOKEN_ID_PATTERN: &str = "^[0-9a-f]{64}$";

/// A token's name (`tokens::check_name`): 1 to 64 characters, not blank, no control characters.
pub const TOKEN_NAME_PATTERN: &str = r"^(?=.*\S)[^\x00-\x1f\x7f-\x9f]{1,64}$";

/// A token lifetime (`tokens::parse_duration`): a positive number of seconds,
/// or of `s`, `m`, `h`, `d`, `w`.
pub const DURATION_PATTERN: &str = "^0*[1-9][0-9]{0,11}[smhdw]?$";

/// The org pattern: [`NAME_PATTERN`], and not a reserved first segment.
pub fn org_pattern() -> String {
    let reserved: Vec<String> = RESERVED_ORG_NAMES
        .iter()
        .filter(|name| !name.contains('.'))
        .map(|name| (*name).to_owned())
        .collect();
    format!("^(?!(?:{})$){}", reserved.join("|"), &NAME_PATTERN[1..])
}

/// A suite (alias) of a Debian-style distro: a version name, not `dists` or `pool`.
pub fn suite_pattern() -> String {
    format!("^(?!(?:dists|pool)$){}", &NAME_PATTERN[1..])
}

/// Names of the distros this process serves (of one family, or all).
fn distros(family: Option<Family>) -> Vec<Value> {
    Distro::all()
        .filter(|d| family.is_none_or(|f| d.family() == f))
        .map(|d| Value::from(d.as_str()))
        .collect()
}

fn pattern(pattern: &str) -> Value {
    json!({"type": "string", "pattern": pattern})
}

/// The schema of a name called `name`, in a route whose path is `path`.
fn rule(name: &str, _path: &str) -> Option<Value> {
    Some(match name {
        "org" => pattern(&org_pattern()),
        "distro" => json!({"type": "string", "enum": distros(None)}),
        "version" | "repo" => pattern(NAME_PATTERN),
        "alias" | "suite" => pattern(&suite_pattern()),
        "arch" | "architecture" => pattern(ARCH_PATTERN),
        "package" => pattern(PACKAGE_PATTERN),
        "id" => pattern(TOKEN_ID_PATTERN),
        _ => return None,
    })
}

/// Request-body fields: (schema, field, rule name).
const BODY_FIELDS: &[(&str, &str, &str)] = &[
    ("NewOrg", "name", "org"),
    ("NewRepo", "name", "repo"),
    ("NewRepo", "distro", "distro"),
    ("NewRepo", "version", "version"),
    ("NewKey", "distro", "distro"),
    ("NewKey", "version", "version"),
    ("NewKey", "repo", "repo"),
    ("NewToken", "org", "org"),
    ("NewToken", "distro", "distro"),
    ("NewToken", "version", "version"),
    ("NewToken", "repo", "repo"),
    ("VersionAliasTarget", "version", "suite"),
    ("CreatePackageForm", "architecture", "arch"),
];

/// Array-of-name body fields: (schema, field, rule name of the items).
const BODY_LISTS: &[(&str, &str, &str)] = &[
    ("RepoSpec", "architectures", "arch"),
    ("NewArches", "architectures", "arch"),
    ("UploadForm", "arch", "arch"),
];

/// `schema` made nullable when `old` was (`"type": [..., "null"]`).
fn like(old: &Value, mut schema: Value) -> Value {
    let nullable = old["type"]
        .as_array()
        .is_some_and(|types| types.iter().any(|t| t == "null"));
    if nullable {
        schema["type"] = json!(["string", "null"]);
        if let Some(values) = schema.get_mut("enum").and_then(Value::as_array_mut) {
            values.push(Value::Null);
        }
    }
    if let Some(description) = old.get("description") {
        schema["description"] = description.clone();
    }
    schema
}

/// Puts the naming rules into the OpenAPI document `doc` (JSON).
pub fn apply(doc: &mut Value) {
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for operation in item.values_mut() {
                let Some(parameters) = operation
                    .get_mut("parameters")
                    .and_then(Value::as_array_mut)
                else {
                    continue;
                };
                for parameter in parameters {
                    let name = parameter["name"].as_str().unwrap_or_default().to_owned();
                    if let Some(schema) = rule(&name, path) {
                        parameter["schema"] = schema;
                    }
                }
            }
        }
    }
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (schema, field, name) in BODY_FIELDS {
        if let Some(property) = property(schemas, schema, field) {
            *property = like(property, rule(name, "").expect("a rule"));
        }
    }
    for (schema, field, name) in BODY_LISTS {
        if let Some(items) = property(schemas, schema, field).and_then(|p| p.get_mut("items")) {
            *items = rule(name, "").expect("a rule");
        }
    }
    if let Some(name) = property(schemas, "NewToken", "name") {
        *name = like(name, pattern(TOKEN_NAME_PATTERN));
    }
    if let Some(expires) = property(schemas, "NewToken", "expires_in") {
        *expires = like(expires, pattern(DURATION_PATTERN));
    }
    if let Some(bits) = property(schemas, "NewKey", "bits") {
        bits["minimum"] = json!(2048);
        bits["maximum"] = json!(4096);
    }
    // A distro needs an org, a version a distro, a repo a version (`TokenLevel::from_parts`,
    // `Scope::new`): when one is given as a string, the field it needs is a string too.
    let needs =
        |field: &str| json!({"required": [field], "properties": {field: {"type": "string"}}});
    if let Some(token) = schemas.get_mut("NewToken") {
        token["dependentSchemas"] = json!({
            "distro": needs("org"),
            "version": needs("distro"),
            "repo": needs("version"),
        });
    }
    if let Some(key) = schemas.get_mut("NewKey") {
        key["dependentSchemas"] = json!({"repo": needs("version")});
    }
}

/// Property `field` of component schema `schema`, if both exist.
fn property<'a>(
    schemas: &'a mut serde_json::Map<String, Value>,
    schema: &str,
    field: &str,
) -> Option<&'a mut Value> {
    schemas
        .get_mut(schema)?
        .get_mut("properties")?
        .get_mut(field)
        .filter(|p| p.is_object())
}
