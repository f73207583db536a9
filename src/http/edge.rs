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
use std::borrow::Cow;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

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

/// What the proxy read of the INVITE. The fields borrow from the request
/// body unless JSON escapes make that impossible: one allocation per field
/// the call keeps, not two (issue 26).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EdgeRequest<'a> {
    /// The SIP Call-ID: the decision log's `unique_id`.
    #[serde(borrow)]
    call_id: Cow<'a, str>,
    /// The caller's number (user part of P-Asserted-Identity or From).
    #[serde(borrow)]
    caller: Cow<'a, str>,
    /// The From display name.
    #[serde(borrow)]
    caller_name: Cow<'a, str>,
    /// The dialled number (R-URI user, or To).
    #[serde(borrow)]
    callee: Cow<'a, str>,
    /// A trunk named by the proxy (by its own routing).
    #[serde(borrow)]
    trunk: Cow<'a, str>,
    /// The INVITE's source address, for the log's reasoning.
    #[serde(borrow)]
    source: Cow<'a, str>,
    /// The P-Asserted-Identity and From headers, verbatim: their `verstat`
    /// gives the attestation when a rule asks for one.
    #[serde(borrow)]
    pai: Cow<'a, str>,
    #[serde(borrow)]
    from: Cow<'a, str>,
    /// The Privacy header: `id` (or `user`) marks the caller ID restricted.
    #[serde(borrow)]
    privacy: Cow<'a, str>,
}

/// A field trimmed and cut to [`MAX_FIELD`] bytes (on a character boundary).
fn cut(s: &str) -> &str {
    let s = s.trim();
    if s.len() <= MAX_FIELD {
        return s;
    }
    let mut end = MAX_FIELD;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn field(s: &str) -> String {
    cut(s).to_string()
}

fn optional(s: &str) -> Option<String> {
    Some(cut(s)).filter(|s| !s.is_empty()).map(str::to_string)
}

impl EdgeRequest<'_> {
    fn into_call(self) -> (CallInfo, IdentityInputs) {
        let restricted = self
            .privacy
            .split([';', ',', ' '])
            .any(|t| t.trim().eq_ignore_ascii_case("id") || t.trim().eq_ignore_ascii_case("user"));
        let pai = optional(&self.pai);
        let from = optional(&self.from);
        let unique_id = match optional(&self.call_id) {
            Some(id) => id,
            None => format!("edge-{}", crate::random::uuid_v4()),
        };
        if let Some(source) = Some(cut(&self.source)).filter(|s| !s.is_empty()) {
            tracing::debug!(call = ?unique_id, %source, "SIP edge request");
        }
        let info = CallInfo {
            unique_id,
            caller: field(&self.caller),
            caller_name: field(&self.caller_name),
            presentation_restricted: restricted,
            dids: optional(&self.callee).into_iter().collect(),
            trunk_hint: optional(&self.trunk),
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
/// appends to the INVITE as it is (`append_hf`). Serialized straight from
/// borrowed fields (no `serde_json::Value` tree: a few allocations, not
/// one per key and value).
fn render(a: &EdgeAnswer) -> Response {
    let (code, phrase) = a.refusal().unwrap_or((0, ""));
    let headers = a.headers();
    let mut text = String::with_capacity(if headers.is_empty() { 0 } else { 160 });
    for (name, value) in &headers {
        text.push_str(name);
        text.push_str(": ");
        text.push_str(value);
        text.push_str("\r\n");
    }
    axum::Json(Answer {
        verdict: a.verdict,
        refuse: code != 0,
        code,
        phrase,
        action: &a.action,
        rule: &a.rule,
        list: &a.list,
        reason: &a.reason,
        hand_on: a.step == crate::action::EdgeStep::HandOn,
        undecided: a.undecided,
        headers: HeaderObject(&headers),
        sip_headers: &text,
    })
    .into_response()
}

/// The answer's JSON, in the order the fields are documented.
#[derive(Serialize)]
struct Answer<'a> {
    verdict: &'a str,
    refuse: bool,
    code: u16,
    phrase: &'a str,
    action: &'a str,
    rule: &'a str,
    list: &'a str,
    reason: &'a str,
    hand_on: bool,
    undecided: bool,
    headers: HeaderObject<'a>,
    sip_headers: &'a str,
}

/// The headers as a JSON object, name → value.
struct HeaderObject<'a>(&'a [(&'static str, String)]);

impl Serialize for HeaderObject<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}
