//! One call played against a FastAGI server: the environment, then each command answered
//! as res_agi.c does.

use std::net::SocketAddr;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

pub(super) struct Session<'a> {
    pub(super) sim: &'a AsteriskSim,
    pub(super) start: Instant,
    pub(super) result: SimResult,
    pub(super) hangup_fired: bool,
    pub(super) stalled: bool,
    /// The digit the last `SAY DIGITS` said.
    pub(super) said: Option<u8>,
}

impl Session<'_> {
    pub(super) async fn play(&mut self, addr: SocketAddr) -> std::io::Result<()> {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let env_done = self.send_env(&mut stream).await?;
        let mut pending = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                self.result.saw_eof = true;
                if env_done {
                    // Like res_agi: one HANGUP when the server closes; the peer may be gone.
                    self.result.sent.extend_from_slice(b"HANGUP\n");
                    let _ = stream.write_all(b"HANGUP\n").await;
                }
                let _ = stream.shutdown().await;
                return Ok(());
            }
            pending.extend_from_slice(&chunk[..n]);
            while let Some(pos) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=pos).collect();
                let line = String::from_utf8_lossy(&line[..pos]).into_owned();
                self.result.commands.push(line.clone());
                self.result.command_times.push(self.start.elapsed());
                if env_done {
                    self.on_command(&mut stream, &line).await?;
                }
            }
            if pending.len() > MAX_COMMAND_LINE {
                return Err(std::io::Error::other("command line over 64 KiB"));
            }
        }
    }

    /// Sends the environment (or the configured fault); false when the write side is shut.
    async fn send_env(&mut self, stream: &mut TcpStream) -> std::io::Result<bool> {
        let env = self.sim.env_bytes();
        match &self.sim.fault {
            Some(Fault::Garbage(bytes)) => {
                self.write(stream, bytes).await?;
                return Ok(true);
            }
            Some(Fault::EofMidEnvironment) => {
                self.write(stream, &env[..env.len() / 2]).await?;
                stream.shutdown().await?;
                return Ok(false);
            }
            Some(Fault::OverlongLine(len)) => {
                let line = format!("agi_network: {}\n", "x".repeat(*len));
                self.write(stream, line.as_bytes()).await?;
                self.write(
                    stream,
                    &env[env.iter().position(|&b| b == b'\n').map_or(0, |p| p + 1)..],
                )
                .await?;
                return Ok(true);
            }
            None => {}
        }
        match self.sim.delivery {
            EnvDelivery::Whole => self.write(stream, &env).await?,
            EnvDelivery::Chunks(n) => {
                for part in env.chunks(n.max(1)) {
                    self.write(stream, part).await?;
                }
            }
            EnvDelivery::ByteByByte => {
                for part in env.chunks(1) {
                    self.write(stream, part).await?;
                }
            }
            EnvDelivery::Trickle(gap) => {
                for part in env.chunks(1) {
                    self.write(stream, part).await?;
                    tokio::time::sleep(gap).await;
                }
            }
        }
        Ok(true)
    }

    async fn write(&mut self, stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
        self.result.sent.extend_from_slice(bytes);
        stream.write_all(bytes).await?;
        stream.flush().await
    }

    async fn on_command(&mut self, stream: &mut TcpStream, line: &str) -> std::io::Result<()> {
        if self.stalled {
            return Ok(());
        }
        if self.sim.stall.as_ref().is_some_and(|m| m(line)) {
            self.stalled = true;
            return Ok(());
        }
        if !self.sim.reply_delay.is_zero() {
            tokio::time::sleep(self.sim.reply_delay).await;
        }
        let sim = self.sim;
        if let Some((_, bytes)) = sim.overrides.iter().find(|(m, _)| m(line)) {
            return self.write(stream, bytes).await;
        }
        let hangup_now = !self.hangup_fired
            && !self.result.hung_up
            && self.sim.hangup.as_ref().is_some_and(|(m, _)| m(line));
        if hangup_now {
            self.hangup_fired = true;
            let style = self.sim.hangup.as_ref().map(|(_, s)| *s);
            match style {
                Some(HangupStyle::AfterReply) => {
                    let reply = self.interrupted_reply(line);
                    self.result.hung_up = true;
                    self.write(stream, reply.as_bytes()).await?;
                    self.write(stream, b"HANGUP\n").await?;
                }
                Some(HangupStyle::BeforeReply) => {
                    self.result.hung_up = true;
                    let reply = self.answer(line);
                    self.write(stream, b"HANGUP\n").await?;
                    self.write(stream, reply.as_bytes()).await?;
                }
                Some(HangupStyle::Glued) | None => {
                    self.result.hung_up = true;
                    let reply = format!("HANGUP\n{}", self.answer(line));
                    self.write(stream, reply.as_bytes()).await?;
                }
            }
            return Ok(());
        }
        let was_dead = self.result.hung_up;
        let reply = self.answer(line);
        self.write(stream, reply.as_bytes()).await?;
        if !was_dead && self.result.hung_up {
            // The server's own HANGUP command: the notice follows the reply.
            self.write(stream, b"HANGUP\n").await?;
        }
        Ok(())
    }

    /// The reply of a command that was running when the caller hung up: the commands that
    /// wait on the channel return -1 (as WAIT FOR DIGIT does in the captures); instant ones
    /// answer as usual.
    fn interrupted_reply(&mut self, line: &str) -> String {
        let argv = upper_words(&parse_args(line));
        match argv
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["WAIT", "FOR", "DIGIT", ..] | ["EXEC", ..] => "200 result=-1\n".into(),
            ["STREAM", "FILE", ..] => "200 result=-1 endpos=0\n".into(),
            _ => self.answer(line),
        }
    }

    /// The reply Asterisk 22 writes to `line` in the current (live or dead) state.
    fn answer(&mut self, line: &str) -> String {
        let argv = parse_args(line);
        let upper = upper_words(&argv);
        let words: Vec<&str> = upper.iter().map(String::as_str).collect();
        let dead = self.result.hung_up;
        let reply = match words.as_slice() {
            ["SET", "VARIABLE", ..] if argv.len() != 4 => {
                usage("SET VARIABLE <variablename> <value>")
            }
            ["SET", "VARIABLE", ..] => {
                self.result
                    .variables
                    .insert(argv[2].clone(), argv[3].clone());
                "200 result=1".into()
            }
            ["GET", "VARIABLE", ..] if argv.len() != 3 => usage("GET VARIABLE <variablename>"),
            ["GET", "VARIABLE", ..] => match self.result.variables.get(&argv[2]) {
                Some(v) => format!("200 result=1 ({v})"),
                None => "200 result=0".into(),
            },
            ["EXEC"] => usage("EXEC <application> <options>"),
            // MSet sets its pairs as Asterisk parses them (pbx_builtin_setvar_multiple).
            ["EXEC", "MSET", ..] => {
                let data = argv.get(2).map(String::as_str).unwrap_or("");
                for (name, value) in super::parse::mset_pairs(data) {
                    self.result.variables.insert(name, value);
                }
                "200 result=0".into()
            }
            ["EXEC", ..] => self
                .sim
                .exec_replies
                .get(&argv[1].to_ascii_lowercase())
                .cloned()
                .unwrap_or_else(|| "200 result=0".into()),
            ["NOOP", ..] => "200 result=0".into(),
            ["VERBOSE", ..] => "200 result=1".into(),
            _ if dead && is_live_only(&words) => DEAD_CHANNEL.into(),
            ["STREAM", "FILE", ..] if !(4..=5).contains(&argv.len()) => {
                usage("STREAM FILE <filename> <escape_digits> [sample offset]")
            }
            ["STREAM", "FILE", ..] => self.sim.stream_file_reply.clone(),
            ["WAIT", "FOR", "DIGIT", ..] if argv.len() != 4 => usage("WAIT FOR DIGIT <timeout>"),
            ["WAIT", "FOR", "DIGIT", ..] => match (self.sim.dtmf, self.said) {
                (Dtmf::Heard, Some(d)) => format!("200 result={}", d),
                (Dtmf::Wrong, Some(d)) => {
                    let other = if d == b'9' { b'1' } else { d + 1 };
                    format!("200 result={other}")
                }
                _ => "200 result=0".into(),
            },
            // res_agi.c handle_saydigits: the key pressed while saying, or 0.
            ["SAY", "DIGITS", ..] if argv.len() != 4 => {
                usage("SAY DIGITS <number> <escape_digits>")
            }
            ["SAY", "DIGITS", ..] => {
                self.said = argv[2].bytes().last();
                match (self.sim.dtmf, self.said) {
                    (Dtmf::HeardEarly, Some(d)) => format!("200 result={d}"),
                    _ => "200 result=0".into(),
                }
            }
            ["ANSWER"] => "200 result=0".into(),
            ["HANGUP"] => {
                self.result.hung_up = true;
                "200 result=1".into()
            }
            ["SET", "CONTEXT" | "EXTENSION" | "PRIORITY", _] => "200 result=0".into(),
            _ => INVALID_COMMAND.into(),
        };
        format!("{reply}\n")
    }
}

/// Commands res_agi.c refuses with 511 once the channel is dead.
fn is_live_only(words: &[&str]) -> bool {
    matches!(
        words,
        ["STREAM", "FILE", ..]
            | ["WAIT", "FOR", "DIGIT", ..]
            | ["ANSWER", ..]
            | ["HANGUP", ..]
            | ["SET", "CONTEXT" | "EXTENSION" | "PRIORITY", ..]
            | ["GET", "DATA", ..]
            | ["SAY", "DIGITS", ..]
    )
}

/// The multi-line 520 reply (without the final `\n`, added by the caller).
fn usage(text: &str) -> String {
    format!(
        "520-Invalid command syntax.  Proper usage follows:\n Usage: {text}\n520 End of proper usage."
    )
}

fn upper_words(argv: &[String]) -> Vec<String> {
    argv.iter().map(|w| w.to_ascii_uppercase()).collect()
}
