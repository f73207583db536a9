//! The README's walkthrough, run as written (issue 27, "a README that runs").
//!
//! Every `sh` block of "From install to a blocked call" and "Live rule
//! management" is executed, command by command, in one `bash` (so `cd`,
//! `export`, `callguard serve &` and `kill %1` behave as in a terminal),
//! with `HOME` in a temporary directory and the already built `callguard`
//! first on `PATH` (never `cargo run` inside `cargo test`). The output a
//! block shows under a command (`# ` lines) is compared with what the
//! command printed; every other command must succeed. The few commands that
//! cannot run here are printed with the reason they are skipped.
//!
//! Placeholders, printed too: the ports of the shipped config (4573, 8084,
//! 9464) become free ones, unique ids the README shows become the ones the
//! calls really got, and the starter config's office hours are widened to
//! the whole week so the examples do not depend on the time the test runs
//! (after hours the support line is VIP-only: every other caller goes to
//! voicemail, as the README says).

#[path = "support/readme.rs"]
mod readme;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use readme::Step;

/// Commands that cannot run in a test, and why.
const SKIPS: &[(&str, &str)] = &[
    (
        r"^cargo ",
        "builds from source; the harness runs the binary `cargo test` already built",
    ),
    (
        r"/etc/(asterisk|freeswitch)|^asterisk |^fs_cli ",
        "configures a PBX host (integration/run.sh does it on the real Asterisk and FreeSWITCH)",
    ),
    (r"--db /var/lib/", "reads a log file on a production host"),
    (
        r"^callguard store ",
        "needs log.postgres (tests/fleet_postgres.rs runs `store import` / `store export`)",
    ),
];

/// Commands the README shows failing, with their exit status.
const FAILS: &[(&str, i32)] = &[(r"^callguard check --config broken\.yaml", 2)];

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Shell {
    child: Child,
    stdin: ChildStdin,
    done: mpsc::Receiver<String>,
}

impl Shell {
    fn start(home: &Path, bin: &Path) -> Shell {
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut child = Command::new("bash")
            .arg("--norc")
            .current_dir(home)
            .env_clear()
            .env("HOME", home)
            .env("PATH", path)
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("bash");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Shell { child, stdin, done }
    }

    /// Runs one command in the shell; its output goes to `out` (stdout and
    /// stderr, in order). Answers the exit status, or None after a minute.
    fn run(&mut self, n: usize, command: &str, out: &Path) -> Option<i32> {
        let script = format!(
            "{{ {command}\n}} >{out} 2>&1 </dev/null; echo \"__done {n} $?\"\n",
            out = out.display()
        );
        self.stdin.write_all(script.as_bytes()).ok()?;
        self.stdin.flush().ok()?;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            let line = self.done.recv_timeout(left).ok()?;
            if let Some(rest) = line.strip_prefix(&format!("__done {n} ")) {
                return rest.trim().parse().ok();
            }
        }
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self
            .stdin
            .write_all(b"kill $(jobs -p) 2>/dev/null; wait; exit 0\n");
        let _ = self.stdin.flush();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
    }
}

/// The starter config `callguard init` wrote, with free ports and office
/// hours all week (see the module comment).
fn fix_config(config: &Path, ports: &HashMap<&str, u16>) {
    let text = std::fs::read_to_string(config).expect("init wrote the config");
    let mut text = text
        .replace("127.0.0.1:4573", &format!("127.0.0.1:{}", ports["4573"]))
        .replace("127.0.0.1:8084", &format!("127.0.0.1:{}", ports["8084"]))
        .replace("127.0.0.1:9464", &format!("127.0.0.1:{}", ports["9464"]));
    let week = r#"- { days: mon-sun, from: "00:00", to: "24:00" }"#;
    text = text.replace(r#"- { days: mon-fri, from: "08:00", to: "18:00" }"#, week);
    text = text.replace(r#"      - { days: sat, from: "09:00", to: "13:00" }"#, "");
    text = text.replace(
        r#"closed_dates: ["2026-12-25", "2027-01-01"]"#,
        "closed_dates: []",
    );
    assert!(
        text.contains(week),
        "the starter config's office hours changed: update fix_config"
    );
    std::fs::write(config, text).expect("write config");
}

fn substitute(
    command: &str,
    ports: &HashMap<&str, u16>,
    ids: &HashMap<String, String>,
) -> Result<String, String> {
    let mut c = command.to_string();
    for (from, to) in ports {
        c = c.replace(&format!(":{from}"), &format!(":{to}"));
    }
    for m in readme::unique_id().find_iter(command) {
        let real = ids
            .get(m.as_str())
            .ok_or_else(|| format!("unique id {} is not one an earlier step showed", m.as_str()))?;
        c = c.replace(m.as_str(), real);
    }
    Ok(c)
}

/// Waits until a `serve` started in the background prints its start line.
fn wait_listening(out: &Path) -> bool {
    for _ in 0..600 {
        let text = std::fs::read_to_string(out).unwrap_or_default();
        if text.contains("callguard listening") {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn readme_walkthrough_runs_as_shown() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let (steps, others) = readme::steps(&text);
    assert!(
        steps.len() > 30,
        "the walkthrough has {} commands: parsing broke",
        steps.len()
    );

    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    let bin = tmp.path().join("bin");
    let outs = tmp.path().join("out");
    for d in [&home, &bin, &outs] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_callguard"), bin.join("callguard"))
        .expect("symlink");
    let ports: HashMap<&str, u16> = [
        ("4573", free_port()),
        ("8084", free_port()),
        ("9464", free_port()),
    ]
    .into();
    println!("placeholders: ports {ports:?}; HOME={}", home.display());

    let skips: Vec<(regex::Regex, &str)> = SKIPS
        .iter()
        .map(|(p, why)| (regex::Regex::new(p).expect("skip regex"), *why))
        .collect();
    let fails: Vec<(regex::Regex, i32)> = FAILS
        .iter()
        .map(|(p, rc)| (regex::Regex::new(p).expect("fail regex"), *rc))
        .collect();
    let mut shell = Shell::start(&home, &bin);
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut problems: Vec<String> = Vec::new();
    let (mut ran, mut skipped) = (0, 0);
    for (n, step) in steps.iter().enumerate() {
        if let Some((_, why)) = skips.iter().find(|(re, _)| re.is_match(&step.command)) {
            println!("SKIPPED README.md:{} `{}`: {why}", step.line, step.command);
            skipped += 1;
            continue;
        }
        let command = match substitute(&step.command, &ports, &ids) {
            Ok(c) => c,
            Err(e) => {
                problems.push(format!("README.md:{} `{}`: {e}", step.line, step.command));
                continue;
            }
        };
        if command != step.command {
            println!("README.md:{} runs as `{command}`", step.line);
        }
        let out = outs.join(format!("{n}.txt"));
        ran += 1;
        let Some(rc) = shell.run(n, &command, &out) else {
            problems.push(format!(
                "README.md:{} `{}`: no answer within a minute",
                step.line, step.command
            ));
            break;
        };
        let printed = std::fs::read_to_string(&out).unwrap_or_default();
        let want = fails
            .iter()
            .find(|(re, _)| re.is_match(&step.command))
            .map_or(0, |(_, rc)| *rc);
        if rc != want {
            problems.push(format!(
                "README.md:{} `{}` exited {rc} (the README expects {want}):\n{printed}",
                step.line, step.command
            ));
        }
        if step.command.contains("init ") && step.command.starts_with("callguard init") {
            fix_config(&home.join("callguard-try/config/callguard.yaml"), &ports);
        }
        if step
            .command
            .trim_end_matches(|c: char| c != '&')
            .ends_with('&')
            && step.command.contains("callguard serve")
            && !wait_listening(&out)
        {
            problems.push(format!(
                "README.md:{} `serve` did not start:\n{printed}",
                step.line
            ));
            break;
        }
        check_shown(step, &printed, &ports, &mut ids, &mut problems);
    }
    drop(shell);
    println!(
        "README walkthrough: {ran} command(s) run, {skipped} skipped; {others} sh block(s) outside the walkthrough not run"
    );
    assert!(
        problems.is_empty(),
        "the README does not run as shown:\n\n{}",
        problems.join("\n\n")
    );
}

/// Each shown line must match a line of what the command printed; unique
/// ids in it are recorded (README id → the real one).
fn check_shown(
    step: &Step,
    printed: &str,
    ports: &HashMap<&str, u16>,
    ids: &mut HashMap<String, String>,
    problems: &mut Vec<String>,
) {
    let idre = readme::unique_id();
    for shown in &step.shown {
        let mut local = shown.clone();
        for (from, to) in ports {
            local = local.replace(&format!(":{from}"), &format!(":{to}"));
        }
        let pat = readme::shown_pattern(&local);
        match printed.lines().find_map(|l| pat.captures(l)) {
            Some(caps) => {
                for (i, m) in idre.find_iter(&local).enumerate() {
                    if let Some(real) = caps.get(i + 1) {
                        ids.insert(m.as_str().to_string(), real.as_str().to_string());
                    }
                }
            }
            None => problems.push(format!(
                "README.md:{} `{}` shows\n    {shown}\nbut printed:\n{}",
                step.line,
                step.command,
                printed
                    .lines()
                    .map(|l| format!("    {l}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            )),
        }
    }
}
