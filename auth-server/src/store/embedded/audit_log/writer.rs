//! The audit log's one appender, owned by the audit writer thread: links,
//! appends a batch with one write and one `fdatasync`, saves the heads now
//! and then, drops months past retention.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use potvrda_domain::audit::Event;
use potvrda_domain::audit::chain::Heads;
use potvrda_proto::api::AuditEvent;
use redb::Database;

use super::{
    AuditLog, Key, Month, SNAPSHOT_EVERY, Segment, id_of, read_lock, save_snapshot, sync_dir,
    write_lock,
};
use crate::error::{Error, Result};
use crate::store::embedded::AuditJob;

/// A segment opened for appending (mode 0600: addresses and user agents).
pub(super) fn segment_file(dir: &Path, month: Month) -> Result<File> {
    Ok(OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(dir.join(month.file_name()))?)
}

/// The one appender: owned by the audit writer thread.
pub(in crate::store::embedded) struct LogWriter {
    pub(super) log: Arc<AuditLog>,
    pub(super) db: Arc<Database>,
    pub(super) heads: Heads,
    pub(super) last: Option<Key>,
    pub(super) file: Option<(Month, File)>,
    /// Events since the heads were last saved.
    pub(super) unsaved: u64,
    pub(super) last_purge: u64,
    /// Why every event is refused (a log that cannot be replayed or repaired).
    pub(super) broken: Option<String>,
}

/// Lines of one batch for one month's segment, and each line's key and
/// offset in `buf`.
struct Run {
    month: Month,
    buf: Vec<u8>,
    keys: Vec<(Key, u64)>,
}

/// How often old months are looked for, in milliseconds.
const PURGE_EVERY_MS: u64 = 3_600_000;

impl LogWriter {
    /// The writer thread: takes every event waiting (up to `max`), appends
    /// them as one batch, answers each; saves the heads when the store is
    /// dropped.
    pub(in crate::store::embedded) fn run(
        mut self,
        jobs: &std::sync::mpsc::Receiver<AuditJob>,
        max: usize,
    ) {
        while let Ok(first) = jobs.recv() {
            let mut batch = vec![first];
            while batch.len() < max {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.write_batch(batch);
        }
        self.save();
    }

    /// Append the jobs' events (linked, durable) and answer each; then,
    /// at most hourly, drop the months past retention.
    fn write_batch(&mut self, mut batch: Vec<AuditJob>) {
        let outcome = match &self.broken {
            Some(e) => Err(e.clone()),
            None => self
                .append(batch.iter_mut().map(|j| (j.key_ms, &mut j.event)))
                .map_err(|e| e.to_string()),
        };
        // Before the answers, as on PostgreSQL: whoever wrote has seen the
        // trail trimmed to the retention.
        let newest = batch.iter().map(|j| j.key_ms).max().unwrap_or(0);
        if outcome.is_ok() && newest >= self.last_purge.saturating_add(PURGE_EVERY_MS) {
            self.last_purge = newest;
            let retain_from = batch.iter().map(|j| j.retain_from_ms).max().unwrap_or(0);
            if let Err(e) = self.drop_months_before(retain_from, newest) {
                tracing::error!(error = %e, "audit months past retention not dropped");
            }
        }
        match outcome {
            Ok(ids) => {
                for (job, id) in batch.into_iter().zip(ids) {
                    let _ = job.done.send(Ok(id));
                }
            }
            Err(e) => {
                for job in batch {
                    let _ = job.done.send(Err(e.clone()));
                }
            }
        }
    }

    /// Link and append `events` in one write per segment and one
    /// `fdatasync`; their ids. On failure nothing is kept: the heads are as
    /// before and the segment is cut back to its durable length.
    fn append<'e>(
        &mut self,
        events: impl Iterator<Item = (u64, &'e mut AuditEvent)>,
    ) -> Result<Vec<String>> {
        let (heads, last) = (self.heads.clone(), self.last);
        let mut runs: Vec<Run> = Vec::new();
        let linked = (|| {
            for (ms, event) in events {
                // Keys never go backwards, even if the clock does.
                let key = match self.last {
                    Some((last_ms, seq)) if last_ms >= ms => (last_ms, seq + 1),
                    _ => (ms, 0),
                };
                self.heads.append(event)?;
                event.id = id_of(key);
                let month = Month::of_ms(key.0);
                if runs.last().is_none_or(|r| r.month != month) {
                    runs.push(Run {
                        month,
                        buf: Vec::new(),
                        keys: Vec::new(),
                    });
                }
                let i = runs.len() - 1;
                let run = &mut runs[i];
                run.keys.push((key, run.buf.len() as u64));
                serde_json::to_writer(&mut run.buf, &*event)?;
                run.buf.push(b'\n');
                self.last = Some(key);
            }
            Ok::<_, Error>(())
        })();
        let written = linked.and_then(|()| self.write_runs(&runs));
        if let Err(e) = written {
            (self.heads, self.last) = (heads, last);
            return Err(e);
        }
        let mut ids = Vec::new();
        {
            let mut segments = write_lock(&self.log.segments);
            for Run { month, buf, keys } in &runs {
                let first = keys.first().map(|k| k.0).unwrap_or_default();
                let segment = segments
                    .entry(*month)
                    .or_insert_with(|| Segment::new(first));
                let base = segment.len;
                for (i, (key, at)) in keys.iter().enumerate() {
                    let next = keys.get(i + 1).map_or(buf.len() as u64, |k| k.1);
                    segment.push(*key, base + at, next - at);
                    ids.push(id_of(*key));
                }
            }
        }
        *self.log.heads.lock().unwrap_or_else(|p| p.into_inner()) = self.heads.clone();
        self.unsaved += ids.len() as u64;
        if self.unsaved >= SNAPSHOT_EVERY {
            self.save();
        }
        Ok(ids)
    }

    /// Write each run to its month's segment and make them durable; on a
    /// failure, cut every segment written back to its durable length (or
    /// refuse from now on).
    fn write_runs(&mut self, runs: &[Run]) -> Result<()> {
        let mut touched = Vec::new();
        for Run { month, buf, .. } in runs {
            let durable = read_lock(&self.log.segments)
                .get(month)
                .map_or(0, |s| s.len);
            touched.push((*month, durable));
            let written = self
                .segment(*month)
                .and_then(|file| Ok(file.write_all(buf).and_then(|()| file.sync_data())?));
            if let Err(e) = written {
                self.file = None;
                for (month, durable) in touched {
                    let path = self.log.dir.join(month.file_name());
                    let cut = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .and_then(|f| f.set_len(durable).and_then(|()| f.sync_data()));
                    if let Err(cut) = cut {
                        self.broken = Some(format!(
                            "the audit segment {month} could not be cut back after a failed write: {cut}"
                        ));
                    }
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// The open segment of `month` (created, and its directory entry made
    /// durable, when new).
    fn segment(&mut self, month: Month) -> Result<&mut File> {
        if self.file.as_ref().is_none_or(|(m, _)| *m != month) {
            let exists = self.log.dir.join(month.file_name()).exists();
            let file = segment_file(&self.log.dir, month)?;
            if !exists {
                sync_dir(&self.log.dir)?;
            }
            self.file = Some((month, file));
        }
        match &mut self.file {
            Some((_, file)) => Ok(file),
            None => Err(Error::Internal("no audit segment open".into())),
        }
    }

    /// Save the heads as covering the log so far.
    pub(super) fn save(&mut self) {
        let Some(last) = self.last else { return };
        if self.broken.is_some() {
            return;
        }
        match save_snapshot(&self.db, &self.heads, last) {
            Ok(()) => self.unsaved = 0,
            Err(e) => {
                tracing::warn!(error = %e, "audit heads not saved; the log replays further on open")
            }
        }
    }

    /// Drop the months wholly before `retain_from_ms`, each after recording
    /// its drop (month, events, the national chain's last link in it).
    fn drop_months_before(&mut self, retain_from_ms: u64, now_ms: u64) -> Result<()> {
        let retain_from = i64::try_from(retain_from_ms / 1000).unwrap_or(i64::MAX);
        let current = self.last.map(|k| Month::of_ms(k.0));
        let old: Vec<(Month, Segment)> = read_lock(&self.log.segments)
            .iter()
            .filter(|(m, _)| Some(**m) != current && m.end_secs() <= retain_from)
            .map(|(m, s)| (*m, s.clone()))
            .collect();
        for (month, segment) in old {
            let mut last_event = None;
            self.log.scan_from(segment.last, segment.last, |_, e| {
                last_event = Some(e);
                Ok(false)
            })?;
            let last = last_event.and_then(|e| e.chain).map(|c| c.national);
            let at = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
            let mut event =
                Event::month_dropped(&month.to_string(), segment.events, last.as_ref(), at);
            self.append(std::iter::once((now_ms, &mut event)))?;
            write_lock(&self.log.segments).remove(&month);
            std::fs::remove_file(self.log.dir.join(month.file_name()))?;
            sync_dir(&self.log.dir)?;
            tracing::info!(%month, events = segment.events, "audit month past retention dropped");
        }
        Ok(())
    }
}
