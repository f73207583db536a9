//! Starts the real service in-process on loopback ports chosen by the kernel.

#![allow(dead_code)]

use std::path::PathBuf;

use callguard::app::{self, Running};

/// A config that exercises every action kind on both PBXs.
pub const SCREEN_YAML: &str = r#"
normalize: { default_region: US }
protected: ["911"]
default_trunk: support
actions:
  reject:  { kind: reject, tone: busy }
  congest: { kind: reject, tone: congestion, seconds: 3 }
  hang:    { kind: reject, tone: hangup, cause: 21 }
  msg:     { kind: play, sound: custom/blocked, freeswitch: { sound: "ivr/ivr-call_rejected.wav" } }
  early:   { kind: play, sound: custom/blocked, answer: false }
  notice:  { kind: play, sound: custom/notice, then: continue }
  vm:      { kind: voicemail, mailbox: "100@default", freeswitch: { mailbox: "default example.com 100" } }
  ivr:     { kind: transfer, target: "ivr-main,s,1" }
  vip:     { kind: whisper_bridge, tone: beep, dial: "PJSIP/vip-team", timeout: 30, on_no_answer: vm,
             freeswitch: { dial: "user/1000", tone: "tone_stream://%(200,0,800)" } }
  advise:  { kind: reject, mode: advise }
trunks:
  support:
    dids: ["+18005550100"]
    whitelist:
      - { name: VIP, pattern: "+15551234567", action: vip }
    blacklist:
      - { name: Busy, pattern: "+15550000001", action: reject }
      - { name: Congest, pattern: "+15550000002", action: congest }
      - { name: Hang, pattern: "+15550000003", action: hang }
      - { name: Msg, pattern: "+15550000004", action: msg }
      - { name: Early, pattern: "+15550000005", action: early }
      - { name: Notice, pattern: "+15550000006", action: notice }
      - { name: Voicemail, pattern: "+15550000007", action: vm }
      - { name: IVR, pattern: "+15550000008", action: ivr }
      - { name: Advise, pattern: "+15550000009", action: advise }
      - { name: UK, pattern: "+44*", action: reject }
      - { name: Hidden, anonymous: true, action: msg }
  vip-line:
    dids: ["+18005550199"]
    whitelist_mode: exclusive
    blocked_action: reject
    whitelist:
      - { name: CFO, pattern: "+15551111111" }
"#;

pub struct TestServer {
    pub running: Option<Running>,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl TestServer {
    pub fn agi(&self) -> std::net::SocketAddr {
        self.running.as_ref().and_then(|r| r.agi).expect("agi listener")
    }
    pub fn esl(&self) -> std::net::SocketAddr {
        self.running.as_ref().and_then(|r| r.esl).expect("esl listener")
    }
    pub fn http(&self) -> std::net::SocketAddr {
        self.running.as_ref().and_then(|r| r.http).expect("http listener")
    }
    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("running")
    }
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

/// Writes `yaml` (plus loopback listeners on port 0 and a log in the temp
/// dir, unless it sets its own) and starts the service.
pub async fn start(yaml: &str) -> TestServer {
    start_with(yaml, &[]).await
}

pub async fn start_with(yaml: &str, files: &[(&str, &str)]) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    let mut text = yaml.to_string();
    if !text.contains("\nlisten:") {
        text.push_str("\nlisten: { agi: 127.0.0.1:0, esl: 127.0.0.1:0, http: 127.0.0.1:0 }\n");
    }
    if !text.contains("\nlog:") {
        text.push_str("\nlog: { path: calls.db }\n");
    }
    let config = dir.path().join("callguard.yaml");
    std::fs::write(&config, text).unwrap();
    let running = app::start(&config).await.unwrap_or_else(|e| panic!("start: {e}"));
    TestServer { running: Some(running), dir, config }
}
