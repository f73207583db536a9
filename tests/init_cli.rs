//! `callguard init DIR` (issue 27): a starter directory the walkthrough runs in, so it never
//! edits the shipped example. The built binary writes it; `check` accepts the config,
//! rejects `broken.yaml` with located problems; `serve` runs on it (found by the default
//! `./config/callguard.yaml`) and `callguard call` is screened by it.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn callguard(args: &[&str], cwd: &Path) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_callguard"))
        .args(args)
        .current_dir(cwd)
        .env_remove("CALLGUARD_CONFIG")
        .output()
        .expect("run callguard");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Kills the spawned `serve` however the test ends.
struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn init_writes_a_directory_that_checks_serves_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("try");
    let dir_s = dir.to_str().unwrap();

    let out = callguard(&["init", dir_s], tmp.path());
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    for f in [
        "config/callguard.yaml",
        "config/lists/spam.csv",
        "config/lists/vip.csv",
        "broken.yaml",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    assert!(dir.join("data").is_dir());

    // In DIR, `check` finds ./config/callguard.yaml and its lists.
    let out = callguard(&["check"], &dir);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.starts_with("config/callguard.yaml: OK"),
        "{}",
        out.stdout
    );

    // broken.yaml: exit 2, one FILE:LINE:COL line per problem, the count on stdout.
    let out = callguard(&["check", "--config", "broken.yaml"], &dir);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    let located: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| {
            let mut p = l.splitn(4, ':');
            p.next() == Some("broken.yaml")
                && p.next()
                    .is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n > 0))
                && p.next()
                    .is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n > 0))
        })
        .collect();
    assert_eq!(located.len(), 3, "{}", out.stderr);
    assert!(out.stderr.contains("blacklsit"), "{}", out.stderr);
    assert!(out.stderr.contains("25:00"), "{}", out.stderr);
    assert!(out.stderr.contains("\"nope\""), "{}", out.stderr);
    assert!(
        out.stdout.contains("broken.yaml: 3 problem(s)"),
        "{}",
        out.stdout
    );

    // A second init refuses and writes nothing; --force overwrites.
    let config = dir.join("config/callguard.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}\n# edited\n")).unwrap();
    let out = callguard(&["init", dir_s], tmp.path());
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("callguard.yaml: exists"),
        "{}",
        out.stderr
    );
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .ends_with("# edited\n")
    );
    let out = callguard(&["init", dir_s, "--force"], tmp.path());
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);

    // serve on it (the listeners moved to port 0: tests bind no fixed port), found by the
    // default path, and a simulated call screened by it.
    let mut yaml = text.clone();
    for port in ["4573", "8084", "9464"] {
        let from = format!(": 127.0.0.1:{port}\n");
        assert_eq!(yaml.matches(&from).count(), 1, "listen {port}");
        yaml = yaml.replace(&from, ": 127.0.0.1:0\n");
    }
    std::fs::write(&config, yaml).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_callguard"))
        .arg("serve")
        .current_dir(&dir)
        .env_remove("CALLGUARD_CONFIG")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let stdout = child.stdout.take().unwrap();
    let serve = Serve(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    let agi = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("agi="))
        .unwrap_or_else(|| panic!("no agi listener in {line:?}"))
        .to_string();
    let out = callguard(&["call", "+442079999999", "--server", &agi], &dir);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("the PBX would: busy, then hang up (cause 17)"),
        "{}",
        out.stdout
    );
    assert!(dir.join("data/callguard.db").exists());
    drop(serve);
}
