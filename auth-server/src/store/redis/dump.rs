//! Redis read whole, for `auth-server migrate`: accounts in the order of
//! the name index (`P:unames`), typed records by `SCAN` on every master
//! (each node of a cluster in turn), keys by name. Reads only.

use super::*;
use crate::store::dump::{Dump, Page, StoredRecord, stored_record};
use crate::store::{Activation, User, UserId};
use async_trait::async_trait;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};

impl RedisStore {
    /// Up to `limit` usernames after `after`, in bytewise order.
    async fn names_after(&self, after: Option<&str>, limit: usize) -> Result<Page<String>> {
        let start = after.map_or_else(|| "-".to_owned(), |a| format!("({a}"));
        let names = self.names_between(&start, "+", limit).await?;
        let next = (names.len() == limit)
            .then(|| names.last().cloned())
            .flatten();
        Ok(Page { items: names, next })
    }

    /// The masters to scan: the one server, or every master of the cluster.
    async fn scan_nodes(&self) -> Result<Vec<Option<(String, u16)>>> {
        let Conn::Cluster(cluster) = &self.conn.conn else {
            return Ok(vec![None]);
        };
        let text: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut cluster.clone())
            .await
            .map_err(redis_error)?;
        let mut masters: Vec<(String, u16)> = text
            .lines()
            .filter_map(|line| {
                let mut fields = line.split(' ');
                let address = fields.nth(1)?;
                let flags = fields.next()?;
                let (host, port) = address.split('@').next()?.rsplit_once(':')?;
                (flags.split(',').any(|f| f == "master") && !flags.contains("fail"))
                    .then(|| Some((host.to_owned(), port.parse().ok()?)))
                    .flatten()
            })
            .collect();
        masters.sort();
        Ok(masters.into_iter().map(Some).collect())
    }

    /// One `SCAN` step on `node`: the next cursor and the keys it gave.
    async fn scan_step(
        &self,
        node: Option<&(String, u16)>,
        cursor: u64,
        pattern: &str,
        count: usize,
    ) -> Result<(u64, Vec<String>)> {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(count);
        let reply = match (&self.conn.conn, node) {
            (Conn::Cluster(c), Some((host, port))) => {
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                });
                c.clone().route_command(cmd, routing).await
            }
            _ => cmd.query_async(&mut self.conn()).await,
        };
        redis::from_redis_value(reply.map_err(redis_error)?)
            .map_err(|e| Error::Store(format!("SCAN: {e}")))
    }
}

/// A records cursor: which master, and its `SCAN` cursor.
fn parse_scan_cursor(after: Option<&str>) -> (usize, u64) {
    after
        .and_then(|a| a.split_once(' '))
        .and_then(|(n, c)| Some((n.parse().ok()?, c.parse().ok()?)))
        .unwrap_or((0, 0))
}

#[async_trait]
impl Dump for RedisStore {
    async fn users_page(&self, after: Option<&str>, limit: usize) -> Result<Page<User>> {
        let names = self.names_after(after, limit).await?;
        Ok(Page {
            items: self.users_named(&names.items).await?,
            next: names.next,
        })
    }

    async fn activations_page(
        &self,
        after: Option<&str>,
        limit: usize,
        now: i64,
    ) -> Result<Page<Activation>> {
        let names = self.names_after(after, limit).await?;
        let mut items = Vec::new();
        for user in self.users_named(&names.items).await? {
            let stored: Option<String> = self
                .conn()
                .get(format!("{}:activation", self.key("user", &user.id)))
                .await
                .map_err(redis_error)?;
            if let Some(a) = stored.as_deref().and_then(|s| activation_of(&user.id, s))
                && a.expires_at > now
            {
                items.push(a);
            }
        }
        Ok(Page {
            items,
            next: names.next,
        })
    }

    async fn records_page(
        &self,
        after: Option<&str>,
        limit: usize,
        now: i64,
    ) -> Result<Page<StoredRecord>> {
        let nodes = self.scan_nodes().await?;
        let (mut node, mut cursor) = parse_scan_cursor(after);
        let pattern = format!("{}:kv:{{*", self.prefix);
        let mut items = Vec::new();
        while let Some(at) = nodes.get(node) {
            let (next, keys) = self.scan_step(at.as_ref(), cursor, &pattern, limit).await?;
            for key in keys {
                let stored: Option<Vec<u8>> = self.conn().get(&key).await.map_err(redis_error)?;
                let record_key = key
                    .strip_prefix(&format!("{}:kv:{{", self.prefix))
                    .and_then(|k| k.strip_suffix('}'));
                if let (Some(k), Some(v)) = (record_key, stored)
                    && let Some(record) = stored_record(k, &v, now)
                {
                    items.push(record);
                }
            }
            (node, cursor) = if next == 0 {
                (node + 1, 0)
            } else {
                (node, next)
            };
            if items.len() >= limit {
                break;
            }
        }
        let next = (node < nodes.len()).then(|| format!("{node} {cursor}"));
        Ok(Page { items, next })
    }
}

/// `"<code hash> <expires_at>"` as an [`Activation`] of `user_id`.
fn activation_of(user_id: &UserId, stored: &str) -> Option<Activation> {
    let (code_hash, expires_at) = stored.split_once(' ')?;
    Some(Activation {
        code_hash: code_hash.to_owned(),
        user_id: user_id.clone(),
        expires_at: expires_at.parse().ok()?,
    })
}
