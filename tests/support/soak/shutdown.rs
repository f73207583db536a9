//! SIGTERM under load: the calls in progress finish, new ones are refused.

use super::*;

/// What SIGTERM under load did.
#[derive(Debug, Default)]
pub struct ShutdownReport {
    /// Calls in progress when SIGTERM was sent that completed with a verdict.
    pub in_progress_completed: u64,
    /// Calls in progress when SIGTERM was sent (sessions open on the server).
    pub in_progress: u64,
    /// Calls started after SIGTERM, refused before any byte (the PBX fails over).
    pub refused_after: u64,
    /// Calls started after SIGTERM that were still served (accepted before
    /// the listener closed).
    pub served_after: u64,
    /// Calls cut in the middle, or any other failure.
    pub broken: Vec<String>,
    /// A fresh connect after the signal was refused.
    pub connect_refused: bool,
}

/// Long calls (each reply or event delayed `pace`) through both protocols,
/// `lanes` at a time per protocol; once every lane's call is open on the
/// server, `signal()` is called (it sends SIGTERM). Checks that the calls in
/// progress finish with a verdict and that new connections are refused.
pub async fn sigterm_under_load(
    agi: SocketAddr,
    esl: SocketAddr,
    http: SocketAddr,
    lanes: usize,
    pace: Duration,
    signal: impl FnOnce(),
) -> ShutdownReport {
    let signalled = Arc::new(AtomicBool::new(false));
    let out = Arc::new(Mutex::new(ShutdownReport::default()));
    let mut set = tokio::task::JoinSet::new();
    for l in 0..lanes {
        for proto in [Proto::Agi, Proto::Esl] {
            let (signalled, out) = (signalled.clone(), out.clone());
            set.spawn(async move {
                for n in 0u64..10_000 {
                    let before = signalled.load(Ordering::SeqCst);
                    let caller = if n % 2 == 0 {
                        "+15550000001".to_string()
                    } else {
                        format!("+1555400{:04}", (l as u64 * 100 + n) % 10_000)
                    };
                    let (decided, untouched, what) = match proto {
                        Proto::Agi => {
                            let r = AsteriskSim::new()
                                .script("callguard?trunk=support")
                                .callerid(&caller)
                                .reply_delay(pace)
                                .timeout(Duration::from_secs(60))
                                .run(agi)
                                .await;
                            let decided = r.error.is_none()
                                && !r.timed_out
                                && r.saw_eof
                                && r.variables.contains_key("CALLGUARD_VERDICT")
                                && !r.variables.contains_key("CALLGUARD_ERROR");
                            (
                                decided,
                                r.commands.is_empty() && !r.timed_out,
                                format!("{r:?}"),
                            )
                        }
                        Proto::Esl => {
                            let r = SimConfig {
                                caller_number: caller.clone(),
                                event_delay: pace,
                                overall_timeout: Duration::from_secs(60),
                                ..SimConfig::default()
                            }
                            .run(esl)
                            .await;
                            let decided = r.error.is_none()
                                && !r.timed_out
                                && r.variable("callguard_verdict").is_some()
                                && r.variable("callguard_error").is_none();
                            (
                                decided,
                                !r.connect_received && !r.timed_out,
                                format!("{r:?}"),
                            )
                        }
                    };
                    let mut o = out.lock().unwrap();
                    match (before, decided, untouched) {
                        (false, true, _) => {
                            if signalled.load(Ordering::SeqCst) {
                                o.in_progress_completed += 1;
                            }
                        }
                        (true, true, _) => o.served_after += 1,
                        (true, false, true) => {
                            o.refused_after += 1;
                            return;
                        }
                        (false, false, true) if signalled.load(Ordering::SeqCst) => {
                            // Connected as the listener closed: refused, not cut.
                            o.refused_after += 1;
                            return;
                        }
                        _ => o.broken.push(format!("{proto:?} {caller}: {what}")),
                    }
                    if o.broken.len() > 10 {
                        return;
                    }
                }
            });
        }
    }
    // Every lane has a call open on the server: the calls in progress.
    let deadline = Instant::now() + Duration::from_secs(60);
    let open = loop {
        let a = scrape(http, "callguard_sessions_active", &["pbx=\"asterisk\""]).await;
        let e = scrape(http, "callguard_sessions_active", &["pbx=\"freeswitch\""]).await;
        if a >= lanes as f64 && e >= lanes as f64 {
            break (a + e) as u64;
        }
        if Instant::now() > deadline {
            out.lock()
                .unwrap()
                .broken
                .push(format!("the calls never all started ({a} + {e} open)"));
            break 0;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    signalled.store(true, Ordering::SeqCst);
    signal();
    // A fresh connect is refused once the listeners are closed (bounded wait).
    let refused = async |addr: SocketAddr| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    };
    let connect_refused = refused(agi).await && refused(esl).await;
    while set.join_next().await.is_some() {}
    let mut o = std::mem::take(&mut *out.lock().unwrap());
    o.in_progress = open;
    o.connect_refused = connect_refused;
    o
}
