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
//! | `P:login:{lid}` | hash | `data` (record JSON), `state`, `expires_at` (a login an earlier release wrote has it only in `data`, where the decision reads it), `decided_at`, … (TTL) |
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

mod accounts;
mod dump;
mod logins;
mod records;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncCommands, IntoConnectionInfo, ProtocolVersion, PushKind, Script, Value};
use secrecy::{ExposeSecret, SecretString};

use super::{Login, LoginState, Notifier};
use crate::error::{Error, Result};

/// KEYS: the login. ARGV: the new state, now, the events channel, the login
/// id, now (ms), the approval `jti` (`''`: none), the amr (`''`: none). The
/// expiry is a field of its own (one `HMGET` reads it with the state); a
/// login an earlier release wrote has it only inside `data`, read there.
const DECIDE: &str = r"
local f = redis.call('HMGET', KEYS[1], 'state', 'expires_at')
if not f[1] then return 'not_found' end
if f[1] ~= 'pending' then return 'decided' end
local exp = f[2]
if not exp then exp = cjson.decode(redis.call('HGET', KEYS[1], 'data'))['expires_at'] end
if tonumber(exp) <= tonumber(ARGV[2]) then return 'expired' end
local set = {'state', ARGV[1], 'decided_at', ARGV[2], 'decided_at_ms', ARGV[5]}
if ARGV[6] ~= '' then set[#set + 1] = 'approval_jti'; set[#set + 1] = ARGV[6] end
if ARGV[7] ~= '' then set[#set + 1] = 'amr'; set[#set + 1] = ARGV[7] end
redis.call('HSET', KEYS[1], unpack(set))
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 'ok'
";

/// KEYS: the login. ARGV: the record JSON, its expiry, the key's TTL.
const CREATE_LOGIN: &str = r"
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'state', 'pending', 'expires_at', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
";

/// KEYS: the citizen's pending zset. ARGV: now, the login id, its expiry,
/// the key's TTL. Logins past their expiry leave it.
const ADD_PENDING: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
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
local g = redis.call('HMGET', KEYS[1], 'paused_until', 'active')
local paused = tonumber(g[1] or '0')
if paused > now then return 'paused:' .. paused end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[4]))
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return 'too_many:' .. (tonumber(oldest[2]) + tonumber(ARGV[4]))
end
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('HSET', KEYS[1], 'active', ARGV[1])
return 'ok:' .. (g[2] or '')
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

/// KEYS: the counter's zset. ARGV: now, window, a unique member. Counts
/// this hit; answers the count in the window and its oldest hit. (A look
/// without a hit is a plain `ZCOUNT`, see `RedisStore::rate_look`.)
const RATE_HIT: &str = r"
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[2])
local n = redis.call('ZCARD', KEYS[1])
if n == 1 then return {1, now} end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {n, tonumber(oldest[2])}
";

/// The Lua function both audit scripts append with: `XADD` at the event's
/// millisecond (`ms-*`), trimming to the retention. Ids never go backwards,
/// even if a clock does: when the stream already holds a later id (the one
/// case `XADD` refuses), the event takes that id's millisecond instead. The
/// usual case is one command; the stream's top is read only in that one.
macro_rules! audit_xadd_lua {
    () => {
        r"
local function audit_xadd(key, retain, ms, body)
  local id = redis.pcall('XADD', key, 'MINID', '~', retain, string.format('%d-*', ms), 'e', body)
  if type(id) ~= 'table' or not id.err then return id end
  local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
  if not last[1] then return redis.error_reply(id.err) end
  local lms = tonumber(string.match(last[1][1], '^(%d+)'))
  return redis.call('XADD', key, 'MINID', '~', retain, string.format('%d-*', lms), 'e', body)
end
"
    };
}

/// KEYS: an audit stream. ARGV: oldest id to keep (ms), the event's time
/// (ms), the event JSON.
const AUDIT_ADD: &str = concat!(
    audit_xadd_lua!(),
    r"
return audit_xadd(KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3])
"
);

/// KEYS: the national audit stream, the chains' heads (one slot). ARGV:
/// retain-from ms, event ms, event JSON, the national head expected (`''`:
/// none yet), its new value, the municipal chain's field (`''`: none), its
/// head expected, its new value. Appends only if the heads are still the
/// expected ones (another instance may have moved them): `{1, id, ''}`;
/// else `{0, national head, municipal head}` as they are, to link anew.
const AUDIT_CHAIN_ADD: &str = concat!(
    audit_xadd_lua!(),
    r"
local cur_n, cur_m = '', ''
if ARGV[6] ~= '' then
  local h = redis.call('HMGET', KEYS[2], 'national', ARGV[6])
  cur_n, cur_m = h[1] or '', h[2] or ''
else
  cur_n = redis.call('HGET', KEYS[2], 'national') or ''
end
if cur_n ~= ARGV[4] or cur_m ~= ARGV[7] then return {0, cur_n, cur_m} end
local id = audit_xadd(KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3])
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[2], 'national', ARGV[5], ARGV[6], ARGV[8])
else
  redis.call('HSET', KEYS[2], 'national', ARGV[5])
end
return {1, id, ''}
"
);

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
    use redis::{ErrorKind, ServerErrorKind};
    // A cluster moving slots or electing a new master (MOVED, ASK, TRYAGAIN,
    // CLUSTERDOWN, MASTERDOWN after the client's own retries) or a replica
    // still loading passes: the request is worth retrying.
    let passing = e.is_cluster_error()
        || matches!(
            e.kind(),
            ErrorKind::Server(ServerErrorKind::MasterDown | ServerErrorKind::BusyLoading)
        );
    if passing
        || e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
    {
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
    rate_hit: Arc<Script>,
    create_login: Arc<Script>,
    add_pending: Arc<Script>,
    audit_add: Arc<Script>,
    audit_chain_add: Arc<Script>,
    /// The chains' heads as this instance last saw them (a guess: the
    /// script checks it, and a stale guess costs one more round trip).
    audit_heads: Arc<tokio::sync::Mutex<potvrda_domain::audit::chain::Heads>>,
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
            rate_hit: Arc::new(Script::new(RATE_HIT)),
            create_login: Arc::new(Script::new(CREATE_LOGIN)),
            add_pending: Arc::new(Script::new(ADD_PENDING)),
            audit_add: Arc::new(Script::new(AUDIT_ADD)),
            audit_chain_add: Arc::new(Script::new(AUDIT_CHAIN_ADD)),
            audit_heads: Arc::default(),
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
        amr: map
            .get("amr")
            .map(|a| a.split_ascii_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
    }))
}

impl RedisStore {
    /// Count a hit in the window `key`: its count and oldest hit.
    async fn rate_hit(&self, key: &str, now: i64, window: i64) -> Result<(u32, i64)> {
        let member = uuid::Uuid::new_v4().simple().to_string();
        self.rate_hit
            .key(self.key("rl", key))
            .arg(now)
            .arg(window)
            .arg(member)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)
    }

    /// Look at the window `key` without counting: one `ZCOUNT` (the usual
    /// answer, nothing there), and the oldest hit only when there is one.
    /// Hits past the window are counted out here and trimmed by the next hit.
    async fn rate_look(&self, key: &str, now: i64, window: i64) -> Result<(u32, i64)> {
        let key = self.key("rl", key);
        let since = format!("({}", now - window);
        let mut c = self.conn();
        let n: u32 = c.zcount(&key, &since, "+inf").await.map_err(redis_error)?;
        if n == 0 {
            return Ok((0, now));
        }
        let oldest: Vec<(String, i64)> = c
            .zrangebyscore_limit_withscores(&key, &since, "+inf", 0, 1)
            .await
            .map_err(redis_error)?;
        Ok((n, oldest.first().map_or(now, |(_, t)| *t)))
    }
}

impl RedisStore {
    /// The audit stream: all events, one citizen's, or one actor's.
    fn audit_key(&self, scope: &str) -> String {
        self.key("audit", scope)
    }
}
