//! `callguard serve`: load the rules, start every configured listener, and
//! stop gracefully.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::action::Pbx;
use crate::config::{self, LoadedConfig, Problems};
use crate::http;
use crate::metrics::Metrics;
use crate::pbx;
use crate::policy::RuleSet;
use crate::reload::Reloader;
use crate::server::{self, Shutdown};
use crate::service::ServiceConfig;
use crate::state::{Snapshot, State};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(Problems),
    #[error("cannot listen for {what} on {addr}: {err}")]
    Bind {
        what: &'static str,
        addr: String,
        err: std::io::Error,
    },
    #[error("decision log {path}: {err}")]
    Log { path: String, err: String },
}

/// A started service: where it listens, and how to stop it.
pub struct Running {
    pub agi: Option<SocketAddr>,
    pub esl: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    pub state: Arc<State>,
    pub reloader: Arc<Reloader>,
    shutdown: Shutdown,
    tasks: Vec<JoinHandle<()>>,
}

/// Pending connections the kernel may queue before we accept them. A PBX
/// can burst thousands of calls at once (a busy hour, a trunk coming back);
/// past this queue the kernel drops handshakes, and a PBX that waits for the
/// server to speak first (FreeSWITCH) then waits on a connection we never saw.
/// The kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 8192;

async fn bind(what: &'static str, addr: &str) -> Result<TcpListener, StartError> {
    let fail = |err| StartError::Bind {
        what,
        addr: addr.to_string(),
        err,
    };
    let resolved = tokio::net::lookup_host(addr)
        .await
        .map_err(fail)?
        .next()
        .ok_or_else(|| fail(std::io::Error::other("the address resolves to nothing")))?;
    let socket = if resolved.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(fail)?;
    socket.set_reuseaddr(true).map_err(fail)?;
    socket.bind(resolved).map_err(fail)?;
    socket.listen(LISTEN_BACKLOG).map_err(fail)
}

/// Binds a PBX listener and runs its accept loop. The loop runs
/// `unconstrained` so that it drains the kernel's accept queue at once
/// under a burst of calls (see `server::accept_loop`). Only the address is
/// fixed here: the allow-list, limit and timeouts come from the snapshot
/// installed when a connection arrives.
async fn pbx_listener<H, F>(
    addr: &str,
    pbx: Pbx,
    state: &Arc<State>,
    shutdown: &Shutdown,
    session: H,
) -> Result<(SocketAddr, JoinHandle<()>), StartError>
where
    H: Fn(tokio::net::TcpStream, SocketAddr, Arc<State>, Arc<Snapshot>) -> F
        + Send
        + Sync
        + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let what = match pbx {
        Pbx::Asterisk => "FastAGI",
        Pbx::FreeSwitch => "outbound ESL",
    };
    let listener = bind(what, addr).await?;
    let local = listener.local_addr().map_err(|err| StartError::Bind {
        what,
        addr: addr.to_string(),
        err,
    })?;
    let st = state.clone();
    let task = tokio::spawn(tokio::task::unconstrained(server::accept_loop(
        listener,
        pbx,
        state.clone(),
        shutdown.clone(),
        move |stream, peer, snap| session(stream, peer, st.clone(), snap),
    )));
    Ok((local, task))
}

/// Loads `config_path` and starts the service.
pub async fn start(config_path: &Path) -> Result<Running, StartError> {
    let path: PathBuf = config_path.to_path_buf();
    let (cfg, rules, service, fleet): (LoadedConfig, RuleSet, ServiceConfig, _) =
        tokio::task::spawn_blocking(move || {
            let mut cfg = config::load_all(&path)?;
            // With `log.postgres` the lists are the store's: its rows (or
            // the cache's, when it cannot be reached) over the files'.
            let fleet = crate::fleet::open(&cfg);
            if let Some(f) = &fleet {
                f.overlay(&mut cfg);
            }
            // A tenant with problems starts without its own rules; the
            // others start (see `RuleSet::compile_isolated`).
            let rules = RuleSet::compile_isolated(&cfg, None)?;
            for p in &rules.tenant_problems {
                tracing::error!("{p}");
            }
            let service = ServiceConfig::from_config(&cfg)?;
            Ok::<_, Problems>((cfg, rules, service, fleet))
        })
        .await
        .map_err(|e| StartError::Config(config::Problem::new("start", 0, 0, e.to_string()).into()))?
        .map_err(StartError::Config)?;
    let raw = &cfg.raw;
    for w in raw.http.unset_token_warnings() {
        tracing::warn!("{w}");
    }
    let metrics = Arc::new(Metrics::with_tenant_label(raw.metrics.tenant_label));
    let log = start_log(&cfg, &metrics).await?;
    let log_path = cfg.resolve(&raw.log.path);
    // The fleet's store keeps the history and the blocks; else the SQLite file.
    let history = match &fleet {
        Some(_) => None,
        None => match crate::store::ListVersions::open(&log_path) {
            Ok(h) => Some(Arc::new(h)),
            Err(e) => {
                tracing::warn!("list history unavailable ({e}); rollback is off");
                None
            }
        },
    };
    let velocity = Arc::new(crate::velocity::Tracker::new(
        raw.velocity_limits.max_tracked,
    ));
    let attached = match &fleet {
        Some(f) => crate::fleet::attach_blocks(f, &velocity).await,
        None => velocity.attach_store(&log_path, chrono::Utc::now()),
    };
    match attached {
        Ok(0) => {}
        Ok(n) => tracing::info!("{n} velocity block(s) still in force"),
        Err(e) => tracing::warn!("velocity blocks will not survive a restart: {e}"),
    }
    start_shared_counters(&cfg, &velocity, &metrics)?;
    // Kept in the SQLite file at `log.path`, also with `log.postgres`.
    crate::source::install_tls_provider();
    let reputation = crate::reputation::Reputation::start(
        &raw.reputation,
        cfg.resolve(".").as_path(),
        Some(&log_path),
        &metrics,
    );
    let features = Arc::new(open_features(&log_path));
    let extras = crate::state::Extras {
        features,
        reputation,
        log_path: Some(log_path),
        log_postgres: raw.log.postgres_target().and_then(Result::ok),
        history,
        list_lock: Default::default(),
        velocity,
        fleet: fleet.clone(),
        config_path: Some(config_path.to_path_buf()),
        apply_now: Default::default(),
    };
    let state = State::with_extras(rules, service, metrics, log, extras);
    if let Some(f) = &fleet {
        f.applied(f.version());
        state.publish_store_gauges();
    }
    let reloader = Reloader::new(config_path.to_path_buf(), state.clone());
    // A feature code's list write is applied at once, like the API's.
    let r = reloader.clone();
    let _ = state.extras.apply_now.set(Arc::new(move |why: String| {
        let r = r.clone();
        Box::pin(async move {
            r.reload(crate::reload::Trigger::ApiWrite(why))
                .await
                .map_err(|p| p.to_string())
        })
    }));
    let shutdown = Shutdown::new();
    let mut tasks = Vec::new();
    let mut running_agi = None;
    let mut running_esl = None;
    let mut running_http = None;

    if let Some(addr) = raw.listen.agi.as_deref() {
        let (a, t) = pbx_listener(
            addr,
            Pbx::Asterisk,
            &state,
            &shutdown,
            |stream, peer, st, snap| {
                pbx::agi::session::serve(stream, peer, st, snap.service.agi.clone())
            },
        )
        .await?;
        running_agi = Some(a);
        tasks.push(t);
    }
    if let Some(addr) = raw.listen.esl.as_deref() {
        let (a, t) = pbx_listener(
            addr,
            Pbx::FreeSwitch,
            &state,
            &shutdown,
            |stream, peer, st, snap| {
                pbx::esl::session::serve(stream, peer, st, snap.service.esl.clone())
            },
        )
        .await?;
        running_esl = Some(a);
        tasks.push(t);
    }
    if let Some(addr) = raw.listen.http.as_deref() {
        let l = bind("HTTP", addr).await?;
        running_http = l.local_addr().ok();
        let router = http::router(http::Api {
            state: state.clone(),
            reloader: reloader.clone(),
            listen: Some(addr.to_string()),
            tester_pool: Arc::new(http::admin_pool::AdminPool::new(
                http::admin_pool::default_slots(),
            )),
        });
        tasks.push(tokio::spawn(http::listener::serve(
            l,
            router,
            state.clone(),
            shutdown.stop.clone(),
        )));
    }
    tasks.extend(crate::source::spawn(
        &cfg,
        reloader.clone(),
        shutdown.stop.clone(),
    ));
    if let Some(f) = fleet {
        tasks.extend(crate::fleet::spawn(
            f,
            reloader.clone(),
            shutdown.stop.clone(),
        ));
    }
    match reloader.watch() {
        Ok(t) => tasks.push(t),
        Err(e) => tracing::warn!("file watching unavailable ({e}); reload with SIGHUP or the API"),
    }
    Ok(Running {
        agi: running_agi,
        esl: running_esl,
        http: running_http,
        state,
        reloader,
        shutdown,
        tasks,
    })
}

impl Running {
    /// Stops accepting, lets calls finish within the grace period (as the
    /// installed `server.grace_period` says now), closes the rest.
    pub async fn shutdown(self) {
        let grace = self.state.snapshot().service.server.grace_period;
        self.shutdown.run(grace).await;
        for t in self.tasks {
            t.abort();
        }
        if let Some(log) = &self.state.log {
            let _ = log.flush().await;
        }
    }
}

/// Shares the velocity counters in Redis when `velocity_limits.redis` is set
/// (a bad URL or a missing password variable stops the start, as
/// `log.postgres` does; a Redis that does not answer yet does not: the
/// instance counts in memory until it does).
fn start_shared_counters(
    cfg: &LoadedConfig,
    velocity: &crate::velocity::Tracker,
    metrics: &Metrics,
) -> Result<(), StartError> {
    velocity.attach_metrics(crate::velocity::CountMetrics {
        redis: metrics.velocity_counts_total.with_label_values(&["redis"]),
        local: metrics.velocity_counts_total.with_label_values(&["local"]),
    });
    let limits = &cfg.raw.velocity_limits;
    let (Some(url), Some(target)) = (&limits.redis, limits.redis_target()) else {
        return Ok(());
    };
    let target = target.map_err(|m| {
        StartError::Config(config::Problem::at(&cfg.file, &url.referenced, m).into())
    })?;
    let redis_metrics = crate::velocity::RedisMetrics {
        up: metrics
            .velocity_redis_up
            .with_label_values(&[target.shown()]),
        errors: metrics.velocity_redis_errors_total.clone(),
    };
    tracing::info!(
        "velocity counters: shared in Redis {} (each call within {:?})",
        target.shown(),
        limits.redis_timeout
    );
    velocity.attach_shared(crate::velocity::Shared::start(
        target,
        limits.redis_timeout,
        redis_metrics,
    ));
    Ok(())
}

/// Opens the decision log named by `log.path` (relative to the config file).
async fn start_log(
    cfg: &LoadedConfig,
    metrics: &Arc<Metrics>,
) -> Result<Option<crate::calllog::CallLogHandle>, StartError> {
    let log = &cfg.raw.log;
    if let Some(target) = log.postgres_target() {
        let target = target.map_err(|err| StartError::Log {
            path: "log.postgres".into(),
            err,
        })?;
        let (handle, _writer) = crate::calllog::CallLog::start_postgres(
            target,
            log.queue,
            metrics.log_dropped_total.clone(),
            log.retention_days,
            cfg.raw.server.retention_interval,
        )
        .await
        .map_err(|e| StartError::Log {
            path: "log.postgres".into(),
            err: e.to_string(),
        })?;
        return Ok(Some(handle));
    }
    let path = cfg.resolve(&log.path);
    let (handle, _writer) = crate::calllog::CallLog::start(
        &path,
        log.queue,
        metrics.log_dropped_total.clone(),
        log.retention_days,
        cfg.raw.server.retention_interval,
    )
    .map_err(|e| StartError::Log {
        path: path.display().to_string(),
        err: e.to_string(),
    })?;
    Ok(Some(handle))
}

/// The feature codes' memory in the SQLite file at `log.path`; in memory
/// only when the file cannot be opened (said once).
fn open_features(log_path: &std::path::Path) -> crate::store::features::Features {
    use crate::store::features::Features;
    match Features::open(log_path, chrono::Utc::now().timestamp()) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(
                "feature codes: {e}; the last callers and dialled numbers are kept in memory only"
            );
            Features::in_memory()
        }
    }
}
