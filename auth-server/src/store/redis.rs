//! The Redis store, for several instances serving together.
//!
//! Key layout (every key starts with the configured prefix `P`; the part in
//! braces is the Redis Cluster hash tag, so each Lua script touches one slot):
//!
//! | key | type | content |
//! |---|---|---|
//! | `P:user:{uid}` | string | user JSON |
//! | `P:user:{uid}:activation` | string | `"<code hash> <expires_at>"` |
//! | `P:user:{uid}:devices` | set | device ids |
//! | `P:user:{uid}:pending` | zset | login ids scored by expiry |
//! | `P:uname:{username}` | string | user id (`SET NX`: uniqueness) |
//! | `P:act:{code hash}` | string | user id (index, TTL) |
//! | `P:dev:{did}` / `P:dev:{did}:gone` | string | device JSON / push gone flag |
//! | `P:login:{lid}` | hash | `data` (record JSON), `state`, `decided_at` (TTL) |
//! | `P:cid:{cid}` | string | login id (TTL) |
//! | `P:key:<name>` | string | PKCS#8 key (`SET NX`: first instance wins) |
//! | `P:jti:{did}:<jti>` | string | a spent approval `jti` (`SET NX`, a day's TTL) |
//!
//! Decisions publish the login id on `P:events`; every instance subscribes
//! (RESP3 push messages on a `ConnectionManager`, resubscribed after a
//! reconnect) and wakes its local waiters.
//!
//! Redis Cluster (`redis_cluster = true`, `redis_url` = comma-separated seed
//! nodes) uses the cluster client with the same commands: every script and
//! transaction touches one hash tag, so one slot; classic pub/sub is
//! broadcast to every node.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncCommands, IntoConnectionInfo, ProtocolVersion, PushKind, Script, Value};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::embedded::LOGIN_GRACE_SECS;
use potvrda_proto::api::AuditEvent;

use super::{
    Activation, Admission, AuditFilter, AuditPage, AuditStore, ChallengeId, DecideOutcome, Device,
    DeviceId, DeviceStore, EnrollOutcome, GuardStore, Health, KeyStore, KvStore, Limits, Login,
    LoginId, LoginRecord, LoginState, LoginStore, Notifier, RateKey, RateStore, Subscription, User,
    UserId, UserStore, kv_decode, kv_encode,
};
use crate::clock::Clock as _;
use crate::error::{Error, Result};

const DECIDE: &str = r"
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return 'not_found' end
if st ~= 'pending' then return 'decided' end
local rec = cjson.decode(redis.call('HGET', KEYS[1], 'data'))
if tonumber(rec['expires_at']) <= tonumber(ARGV[2]) then return 'expired' end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'decided_at', ARGV[2], 'decided_at_ms', ARGV[5])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'approval_jti', ARGV[6]) end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 'ok'
";

/// KEYS: the login. ARGV: the sealed token, now, the redelivery window.
const TAKE_TOKEN: &str = r"
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'approved' then
  redis.call('HSET', KEYS[1], 'state', 'consumed', 'escrow', ARGV[1], 'taken_at', ARGV[2])
  return ARGV[1]
end
if state == 'consumed' then
  local e = redis.call('HGET', KEYS[1], 'escrow')
  local t = tonumber(redis.call('HGET', KEYS[1], 'taken_at') or '0')
  if e and tonumber(ARGV[2]) - t <= tonumber(ARGV[3]) then return e end
end
return false
";

const CONSUME_ACTIVATION: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local sep = string.find(v, ' ', 1, true)
if not sep then return 0 end
if string.sub(v, 1, sep - 1) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if tonumber(string.sub(v, sep + 1)) <= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', KEYS[2], ARGV[3])
return 1
";

/// KEYS: guard hash, push window zset (one slot). ARGV: login id, now, limit, window.
const ADMIT: &str = r"
local now = tonumber(ARGV[2])
local paused = tonumber(redis.call('HGET', KEYS[1], 'paused_until') or '0')
if paused > now then return 'paused:' .. paused end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[4]))
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return 'too_many:' .. (tonumber(oldest[2]) + tonumber(ARGV[4]))
end
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[4])
local prev = redis.call('HGET', KEYS[1], 'active')
redis.call('HSET', KEYS[1], 'active', ARGV[1])
return 'ok:' .. (prev or '')
";

/// KEYS: guard hash. ARGV: ok|fail, now, fatigue limit, pause.
const OUTCOME: &str = r"
if ARGV[1] == 'ok' then
  redis.call('HSET', KEYS[1], 'fails', 0)
  return 0
end
if redis.call('HINCRBY', KEYS[1], 'fails', 1) >= tonumber(ARGV[3]) then
  local untl = tonumber(ARGV[2]) + tonumber(ARGV[4])
  redis.call('HSET', KEYS[1], 'fails', 0, 'paused_until', untl)
  return untl
end
return 0
";

/// KEYS: the counter's zset. ARGV: now, window, unique member, add (1) or only count (0).
const RATE: &str = r"
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
if ARGV[4] == '1' then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {redis.call('ZCARD', KEYS[1]), tonumber(oldest[2] or now)}
";

/// KEYS: an audit stream. ARGV: oldest id to keep (ms), the event's time
/// (ms), the event JSON. Ids never go backwards, even if a clock does.
const AUDIT_ADD: &str = r"
local ms = tonumber(ARGV[2])
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if last[1] then
  local lms = tonumber(string.match(last[1][1], '^(%d+)'))
  if lms > ms then ms = lms end
end
return redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[1], string.format('%d-*', ms), 'e', ARGV[3])
";

/// KEYS: a record. ARGV: now, expected value (expiry stripped), new stored
/// record, Redis TTL in seconds (0: none). Replaces a live record still equal
/// to the expected value.
const KV_SWAP: &str = r"
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local exp = struct.unpack('>i8', string.sub(cur, 1, 8))
if exp ~= 0 and tonumber(ARGV[1]) >= exp then return 0 end
if string.sub(cur, 9) ~= ARGV[2] then return 0 end
if tonumber(ARGV[4]) > 0 then
  redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[3])
end
return 1
";

/// KEYS: a record. ARGV: now, new stored record, Redis TTL in seconds (0:
/// none). Stores unless a live record is there.
const KV_PUT_NEW: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur then
  local exp = struct.unpack('>i8', string.sub(cur, 1, 8))
  if exp == 0 or tonumber(ARGV[1]) < exp then return 0 end
end
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
";

/// One Redis or a Redis Cluster, behind the same command interface.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// The store's connection, counting the commands that failed (the
/// `potvrda_redis_errors_total` metric) where they fail.
#[derive(Clone)]
struct Counted {
    conn: Conn,
    failures: Arc<AtomicU64>,
}

impl ConnectionLike for Counted {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, Value> {
        let failures = &self.failures;
        let reply = self.conn.req_packed_command(cmd);
        Box::pin(async move { count(failures, reply.await) })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count_of: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        let failures = &self.failures;
        let reply = self.conn.req_packed_commands(cmd, offset, count_of);
        Box::pin(async move { count(failures, reply.await) })
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

fn count<T>(failures: &AtomicU64, r: redis::RedisResult<T>) -> redis::RedisResult<T> {
    if r.is_err() {
        failures.fetch_add(1, Ordering::Relaxed);
    }
    r
}

/// A Redis failure as the domain's error: unavailable (503, retried by
/// the caller) when the connection is the problem, else a store error.
fn redis_error(e: redis::RedisError) -> Error {
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout() {
        Error::StoreUnavailable(e.to_string())
    } else {
        Error::Store(e.to_string())
    }
}

/// The Redis store.
#[derive(Clone)]
pub struct RedisStore {
    conn: Counted,
    prefix: Arc<str>,
    notifier: Arc<Notifier>,
    decide: Arc<Script>,
    take_token: Arc<Script>,
    consume_activation: Arc<Script>,
    admit: Arc<Script>,
    outcome: Arc<Script>,
    rate: Arc<Script>,
    audit_add: Arc<Script>,
    kv_swap: Arc<Script>,
    kv_put_new: Arc<Script>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// A redis URL with RESP3 switched on (pushes arrive on the connection).
fn resp3(u: &str) -> Result<redis::ConnectionInfo> {
    let info = u
        .trim()
        .into_connection_info()
        .map_err(|_| Error::Config("redis_url is not a valid Redis URL".into()))?;
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    Ok(info.set_redis_settings(settings))
}

/// The command connection and the subscriber connection (whose pushes go
/// to `tx`), to one Redis or to a cluster's seed nodes.
async fn connections(
    url: &SecretString,
    cluster: bool,
    tx: tokio::sync::mpsc::UnboundedSender<redis::PushInfo>,
) -> Result<(Conn, Conn)> {
    Ok(if cluster {
        let nodes = url
            .expose_secret()
            .split(',')
            .map(resp3)
            .collect::<Result<Vec<_>>>()?;
        let builder = || {
            redis::cluster::ClusterClient::builder(nodes.clone())
                .use_protocol(ProtocolVersion::RESP3)
                .connection_timeout(Duration::from_secs(1))
                .response_timeout(Duration::from_secs(2))
                .retries(2)
        };
        let conn = builder()
            .build()
            .map_err(redis_error)?
            .get_async_connection()
            .await
            .map_err(redis_error)?;
        let sub = builder()
            .push_sender(tx)
            .build()
            .map_err(redis_error)?
            .get_async_connection()
            .await
            .map_err(redis_error)?;
        (Conn::Cluster(conn), Conn::Cluster(sub))
    } else {
        let client = redis::Client::open(resp3(url.expose_secret())?).map_err(redis_error)?;
        // Fail fast while Redis is down (the caller gets 503 within a few
        // seconds, never a hang); every later command tries to reconnect.
        let base = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_with_config(client.clone(), base.clone())
            .await
            .map_err(redis_error)?;
        let sub = ConnectionManager::new_with_config(
            client,
            base.set_push_sender(tx).set_automatic_resubscription(),
        )
        .await
        .map_err(redis_error)?;
        (Conn::Single(conn), Conn::Single(sub))
    })
}

/// Wake local waiters for every decision published on the channel; after
/// a resubscription, every waiter (what was published meanwhile was missed).
fn spawn_fanout(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>,
    fanout: Arc<Notifier>,
) {
    tokio::spawn(async move {
        while let Some(push) = rx.recv().await {
            match push.kind {
                PushKind::Message => {
                    if let Some(Value::BulkString(id)) = push.data.get(1)
                        && let Ok(id) = std::str::from_utf8(id)
                    {
                        fanout.notify(id);
                    }
                }
                // (Re)subscribed after a reconnect: decisions published
                // meanwhile were not seen here, so every waiter re-reads.
                PushKind::Subscribe => fanout.notify_all(),
                _ => {}
            }
        }
    });
}

/// An idle subscriber notices a dead connection only when it sends
/// something: a PING a second makes the manager reconnect and resubscribe.
fn spawn_keepalive(mut sub: Conn) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = redis::cmd("PING").query_async::<()>(&mut sub).await {
                tracing::warn!(error = %e, "redis subscriber connection lost; reconnecting");
            }
        }
    });
}

impl RedisStore {
    /// Connect to `url` (RESP3 is switched on here), subscribe to the event
    /// channel, and start fanning events out to local waiters.
    pub async fn connect(url: &SecretString, cluster: bool, prefix: &str) -> Result<Self> {
        if prefix.contains(['{', '}']) {
            return Err(Error::Config(
                "redis_key_prefix must not contain braces".into(),
            ));
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (conn, mut sub) = connections(url, cluster, tx).await?;
        let channel = format!("{prefix}:events");
        match &mut sub {
            Conn::Single(c) => c.subscribe(&channel).await.map_err(redis_error)?,
            Conn::Cluster(c) => c.subscribe(&channel).await.map_err(redis_error)?,
        }
        let notifier = Arc::new(Notifier::default());
        spawn_fanout(rx, Arc::clone(&notifier));
        spawn_keepalive(sub);
        Ok(Self {
            conn: Counted {
                conn,
                failures: Arc::default(),
            },
            prefix: prefix.into(),
            notifier,
            decide: Arc::new(Script::new(DECIDE)),
            take_token: Arc::new(Script::new(TAKE_TOKEN)),
            consume_activation: Arc::new(Script::new(CONSUME_ACTIVATION)),
            admit: Arc::new(Script::new(ADMIT)),
            outcome: Arc::new(Script::new(OUTCOME)),
            rate: Arc::new(Script::new(RATE)),
            audit_add: Arc::new(Script::new(AUDIT_ADD)),
            kv_swap: Arc::new(Script::new(KV_SWAP)),
            kv_put_new: Arc::new(Script::new(KV_PUT_NEW)),
        })
    }

    fn key(&self, kind: &str, tag: &str) -> String {
        format!("{}:{kind}:{{{tag}}}", self.prefix)
    }

    fn conn(&self) -> Counted {
        self.conn.clone()
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let v: Option<String> = self.conn().get(key).await.map_err(redis_error)?;
        v.map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(Into::into)
    }
}

fn parse_login(map: std::collections::HashMap<String, String>) -> Result<Option<Login>> {
    let (Some(data), Some(state)) = (map.get("data"), map.get("state")) else {
        return Ok(None);
    };
    Ok(Some(Login {
        record: serde_json::from_str(data)?,
        state: LoginState::parse(state)
            .ok_or_else(|| Error::Store(format!("bad login state {state}")))?,
        decided_at: map.get("decided_at").and_then(|v| v.parse().ok()),
        decided_at_ms: map.get("decided_at_ms").and_then(|v| v.parse().ok()),
        approval_jti: map.get("approval_jti").cloned(),
    }))
}

#[async_trait]
impl UserStore for RedisStore {
    async fn create_user(&self, user: &User, activation: &Activation) -> Result<()> {
        let user_key = self.key("user", &user.id);
        let ttl = (activation.expires_at - user.created_at).max(1) as u64;
        let mut c = self.conn();
        // The user's own keys first (one slot, one transaction), then the
        // unique name; a crash in between leaves only an unreachable record.
        redis::pipe()
            .atomic()
            .set(&user_key, serde_json::to_string(user)?)
            .set(
                format!("{user_key}:activation"),
                format!("{} {}", activation.code_hash, activation.expires_at),
            )
            .query_async::<()>(&mut c)
            .await
            .map_err(redis_error)?;
        let reserved: bool = redis::cmd("SET")
            .arg(self.key("uname", &user.username))
            .arg(user.id.as_str())
            .arg("NX")
            .query_async::<Option<String>>(&mut c)
            .await
            .map_err(redis_error)?
            .is_some();
        if !reserved {
            let _: () = c
                .del(&[user_key.clone(), format!("{user_key}:activation")])
                .await
                .map_err(redis_error)?;
            return Err(Error::UsernameTaken);
        }
        let _: () = c
            .set_ex(
                self.key("act", &activation.code_hash),
                user.id.as_str(),
                ttl,
            )
            .await
            .map_err(redis_error)?;
        // The name index for the counter's search.
        let _: () = c
            .zadd(format!("{}:unames", self.prefix), &user.username, 0)
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<User>> {
        let id: Option<String> = self
            .conn()
            .get(self.key("uname", username))
            .await
            .map_err(redis_error)?;
        match id {
            Some(id) => self.user(&UserId::from(id)).await,
            None => Ok(None),
        }
    }

    async fn user(&self, id: &UserId) -> Result<Option<User>> {
        self.get_json(&self.key("user", id)).await
    }

    async fn new_activation(&self, activation: &Activation) -> Result<()> {
        let user_key = self.key("user", &activation.user_id);
        let ttl = (activation.expires_at - crate::clock::SystemClock.now()).max(1) as u64;
        let mut c = self.conn();
        // The user's activation record names the one valid code: replacing it
        // makes an earlier code fail at enrollment (its hash no longer matches).
        let _: () = c
            .set(
                format!("{user_key}:activation"),
                format!("{} {}", activation.code_hash, activation.expires_at),
            )
            .await
            .map_err(redis_error)?;
        let _: () = c
            .set_ex(
                self.key("act", &activation.code_hash),
                activation.user_id.as_str(),
                ttl,
            )
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn search_users(&self, prefix: &str, limit: usize) -> Result<Vec<User>> {
        let names: Vec<String> = redis::cmd("ZRANGE")
            .arg(format!("{}:unames", self.prefix))
            .arg(format!("[{prefix}"))
            .arg(format!("[{prefix}\u{ff}"))
            .arg("BYLEX")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if let Some(u) = self.user_by_name(&name).await? {
                out.push(u);
            }
        }
        Ok(out)
    }

    async fn update_user(&self, user: &User) -> Result<()> {
        // XX: only an existing account is replaced.
        let replaced: Option<String> = redis::cmd("SET")
            .arg(self.key("user", &user.id))
            .arg(serde_json::to_string(user)?)
            .arg("XX")
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        replaced.map(|_| ()).ok_or(Error::NotFound)
    }
}

#[async_trait]
impl DeviceStore for RedisStore {
    async fn enroll_device(
        &self,
        code_hash: &str,
        device: Device,
        now: i64,
    ) -> Result<EnrollOutcome> {
        let mut c = self.conn();
        let act_key = self.key("act", code_hash);
        let Some(user_id): Option<String> = c.get(&act_key).await.map_err(redis_error)? else {
            return Ok(EnrollOutcome::InvalidCode);
        };
        let Some(user) = self.user(&UserId::from(user_id)).await? else {
            return Ok(EnrollOutcome::InvalidCode);
        };
        let device = Device {
            user_id: user.id.clone(),
            ..device
        };
        let dev_key = self.key("dev", &device.id);
        // The device record is written unlinked; the script then consumes the
        // code and links the device in one step on the user's slot.
        let _: () = c
            .set(&dev_key, serde_json::to_string(&device)?)
            .await
            .map_err(redis_error)?;
        let user_key = self.key("user", &user.id);
        let linked: i64 = self
            .consume_activation
            .key(format!("{user_key}:activation"))
            .key(format!("{user_key}:devices"))
            .arg(code_hash)
            .arg(now)
            .arg(device.id.as_str())
            .invoke_async(&mut c)
            .await
            .map_err(redis_error)?;
        let _: () = c.del(&act_key).await.map_err(redis_error)?;
        if linked != 1 {
            let _: () = c.del(&dev_key).await.map_err(redis_error)?;
            return Ok(EnrollOutcome::InvalidCode);
        }
        Ok(EnrollOutcome::Enrolled(Box::new(user)))
    }

    async fn devices_of(&self, user_id: &UserId) -> Result<Vec<Device>> {
        let ids: Vec<String> = self
            .conn()
            .smembers(format!("{}:devices", self.key("user", user_id)))
            .await
            .map_err(redis_error)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(d) = self.device(&DeviceId::from(id)).await? {
                out.push(d);
            }
        }
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    async fn device(&self, device_id: &DeviceId) -> Result<Option<Device>> {
        let dev_key = self.key("dev", device_id);
        let mut c = self.conn();
        let (json, gone): (Option<String>, Option<String>) = redis::pipe()
            .get(&dev_key)
            .get(format!("{dev_key}:gone"))
            .query_async(&mut c)
            .await
            .map_err(redis_error)?;
        let Some(json) = json else { return Ok(None) };
        let mut d: Device = serde_json::from_str(&json)?;
        d.push_gone |= gone.is_some();
        let linked: bool = c
            .sismember(
                format!("{}:devices", self.key("user", &d.user_id)),
                d.id.as_str(),
            )
            .await
            .map_err(redis_error)?;
        Ok(linked.then_some(d))
    }

    async fn revoke_device(&self, user_id: &UserId, device_id: &DeviceId) -> Result<bool> {
        let removed: i64 = self
            .conn()
            .srem(
                format!("{}:devices", self.key("user", user_id)),
                device_id.as_str(),
            )
            .await
            .map_err(redis_error)?;
        if removed == 1 {
            let dev_key = self.key("dev", device_id);
            let _: () = self
                .conn()
                .del(&[dev_key.clone(), format!("{dev_key}:gone")])
                .await
                .map_err(redis_error)?;
        }
        Ok(removed == 1)
    }

    async fn rename_device(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
        name: &str,
    ) -> Result<bool> {
        let Some(mut d) = self.device(device_id).await? else {
            return Ok(false);
        };
        if d.user_id != *user_id {
            return Ok(false);
        }
        d.name = name.to_owned();
        d.push_gone = false; // kept in its own key
        // XX: never brings back a device revoked in between.
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key("dev", device_id))
            .arg(serde_json::to_string(&d)?)
            .arg("XX")
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(set.is_some())
    }

    async fn mark_push_gone(&self, device_id: &DeviceId) -> Result<()> {
        let _: () = self
            .conn()
            .set(format!("{}:gone", self.key("dev", device_id)), 1)
            .await
            .map_err(redis_error)?;
        Ok(())
    }
}

#[async_trait]
impl LoginStore for RedisStore {
    async fn create_login(&self, record: &LoginRecord) -> Result<()> {
        let ttl = (record.expires_at - record.created_at + LOGIN_GRACE_SECS).max(1);
        let login_key = self.key("login", &record.id);
        let pending_key = format!("{}:pending", self.key("user", &record.user_id));
        let mut c = self.conn();
        redis::pipe()
            .atomic()
            .hset_multiple(
                &login_key,
                &[
                    ("data", serde_json::to_string(record)?.as_str()),
                    ("state", "pending"),
                ],
            )
            .expire(&login_key, ttl)
            .query_async::<()>(&mut c)
            .await
            .map_err(redis_error)?;
        let _: () = c
            .set_ex(self.key("cid", &record.cid), record.id.as_str(), ttl as u64)
            .await
            .map_err(redis_error)?;
        redis::pipe()
            .atomic()
            .zrembyscore(&pending_key, "-inf", record.created_at)
            .zadd(&pending_key, record.id.as_str(), record.expires_at)
            .expire(&pending_key, ttl)
            .query_async::<()>(&mut c)
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn login(&self, login_id: &LoginId) -> Result<Option<Login>> {
        let map: std::collections::HashMap<String, String> = self
            .conn()
            .hgetall(self.key("login", login_id))
            .await
            .map_err(redis_error)?;
        parse_login(map)
    }

    async fn login_by_challenge(&self, cid: &ChallengeId) -> Result<Option<Login>> {
        let id: Option<String> = self
            .conn()
            .get(self.key("cid", cid))
            .await
            .map_err(redis_error)?;
        match id {
            Some(id) => self.login(&LoginId::from(id)).await,
            None => Ok(None),
        }
    }

    async fn pending_logins(&self, user_id: &UserId, now: i64) -> Result<Vec<Login>> {
        let ids: Vec<String> = self
            .conn()
            .zrangebyscore(
                format!("{}:pending", self.key("user", user_id)),
                format!("({now}"),
                "+inf",
            )
            .await
            .map_err(redis_error)?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(l) = self.login(&LoginId::from(id)).await?
                && l.state == LoginState::Pending
            {
                out.push(l);
            }
        }
        Ok(out)
    }

    async fn decide(
        &self,
        login_id: &LoginId,
        to: LoginState,
        now: i64,
        now_ms: i64,
        approval_jti: Option<&str>,
    ) -> Result<DecideOutcome> {
        let outcome: String = self
            .decide
            .key(self.key("login", login_id))
            .arg(to.as_str())
            .arg(now)
            .arg(format!("{}:events", self.prefix))
            .arg(login_id.as_str())
            .arg(now_ms)
            .arg(approval_jti.unwrap_or(""))
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        let outcome = match outcome.as_str() {
            "ok" => DecideOutcome::Decided,
            "decided" => DecideOutcome::AlreadyDecided,
            "expired" => DecideOutcome::Expired,
            "not_found" => DecideOutcome::NotFound,
            other => return Err(Error::Store(format!("decide script answered {other}"))),
        };
        if outcome == DecideOutcome::Decided {
            // Local waiters need not wait for the round trip through pub/sub.
            self.notifier.notify(login_id);
        }
        Ok(outcome)
    }

    async fn mark_seen(&self, login_id: &LoginId) -> Result<bool> {
        // HSETNX on the login's own hash: first writer wins, and it expires with the login.
        let first: bool = self
            .conn()
            .hset_nx(self.key("login", login_id), "seen", 1)
            .await
            .map_err(redis_error)?;
        Ok(first)
    }

    async fn take_token(
        &self,
        login_id: &LoginId,
        escrow: &[u8],
        now: i64,
        redeliver: i64,
    ) -> Result<Option<Vec<u8>>> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        // Base64 in the hash: its fields are read back as text.
        let stored: Option<String> = self
            .take_token
            .key(self.key("login", login_id))
            .arg(b64.encode(escrow))
            .arg(now)
            .arg(redeliver)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(stored.and_then(|s| b64.decode(s).ok()))
    }

    fn subscribe(&self, login_id: &str) -> Subscription {
        self.notifier.subscribe(login_id)
    }

    async fn spend_jti(
        &self,
        device_id: &DeviceId,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool> {
        let ttl = u64::try_from((expires_at - now).max(1)).unwrap_or(1);
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key("jti", device_id) + ":" + jti)
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(ttl)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(set.is_some())
    }
}

#[async_trait]
impl GuardStore for RedisStore {
    async fn admit_login(
        &self,
        user_id: &UserId,
        login_id: &LoginId,
        now: i64,
        limits: &Limits,
    ) -> Result<Admission> {
        let user_key = self.key("user", user_id);
        let answer: String = self
            .admit
            .key(format!("{user_key}:guard"))
            .key(format!("{user_key}:pushes"))
            .arg(login_id.as_str())
            .arg(now)
            .arg(limits.push_limit)
            .arg(limits.push_window)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        let bad = || Error::Store(format!("admit script answered {answer}"));
        Ok(match answer.split_once(':') {
            Some(("ok", "")) => Admission::Admitted { superseded: None },
            Some(("ok", prev)) => Admission::Admitted {
                superseded: Some(LoginId::new(prev)),
            },
            Some(("paused", t)) => Admission::Paused {
                until: t.parse().map_err(|_| bad())?,
            },
            Some(("too_many", t)) => Admission::TooMany {
                retry_at: t.parse().map_err(|_| bad())?,
            },
            _ => return Err(bad()),
        })
    }

    async fn record_outcome(
        &self,
        user_id: &UserId,
        approved: bool,
        now: i64,
        limits: &Limits,
    ) -> Result<Option<i64>> {
        let until: i64 = self
            .outcome
            .key(format!("{}:guard", self.key("user", user_id)))
            .arg(if approved { "ok" } else { "fail" })
            .arg(now)
            .arg(limits.fatigue_limit)
            .arg(limits.fatigue_pause)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok((until > 0).then_some(until))
    }
}

impl RedisStore {
    async fn rate(&self, key: &str, now: i64, window: i64, add: bool) -> Result<(u32, i64)> {
        let member = uuid::Uuid::new_v4().simple().to_string();
        let (count, oldest): (u32, i64) = self
            .rate
            .key(self.key("rl", key))
            .arg(now)
            .arg(window)
            .arg(member)
            .arg(if add { "1" } else { "0" })
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok((count, oldest))
    }
}

#[async_trait]
impl RateStore for RedisStore {
    async fn rate_hit(&self, key: &RateKey<'_>, now: i64, window: i64) -> Result<(u32, i64)> {
        let key = &key.key();
        self.rate(key, now, window, true).await
    }

    async fn rate_count(&self, key: &RateKey<'_>, now: i64, window: i64) -> Result<(u32, i64)> {
        let key = &key.key();
        self.rate(key, now, window, false).await
    }

    async fn rate_reset(&self, key: &RateKey<'_>) -> Result<()> {
        let key = &key.key();
        let _: () = self
            .conn()
            .del(self.key("rl", key))
            .await
            .map_err(redis_error)?;
        Ok(())
    }
}

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
}

impl RedisStore {
    /// The audit stream: all events, one citizen's, or one actor's.
    fn audit_key(&self, scope: &str) -> String {
        self.key("audit", scope)
    }
}

#[async_trait]
impl AuditStore for RedisStore {
    async fn append_audit(&self, event: &AuditEvent, retain_from: i64) -> Result<String> {
        let json = serde_json::to_string(event)?;
        let ms = |secs: i64| u64::try_from(secs).unwrap_or(0).saturating_mul(1000);
        let (at_ms, keep_ms) = (ms(event.at), ms(retain_from));
        let add = |key: String| {
            let mut conn = self.conn();
            let mut inv = self.audit_add.key(key);
            inv.arg(keep_ms).arg(at_ms).arg(&json);
            async move { inv.invoke_async::<String>(&mut conn).await }
        };
        // Every event in the national stream; a citizen's and an actor's also
        // in their own (bounded reads for the per-citizen and per-official views).
        let all = add(self.audit_key("all"));
        let user = event
            .user_id
            .as_ref()
            .map(|u| add(self.audit_key(&format!("u:{u}"))));
        let actor = event
            .actor_id
            .as_ref()
            .map(|a| add(self.audit_key(&format!("a:{a}"))));
        let (id, user, actor) = tokio::join!(
            all,
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
        Ok(id.map_err(redis_error)?)
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
