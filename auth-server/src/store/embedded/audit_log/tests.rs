//! The log's own tests: months, keys, a torn line, replay, the move from redb.

use super::*;

#[test]
fn months_name_their_files_and_end_where_the_next_begins() {
    // 2026-12-31T23:59:59.999Z and the next millisecond.
    let dec = Month::of_ms(1_798_761_599_999);
    let jan = Month::of_ms(1_798_761_600_000);
    assert_eq!(
        (dec.to_string(), jan.to_string()),
        ("2026-12".into(), "2027-01".into())
    );
    assert_eq!(dec.end_secs(), 1_798_761_600);
    assert_eq!(Month::parse_file_name("2026-12.jsonl"), Some(dec));
    assert!(dec < jan);
    for bad in ["2026-13.jsonl", "2026-12.json", "x-12.jsonl", "2026.jsonl"] {
        assert_eq!(Month::parse_file_name(bad), None, "{bad}");
    }
}

#[test]
fn a_line_names_its_key() {
    assert_eq!(
        key_of_line(br#"{"id":"1700000000000-3","at":1}"#),
        Some((1_700_000_000_000, 3))
    );
    assert_eq!(key_of_line(br#"{"at":1,"id":"1-2"}"#), None);
    assert_eq!(key_of_line(br#"{"id":"1700000"#), None);
}

mod on_disk {
    use super::super::super::{AUDIT, AUDIT_HEADS, EmbeddedStore};
    use super::*;
    use crate::store::AuditStore;
    use potvrda_domain::audit::verify::{Scope, Verifier};
    use potvrda_proto::api::{AuditKind, Severity};
    use potvrda_proto::jose::Jwks;

    /// 2026-12-03 (UTC), Unix seconds.
    const DEC_3: i64 = 1_796_256_000;

    fn event(at: i64, user: &str, municipality: Option<&str>) -> AuditEvent {
        AuditEvent {
            id: String::new(),
            at,
            kind: AuditKind::CitizenViewed,
            severity: Severity::Info,
            actor_id: Some("official".into()),
            user_id: Some(user.into()),
            municipality: municipality.map(Into::into),
            ip: None,
            user_agent: None,
            detail: serde_json::Map::new(),
            chain: None,
        }
    }

    async fn append(store: &EmbeddedStore, users: &[&str], at: i64) {
        for (i, u) in users.iter().enumerate() {
            let m = (i % 2 == 0).then_some("NS");
            store
                .append_audit(&event(at + i as i64, u, m), 0)
                .await
                .expect("appended");
        }
    }

    async fn all(store: &EmbeddedStore) -> Vec<AuditEvent> {
        let filter = AuditFilter {
            limit: 1000,
            ..AuditFilter::default()
        };
        store.audit_events(&filter).await.expect("read").events
    }

    /// Every event in order, the chain unbroken and ending at the heads.
    async fn assert_whole(store: &EmbeddedStore, users: &[&str]) {
        let events = all(store).await;
        let got: Vec<_> = events.iter().filter_map(|e| e.user_id.as_deref()).collect();
        assert_eq!(got, users);
        let mut verifier = Verifier::new(Scope::National, &Jwks::default());
        assert!(events.iter().all(|e| verifier.push(e)));
        let report = verifier.finish();
        assert_eq!(report.broken, None);
        assert_eq!(report.heads, store.audit_heads().await.expect("heads"));
    }

    fn segment(dir: &Path) -> PathBuf {
        dir.join("audit").join("2026-12.jsonl")
    }

    #[tokio::test]
    async fn a_torn_last_line_is_cut_off_and_the_chain_goes_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(dir.path()).expect("opens");
        append(&store, &["a", "b", "c"], DEC_3).await;
        drop(store);
        let mut f = OpenOptions::new()
            .append(true)
            .open(segment(dir.path()))
            .expect("segment");
        f.write_all(br#"{"id":"1796256009000-0","at":179"#)
            .expect("torn");
        drop(f);
        let store = EmbeddedStore::open(dir.path()).expect("reopens");
        append(&store, &["d"], DEC_3 + 10).await;
        assert_whole(&store, &["a", "b", "c", "d"]).await;
        // The segment is what `audit verify FILE` reads: one event a line.
        let text = std::fs::read_to_string(segment(dir.path())).expect("read");
        assert_eq!(text.lines().count(), 4);
        assert!(text.ends_with('\n'));
    }

    /// A log of `first` then `then`, with the heads as a crash would leave
    /// them: saved after `first` only.
    async fn saved_after_the_first(first: &[&str], then: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(dir.path()).expect("opens");
        append(&store, first, DEC_3).await;
        drop(store);
        let db = dir.path().join("potvrda.redb");
        let early = std::fs::read(&db).expect("redb");
        let store = EmbeddedStore::open(dir.path()).expect("opens");
        append(&store, then, DEC_3 + 5).await;
        drop(store);
        std::fs::write(&db, early).expect("restored");
        dir
    }

    #[tokio::test]
    async fn heads_saved_before_a_crash_are_brought_forward_from_the_log() {
        let dir = saved_after_the_first(&["a", "b"], &["c", "d", "e"]).await;
        let store = EmbeddedStore::open(dir.path()).expect("reopens");
        append(&store, &["f"], DEC_3 + 10).await;
        assert_whole(&store, &["a", "b", "c", "d", "e", "f"]).await;
    }

    #[tokio::test]
    async fn a_log_that_does_not_follow_the_saved_heads_is_refused() {
        let dir = saved_after_the_first(&["a", "b"], &["c", "d"]).await;
        // "c" removed: "d" does not follow "b".
        let path = segment(dir.path());
        let text = std::fs::read_to_string(&path).expect("read");
        let kept: Vec<_> = text
            .lines()
            .filter(|l| !l.contains(r#""user_id":"c""#))
            .collect();
        std::fs::write(&path, kept.join("\n") + "\n").expect("written");
        let store = EmbeddedStore::open(dir.path()).expect("reopens");
        let refused = store.append_audit(&event(DEC_3 + 9, "e", None), 0).await;
        assert!(
            matches!(&refused, Err(e) if e.to_string().contains("does not follow")),
            "{refused:?}"
        );
        assert_eq!(all(&store).await.len(), 3, "nothing appended");
    }

    #[tokio::test]
    async fn a_trail_an_earlier_release_kept_in_redb_moves_into_segments() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(EmbeddedStore::open(dir.path()).expect("creates"));
        // What releases before the log wrote: rows by key, heads beside.
        let db = Database::create(dir.path().join("potvrda.redb")).expect("redb");
        let mut heads = Heads::default();
        let txn = db.begin_write().expect("txn");
        {
            let mut table = txn.open_table(AUDIT).expect("audit");
            for (i, u) in ["a", "b", "c"].iter().enumerate() {
                let mut e = event(DEC_3 + i as i64, u, (i == 1).then_some("NS"));
                heads.append(&mut e).expect("linked");
                let key = ((DEC_3 as u64 + i as u64) * 1000, 0);
                table
                    .insert(key, serde_json::to_vec(&e).expect("json").as_slice())
                    .expect("row");
            }
        }
        txn.commit().expect("commit");
        save_snapshot_without_cover(&db, &heads);
        drop(db);
        let store = EmbeddedStore::open(dir.path()).expect("moves");
        let ids: Vec<_> = all(&store).await.into_iter().map(|e| e.id).collect();
        assert_eq!(
            ids,
            ["1796256000000-0", "1796256001000-0", "1796256002000-0"]
        );
        append(&store, &["d"], DEC_3 + 10).await;
        assert_whole(&store, &["a", "b", "c", "d"]).await;
        drop(store);
        let db = Database::create(dir.path().join("potvrda.redb")).expect("redb");
        let txn = db.begin_read().expect("txn");
        assert!(
            txn.open_table(AUDIT)
                .expect("audit")
                .is_empty()
                .expect("len")
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(segment(dir.path()))
            .expect("segment")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    /// The heads rows as releases before the log kept them (no `covered`).
    fn save_snapshot_without_cover(db: &Database, heads: &Heads) {
        let txn = db.begin_write().expect("txn");
        {
            let mut table = txn.open_table(AUDIT_HEADS).expect("heads");
            table
                .insert(
                    "national",
                    serde_json::to_vec(&heads.national)
                        .expect("json")
                        .as_slice(),
                )
                .expect("row");
            for (code, h) in &heads.municipal {
                let name = format!("municipality:{code}");
                table
                    .insert(
                        name.as_str(),
                        serde_json::to_vec(h).expect("json").as_slice(),
                    )
                    .expect("row");
            }
        }
        txn.commit().expect("commit");
    }

    #[tokio::test]
    async fn pages_seek_through_a_long_segment_and_a_month_boundary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(dir.path()).expect("opens");
        // 2026-12-31T23:57:00Z: the last 90 of 300 events fall in January.
        let start = 1_798_761_420;
        let users: Vec<String> = (0..300).map(|i| format!("u{i}")).collect();
        for (i, u) in users.iter().enumerate() {
            let e = event(start + i as i64, u, None);
            store.append_audit(&e, 0).await.expect("appended");
        }
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let filter = AuditFilter {
                after,
                limit: 7,
                ..AuditFilter::default()
            };
            let page = store.audit_events(&filter).await.expect("page");
            seen.extend(page.events.iter().filter_map(|e| e.user_id.clone()));
            match page.next_after {
                Some(id) => after = parse_id(id.as_bytes()),
                None => break,
            }
        }
        assert_eq!(seen, users);
        let since = AuditFilter {
            since: Some(start + 250),
            until: Some(start + 252),
            limit: 10,
            ..AuditFilter::default()
        };
        let got: Vec<_> = store.audit_events(&since).await.expect("window").events;
        let got: Vec<_> = got.iter().filter_map(|e| e.user_id.as_deref()).collect();
        assert_eq!(got, ["u250", "u251", "u252"]);
        assert!(dir.path().join("audit/2027-01.jsonl").exists());
    }
}
