//! Outbound-ESL peer on freeswitch-esl-tokio: per call `connect`, `myevents`, `linger 5`,
//! one `multiset` of the five variables (event-lock) waiting for its
//! CHANNEL_EXECUTE_COMPLETE, and for a blocked caller `respond 486 Busy Here`; then `exit`.

use std::sync::Arc;
use std::time::Duration;

use callguard_bench_peers::{Table, args};
use freeswitch_esl_tokio::{EslClient, EslError, EslEventStream, EventFormat, ExecuteOptions};
use tokio::net::TcpListener;

/// Waits for the CHANNEL_EXECUTE_COMPLETE of `app` (the library sends no Event-UUID).
async fn completion(events: &mut EslEventStream, app: &str) -> bool {
    while let Some(r) = events.recv().await {
        let Ok(e) = r else { continue };
        if e.header_str("Event-Name") == Some("CHANNEL_EXECUTE_COMPLETE")
            && e.header_str("Application") == Some(app)
        {
            return true;
        }
    }
    false
}

async fn screen(
    table: &Table,
    client: &EslClient,
    events: &mut EslEventStream,
) -> Result<(), EslError> {
    let data = client.connect_session().await?.into_result()?;
    let caller = data
        .header("Caller-Caller-ID-Number")
        .unwrap_or("")
        .to_string();
    client.myevents(EventFormat::Plain).await?;
    client.linger(Some(Duration::from_secs(5))).await?;
    let (blocked, vars) = table.decide(&caller);
    let arg: Vec<String> = vars
        .iter()
        .map(|(n, v)| format!("callguard_{}={v}", n.to_ascii_lowercase()))
        .collect();
    let lock = ExecuteOptions::new().with_event_lock();
    client
        .execute_with_options(
            "multiset",
            Some(&format!("^^|{}", arg.join("|"))),
            None,
            lock,
        )
        .await?
        .check()?;
    completion(events, "multiset").await;
    if blocked {
        let lock = ExecuteOptions::new().with_event_lock();
        client
            .execute_with_options("respond", Some("486 Busy Here"), None, lock)
            .await?
            .check()?;
        completion(events, "respond").await;
    }
    let _ = client.exit().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (addr, csv) = args();
    let table = Arc::new(Table::load(&csv)?);
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("freeswitch-esl-tokio listening {addr}");
    loop {
        match EslClient::accept_outbound(&listener).await {
            Ok((client, mut events)) => {
                let table = table.clone();
                tokio::spawn(async move {
                    let _ = screen(&table, &client, &mut events).await;
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}
