//! The configuration's layers, sections, aliases and checks.

use std::time::Duration;

use secrecy::ExposeSecret;

use super::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

#[test]
fn security_round_2_settings_are_checked_with_their_reasons() {
    let load = |pairs: &[(&str, &str)]| Config::load(None, env(pairs), &Overrides::default());
    // A deployment that raised the per-address lock alone still starts.
    let cfg = load(&[("POTVRDA_PASSWORD_LOCK_AFTER", "1000")]).expect("loads");
    assert_eq!(cfg.limits.lock_after_all(), 10_000);
    assert_eq!(load(&[]).expect("defaults").limits.lock_after_all(), 100);
    for (pairs, message) in [
        (
            vec![("POTVRDA_PASSWORD_LOCK_AFTER_ALL", "5")],
            "password_lock_after_all must be at least password_lock_after",
        ),
        (
            vec![("POTVRDA_ADMIN_AUDIENCE", "potvrda")],
            "admin_audience must be set and differ from token_audience",
        ),
        (
            vec![("POTVRDA_AUDIT_READER_TOKEN", "short")],
            "audit_reader_token must be at least 16 characters",
        ),
        (
            vec![
                ("POTVRDA_AUDIT_READER_TOKEN", "same-token-0123456789"),
                ("POTVRDA_BOOTSTRAP_TOKEN", "same-token-0123456789"),
            ],
            "audit_reader_token must differ from bootstrap_token",
        ),
        (
            vec![("POTVRDA_TRUSTED_PROXIES", "10.0.0.0/8,nginx")],
            "trusted_proxies must be IP addresses or CIDR ranges",
        ),
        (
            vec![("POTVRDA_RISK_WEIGHTS", "luck=3")],
            "risk_weights: unknown reason \"luck\"",
        ),
        (
            vec![
                ("POTVRDA_RISK_ESCALATE_AT", "5"),
                ("POTVRDA_RISK_SUPPRESS_AT", "3"),
            ],
            "risk_suppress_at at least risk_escalate_at",
        ),
    ] {
        let err = load(&pairs).expect_err(message);
        assert!(err.to_string().contains(message), "{err}");
    }
    let cfg = load(&[("POTVRDA_TRUSTED_PROXIES", "172.30.0.10, 10.0.0.0/8")]).expect("loads");
    assert_eq!(cfg.listen.trusted_proxies.len(), 2);
}

#[test]
fn sections_and_their_flat_aliases_read_alike() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("potvrda.toml");
    std::fs::write(
        &file,
        "[login]\nchallenge_ttl = 45\n[tokens]\ntoken_ttl = 900\n\
         [oidc]\nsession_ttl = 7200\n[listen]\nlisten = \"127.0.0.1:9000\"\n\
         [log]\nformat = \"json\"\n",
    )
    .expect("write");
    let cfg = Config::load(
        Some(&file),
        env(&[
            ("POTVRDA_LIMITS__RATE_WINDOW", "120"),
            ("POTVRDA_PASSWORD_DELAY_AFTER", "3"),
        ]),
        &Overrides::default(),
    )
    .expect("loads");
    assert_eq!(
        (
            cfg.login.challenge_ttl,
            cfg.tokens.ttl,
            cfg.oidc.session_ttl
        ),
        (secs(45), secs(900), secs(7200))
    );
    assert_eq!(cfg.listen.address.port(), 9000);
    assert_eq!(cfg.log.format, LogFormat::Json);
    assert_eq!(
        (cfg.limits.rate_window, cfg.limits.password_delay_after),
        (secs(120), 3)
    );
    for (text, vars, message) in [
        (
            "[limits]\nrate_windows = 5\n",
            vec![],
            "unknown key rate_windows in [limits]",
        ),
        (
            "rate_window = 5\n[limits]\nrate_window = 6\n",
            vec![],
            "rate_window is set twice",
        ),
        (
            "",
            vec![("POTVRDA_LIMIT__RATE_WINDOW", "5")],
            "unknown configuration section [limit]",
        ),
        (
            "",
            vec![("POTVRDA_TOKENS__CHALLENGE_TTL", "30")],
            "unknown key challenge_ttl in [tokens]",
        ),
        (
            "[login]\nchallenge_ttl = 5\n",
            vec![],
            "challenge_ttl must be between 10 and 600",
        ),
    ] {
        std::fs::write(&file, text).expect("write");
        let err = Config::load(Some(&file), env(&vars), &Overrides::default()).expect_err(message);
        assert!(err.to_string().contains(message), "{message}: {err}");
    }
}

#[test]
fn every_key_lives_in_exactly_one_section() {
    let defaults = serde_json::to_value(Config::default()).expect("json");
    let sections = defaults.as_object().expect("a table");
    assert_eq!(sections.len(), SECTIONS.len(), "every section is listed");
    let mut aliases = std::collections::HashSet::new();
    for (name, keys) in SECTIONS {
        let fields: Vec<&String> = sections
            .get(*name)
            .and_then(|s| s.as_object())
            .map(|s| s.keys().collect())
            .unwrap_or_default();
        assert_eq!(fields.len(), keys.len(), "[{name}] lists every key");
        for (key, alias) in *keys {
            assert!(fields.iter().any(|f| f == key), "[{name}] {key} is a key");
            assert!(aliases.insert(*alias), "{alias} is the alias of one key");
        }
    }
}

#[test]
fn durations_are_seconds_or_text_with_units() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("potvrda.toml");
    std::fs::write(
        &file,
        "[login]\nchallenge_ttl = \"90s\"\nfatigue_pause = 600\n[oidc]\nsession_ttl = \"8h\"\n\
         [tokens]\nttl = \"15m\"\n[listen]\naddress = \"127.0.0.1:9003\"\n",
    )
    .expect("write");
    let cfg = Config::load(
        Some(&file),
        env(&[
            ("POTVRDA_AUDIT_RETENTION", "400d"),
            ("POTVRDA_LIMITS__RATE_WINDOW", "1h 30m"),
        ]),
        &Overrides::default(),
    )
    .expect("loads");
    assert_eq!(cfg.login.challenge_ttl, secs(90));
    assert_eq!(cfg.login.fatigue_pause, secs(600));
    assert_eq!(cfg.oidc.session_ttl, secs(8 * 3600));
    assert_eq!(cfg.tokens.ttl, secs(900));
    assert_eq!(cfg.audit.retention, secs(400 * 86_400));
    assert_eq!(cfg.limits.rate_window, secs(5400));
    assert_eq!(
        cfg.listen.address.port(),
        9003,
        "a key by its in-section name"
    );
    let err = Config::load(
        None,
        env(&[("POTVRDA_CHALLENGE_TTL", "a minute or so")]),
        &Overrides::default(),
    )
    .expect_err("not a duration");
    assert!(err.to_string().contains("is not a duration"), "{err}");
    // Added to a clock reading, a longer one would overflow.
    for too_long in ["101y", "9223372036854775807"] {
        let err = Config::load(
            None,
            env(&[("POTVRDA_OIDC_SESSION_TTL", too_long)]),
            &Overrides::default(),
        )
        .expect_err(too_long);
        assert!(
            err.to_string().contains("longer than a hundred years"),
            "{too_long}: {err}"
        );
    }
    let longest = Config::load(
        None,
        env(&[("POTVRDA_AUDIT_RETENTION", "100y")]),
        &Overrides::default(),
    )
    .expect("a hundred years is allowed");
    assert!(longest.audit.retention <= super::layers::duration::MAX);
}

#[test]
fn defaults_then_toml_then_env_then_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("potvrda.toml");
    std::fs::write(
        &file,
        "challenge_ttl = 45\ntoken_ttl = 900\nlisten = \"127.0.0.1:9000\"\n",
    )
    .expect("write");
    let cfg = Config::load(
        Some(&file),
        env(&[
            ("POTVRDA_TOKEN_TTL", "1200"),
            ("POTVRDA_PUSH_ALLOWED_HOSTS", "push.example.org, 127.0.0.1"),
            ("POTVRDA_LISTEN", "127.0.0.1:9001"),
            ("POTVRDA_CONFIG", "ignored"),
            ("POTVRDA_TEST_REDIS_URL", "ignored"),
            ("HOME", "/root"),
        ]),
        &Overrides {
            listen: Some("127.0.0.1:9002".parse().expect("addr")),
            ..Overrides::default()
        },
    )
    .expect("loads");
    assert_eq!(cfg.login.challenge_ttl, secs(45), "TOML over default");
    assert_eq!(cfg.tokens.ttl, secs(1200), "env over TOML");
    assert_eq!(cfg.listen.address.port(), 9002, "CLI over env");
    assert_eq!(cfg.login.activation_ttl, secs(72 * 3600), "default");
    assert_eq!(
        cfg.push.allowed_hosts,
        vec!["push.example.org", "127.0.0.1"]
    );
    assert!(cfg.push_hosts().contains(&"fcm.googleapis.com".to_owned()));
}

#[test]
fn secrets_come_from_files_and_never_print() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tok = dir.path().join("tok");
    std::fs::write(&tok, "s3cret-bootstrap-token-value\n").expect("write");
    let cfg = Config::load(
        None,
        env(&[("POTVRDA_BOOTSTRAP_TOKEN_FILE", tok.to_str().expect("utf8"))]),
        &Overrides::default(),
    )
    .expect("loads");
    assert_eq!(
        cfg.staff
            .bootstrap_token
            .as_ref()
            .map(|s| s.expose_secret().to_owned()),
        Some("s3cret-bootstrap-token-value".into())
    );
    assert!(!format!("{cfg:?}").contains("s3cret"));
}

#[test]
fn oidc_clients_come_as_json_from_the_environment_and_are_checked() {
    let ok = r#"[{"client_id":"portal","client_secret":"s3cret-client-secret-value","redirect_uris":["https://portal.example/cb"],"name":"Portal"},
                 {"client_id":"app","redirect_uris":["https://app.example/cb"],"name":"App","id_token_signed_response_alg":"ES256"}]"#;
    let cfg = Config::load(
        None,
        env(&[("POTVRDA_OIDC_CLIENTS", ok)]),
        &Overrides::default(),
    )
    .expect("loads");
    assert_eq!(cfg.oidc.registered.len(), 2);
    assert!(!cfg.oidc.registered[0].is_public() && cfg.oidc.registered[1].is_public());
    assert_eq!(
        cfg.oidc.registered[0].id_token_signed_response_alg, "RS256",
        "the default"
    );
    assert!(
        !format!("{cfg:?}").contains("s3cret"),
        "secrets never print"
    );
    let bad = [
        r#"[{"client_id":"a","redirect_uris":["https://a.example/cb#x"],"name":"A"}]"#,
        r#"[{"client_id":"a","redirect_uris":["/relative"],"name":"A"}]"#,
        r#"[{"client_id":"a","redirect_uris":[],"name":"A"}]"#,
        r#"[{"client_id":"a","client_secret":"short","redirect_uris":["https://a.example/cb"],"name":"A"}]"#,
        r#"[{"client_id":"a","redirect_uris":["https://a.example/cb"],"name":"A","id_token_signed_response_alg":"HS256"}]"#,
        r#"[{"client_id":"a","redirect_uris":["https://a.example/cb"],"name":"A"},{"client_id":"a","redirect_uris":["https://a.example/cb"],"name":"B"}]"#,
        r#"[{"client_id":"a","redirect_uris":["https://a.example/cb"],"name":"A","colour":"red"}]"#,
        r#"[{"client_id":"potvrda","redirect_uris":["https://a.example/cb"],"name":"Same as token_audience"}]"#,
        r#"[{"client_id":"potvrda-admin","redirect_uris":["https://a.example/cb"],"name":"Same as admin_audience"}]"#,
    ];
    for b in bad {
        assert!(
            Config::load(
                None,
                env(&[("POTVRDA_OIDC_CLIENTS", b)]),
                &Overrides::default()
            )
            .is_err(),
            "{b}"
        );
    }
    // A JSON error names the position, not the text around it (it may hold a secret).
    let err = Config::load(
        None,
        env(&[(
            "POTVRDA_OIDC_CLIENTS",
            r#"[{"client_secret":"s3cret-in-broken-json" "#,
        )]),
        &Overrides::default(),
    )
    .expect_err("broken JSON");
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

/// Protocol 3's registration: each mistake names its field, never a secret.
#[test]
fn protocol_3_registrations_are_checked_field_by_field() {
    // Protocol 3's registration: each mistake names its field.
    let key = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
    let client = |extra: &str| {
        format!(
            r#"[{{"client_id":"c","client_secret":"a-long-client-secret","name":"C","grant_types":[]{extra}}}]"#
        )
    };
    let good = format!(
        r#"[{{"client_id":"k","token_endpoint_auth_method":"private_key_jwt","jwks":{{"keys":[{key}]}},"name":"K","grant_types":["urn:openid:params:grant-type:ciba"],"backchannel_token_delivery_mode":"ping","backchannel_client_notification_endpoint":"https://k.example/ciba","portal_api":true,"reports_user_context":true,"default_acr_values":["urn:potvrda:loa:substantial"]}}]"#
    );
    Config::load(
        None,
        env(&[("POTVRDA_OIDC_CLIENTS", &good)]),
        &Overrides::default(),
    )
    .expect("every protocol 3 field at once");
    let bad_v3 = [
        (client(r#","token_endpoint_auth_method":"private_key_jwt""#), "private_key_jwt"),
        (client(&format!(r#","jwks":{{"keys":[{key}]}}"#)), "client_secret_basic"),
        (r#"[{"client_id":"c","token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[]},"name":"C","grant_types":[]}]"#.to_owned(), "jwks"),
        (r#"[{"client_id":"c","token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[{"kty":"oct","k":"c2VjcmV0"}]},"name":"C","grant_types":[]}]"#.to_owned(), "jwks"),
        (client(r#","token_endpoint_auth_method":"tls_client_auth""#), "unknown variant"),
        (client(r#","grant_types":["urn:openid:params:grant-type:ciba"]"#).replace(r#""grant_types":[],"#, ""), "backchannel_token_delivery_mode"),
        (client(r#","grant_types":["urn:openid:params:grant-type:ciba"],"backchannel_token_delivery_mode":"ping""#).replace(r#""grant_types":[],"#, ""), "backchannel_client_notification_endpoint"),
        (client(r#","backchannel_client_notification_endpoint":"https://c.example/""#), "backchannel_"),
        (client(r#","grant_types":["urn:openid:params:grant-type:ciba"],"backchannel_token_delivery_mode":"poll","backchannel_user_code_parameter":true"#).replace(r#""grant_types":[],"#, ""), "backchannel_user_code_parameter"),
        (r#"[{"client_id":"c","name":"C","grant_types":[],"portal_api":true}]"#.to_owned(), "confidential"),
        (client(r#","reports_user_context":true"#), "reports_user_context"),
        (client(r#","default_acr_values":["urn:example:loa"]"#), "default_acr_values"),
        (client(r#","default_acr_values":["urn:potvrda:loa:high"]"#), "default_acr_values"),
        (client(r#","allowed_acr_values":["urn:example:loa"]"#), "allowed_acr_values"),
        (client(r#","allowed_acr_values":["urn:potvrda:loa:high"]"#), "allowed_acr_values"),
        (client(r#","allowed_acr_values":["urn:potvrda:loa:substantial"],"default_acr_values":["urn:potvrda:loa:basic"]"#), "allowed_acr_values"),
        (client(r#","grant_types":["authorization_code"]"#).replace(r#""grant_types":[],"#, ""), "redirect_uri"),
    ];
    for (b, field) in &bad_v3 {
        let err = Config::load(
            None,
            env(&[("POTVRDA_OIDC_CLIENTS", b)]),
            &Overrides::default(),
        )
        .expect_err(b);
        assert!(err.to_string().contains(field), "{b}: {err}");
        assert!(!err.to_string().contains("a-long-client-secret"), "{err}");
    }
}

#[test]
fn invalid_values_are_refused() {
    for (k, v) in [
        ("POTVRDA_CHALLENGE_TTL", "1"),
        ("POTVRDA_BOOTSTRAP_TOKEN", "short"),
        ("POTVRDA_VAPID_SUBJECT", "me"),
        ("POTVRDA_NO_SUCH_KEY", "1"),
        ("POTVRDA_LISTEN", "nowhere"),
        ("POTVRDA_CORS_ALLOWED_ORIGINS", "*"),
        (
            "POTVRDA_CORS_ALLOWED_ORIGINS",
            "https://portal.example/login",
        ),
        ("POTVRDA_TLS_CERT_FILE", "/etc/potvrda/cert.pem"),
        ("POTVRDA_TRUSTED_PROXIES", "portal.example"),
    ] {
        assert!(
            Config::load(None, env(&[(k, v)]), &Overrides::default()).is_err(),
            "{k}={v}"
        );
    }
}
