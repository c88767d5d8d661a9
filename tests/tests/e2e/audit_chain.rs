//! The tamper-evident audit trail (issue 19): every event chained
//! (`SHA-256(prev ‖ canonical event)`, the national chain and one per
//! municipality), checkpoints signed with the audit key of
//! `/.well-known/audit-jwks.json`, on every store. An export verifies with
//! the server's own verifier and with an auditor's written from PROTOCOL.md
//! alone (Node's crypto and jose, `tests/node/verify_audit.mjs`); an edited,
//! removed or cut event is named, in an export and in the live store.

use std::process::Stdio;

use futures_util::future::join_all;
use potvrda_e2e::{Backend, Options, TestServer};
use potvrda_proto::api::{AuditEvent, AuditKind, CreateCitizenRequest};
use potvrda_proto::jose::Jwks;
use potvrda_server::audit::verify::{Report, Scope, Verifier};
use potvrda_server::audit_check;
use tokio::io::AsyncWriteExt;

use crate::support::*;

crate::on_both_stores!(
    an_export_verifies_here_and_in_an_auditors_own_verifier,
    the_live_store_verifies_up_to_its_heads,
);

/// A server whose checkpoints come every 2 s of its clock (moved by hand:
/// a phone's signatures and an official's token stay fresh).
async fn server(backend: Backend) -> TestServer {
    TestServer::start_with(Options {
        audit_checkpoint_interval: 2,
        ..Options::new(backend)
    })
    .await
}

/// An official of `bg` at work, a citizen logging in, and the clock moved
/// past the checkpoint interval between, so every chain has checkpoints.
async fn a_day_at_the_counter(srv: &TestServer) -> Vec<String> {
    let (_, sa) = staff(srv, &srv.token, "superadmin", None).await;
    let r = post(
        srv,
        "/v1/admin/municipalities",
        Some(&sa),
        serde_json::json!({"code": "bg", "name": "Beograd"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let (_, official) = staff(srv, &sa, "official", Some("bg")).await;
    let mut created = Vec::new();
    for round in 0..2 {
        for _ in 0..3 {
            created.push(create_by(srv, &official).await);
        }
        let c = citizen(srv, None).await;
        login(srv, &c).await;
        if round == 0 {
            srv.clock.advance(3);
        }
    }
    srv.clock.advance(3);
    // The event after the interval signs every chain that moved.
    created.push(create_by(srv, &official).await);
    created
}

async fn create_by(srv: &TestServer, token: &str) -> String {
    let username = potvrda_e2e::unique("bg");
    let r = srv
        .http
        .post(format!("{}/v1/admin/citizens", srv.url))
        .bearer_auth(token)
        .json(&CreateCitizenRequest {
            username: username.clone(),
            display_name: format!("Građanin {username}"),
            email: None,
            phone: None,
        })
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 201);
    let body: potvrda_proto::api::CreateCitizenResponse = r.json().await.expect("json");
    body.user_id.to_string()
}

async fn export(srv: &TestServer) -> String {
    let r = srv
        .http
        .get(format!("{}/v1/admin/audit/export", srv.url))
        .bearer_auth(&srv.token)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    r.text().await.expect("body")
}

async fn audit_jwks(srv: &TestServer) -> String {
    let r = srv
        .http
        .get(format!("{}/.well-known/audit-jwks.json", srv.url))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    r.text().await.expect("body")
}

fn parse(export: &str) -> Vec<AuditEvent> {
    export
        .lines()
        .map(|l| serde_json::from_str(l).expect("an audit event"))
        .collect()
}

fn verify(events: &[AuditEvent], jwks: &str, scope: Scope) -> Report {
    let jwks: Jwks = serde_json::from_str(jwks).expect("jwks");
    let mut v = Verifier::new(scope, &jwks);
    for e in events {
        if !v.push(e) {
            break;
        }
    }
    v.finish()
}

/// The auditor's verifier (Node, jose): its one-line JSON answer.
async fn auditors_verifier(export: &str, jwks: &str) -> serde_json::Value {
    let dir = crate::rp_library::installed().await;
    let mut node = tokio::process::Command::new("node")
        .arg(dir.join("verify_audit.mjs"))
        .current_dir(&dir)
        .env("AUDIT_JWKS", jwks)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    let mut stdin = node.stdin.take().expect("stdin");
    stdin
        .write_all(export.as_bytes())
        .await
        .expect("export written");
    drop(stdin);
    let out = node.wait_with_output().await.expect("node ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "verifier's answer: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

async fn an_export_verifies_here_and_in_an_auditors_own_verifier(backend: Backend) {
    let srv = server(backend).await;
    let created = a_day_at_the_counter(&srv).await;
    let (text, jwks) = (export(&srv).await, audit_jwks(&srv).await);
    let events = parse(&text);

    let report = verify(&events, &jwks, Scope::National);
    assert_eq!(report.broken, None);
    assert_eq!(report.events, events.len() as u64);
    assert_eq!(
        report.heads.national.n,
        events.len() as u64,
        "every event is in the national chain"
    );
    let bg_events = events
        .iter()
        .filter(|e| e.municipality.as_deref() == Some("bg"))
        .count() as u64;
    assert_eq!(report.heads.municipal["bg"].n, bg_events);
    let checkpoints = events
        .iter()
        .filter(|e| e.kind == AuditKind::AuditCheckpoint)
        .count() as u64;
    assert!(
        report.checkpoints >= 3 && report.checkpoints == checkpoints,
        "{report:?}"
    );
    assert!(
        events.iter().any(
            |e| e.kind == AuditKind::AuditCheckpoint && e.municipality.as_deref() == Some("bg")
        ),
        "bg's chain is signed on its own"
    );

    let theirs = auditors_verifier(&text, &jwks).await;
    assert_eq!(theirs["ok"], true, "{theirs}");
    assert_eq!(theirs["events"], events.len());
    assert_eq!(theirs["checkpoints"], checkpoints);
    assert_eq!(
        theirs["heads"]["national"]["hash"],
        hex(&report.heads.national.hash)
    );

    // One municipality's export holds its chain whole.
    let bg: Vec<AuditEvent> = events
        .iter()
        .filter(|e| e.municipality.as_deref() == Some("bg"))
        .cloned()
        .collect();
    let report = verify(&bg, &jwks, Scope::Municipality("bg".into()));
    assert_eq!(report.broken, None);

    // An edited event is named, by both verifiers and by `audit verify`.
    let victim = events
        .iter()
        .find(|e| e.kind == AuditKind::CitizenCreated && e.user_id.as_deref() == Some(&created[1]))
        .expect("the second citizen's creation")
        .id
        .clone();
    let edited: Vec<String> = text
        .lines()
        .map(|l| {
            let mut e: AuditEvent = serde_json::from_str(l).expect("event");
            if e.id == victim {
                e.user_id = Some(created[0].clone());
            }
            serde_json::to_string(&e).expect("json")
        })
        .collect();
    let edited = edited.join("\n") + "\n";
    let broken = verify(&parse(&edited), &jwks, Scope::National)
        .broken
        .expect("broken");
    assert_eq!(broken.id, victim);
    let theirs = auditors_verifier(&edited, &jwks).await;
    assert_eq!(
        (theirs["ok"].clone(), theirs["id"].clone()),
        (false.into(), victim.clone().into())
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, keys) = (
        dir.path().join("audit.jsonl"),
        dir.path().join("audit-jwks.json"),
    );
    std::fs::write(&file, &edited).expect("written");
    std::fs::write(&keys, &jwks).expect("written");
    let report = audit_check::verify_export(&file, &keys, Scope::National).expect("read");
    let (said, ok) = audit_check::describe(&report, None);
    assert!(
        !ok && said.contains(&format!("BROKEN at event {victim} (national")),
        "{said}"
    );

    // A removed line breaks the link after it.
    let removed: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains(&format!("\"id\":\"{victim}\"")))
        .collect();
    let removed = removed.join("\n") + "\n";
    let after = events
        .iter()
        .skip_while(|e| e.id != victim)
        .nth(1)
        .expect("an event after")
        .id
        .clone();
    let broken = verify(&parse(&removed), &jwks, Scope::National)
        .broken
        .expect("broken");
    assert_eq!(broken.id, after);
    assert_eq!(auditors_verifier(&removed, &jwks).await["id"], after);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn the_live_store_verifies_up_to_its_heads(backend: Backend) {
    let srv = server(backend).await;
    a_day_at_the_counter(&srv).await;
    let config = srv.config.clone();
    let events = parse(&export(&srv).await);
    // The embedded store is the server's alone while it runs.
    let _keep = match backend {
        Backend::Embedded => Some(srv.stop().await),
        _ => None,
    };
    let (report, head) = audit_check::verify_live(&config).await.expect("verified");
    let (said, ok) = audit_check::describe(&report, Some(head));
    assert!(ok, "{said}");
    assert!(
        report.events >= events.len() as u64 && report.checkpoints >= 3,
        "{said}"
    );
    assert_eq!(head, report.heads.national.n);
}

/// Someone with the database's password edits a row, or deletes the last
/// ones: `audit verify` on the live store names the row, or the cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_names_a_row_edited_or_cut_in_postgres() {
    let srv = server(Backend::Postgres).await;
    a_day_at_the_counter(&srv).await;
    let events = parse(&export(&srv).await);
    let victim = &events[events.len() / 2];
    let seq = victim.id.split_once('-').expect("ms-seq").1;
    let url = srv.postgres_url.clone().expect("postgres");
    psql(
        &url,
        &format!(
            "UPDATE audit SET event = jsonb_set(event, '{{detail,forged}}', 'true') WHERE seq = {seq}"
        ),
    );
    let (report, head) = audit_check::verify_live(&srv.config).await.expect("read");
    let (said, ok) = audit_check::describe(&report, Some(head));
    assert!(
        !ok && said.contains(&format!("BROKEN at event {} (national", victim.id)),
        "{said}"
    );

    // Undone, then the newest events cut: the heads still know how far it went.
    psql(
        &url,
        &format!("UPDATE audit SET event = event #- '{{detail,forged}}' WHERE seq = {seq}"),
    );
    let (report, head) = audit_check::verify_live(&srv.config).await.expect("read");
    assert!(audit_check::describe(&report, Some(head)).1);
    psql(
        &url,
        "DELETE FROM audit WHERE seq IN (SELECT seq FROM audit ORDER BY seq DESC LIMIT 2)",
    );
    let (report, head) = audit_check::verify_live(&srv.config).await.expect("read");
    let (said, ok) = audit_check::describe(&report, Some(head));
    assert!(
        !ok && said.contains("events at its end are missing"),
        "{said}"
    );
}

/// The embedded store's log is an export as it lies on the disk: the
/// auditor's own verifier checks its files; a line edited or the last ones
/// cut is named by `audit verify` on the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_log_verifies_as_it_lies_and_names_a_line_edited_or_cut() {
    let srv = server(Backend::Embedded).await;
    a_day_at_the_counter(&srv).await;
    let (exported, jwks) = (parse(&export(&srv).await), audit_jwks(&srv).await);
    let config = srv.config.clone();
    let dir = srv.data_dir.join("audit");
    let _keep = srv.stop().await;
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("audit dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let on_disk: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("segment"))
        .collect();
    let events = parse(&on_disk);
    assert!(events.len() >= exported.len(), "the export is the log's");
    assert_eq!(events[..exported.len()], exported[..]);
    let theirs = auditors_verifier(&on_disk, &jwks).await;
    assert_eq!(theirs["ok"], true, "{theirs}");
    assert_eq!(theirs["events"], events.len());

    let newest = files.last().expect("a segment").clone();
    let text = std::fs::read_to_string(&newest).expect("segment");
    let lines: Vec<&str> = text.lines().collect();
    let victim = parse(lines[lines.len() / 2]).remove(0);
    let forged = lines
        .iter()
        .map(|l| match *l == lines[lines.len() / 2] {
            true => l.replacen(r#""detail":{"#, r#""detail":{"forged":true,"#, 1),
            false => (*l).to_owned(),
        })
        .collect::<Vec<_>>();
    std::fs::write(&newest, forged.join("\n") + "\n").expect("edited");
    let (report, head) = audit_check::verify_live(&config).await.expect("read");
    let (said, ok) = audit_check::describe(&report, Some(head));
    assert!(
        !ok && said.contains(&format!("BROKEN at event {} (national", victim.id)),
        "{said}"
    );
    // Undone, then the newest lines cut: the saved heads know how far it went.
    let cut = &lines[..lines.len() - 2];
    std::fs::write(&newest, cut.join("\n") + "\n").expect("cut");
    let (report, head) = audit_check::verify_live(&config).await.expect("read");
    let (said, ok) = audit_check::describe(&report, Some(head));
    assert!(
        !ok && said.contains("events at its end are missing"),
        "{said}"
    );
}

fn psql(url: &str, sql: &str) {
    let out = std::process::Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qc", sql])
        .output()
        .expect("psql runs (scripts/test.sh installs postgresql-client)");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An entry deleted from the national stream on Redis is named by the
/// link after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_names_an_entry_deleted_from_redis() {
    let srv = server(Backend::Redis).await;
    a_day_at_the_counter(&srv).await;
    let events = parse(&export(&srv).await);
    let victim = &events[events.len() / 2];
    let key = format!(
        "{}:audit:{{all}}",
        srv.redis_prefix.as_deref().expect("prefix")
    );
    let url = potvrda_e2e::redis_url();
    let target = match url.strip_prefix("redis+unix://") {
        Some(socket) => ["-s", socket].map(str::to_owned),
        None => ["-u".to_owned(), url.clone()],
    };
    let out = std::process::Command::new("redis-cli")
        .args(&target)
        .args(["XDEL", &key, &victim.id])
        .output()
        .expect("redis-cli runs");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1",
        "deleted: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (report, head) = audit_check::verify_live(&srv.config).await.expect("read");
    let (said, ok) = audit_check::describe(&report, Some(head));
    let next = &events[events.len() / 2 + 1];
    assert!(
        !ok && said.contains(&format!("BROKEN at event {} (national", next.id)),
        "{said}"
    );
}

/// Two instances appending at once form one chain: no fork, no lost link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_redis_append_to_one_chain() {
    two_instances_one_chain(Backend::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgres_append_to_one_chain() {
    two_instances_one_chain(Backend::Postgres).await;
}

async fn two_instances_one_chain(backend: Backend) {
    let a = TestServer::start(backend).await;
    let b = TestServer::start_with(Options {
        redis_prefix: a.redis_prefix.clone(),
        postgres_url: a.postgres_url.clone(),
        ..Options::new(backend)
    })
    .await;
    let creations = (0..40).map(|i| {
        let srv = if i % 2 == 0 { &a } else { &b };
        async move { srv.create_citizen(&potvrda_e2e::unique("both")).await }
    });
    assert_eq!(join_all(creations).await.len(), 40);
    let (text, jwks) = (export(&a).await, audit_jwks(&a).await);
    assert_eq!(jwks, audit_jwks(&b).await, "one audit key for both");
    let events = parse(&text);
    let report = verify(&events, &jwks, Scope::National);
    assert_eq!(report.broken, None);
    assert_eq!(report.heads.national.n, events.len() as u64);
    assert!(
        events
            .iter()
            .filter(|e| e.kind == AuditKind::CitizenCreated)
            .count()
            >= 40,
        "every creation is there"
    );
}
