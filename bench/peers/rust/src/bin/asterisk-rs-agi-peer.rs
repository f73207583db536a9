//! FastAGI peer on asterisk-rs-agi: per call the environment (the library's parser), the
//! lookup, `EXEC MSet` of the five variables, and for a blocked caller `EXEC Busy 5` +
//! `EXEC Hangup 17`, each waiting for its reply; the library closes when the handler returns.

use std::sync::Arc;

use asterisk_rs_agi::{AgiChannel, AgiHandler, AgiRequest, AgiServer};
use callguard_bench_peers::{Table, args};

struct Screen(Arc<Table>);

impl AgiHandler for Screen {
    async fn handle(
        &self,
        req: AgiRequest,
        mut ch: AgiChannel,
    ) -> asterisk_rs_agi::error::Result<()> {
        let (blocked, vars) = self.0.decide(req.caller_id().unwrap_or(""));
        let data: Vec<String> = vars
            .iter()
            .map(|(n, v)| format!("CALLGUARD_{n}={v}"))
            .collect();
        ch.exec("MSet", &data.join(",")).await?;
        if blocked {
            ch.exec("Busy", "5").await?;
            ch.exec("Hangup", "17").await?;
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (addr, csv) = args();
    let table = Arc::new(Table::load(&csv)?);
    let (server, _shutdown) = AgiServer::builder()
        .bind(addr.clone())
        .handler(Screen(table))
        .max_connections(100_000)
        .build()
        .await?;
    eprintln!("asterisk-rs-agi listening {addr}");
    server.run().await?;
    Ok(())
}
