//! A fleet for tests: one throwaway PostgreSQL cluster (`support/postgres.rs`)
//! and N real `callguard serve` processes on the same configuration with
//! `log.postgres` (each in its own directory: its own list files, `log.path`
//! and list cache), ports 0. Helpers read each instance's status, wait for
//! conditions with a generous deadline (never a timed assertion), call the
//! API with the token, and place calls through the Asterisk simulator.
//! Dropping the fleet kills the processes, then stops the cluster.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use callguard_sim::asterisk::AsteriskSim;
use reqwest::StatusCode;
use serde_json::Value;

use crate::postgres::{self, PgCluster};
use crate::server::{self, ServeProcess};

pub const PASSWORD_ENV: &str = "CALLGUARD_TEST_FLEET_PG_PASSWORD";
pub const TOKEN_ENV: &str = "CALLGUARD_TEST_FLEET_TOKEN";
pub const TOKEN: &str = "s3cret-fleet-token";

/// How long a condition may take on a loaded two-core machine.
pub const DEADLINE: Duration = Duration::from_secs(60);

pub struct Fleet {
    pub instances: Vec<ServeProcess>,
    pub http: reqwest::Client,
    /// Last: dropped after the instances.
    pub pg: PgCluster,
}

fn set_env() {
    // SAFETY: set once per process, before any child or service starts.
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| unsafe {
        std::env::set_var(PASSWORD_ENV, postgres::PASSWORD);
        std::env::set_var(TOKEN_ENV, TOKEN);
    });
}

impl Fleet {
    /// `None` (after a "skipping" line) without PostgreSQL outside CI.
    pub fn start(yaml: &str, files: &[(&str, &str)], n: usize) -> Option<Fleet> {
        let pg = PgCluster::start()?;
        set_env();
        server::install_tls_provider();
        let yaml = format!(
            "{yaml}\nlog: {{ path: calls.db, postgres: \"{}\", postgres_password_env: {PASSWORD_ENV} }}\n",
            pg.url()
        );
        let instances = (0..n).map(|_| server::spawn_binary(&yaml, files)).collect();
        Some(Fleet {
            instances,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            pg,
        })
    }

    pub fn base(&self, i: usize) -> String {
        format!("http://{}", self.instances[i].http.unwrap())
    }

    /// Runs the built binary with `args` (e.g. `store import --config …`).
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_callguard"))
            .args(args)
            .output()
            .expect("run callguard")
    }

    pub async fn get(&self, i: usize, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.base(i)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        r.json().await.unwrap()
    }

    pub async fn status(&self, i: usize) -> Value {
        self.get(i, "/api/v1/status").await
    }

    /// The store rules version instance `i` runs.
    pub async fn applied(&self, i: usize) -> u64 {
        self.status(i).await["store"]["applied_version"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Waits until every instance runs store rules version `v` or newer.
    pub async fn wait_applied(&self, v: u64) {
        for i in 0..self.instances.len() {
            wait(
                &format!("instance {i} applies rules version {v}"),
                || async move { self.applied(i).await >= v },
            )
            .await;
        }
    }

    /// A change with the token: `(status, body)`.
    pub async fn send(
        &self,
        i: usize,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base(i)))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// One call from `caller` at instance `i`: its verdict and list.
    pub async fn call(&self, i: usize, caller: &str, uid: &str) -> (String, String) {
        let r = AsteriskSim::new()
            .callerid(caller)
            .uniqueid(uid)
            .run(self.instances[i].agi.unwrap())
            .await;
        assert!(r.error.is_none() && !r.timed_out, "{uid}: {r:?}");
        (
            r.variables["CALLGUARD_VERDICT"].clone(),
            r.variables
                .get("CALLGUARD_LIST")
                .cloned()
                .unwrap_or_default(),
        )
    }
}

/// Waits for `cond` (checked every 100 ms) until [`DEADLINE`]; panics naming `what`.
pub async fn wait<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + DEADLINE;
    while !cond().await {
        assert!(Instant::now() < end, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
