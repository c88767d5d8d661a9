//! Keys, the audit stream, typed records and health in Redis.

use super::*;
use crate::clock::Clock as _;
use crate::error::{Error, Result};
use crate::store::{
    AuditFilter, AuditPage, AuditStore, Health, KeyStore, KvStore, kv_decode, kv_encode,
};
use async_trait::async_trait;
use potvrda_domain::audit::chain::{ChainName, Head, Heads, link_event};
use potvrda_proto::api::AuditEvent;
use redis::AsyncCommands;
use std::sync::atomic::Ordering;
use zeroize::Zeroizing;

#[async_trait]
impl KeyStore for RedisStore {
    async fn get_or_insert_key(&self, name: &str, candidate: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let key = format!("{}:key:{name}", self.prefix);
        let mut c = self.conn();
        let _: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(candidate)
            .arg("NX")
            .query_async(&mut c)
            .await
            .map_err(redis_error)?;
        let stored: Option<Vec<u8>> = c.get(&key).await.map_err(redis_error)?;
        stored
            .map(Zeroizing::new)
            .ok_or_else(|| Error::Store(format!("key {name} vanished")))
    }

    async fn stored_key(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let stored: Option<Vec<u8>> = self
            .conn()
            .get(format!("{}:key:{name}", self.prefix))
            .await
            .map_err(redis_error)?;
        Ok(stored.map(Zeroizing::new))
    }
}

#[async_trait]
impl AuditStore for RedisStore {
    async fn append_audit(&self, event: &AuditEvent, retain_from: i64) -> Result<String> {
        let ms = |secs: i64| u64::try_from(secs).unwrap_or(0).saturating_mul(1000);
        let (at_ms, keep_ms) = (ms(event.at), ms(retain_from));
        // The national stream carries the chain; linking is serialised here
        // per instance, and across instances by the script's check.
        let (id, json) = self.append_chained(event, keep_ms, at_ms).await?;
        let add = |key: String| {
            let mut conn = self.conn();
            let mut inv = self.audit_add.key(key);
            inv.arg(keep_ms).arg(at_ms).arg(&json);
            async move { inv.invoke_async::<String>(&mut conn).await }
        };
        // A citizen's and an actor's events also in their own streams
        // (bounded reads for the per-citizen and per-official views).
        let user = event
            .user_id
            .as_ref()
            .map(|u| add(self.audit_key(&format!("u:{u}"))));
        let actor = event
            .actor_id
            .as_ref()
            .map(|a| add(self.audit_key(&format!("a:{a}"))));
        let (user, actor) = tokio::join!(
            async {
                match user {
                    Some(f) => f.await.map(Some),
                    None => Ok(None),
                }
            },
            async {
                match actor {
                    Some(f) => f.await.map(Some),
                    None => Ok(None),
                }
            },
        );
        user.map_err(redis_error)?;
        actor.map_err(redis_error)?;
        Ok(id)
    }

    async fn audit_heads(&self) -> Result<Heads> {
        let stored: std::collections::HashMap<String, String> = self
            .conn()
            .hgetall(self.key("audit-heads", "all"))
            .await
            .map_err(redis_error)?;
        let mut heads = Heads::default();
        for (chain, head) in stored {
            let head: Head = serde_json::from_str(&head)?;
            match ChainName::parse(&chain) {
                Some(ChainName::National) => heads.national = head,
                Some(ChainName::Municipality(code)) => {
                    heads.municipal.insert(code, head);
                }
                None => {}
            }
        }
        Ok(heads)
    }

    async fn audit_events(&self, f: &AuditFilter) -> Result<AuditPage> {
        let key = match (&f.user_id, &f.actor_id) {
            (Some(u), _) => self.audit_key(&format!("u:{u}")),
            (None, Some(a)) => self.audit_key(&format!("a:{a}")),
            (None, None) => self.audit_key("all"),
        };
        let ms = |secs: i64| u64::try_from(secs).unwrap_or(0).saturating_mul(1000);
        let since_ms = f.since.map(ms);
        if f.after == Some((u64::MAX, u64::MAX)) {
            // Nothing can follow the largest id (and Redis refuses to look).
            return Ok(AuditPage::default());
        }
        let start = match f.after {
            Some((ms, seq)) if since_ms.is_none_or(|s| ms >= s) => format!("({ms}-{seq}"),
            _ => since_ms.map_or_else(|| "-".into(), |s| s.to_string()),
        };
        let end = f
            .until
            .map_or_else(|| "+".into(), |u| ms(u).saturating_add(999).to_string());
        let reply: redis::streams::StreamRangeReply = self
            .conn()
            .xrange_count(&key, start, end, f.limit.max(1))
            .await
            .map_err(redis_error)?;
        let mut page = AuditPage::default();
        for entry in &reply.ids {
            let Some(json) = entry.get::<String>("e") else {
                continue;
            };
            let mut event: AuditEvent = serde_json::from_str(&json)?;
            event.id.clone_from(&entry.id);
            if f.matches(&event) {
                page.events.push(event);
            }
        }
        if reply.ids.len() >= f.limit.max(1) {
            page.next_after = reply.ids.last().map(|e| e.id.clone());
        }
        Ok(page)
    }
}

/// How often an append re-links after other instances moved the heads.
const CHAIN_ATTEMPTS: usize = 32;

/// A head as the heads hash keeps it (`''`: the chain has no event yet).
fn stored_head(head: &Head) -> Result<String> {
    if head.n == 0 {
        return Ok(String::new());
    }
    Ok(serde_json::to_string(head)?)
}

fn parse_stored_head(stored: &str) -> Result<Head> {
    if stored.is_empty() {
        return Ok(Head::default());
    }
    Ok(serde_json::from_str(stored)?)
}

impl RedisStore {
    /// Link `event` after the heads and append it to the national stream
    /// if nobody moved them meanwhile, else re-link; its id and stored JSON.
    async fn append_chained(
        &self,
        event: &AuditEvent,
        keep_ms: u64,
        at_ms: u64,
    ) -> Result<(String, String)> {
        let mut heads = self.audit_heads.lock().await;
        let municipal_field = event
            .municipality
            .as_ref()
            .map(|m| ChainName::Municipality(m.clone()).to_string());
        for _ in 0..CHAIN_ATTEMPTS {
            let national = heads.national;
            let municipal = event
                .municipality
                .as_ref()
                .map(|m| heads.municipal.get(m).copied().unwrap_or_default());
            let mut linked = event.clone();
            let (new_national, new_municipal) =
                link_event(&mut linked, &national, municipal.as_ref())?;
            let json = serde_json::to_string(&linked)?;
            let mut inv = self.audit_chain_add.key(self.audit_key("all"));
            inv.key(self.key("audit-heads", "all"))
                .arg(keep_ms)
                .arg(at_ms)
                .arg(&json)
                .arg(stored_head(&national)?)
                .arg(stored_head(&new_national)?)
                .arg(municipal_field.as_deref().unwrap_or(""))
                .arg(
                    municipal
                        .as_ref()
                        .map(stored_head)
                        .transpose()?
                        .unwrap_or_default(),
                )
                .arg(
                    new_municipal
                        .as_ref()
                        .map(stored_head)
                        .transpose()?
                        .unwrap_or_default(),
                );
            let (done, a, b): (i64, String, String) = inv
                .invoke_async(&mut self.conn())
                .await
                .map_err(redis_error)?;
            if done == 1 {
                heads.national = new_national;
                if let (Some(code), Some(head)) = (&event.municipality, new_municipal) {
                    heads.municipal.insert(code.clone(), head);
                }
                return Ok((a, json));
            }
            heads.national = parse_stored_head(&a)?;
            if let Some(code) = &event.municipality {
                heads.municipal.insert(code.clone(), parse_stored_head(&b)?);
            }
        }
        Err(Error::Store(
            "the audit chain's heads kept moving; event not appended".into(),
        ))
    }
}

/// Seconds Redis keeps a record: its expiry plus a day's margin for clocks
/// (the record's own expiry is what counts); 0 for none.
fn redis_ttl(expires_at: i64) -> u64 {
    if expires_at == 0 {
        return 0;
    }
    let now = crate::clock::SystemClock.now();
    u64::try_from(expires_at.saturating_sub(now))
        .unwrap_or(0)
        .saturating_add(86_400)
}

#[async_trait]
impl KvStore for RedisStore {
    async fn kv_put(&self, key: &str, value: &[u8], expires_at: i64) -> Result<()> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key("kv", key))
            .arg(kv_encode(value, expires_at));
        if let ttl @ 1.. = redis_ttl(expires_at) {
            cmd.arg("EX").arg(ttl);
        }
        cmd.query_async::<()>(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn kv_put_new(&self, key: &str, value: &[u8], expires_at: i64, now: i64) -> Result<bool> {
        // An expired record still in Redis counts as absent.
        let stored: i64 = self
            .kv_put_new
            .key(self.key("kv", key))
            .arg(now)
            .arg(kv_encode(value, expires_at))
            .arg(redis_ttl(expires_at))
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(stored == 1)
    }

    async fn kv_get(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>> {
        let stored: Option<Vec<u8>> = self
            .conn()
            .get(self.key("kv", key))
            .await
            .map_err(redis_error)?;
        Ok(stored.and_then(|s| kv_decode(&s, now).map(<[u8]>::to_vec)))
    }

    async fn kv_take(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>> {
        let stored: Option<Vec<u8>> = redis::cmd("GETDEL")
            .arg(self.key("kv", key))
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(stored.and_then(|s| kv_decode(&s, now).map(<[u8]>::to_vec)))
    }

    async fn kv_swap(
        &self,
        key: &str,
        expected: &[u8],
        value: &[u8],
        expires_at: i64,
        now: i64,
    ) -> Result<bool> {
        let swapped: i64 = self
            .kv_swap
            .key(self.key("kv", key))
            .arg(now)
            .arg(expected)
            .arg(kv_encode(value, expires_at))
            .arg(redis_ttl(expires_at))
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(swapped == 1)
    }

    async fn kv_delete(&self, key: &str) -> Result<()> {
        let _: i64 = self
            .conn()
            .del(self.key("kv", key))
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn kv_announce(&self, topic: &str) -> Result<()> {
        let _: i64 = self
            .conn()
            .publish(format!("{}:events", self.prefix), topic)
            .await
            .map_err(redis_error)?;
        Ok(())
    }
}

#[async_trait]
impl Health for RedisStore {
    async fn ping(&self) -> Result<()> {
        redis::cmd("PING")
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    fn failures(&self) -> u64 {
        self.conn.failures.load(Ordering::Relaxed)
    }
}
