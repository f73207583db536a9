//! Which configuration the binary uses: `--config`, else `$CALLGUARD_CONFIG`,
//! else `./config/callguard.yaml`, else `/etc/callguard/callguard.yaml`; and
//! what `serve` logs about it (plain text without colours on a pipe, or JSON).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const RULES: &str =
    "trunks:\n  support:\n    blacklist:\n      - { name: Spam, pattern: \"+15550000001\" }\n";
const QUIET: &str =
    "listen: { agi: 127.0.0.1:0, esl: 127.0.0.1:0, http: 127.0.0.1:0 }\nlog: { path: calls.db }\n";

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("callguard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(path: &Path, yaml: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, yaml).unwrap();
}

/// `callguard check` run in `cwd`, with `$CALLGUARD_CONFIG` set or removed.
fn check(cwd: &Path, env: Option<&Path>, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_callguard"));
    cmd.arg("check").args(args).current_dir(cwd);
    match env {
        Some(p) => cmd.env("CALLGUARD_CONFIG", p),
        None => cmd.env_remove("CALLGUARD_CONFIG"),
    };
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn flag_then_environment_then_the_local_config() {
    let dir = temp_dir("discovery");
    let local = dir.join("config/callguard.yaml");
    let from_env = dir.join("elsewhere/env.yaml");
    let flagged = dir.join("flag.yaml");
    write(&local, RULES);
    write(&from_env, RULES);
    write(&flagged, RULES);

    // Nothing named: ./config/callguard.yaml of the working directory.
    let (ok, out) = check(&dir, None, &[]);
    assert!(ok, "{out}");
    assert!(out.contains("config/callguard.yaml: OK"), "{out}");
    // $CALLGUARD_CONFIG beats the local file.
    let (ok, out) = check(&dir, Some(&from_env), &[]);
    assert!(ok && out.contains("env.yaml: OK"), "{out}");
    // --config beats both.
    let (ok, out) = check(&dir, Some(&from_env), &["--config", "flag.yaml"]);
    assert!(ok && out.contains("flag.yaml: OK"), "{out}");
    // A named file that does not exist is an error, not a fallback.
    let (ok, out) = check(&dir, Some(&dir.join("missing.yaml")), &[]);
    assert!(!ok && out.contains("missing.yaml"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn no_config_anywhere_names_the_local_path() {
    let dir = temp_dir("no-config");
    let (ok, out) = check(&dir, None, &[]);
    assert!(!ok);
    // On a machine without /etc/callguard the README's path is the one reported, with
    // every place tried, in order (issue 27), and how to get a config.
    if !Path::new("/etc/callguard/callguard.yaml").exists() {
        assert!(out.contains("config/callguard.yaml"), "{out}");
        let tried = [
            "  1. --config: not given",
            "  2. $CALLGUARD_CONFIG: not set",
            "  3. ./config/callguard.yaml: not found",
            "  4. /etc/callguard/callguard.yaml: not found",
        ];
        let at: Vec<usize> = tried
            .iter()
            .map(|t| out.find(t).unwrap_or_else(|| panic!("{t:?} in {out}")))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{out}");
        assert!(out.contains("callguard init DIR"), "{out}");
        // serve says the same and exits 2 without listening.
        let serve = Command::new(env!("CARGO_BIN_EXE_callguard"))
            .arg("serve")
            .current_dir(&dir)
            .env_remove("CALLGUARD_CONFIG")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&serve.stderr);
        assert_eq!(serve.status.code(), Some(2), "{err}");
        assert!(
            err.contains("  4. /etc/callguard/callguard.yaml: not found"),
            "{err}"
        );
    }
    // A missing file named by $CALLGUARD_CONFIG: the fallbacks were not tried.
    let (ok, out) = check(&dir, Some(&dir.join("gone.yaml")), &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("2. $CALLGUARD_CONFIG = "), "{out}");
    assert!(!out.contains("3. ./config"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Starts `serve` with the config from the environment, reads the first
/// stderr lines until the start-up line, and stops it.
fn serve_start_line(dir: &Path, args: &[&str]) -> String {
    let config = dir.join("env.yaml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_callguard"))
        .arg("serve")
        .args(args)
        .current_dir(dir)
        .env("CALLGUARD_CONFIG", &config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut stdout)
        .unwrap();
    assert!(stdout.starts_with("callguard listening"), "{stdout}");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut found = String::new();
    for _ in 0..50 {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if line.contains("callguard started") {
            found = line;
            break;
        }
    }
    sigterm(child.id());
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);
    child.wait().unwrap();
    found
}

fn sigterm(pid: u32) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(pid as i32, libc::SIGTERM);
    }
}

#[test]
fn serve_logs_which_file_without_colours_or_as_json() {
    let dir = temp_dir("serve-log");
    write(&dir.join("env.yaml"), &format!("{RULES}{QUIET}"));

    let text = serve_start_line(&dir, &[]);
    assert!(text.contains("env.yaml"), "{text}");
    assert!(text.contains("$CALLGUARD_CONFIG"), "{text}");
    assert!(!text.contains('\u{1b}'), "ANSI escapes on a pipe: {text:?}");

    let json = serve_start_line(&dir, &["--log-format", "json"]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("one JSON object per line");
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["message"], "callguard started");
    assert_eq!(v["from"], "$CALLGUARD_CONFIG");
    assert!(v["config"].as_str().unwrap().ends_with("env.yaml"), "{v}");
    assert!(v["timestamp"].as_str().unwrap().ends_with('Z'), "{v}");
    std::fs::remove_dir_all(&dir).unwrap();
}
