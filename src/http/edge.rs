//! `POST /api/v1/edge/decide`: the decision endpoint for SIP proxies
//! (Kamailio, OpenSIPS) in front of the PBXs. The proxy sends what it read of
//! an initial INVITE; the answer says whether to refuse it (with the SIP code
//! and reason phrase the action implies) or relay it (with the headers to add
//! for the PBX). The call is screened, counted (`pbx="kamailio"`) and logged by
//! the same flow as a PBX's call (`call::edge`).
//!
//! Proxies are allowed by source address (`edge.allow`); there is no token,
//! and `http.protect_reads` does not apply (see `guard::PUBLIC`).
//!
//! Request (JSON, every field optional but `caller`; empty means absent):
//! `{"call_id", "caller", "caller_name", "callee", "trunk", "source",
//!   "pai", "from", "privacy"}`.
//! Answer: `{"verdict", "refuse", "code", "phrase", "action", "rule", "list",
//! "reason", "hand_on", "headers": {…}, "sip_headers": "Name: value\r\n…"}`;
//! `code` is 0 and `sip_headers` empty unless refused / relayed respectively.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Api, ApiError, ApiResult};
use crate::call::CallInfo;
use crate::call::edge::EdgeAnswer;
use crate::policy::attest::IdentityInputs;

/// The path the proxies call.
pub(crate) const PATH: &str = "/api/v1/edge/decide";

/// A request body is a few header values: anything larger is refused (413).
const MAX_BODY: usize = 16 * 1024;

/// Each field is cut to this many bytes (a SIP header is rarely longer).
const MAX_FIELD: usize = 1024;

pub(crate) fn routes() -> Router<Api> {
    Router::new().route(PATH, post(decide))
}

/// What the proxy read of the INVITE.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EdgeRequest {
    /// The SIP Call-ID: the decision log's `unique_id`.
    call_id: String,
    /// The caller's number (user part of P-Asserted-Identity or From).
    caller: String,
    /// The From display name.
    caller_name: String,
    /// The dialled number (R-URI user, or To).
    callee: String,
    /// A trunk named by the proxy (by its own routing).
    trunk: String,
    /// The INVITE's source address, for the log's reasoning.
    source: String,
    /// The P-Asserted-Identity and From headers, verbatim: their `verstat`
    /// gives the attestation when a rule asks for one.
    pai: String,
    from: String,
    /// The Privacy header: `id` (or `user`) marks the caller ID restricted.
    privacy: String,
}

fn field(s: String) -> String {
    let mut s = s.trim().to_string();
    if s.len() > MAX_FIELD {
        let mut end = MAX_FIELD;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

fn optional(s: String) -> Option<String> {
    Some(field(s)).filter(|s| !s.is_empty())
}

impl EdgeRequest {
    fn into_call(self) -> (CallInfo, IdentityInputs) {
        let privacy = self.privacy.to_ascii_lowercase();
        let restricted = privacy
            .split([';', ',', ' '])
            .any(|t| matches!(t.trim(), "id" | "user"));
        let pai = optional(self.pai);
        let from = optional(self.from);
        let unique_id = match optional(self.call_id) {
            Some(id) => id,
            None => format!("edge-{}", crate::random::uuid_v4()),
        };
        if let Some(source) = optional(self.source) {
            tracing::debug!(call = ?unique_id, %source, "SIP edge request");
        }
        let info = CallInfo {
            unique_id,
            caller: field(self.caller),
            caller_name: field(self.caller_name),
            presentation_restricted: restricted,
            dids: optional(self.callee).into_iter().collect(),
            trunk_hint: optional(self.trunk),
            pai: pai.clone(),
            from: from.clone(),
            edge_action: None,
            feature: None,
            tenant_hint: None,
            domain: None,
        };
        let identity = IdentityInputs {
            stir_shaken: None,
            pai,
            from,
        };
        (info, identity)
    }
}

async fn decide(AxState(api): AxState<Api>, req: Request) -> ApiResult {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical());
    let (allowed, timeout) = {
        let snap = api.state.snapshot();
        let allowed =
            peer.is_some_and(|ip| snap.service.edge_allow.iter().any(|net| net.contains(&ip)));
        (allowed, snap.service.edge.decide_timeout)
    };
    if !allowed {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this address is not in edge.allow",
        ));
    }
    let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is limited to {MAX_BODY} bytes"),
            )
        })?;
    let body: EdgeRequest = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{\"caller\": …, \"callee\"?, \"call_id\"?, \"trunk\"?, …}}: {e}"
        ))
    })?;
    let (info, identity) = body.into_call();
    let answer = crate::call::edge::decide(&info, identity, &api.state, timeout).await;
    Ok(render(&answer))
}

/// The answer as JSON, headers both as an object and as the text a proxy
/// appends to the INVITE as it is (`append_hf`).
fn render(a: &EdgeAnswer) -> Response {
    let (code, phrase) = a.refusal().unwrap_or((0, ""));
    let headers = a.headers();
    let mut object = Map::new();
    let mut text = String::new();
    for (name, value) in &headers {
        object.insert((*name).to_string(), Value::String(value.clone()));
        text.push_str(name);
        text.push_str(": ");
        text.push_str(value);
        text.push_str("\r\n");
    }
    axum::Json(json!({
        "verdict": a.verdict,
        "refuse": code != 0,
        "code": code,
        "phrase": phrase,
        "action": a.action,
        "rule": a.rule,
        "list": a.list,
        "reason": a.reason,
        "hand_on": a.step == crate::action::EdgeStep::HandOn,
        "undecided": a.undecided,
        "headers": object,
        "sip_headers": text,
    }))
    .into_response()
}
