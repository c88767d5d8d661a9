//! The embedded store's audit trail: an append-only log of monthly segment
//! files, `audit/YYYY-MM.jsonl` under the data dir, one event per line in
//! the form `audit export` writes (so a segment is checked where it lies:
//! `auth-server audit verify audit/2026-12.jsonl`).
//!
//! One writer thread links each event into the chains, appends a whole batch
//! with one `write` and makes it durable with one `fdatasync` before anyone
//! is answered. Readers see only lines already durable.
//!
//! Recovery: the chains' heads are saved into redb (with the last event they
//! cover) every [`SNAPSHOT_EVERY`] events and when the store closes; on open
//! the lines after that are replayed, each checked to follow the heads, and
//! a torn last line (an append a crash cut, never acknowledged) is cut off.
//! Retention drops whole months, each drop recorded first as an
//! `audit_month_dropped` event, as on PostgreSQL.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use potvrda_domain::audit::chain::{ChainName, Head, Heads};
use potvrda_proto::api::AuditEvent;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};

#[cfg(test)]
mod tests;
mod writer;

pub(super) use writer::LogWriter;
use writer::segment_file;

use super::{AUDIT, AUDIT_HEADS};
use crate::error::{Error, Result};
use crate::store::{AuditFilter, AuditPage, redb_error};

/// An event's place in the log: (milliseconds, sequence), its id
/// `"<ms>-<seq>"`. Keys only grow, across segments too.
type Key = (u64, u64);

/// Every how many events of a segment the index keeps a file position.
const MARK_EVERY: u64 = 64;
/// Every how many events the heads are saved into redb.
const SNAPSHOT_EVERY: u64 = 4096;
/// The heads table's row naming the last event the saved heads cover.
const COVERED: &str = "covered";

/// A calendar month (UTC), the unit of a segment and of retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Month {
    year: i32,
    month: time::Month,
}

impl Month {
    /// The month of `ms` (Unix milliseconds).
    fn of_ms(ms: u64) -> Self {
        let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
        let at = time::OffsetDateTime::from_unix_timestamp(secs)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        Self {
            year: at.year(),
            month: at.month(),
        }
    }

    /// `2026-12.jsonl`.
    fn parse_file_name(name: &str) -> Option<Self> {
        let (year, month) = name.strip_suffix(".jsonl")?.split_once('-')?;
        let (year, month): (i32, u8) = (year.parse().ok()?, month.parse().ok()?);
        Some(Self {
            year,
            month: time::Month::try_from(month).ok()?,
        })
    }

    /// The first second after this month (Unix seconds).
    fn end_secs(self) -> i64 {
        let year = if self.month == time::Month::December {
            self.year + 1
        } else {
            self.year
        };
        time::Date::from_calendar_date(year, self.month.next(), 1)
            .map_or(i64::MAX, |d| d.midnight().assume_utc().unix_timestamp())
    }

    fn file_name(self) -> String {
        format!("{self}.jsonl")
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, u8::from(self.month))
    }
}

/// What the index knows of one segment.
#[derive(Debug, Clone)]
struct Segment {
    /// Bytes of whole, durable lines.
    len: u64,
    events: u64,
    first: Key,
    last: Key,
    /// `(key, offset)` of every [`MARK_EVERY`]th event, for a reader's seek.
    marks: Vec<(Key, u64)>,
}

impl Segment {
    fn new(first: Key) -> Self {
        Self {
            len: 0,
            events: 0,
            first,
            last: first,
            marks: Vec::new(),
        }
    }

    fn push(&mut self, key: Key, offset: u64, line_len: u64) {
        if self.events.is_multiple_of(MARK_EVERY) {
            self.marks.push((key, offset));
        }
        self.events += 1;
        self.last = key;
        self.len = offset + line_len;
    }
}

/// The log as readers share it with the writer.
pub(super) struct AuditLog {
    dir: PathBuf,
    segments: RwLock<BTreeMap<Month, Segment>>,
    heads: Mutex<Heads>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn id_of(key: Key) -> String {
    format!("{}-{}", key.0, key.1)
}

/// The key of an id `"<ms>-<seq>"`.
fn parse_id(id: &[u8]) -> Option<Key> {
    let (ms, seq) = std::str::from_utf8(id).ok()?.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// The key a line starts with (`{"id":"<ms>-<seq>",`: `id` is the event's
/// first member).
fn key_of_line(line: &[u8]) -> Option<Key> {
    let rest = line.strip_prefix(br#"{"id":""#)?;
    let end = rest.iter().position(|b| *b == b'"')?;
    parse_id(&rest[..end])
}

fn read_lock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write_lock<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

impl AuditLog {
    /// Open the log under `data_dir` (moving a trail an earlier release kept
    /// in redb into segments first), and the writer that alone appends to it.
    pub(super) fn open(data_dir: &Path, db: Arc<Database>) -> Result<(Arc<Self>, LogWriter)> {
        let dir = data_dir.join("audit");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        move_legacy_trail(&db, &dir)?;
        let segments = scan(&dir)?;
        let (mut heads, covered) = read_snapshot(&db)?;
        let log = Arc::new(Self {
            dir,
            segments: RwLock::new(segments),
            heads: Mutex::new(Heads::default()),
        });
        // Replay what the saved heads do not cover; a log that does not
        // follow them is refused (the writer then refuses every event).
        let mut broken = None;
        let mut unsaved = 0;
        let replayed = log.for_each_after(covered, |e| {
            unsaved += 1;
            heads.follow(e)
        });
        if let Err(e) = replayed {
            let e = format!("the audit log cannot be replayed: {e}");
            tracing::error!(error = %e, "audit writer stopped");
            broken = Some(e);
        }
        *log.heads.lock().unwrap_or_else(|p| p.into_inner()) = heads.clone();
        let last = read_lock(&log.segments)
            .values()
            .next_back()
            .map(|s| s.last);
        let writer = LogWriter {
            log: Arc::clone(&log),
            db,
            heads,
            last,
            file: None,
            unsaved,
            last_purge: 0,
            broken,
        };
        Ok((log, writer))
    }

    /// The heads of the durable log.
    pub(super) fn heads(&self) -> Heads {
        self.heads.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Call `f` on every durable event after `after`, in order.
    fn for_each_after(
        &self,
        after: Option<Key>,
        mut f: impl FnMut(&AuditEvent) -> Result<()>,
    ) -> Result<()> {
        let start = after.map_or((0, 0), |(ms, seq)| (ms, seq.saturating_add(1)));
        self.scan_from(start, (u64::MAX, u64::MAX), |_, e| f(&e).map(|()| true))
    }

    /// One page of events matching `filter`, oldest first.
    pub(super) fn events(&self, f: &AuditFilter) -> Result<AuditPage> {
        let ms = |secs: i64| u64::try_from(secs).unwrap_or(0).saturating_mul(1000);
        let mut start = (f.since.map_or(0, ms), 0);
        if let Some((a_ms, a_seq)) = f.after {
            let next = match a_seq.checked_add(1) {
                Some(seq) => (a_ms, seq),
                None => (a_ms.saturating_add(1), 0),
            };
            start = start.max(next);
        }
        let end = (
            f.until.map_or(u64::MAX, |u| ms(u).saturating_add(999)),
            u64::MAX,
        );
        let mut page = AuditPage::default();
        if start > end {
            return Ok(page);
        }
        self.scan_from(start, end, |_, event| {
            if !f.matches(&event) {
                return Ok(true);
            }
            if page.events.len() == f.limit {
                page.next_after = page.events.last().map(|e| e.id.clone());
                return Ok(false);
            }
            page.events.push(event);
            Ok(true)
        })?;
        Ok(page)
    }

    /// Visit the durable events with keys in `start..=end` in order, until
    /// `visit` answers `false`.
    fn scan_from(
        &self,
        start: Key,
        end: Key,
        mut visit: impl FnMut(Key, AuditEvent) -> Result<bool>,
    ) -> Result<()> {
        // Where to read, under the lock; the files are read without it.
        let plan: Vec<(Month, u64, u64)> = read_lock(&self.segments)
            .iter()
            .filter(|(_, s)| s.last >= start && s.first <= end)
            .map(|(month, s)| {
                let i = s.marks.partition_point(|(k, _)| *k <= start);
                let from = i.checked_sub(1).map_or(0, |i| s.marks[i].1);
                (*month, from, s.len)
            })
            .collect();
        for (month, from, len) in plan {
            let mut file = match File::open(self.dir.join(month.file_name())) {
                Ok(f) => f,
                // Dropped past retention meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            file.seek(SeekFrom::Start(from))?;
            let mut lines = BufReader::new(file.take(len - from));
            let mut line = Vec::new();
            loop {
                line.clear();
                if lines.read_until(b'\n', &mut line)? == 0 {
                    break;
                }
                let event: AuditEvent = serde_json::from_slice(&line)?;
                let Some(key) = key_of_line(&line) else {
                    return Err(Error::Store(format!(
                        "audit segment {month}: a line without an event id"
                    )));
                };
                if key < start {
                    continue;
                }
                if key > end || !visit(key, event)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// The index of every segment in `dir`; a torn last line of the newest one
/// (an append a crash cut) is cut off.
fn scan(dir: &Path) -> Result<BTreeMap<Month, Segment>> {
    let mut months: Vec<Month> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| Month::parse_file_name(e.file_name().to_str()?))
        .collect();
    months.sort();
    let mut segments = BTreeMap::new();
    let newest = months.last().copied();
    for month in months {
        let path = dir.join(month.file_name());
        let mut lines = BufReader::new(File::open(&path)?);
        let (mut segment, mut offset, mut line) = (None::<Segment>, 0u64, Vec::new());
        loop {
            line.clear();
            let n = lines.read_until(b'\n', &mut line)? as u64;
            if n == 0 {
                break;
            }
            let at_end = lines.fill_buf()?.is_empty();
            let key = key_of_line(&line).filter(|_| line.last() == Some(&b'\n'));
            // The last line is parsed whole: an append cut short may end in
            // a newline of a later line's.
            let whole =
                key.is_some() && (!at_end || serde_json::from_slice::<AuditEvent>(&line).is_ok());
            match key {
                Some(key) if whole => {
                    segment
                        .get_or_insert_with(|| Segment::new(key))
                        .push(key, offset, n);
                    offset += n;
                }
                // Only the newest segment's last line can be torn.
                _ if at_end && Some(month) == newest => {
                    tracing::warn!(%month, offset, "a torn audit line cut off (it was never acknowledged)");
                    OpenOptions::new()
                        .write(true)
                        .open(&path)?
                        .set_len(offset)?;
                    break;
                }
                _ => {
                    return Err(Error::Store(format!(
                        "audit segment {month} is damaged at byte {offset}"
                    )));
                }
            }
        }
        if let Some(s) = segment {
            segments.insert(month, s);
        }
    }
    Ok(segments)
}

/// The saved heads and the last event they cover.
fn read_snapshot(db: &Database) -> Result<(Heads, Option<Key>)> {
    let txn = db.begin_read().map_err(redb_error)?;
    let table = txn.open_table(AUDIT_HEADS).map_err(redb_error)?;
    let mut heads = Heads::default();
    let mut covered = None;
    for row in table.iter().map_err(redb_error)? {
        let (k, v) = row.map_err(redb_error)?;
        if k.value() == COVERED {
            covered = parse_id(v.value());
            continue;
        }
        let head: Head = serde_json::from_slice(v.value())?;
        match ChainName::parse(k.value()) {
            Some(ChainName::National) => heads.national = head,
            Some(ChainName::Municipality(code)) => {
                heads.municipal.insert(code, head);
            }
            None => {}
        }
    }
    Ok((heads, covered))
}

/// Save `heads` as covering the log up to `covered`.
fn save_snapshot(db: &Database, heads: &Heads, covered: Key) -> Result<()> {
    let txn = db.begin_write().map_err(redb_error)?;
    {
        let mut table = txn.open_table(AUDIT_HEADS).map_err(redb_error)?;
        let national = std::iter::once((ChainName::National, heads.national));
        let municipal = heads
            .municipal
            .iter()
            .map(|(code, h)| (ChainName::Municipality(code.clone()), *h));
        for (name, head) in national.chain(municipal) {
            let json = serde_json::to_vec(&head)?;
            table
                .insert(name.to_string().as_str(), json.as_slice())
                .map_err(redb_error)?;
        }
        table
            .insert(COVERED, id_of(covered).as_bytes())
            .map_err(redb_error)?;
    }
    txn.commit().map_err(redb_error)
}

/// An earlier release kept the trail in a redb table: write it out as
/// segments, durably, then empty the table and note what the heads (kept
/// in redb as before) cover, in one transaction. Interrupted, it starts
/// over: the segments are rewritten from the table while the table holds
/// anything.
fn move_legacy_trail(db: &Database, dir: &Path) -> Result<()> {
    let txn = db.begin_read().map_err(redb_error)?;
    let table = txn.open_table(AUDIT).map_err(redb_error)?;
    if table.is_empty().map_err(redb_error)? {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(Month::parse_file_name)
            .is_some()
        {
            std::fs::remove_file(path)?;
        }
    }
    let mut files: BTreeMap<Month, std::io::BufWriter<File>> = BTreeMap::new();
    let (mut last, mut moved) = (None, 0u64);
    for row in table.iter().map_err(redb_error)? {
        let (k, v) = row.map_err(redb_error)?;
        let key = k.value();
        let mut event: AuditEvent = serde_json::from_slice(v.value())?;
        event.id = id_of(key);
        let month = Month::of_ms(key.0);
        let out = match files.entry(month) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(std::io::BufWriter::new(segment_file(dir, month)?))
            }
        };
        serde_json::to_writer(&mut *out, &event)?;
        out.write_all(b"\n")?;
        (last, moved) = (Some(key), moved + 1);
    }
    drop(table);
    drop(txn);
    for (_, out) in files {
        out.into_inner().map_err(|e| e.into_error())?.sync_data()?;
    }
    sync_dir(dir)?;
    let txn = db.begin_write().map_err(redb_error)?;
    {
        let mut table = txn.open_table(AUDIT).map_err(redb_error)?;
        table.retain(|_, _| false).map_err(redb_error)?;
        if let Some(last) = last {
            txn.open_table(AUDIT_HEADS)
                .map_err(redb_error)?
                .insert(COVERED, id_of(last).as_bytes())
                .map_err(redb_error)?;
        }
    }
    txn.commit().map_err(redb_error)?;
    tracing::info!(
        events = moved,
        "the audit trail moved from redb into monthly segments"
    );
    Ok(())
}
