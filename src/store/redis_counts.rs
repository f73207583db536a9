//! A fleet's shared velocity counters in Redis (`velocity_limits.redis`): one
//! sliding-window count per call and key, atomic on the server (one Lua
//! script: drop the calls that left the window, add this one, count, expire),
//! so a burst spread over several instances is counted once.
//!
//! Only the wire is here: connecting, the script and a ping. Deciding when to
//! ask Redis and what to do when it does not answer (count in memory, the
//! circuit, the status) is `crate::velocity`'s. Every call here is bounded by
//! the caller's timeout; this module adds none of its own on the call path.
//!
//! The password never appears in what callguard prints: [`RedisTarget::shown`]
//! is `host:port/db`, and the password is best given by environment
//! (`velocity_limits.redis_password_env`).

use std::sync::OnceLock;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, IntoConnectionInfo, Script};

/// Every counter key starts with this, so the keys are easy to find (and
/// to tell from others) in a shared Redis.
pub(crate) const KEY_PREFIX: &str = "callguard:vel:";

/// Connecting (a background task's, never a call's).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The sliding window, atomic on the server. KEYS[1]: the counter; ARGV:
/// the window in ms, the most calls kept (the rule's `max` + 1: memory per
/// key is bounded by the rule, as in memory), a member unique in the fleet.
/// Time is the server's (`TIME`), so the instances' clocks need not agree.
/// Returns the calls in the window, this one included.
const WINDOW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local per = tonumber(ARGV[1])
local keep = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - per)
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(keep + 1))
local n = redis.call('ZCARD', KEYS[1])
redis.call('PEXPIRE', KEYS[1], per)
return n
";

fn window() -> &'static Script {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    SCRIPT.get_or_init(|| Script::new(WINDOW))
}

/// Where the shared counters are: a parsed `velocity_limits.redis`.
#[derive(Clone)]
pub struct RedisTarget {
    client: Client,
    shown: String,
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisTarget({})", self.shown)
    }
}

impl RedisTarget {
    /// Parses `redis://[user@]host[:port][/db]`. The password comes from the
    /// environment variable `password_env` when named, else the URL. Errors
    /// never quote the input (it may hold a password).
    pub fn parse(url: &str, password_env: Option<&str>) -> Result<RedisTarget, String> {
        let scheme_ok = url.starts_with("redis://") || url.starts_with("redis+unix://");
        if !scheme_ok {
            return Err(
                "velocity_limits.redis: use redis://host:port/db (or redis+unix:///path)".into(),
            );
        }
        let mut info = url
            .into_connection_info()
            .map_err(|e| format!("velocity_limits.redis is not a Redis URL ({:?})", e.kind()))?;
        let mut settings = info.redis_settings().clone();
        if let Some(var) = password_env {
            let p = std::env::var(var).map_err(|_| {
                format!(
                    "velocity_limits.redis_password_env: the environment variable {var} is not set"
                )
            })?;
            settings = settings.set_password(p);
        }
        let db = settings.db();
        // One round trip less when connecting: no `CLIENT SETINFO`.
        settings = settings.set_skip_set_lib_name();
        info = info.set_redis_settings(settings);
        let shown = match info.addr() {
            ConnectionAddr::Tcp(host, port) => format!("{host}:{port}/{db}"),
            ConnectionAddr::Unix(path) => format!("unix:{}/{db}", path.display()),
            other => format!("{other}/{db}"),
        };
        let client =
            Client::open(info).map_err(|e| format!("velocity_limits.redis: {:?}", e.kind()))?;
        Ok(RedisTarget { client, shown })
    }

    /// `host:port/db`, for logs and the status: never the password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Opens a connection (multiplexed: every call shares it, each waits only
    /// for its own answer) and checks it with a ping. Bounded by
    /// [`CONNECT_TIMEOUT`] per step.
    pub async fn connect(&self) -> Result<RedisCounts, String> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CONNECT_TIMEOUT));
        let conn = tokio::time::timeout(
            CONNECT_TIMEOUT * 2,
            self.client
                .get_multiplexed_async_connection_with_config(&config),
        )
        .await
        .map_err(|_| format!("no connection within {CONNECT_TIMEOUT:?}"))?
        .map_err(describe)?;
        let counts = RedisCounts { conn };
        tokio::time::timeout(CONNECT_TIMEOUT, counts.ping())
            .await
            .map_err(|_| format!("no answer to PING within {CONNECT_TIMEOUT:?}"))??;
        Ok(counts)
    }
}

/// An error as the status shows it: the server's or the socket's message
/// (the crate's errors never quote the URL nor the password).
fn describe(e: redis::RedisError) -> String {
    e.to_string()
}

/// One open connection to the shared counters.
#[derive(Clone)]
pub struct RedisCounts {
    conn: MultiplexedConnection,
}

impl RedisCounts {
    /// Counts one call on `key` (a counter key's text) in a window of
    /// `per_ms`, keeping at most `max + 1` calls, with `member` unique in
    /// the fleet; returns the calls in the window, this one included. The
    /// script is sent by its hash (`EVALSHA`); a server that lacks it (a
    /// restart, `SCRIPT FLUSH`) gets it once and is asked again.
    pub async fn count(
        &self,
        key: &str,
        per_ms: i64,
        max: u32,
        member: &str,
    ) -> Result<u32, String> {
        let mut conn = self.conn.clone();
        let n: i64 = window()
            .key(format!("{KEY_PREFIX}{key}"))
            .arg(per_ms.max(1))
            .arg(i64::from(max) + 1)
            .arg(member)
            .invoke_async(&mut conn)
            .await
            .map_err(describe)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// `PING`: is the server there and answering?
    pub async fn ping(&self) -> Result<(), String> {
        let mut conn = self.conn.clone();
        let pong: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(describe)?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(format!("PING answered {pong:?}"))
        }
    }
}
