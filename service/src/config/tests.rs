//! The configuration's unit tests: defaults, precedence, and refusals that name the key.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(file: Option<&str>, vars: &[(&str, &str)]) -> Result<Config, String> {
    Config::from_sources(file, "kitle.toml", &env(vars), &Overrides::default())
        .map_err(|e| e.message)
}

#[test]
fn defaults_hold_without_a_file_or_variables() {
    let c = load(None, &[]).unwrap();
    assert_eq!(c.store.url, kitle_data::store::DEFAULT_STORE);
    assert_eq!(c.time_zone, chrono_tz::UTC);
    assert_eq!(c.serve.listen, DEFAULT_LISTEN);
    assert_eq!(c.serve.sql_timeout, Duration::from_secs(30));
    assert_eq!(c.serve.preview_timeout, Duration::from_secs(120));
    assert_eq!(c.serve.refresh_timeout, Duration::from_secs(900));
    assert!(c.serve.scheduler);
    assert!(c.refresh_memory_limit_mb >= 256);
    assert_eq!(c.refresh_limits().memory_key, "refresh_memory_limit_mb");
}

#[test]
fn variables_override_the_file_and_flags_override_both() {
    let file = "store = \"from-file\"\ntime_zone = \"Europe/Istanbul\"\n[serve]\nsql_timeout_seconds = 5\nscheduler = false\n";
    let c = load(
        Some(file),
        &[
            ("KITLE_SERVE__SQL_TIMEOUT_SECONDS", "7"),
            ("KITLE_SERVE__SCHEDULER", "yes"),
            ("KITLE_STORE", "from-env"),
            ("KITLE_LISTEN", "127.0.0.1:9999"),
            ("KITLE_REFRESH_MEMORY_LIMIT_MB", "300"),
            ("KITLE_S3__ENDPOINT", "http://127.0.0.1:9000"),
            ("KITLE_LOG", "debug"),
            ("KITLE_SOMETHING_ELSE", "not ours"),
        ],
    )
    .unwrap();
    assert_eq!(c.store.url, "from-env");
    assert_eq!(c.time_zone, chrono_tz::Europe::Istanbul);
    assert_eq!(c.serve.sql_timeout, Duration::from_secs(7));
    assert!(c.serve.scheduler);
    assert_eq!(c.serve.listen, "127.0.0.1:9999");
    assert_eq!(c.refresh_memory_limit_mb, 300);
    assert_eq!(c.store.s3.get("endpoint"), Some("http://127.0.0.1:9000"));
    let flags = Overrides {
        store: Some("from-flag".into()),
        strict: true,
        ..Overrides::default()
    };
    let c = Config::from_sources(Some(file), "kitle.toml", &[], &flags).unwrap();
    assert_eq!(c.store.url, "from-flag");
    assert!(c.store.strict);
    assert_eq!(c.serve.sql_timeout, Duration::from_secs(5));
}

#[test]
fn every_refusal_names_the_key_and_where_it_came_from() {
    let err = load(None, &[("KITLE_SERVE__SQL_TIMEOUT_SECONDS", "soon")]).unwrap_err();
    assert!(
        err.contains("KITLE_SERVE__SQL_TIMEOUT_SECONDS")
            && err.contains("serve.sql_timeout_seconds"),
        "{err}"
    );
    let err = load(Some("[serve]\nsql_max_rows = \"many\"\n"), &[]).unwrap_err();
    assert!(
        err.contains("serve.sql_max_rows (from kitle.toml)"),
        "{err}"
    );
    let err = load(Some("[serve]\nsql_timout_seconds = 3\n"), &[]).unwrap_err();
    assert!(err.contains("sql_timout_seconds"), "{err}");
    let err = load(None, &[("KITLE_SERVE__SQL_TIMOUT_SECONDS", "3")]).unwrap_err();
    assert!(err.contains("sql_timout_seconds"), "{err}");
    let err = load(Some("time_zone = \"Mars/Olympus\"\n"), &[]).unwrap_err();
    assert!(
        err.contains("time_zone") && err.contains("Mars/Olympus"),
        "{err}"
    );
    let err = load(Some("[s3]\nendpiont = \"x\"\n"), &[]).unwrap_err();
    assert!(err.contains("s3.endpiont"), "{err}");
    let err = load(None, &[("KITLE_SERVE__PREVIEW_TIMEOUT_SECONDS", "0")]).unwrap_err();
    assert!(err.contains("serve.preview_timeout_seconds"), "{err}");
    let err = load(None, &[("KITLE_TOKENS", "read:short")]).unwrap_err();
    assert!(err.contains("16 characters"), "{err}");
    let err = load(None, &[("KITLE_TOKENS", "write:0123456789abcdef")]).unwrap_err();
    assert!(
        err.contains("KITLE_TOKENS") && err.contains("write"),
        "{err}"
    );
}

#[test]
fn tokens_come_from_the_file_and_the_variable() {
    let file = "[[serve.tokens]]\ntoken = \"0123456789abcdef-read\"\nscope = \"read\"\n";
    let c = load(
        Some(file),
        &[("KITLE_TOKENS", "admin:0123456789abcdef-admin")],
    )
    .unwrap();
    assert_eq!(c.serve.tokens.len(), 2);
    assert_eq!(c.serve.tokens[1].scope, crate::http::auth::Scope::Admin);
    assert!(!format!("{:?}", c.serve.tokens).contains("0123456789"));
}

#[test]
fn s3_settings_are_the_builders_own_keys() {
    let file = "[s3]\nendpoint = \"http://127.0.0.1:9000\"\nregion = \"eu-central-1\"\nallow_http = true\nsecret_access_key = \"s3cr3t\"\n";
    let c = load(Some(file), &[]).unwrap();
    assert_eq!(c.store.s3.get("allow_http"), Some("true"));
    assert_eq!(c.store.s3.get("region"), Some("eu-central-1"));
    assert!(!format!("{:?}", c.store.s3).contains("s3cr3t"));
}

#[test]
fn the_console_is_on_by_default_and_its_folder_can_be_set_three_ways() {
    let c = load(None, &[]).unwrap();
    assert!(c.serve.console);
    assert_eq!(c.serve.console_dir, None);
    let c = load(
        Some("[serve]\nconsole = false\nconsole_dir = \"from-file\"\n"),
        &[],
    )
    .unwrap();
    assert!(!c.serve.console);
    assert_eq!(c.serve.console_dir, Some(PathBuf::from("from-file")));
    for name in ["KITLE_SERVE__CONSOLE_DIR", "KITLE_CONSOLE_DIR"] {
        let c = load(
            Some("[serve]\nconsole_dir = \"from-file\"\n"),
            &[(name, "service/console")],
        )
        .unwrap();
        assert_eq!(
            c.serve.console_dir,
            Some(PathBuf::from("service/console")),
            "{name}"
        );
    }
    let err = load(None, &[("KITLE_SERVE__CONSOLE", "maybe")]).unwrap_err();
    assert!(err.contains("serve.console"), "{err}");
}
