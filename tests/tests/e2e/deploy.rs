//! The deployment files, checked by the tools that will read them: promtool
//! for the Prometheus configuration and alert rules, systemd-analyze for the
//! unit, a YAML and a JSON parser for the rest, and the dashboard's queries
//! against the metric names the server really exports.

use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run ({e}); scripts/test.sh installs the tools"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

#[test]
fn prometheus_rules_and_config_pass_promtool() {
    let d = deploy();
    run(
        Command::new("promtool")
            .arg("check")
            .arg("rules")
            .arg(d.join("prometheus/alerts.yml")),
        "promtool check rules",
    );
    // The config names the rule file by its in-container path; check a copy that points at ours.
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = std::fs::read_to_string(d.join("prometheus/prometheus.yml"))
        .expect("config")
        .replace(
            "/etc/prometheus/alerts.yml",
            &d.join("prometheus/alerts.yml").display().to_string(),
        );
    std::fs::write(tmp.path().join("prometheus.yml"), config).expect("write");
    run(
        Command::new("promtool")
            .arg("check")
            .arg("config")
            .arg(tmp.path().join("prometheus.yml")),
        "promtool check config",
    );
}

#[test]
fn systemd_unit_passes_systemd_analyze() {
    // Verified as installed: a copy whose ExecStart names an executable that
    // exists here (this test binary), so every remaining finding is real.
    let unit = std::fs::read_to_string(deploy().join("systemd/potvrda.service")).expect("unit");
    assert!(unit.contains("ExecStart=/usr/local/bin/auth-server "));
    let exe = std::env::current_exe().expect("test binary");
    let tmp = tempfile::tempdir().expect("tempdir");
    let copy = tmp.path().join("potvrda.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/local/bin/auth-server", &exe.display().to_string()),
    )
    .expect("write");
    let text = run(
        Command::new("systemd-analyze").arg("verify").arg(&copy),
        "systemd-analyze verify",
    );
    assert!(text.trim().is_empty(), "systemd-analyze verify: {text}");
}

#[test]
fn yaml_and_json_parse_and_the_dashboard_queries_exported_metrics() {
    let d = deploy();
    let script = r#"
import json, sys, yaml
for path in sys.argv[2:]:
    with open(path) as f:
        docs = list(yaml.safe_load_all(f))
    assert docs and all(doc is not None for doc in docs), path
kinds = [doc["kind"] for doc in yaml.safe_load_all(open(sys.argv[1]))]
print(" ".join(kinds))
"#;
    let files = [
        "docker-compose.yml",
        "prometheus/prometheus.yml",
        "grafana/provisioning/datasources/prometheus.yml",
        "grafana/provisioning/dashboards/potvrda.yml",
    ];
    let kinds = run(
        Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(d.join("kubernetes/potvrda.yaml"))
            .arg(d.join("kubernetes/potvrda.yaml"))
            .args(files.iter().map(|f| d.join(f))),
        "YAML parse (python3 with PyYAML)",
    );
    for kind in [
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
    ] {
        assert!(
            kinds.split_whitespace().any(|k| k == kind),
            "kubernetes/potvrda.yaml lacks a {kind}"
        );
    }
    let dash: serde_json::Value = serde_json::from_slice(
        &std::fs::read(d.join("grafana/dashboards/potvrda.json")).expect("dashboard"),
    )
    .expect("JSON");
    let exprs: Vec<String> = dash["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().expect("targets").iter())
        .map(|t| t["expr"].as_str().expect("expr").to_owned())
        .collect();
    let all = exprs.join("\n")
        + &std::fs::read_to_string(d.join("prometheus/alerts.yml")).expect("rules");
    // Every potvrda_* name the dashboard and alerts use is one the server exports.
    let exported = [
        "potvrda_challenge_decision_seconds",
        "potvrda_push_delivery_seconds",
        "potvrda_password_verify_seconds",
        "potvrda_approval_to_token_seconds",
        "potvrda_challenge_stage_seconds",
        "potvrda_logins_total",
        "potvrda_tokens_issued_total",
        "potvrda_push_ignored_total",
        "potvrda_push_denied_total",
        "potvrda_fatigue_pauses_total",
        "potvrda_redis_errors_total",
        "potvrda_challenges_pending",
        "potvrda_long_polls_waiting",
        "potvrda_hash_queue_depth",
        "potvrda_audit_events_total",
        "potvrda_audit_write_errors_total",
        "potvrda_password_locks_total",
        "potvrda_login_risk_total",
        "potvrda_postgres_connections",
        "potvrda_postgres_query_seconds",
    ];
    for word in all.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if let Some(base) = word.strip_prefix("potvrda_") {
            let name = format!("potvrda_{base}");
            let known = exported.iter().any(|m| {
                name == *m
                    || name
                        .strip_prefix(m)
                        .is_some_and(|s| ["_bucket", "_count", "_sum"].contains(&s))
            });
            assert!(
                known,
                "{name} is used by the dashboard or alerts but not exported"
            );
        }
    }
    for needed in [
        "challenge_decision_seconds",
        "push_delivery_seconds",
        "challenges_pending",
        "logins_total",
    ] {
        assert!(
            exprs.iter().any(|e| e.contains(needed)),
            "the dashboard shows {needed}"
        );
    }
}

/// Security round 2, finding 1: the shipped deployments sent no
/// `X-Forwarded-For` and trusted no proxy, so every citizen had the proxy's
/// address. nginx, docker-compose and Kubernetes must agree: the edge proxy
/// names the client, and the servers trust exactly that proxy.
#[test]
fn the_proxy_in_front_is_the_proxy_the_servers_trust() {
    use potvrda_server::config::{Config, Overrides};
    use potvrda_server::proxies::Proxies;
    let d = deploy();
    let nginx = std::fs::read_to_string(d.join("nginx/potvrda.conf")).expect("nginx conf");
    assert!(
        nginx
            .lines()
            .any(|l| l.trim() == "proxy_set_header X-Forwarded-For $remote_addr;"),
        "nginx names the client as it saw it (not a header the client sent)"
    );
    let script = r#"
import json, sys, yaml
compose = yaml.safe_load(open(sys.argv[1]))
lb = compose["services"]["lb"]
servers = {n: s for n, s in compose["services"].items() if n.startswith("auth-server")}
docs = list(yaml.safe_load_all(open(sys.argv[2])))
toml = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["potvrda.toml"]
ingress = [d for d in docs if d["kind"] == "Ingress"]
policy = next(d for d in docs if d["kind"] == "NetworkPolicy")
cron = next(d for d in docs if d["kind"] == "CronJob")
cron_env = [e["valueFrom"]["secretKeyRef"]["key"] for c in cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
            for e in c.get("env", []) if "valueFrom" in e]
print(json.dumps({
  "lb_address": lb["networks"]["edge"]["ipv4_address"],
  "edge_subnet": compose["networks"]["edge"]["ipam"]["config"][0]["subnet"],
  "servers": {n: {"trusted": s["environment"].get("POTVRDA_TRUSTED_PROXIES"),
                  "on_edge": "edge" in s.get("networks", [])} for n, s in servers.items()},
  "k8s_toml": toml,
  "ingress_backend": [p["backend"]["service"]["name"] for i in ingress
                      for r in i["spec"]["rules"] for p in r["http"]["paths"]],
  "cron_secrets": cron_env,
  "http_from": [f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                for rule in policy["spec"]["ingress"] if {"port": 8080} in rule["ports"]
                for f in rule["from"] if "namespaceSelector" in f],
}))
"#;
    let out = run(
        Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(d.join("docker-compose.yml"))
            .arg(d.join("kubernetes/potvrda.yaml")),
        "read the deployment files (python3 with PyYAML)",
    );
    let facts: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    // docker-compose: both replicas trust nginx's fixed address, and only it.
    let lb: std::net::IpAddr = facts["lb_address"]
        .as_str()
        .expect("lb")
        .parse()
        .expect("ip");
    let servers = facts["servers"].as_object().expect("servers");
    assert_eq!(servers.len(), 2, "two replicas");
    for (name, s) in servers {
        assert_eq!(s["on_edge"], true, "{name} is on nginx's network");
        let trusted = s["trusted"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} trusts no proxy"));
        let cfg = Config::load(
            None,
            [("POTVRDA_TRUSTED_PROXIES".to_owned(), trusted.to_owned())],
            &Overrides::default(),
        )
        .expect("the server accepts it");
        let p = Proxies::checked(&cfg.listen.trusted_proxies);
        assert!(p.trusts(lb), "{name} trusts nginx at {lb}");
        let subnet: ipnet::IpNet = facts["edge_subnet"]
            .as_str()
            .expect("subnet")
            .parse()
            .expect("net");
        let other = subnet.hosts().find(|h| *h != lb).expect("another address");
        assert!(
            !p.trusts(other),
            "{name} trusts nothing else on the edge network"
        );
    }
    // Kubernetes: the ConfigMap loads, trusts the pod network the ingress
    // runs in, and nothing public; the Ingress leads to the service, and
    // only ingress-nginx may reach the HTTP port.
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("potvrda.toml");
    std::fs::write(&file, facts["k8s_toml"].as_str().expect("toml")).expect("write");
    let cfg = Config::load(Some(&file), [], &Overrides::default()).expect("the ConfigMap loads");
    let p = Proxies::checked(&cfg.listen.trusted_proxies);
    assert!(
        p.trusts("10.42.7.19".parse().expect("ip")),
        "an ingress pod"
    );
    assert!(!p.trusts("203.0.113.7".parse().expect("ip")), "a citizen");
    assert_eq!(facts["ingress_backend"], serde_json::json!(["potvrda"]));
    assert_eq!(facts["http_from"], serde_json::json!(["ingress-nginx"]));
    // The archive job reads the trail with the audit reader token, never the bootstrap token.
    assert_eq!(
        facts["cron_secrets"],
        serde_json::json!(["audit-reader-token"])
    );
}

/// Issue 19: the shipped multi-instance deployments keep the system of
/// record in PostgreSQL (beside Redis), start after it is healthy, may reach
/// it through the network policy, and keep the audit trail for years there
/// rather than two weeks in Redis memory.
#[test]
fn the_deployments_keep_the_system_of_record_in_postgresql() {
    use potvrda_server::config::{Config, Overrides};
    let d = deploy();
    let script = r#"
import json, sys, yaml
compose = yaml.safe_load(open(sys.argv[1]))
servers = {n: s for n, s in compose["services"].items() if n.startswith("auth-server")}
docs = list(yaml.safe_load_all(open(sys.argv[2])))
deployment = next(d for d in docs if d["kind"] == "Deployment")
policy = next(d for d in docs if d["kind"] == "NetworkPolicy")
print(json.dumps({
  "compose_env": {n: s["environment"] for n, s in servers.items()},
  "compose_waits_for": {n: s["depends_on"] for n, s in servers.items()},
  "postgres_healthcheck": compose["services"]["postgres"]["healthcheck"]["test"],
  "k8s_env": [e["name"] for c in deployment["spec"]["template"]["spec"]["containers"] for e in c["env"]],
  "k8s_toml": next(d for d in docs if d["kind"] == "ConfigMap")["data"]["potvrda.toml"],
  "egress_ports": [p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])],
}))
"#;
    let out = run(
        Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(d.join("docker-compose.yml"))
            .arg(d.join("kubernetes/potvrda.yaml")),
        "read the deployment files (python3 with PyYAML)",
    );
    let facts: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    let five_years = std::time::Duration::from_secs(5 * 365 * 86_400);
    for (name, env) in facts["compose_env"].as_object().expect("servers") {
        let env: Vec<(String, String)> = env
            .as_object()
            .expect("environment")
            .iter()
            .map(|(k, v)| {
                let v = v
                    .as_str()
                    .unwrap_or_default()
                    .replace("${POSTGRES_PASSWORD}", "pw");
                let v = v.replace(
                    "${POTVRDA_BOOTSTRAP_TOKEN:?set a bootstrap token of 16+ characters}",
                    "a-bootstrap-token-of-24ch",
                );
                (k.clone(), v)
            })
            .filter(|(k, v)| {
                !v.starts_with("${") && k != "POTVRDA_PUBLIC_URL" && k != "POTVRDA_VAPID_SUBJECT"
            })
            .collect();
        let cfg = Config::load(None, env, &Overrides::default())
            .unwrap_or_else(|e| panic!("{name}'s environment loads: {e}"));
        assert!(
            cfg.store.postgres_url.is_some() && cfg.store.redis_url.is_some(),
            "{name}"
        );
        assert!(
            cfg.audit.retention >= five_years,
            "{name} keeps the trail for years"
        );
        assert_eq!(
            facts["compose_waits_for"][name]["postgres"]["condition"], "service_healthy",
            "{name} starts after PostgreSQL is ready"
        );
    }
    assert!(
        facts["postgres_healthcheck"]
            .to_string()
            .contains("pg_isready")
    );
    let k8s_env: Vec<&str> = facts["k8s_env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(k8s_env.contains(&"POTVRDA_POSTGRES_URL") && k8s_env.contains(&"POTVRDA_REDIS_URL"));
    assert!(
        facts["egress_ports"]
            .as_array()
            .expect("ports")
            .contains(&5432.into())
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("potvrda.toml");
    std::fs::write(&file, facts["k8s_toml"].as_str().expect("toml")).expect("write");
    let cfg = Config::load(Some(&file), [], &Overrides::default()).expect("the ConfigMap loads");
    assert!(cfg.audit.retention >= five_years);
    assert_eq!(cfg.store.postgres_pool_size, 16);
    let unit = std::fs::read_to_string(d.join("systemd/potvrda.service")).expect("unit");
    assert!(unit.contains("POTVRDA_POSTGRES_URL_FILE=%d/postgres-url"));
}
