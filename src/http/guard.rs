//! The checks every request passes before its handler, in one middleware:
//! - `Host` must name this service (421 otherwise): a DNS-rebinding page
//!   reaches us under its own name, and must not read the API;
//! - a change from a browser must come from this service's own page (a
//!   cross-site `Origin` gets 403);
//! - a body sent to a JSON endpoint must say `application/json` (415): a
//!   `text/plain` POST needs no CORS preflight, so any page could send it;
//! - with `http.protect_reads` every route needs a token unless it is in
//!   [`PUBLIC`], so a new route is protected by default (HEAD included:
//!   axum answers it with the GET handler);
//! - the request body must arrive within `http.body_timeout` (408).
//!
//! Changes keep their own authorisation in their handlers.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::{Api, ApiError, auth};
use crate::config::types::HttpConfig;

/// Routes anyone who reaches `listen.http` may read, even with
/// `http.protect_reads`: the console's page and assets (they hold no data),
/// the health check and the metrics (no caller numbers), the overview
/// (counts only; it tells the console that reads will ask for a token), and
/// the SIP edge's decisions, which check the proxy's address against
/// `edge.allow` instead of a token.
const PUBLIC: [&str; 7] = [
    "/",
    "/console/console.css",
    "/console/console.js",
    "/metrics",
    "/api/v1/status",
    "/api/v1/overview",
    super::edge::PATH,
];

/// Routes monitoring fetches under whatever name it knows us by: no `Host`
/// check (they hold no phone numbers); and the SIP edge, which a proxy
/// calls under the address it was given and which only `edge.allow` may reach.
const ANY_HOST: [&str; 3] = ["/metrics", "/api/v1/status", super::edge::PATH];

/// The middleware of the module's doc, in that order.
pub(super) async fn guard(
    AxState(api): AxState<Api>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let snap = api.state.snapshot();
    let http = &snap.service.http;
    let listen = api.listen.as_deref();
    let path = req.uri().path();
    let method = req.method().clone();
    if !ANY_HOST.contains(&path) && !host_allowed(http, listen, req.headers()) {
        return ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "this Host is not one of callguard's names: add it to http.allowed_hosts",
        )
        .into_response();
    }
    let safe = matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !origin_allowed(http, req.headers()) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "cross-site request refused: the Origin is not this service",
        )
        .into_response();
    }
    if !safe && takes_json(&method, path) && !json_labelled(req.headers()) {
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as `Content-Type: application/json`",
        )
        .into_response();
    }
    if http.protect_reads
        && !PUBLIC.contains(&path)
        && let Err(refused) = auth::authorize(http, req.headers())
    {
        return refused.into_response();
    }
    if let Err(refused) = super::scope::check(http, &snap.rules, path, req.headers()) {
        return refused.into_response();
    }
    let timeout = http.body_timeout;
    drop(snap);
    body_deadline(req, timeout, next).await
}

/// The host part of a `Host` value or an origin's authority, and its port.
fn split_host(authority: &str) -> (&str, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[') {
        // [v6]:port
        let (h, tail) = rest.split_once(']').unwrap_or((rest, ""));
        return (h, tail.strip_prefix(':'));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (authority, None),
    }
}

/// Whether `entry` (`name` or `name:port`) accepts `host`/`port`.
fn entry_matches(entry: &str, host: &str, port: Option<&str>) -> bool {
    let (eh, ep) = split_host(entry.trim());
    eh.eq_ignore_ascii_case(host) && (ep.is_none() || ep == port)
}

/// `Host` is an IP literal (DNS rebinding needs a name), `localhost`, the
/// name in `listen.http`, or one of `http.allowed_hosts`. No `Host` at all
/// (HTTP/1.0 tools) is accepted: a browser always sends one.
fn host_allowed(http: &HttpConfig, listen: Option<&str>, headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::HOST) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    name_allowed(http, listen, value)
}

fn name_allowed(http: &HttpConfig, listen: Option<&str>, authority: &str) -> bool {
    let (host, port) = split_host(authority.trim());
    if host.parse::<IpAddr>().is_ok() || host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if listen.is_some_and(|l| split_host(l).0.eq_ignore_ascii_case(host)) {
        return true;
    }
    http.allowed_hosts
        .iter()
        .any(|e| e.trim() == "*" || entry_matches(e, host, port))
}

/// A change without `Origin` comes from a tool, not a page; with one, it
/// must be this service as the client reached it (`Host`), or a name the
/// operator lists (a proxy in front that rewrites `Host`).
fn origin_allowed(http: &HttpConfig, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some(authority) = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, a)| a.trim_end_matches('/'))
    else {
        return false; // `null` and other opaque origins
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if host.is_some_and(|h| h.eq_ignore_ascii_case(authority)) {
        return true;
    }
    let (h, p) = split_host(authority);
    http.allowed_hosts
        .iter()
        .any(|e| e.trim() != "*" && entry_matches(e, h, p))
}

/// Whether the route's body is JSON: every change except the two that take
/// a list file (`PUT /api/v1/lists/{name}`, `POST …/import`), whose
/// handlers accept CSV, JSON or XML by their own `Content-Type` checks.
fn takes_json(method: &Method, path: &str) -> bool {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let list_file = match segments.as_slice() {
        ["api", "v1", "lists", _] => method == Method::PUT,
        ["api", "v1", "lists", _, "import"] => method == Method::POST,
        _ => false,
    };
    !list_file
}

/// A body labelled JSON, or no body and no label (`POST /api/v1/reload`).
fn json_labelled(headers: &HeaderMap) -> bool {
    match headers.get(header::CONTENT_TYPE) {
        Some(ct) => ct.to_str().is_ok_and(is_json),
        None => {
            let empty = headers
                .get(header::CONTENT_LENGTH)
                .is_none_or(|v| v.as_bytes() == b"0");
            empty && !headers.contains_key(header::TRANSFER_ENCODING)
        }
    }
}

fn is_json(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    mime.eq_ignore_ascii_case("application/json")
}

/// Runs the handler with its request body cut off at `timeout`; a request
/// whose body did not arrive in time is answered 408 and the connection
/// closed, whatever the handler made of the cut.
async fn body_deadline(
    req: Request,
    timeout: std::time::Duration,
    next: axum::middleware::Next,
) -> Response {
    use axum::body::HttpBody;
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let expired = Arc::new(AtomicBool::new(false));
    let deadline = tokio::time::Instant::now() + timeout;
    let (parts, body) = req.into_parts();
    let flag = expired.clone();
    let stream = futures::stream::unfold(Some(body.into_data_stream()), move |s| {
        let flag = flag.clone();
        async move {
            let mut s = s?;
            match tokio::time::timeout_at(deadline, s.next()).await {
                Ok(Some(chunk)) => Some((chunk, Some(s))),
                Ok(None) => None,
                Err(_) => {
                    flag.store(true, Ordering::Relaxed);
                    let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "body timeout");
                    Some((Err(axum::Error::new(e)), None))
                }
            }
        }
    });
    let req = Request::from_parts(parts, Body::from_stream(stream));
    let res = next.run(req).await;
    if !expired.load(Ordering::Relaxed) {
        return res;
    }
    let mut res = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        format!("the request body did not arrive within {timeout:?} (http.body_timeout)"),
    )
    .into_response();
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(allowed: &[&str]) -> HttpConfig {
        HttpConfig {
            allowed_hosts: allowed.iter().map(|s| s.to_string()).collect(),
            ..HttpConfig::default()
        }
    }

    #[test]
    fn hosts() {
        let c = cfg(&[]);
        let l = Some("127.0.0.1:9464");
        for ok in [
            "localhost",
            "localhost:9464",
            "127.0.0.1",
            "127.0.0.1:9464",
            "[::1]",
            "[::1]:9464",
            "10.1.2.3:80",
        ] {
            assert!(name_allowed(&c, l, ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:9464",
            "localhost.evil.example",
            "",
        ] {
            assert!(!name_allowed(&c, l, bad), "{bad}");
        }
        assert!(name_allowed(&c, Some("cg.lan:9464"), "CG.lan:1"));
        let c = cfg(&["cg.example.net", "proxy.example:8443"]);
        assert!(name_allowed(&c, l, "cg.example.net:9464"));
        assert!(name_allowed(&c, l, "proxy.example:8443"));
        assert!(!name_allowed(&c, l, "proxy.example:9464"));
        assert!(name_allowed(&cfg(&["*"]), l, "anything.example"));
    }

    #[test]
    fn origins() {
        let h = |host: &str, origin: Option<&str>| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, HeaderValue::from_str(host).unwrap());
            if let Some(o) = origin {
                m.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
            }
            m
        };
        let c = cfg(&["cg.example.net"]);
        assert!(origin_allowed(&c, &h("127.0.0.1:9464", None)));
        assert!(origin_allowed(
            &c,
            &h("127.0.0.1:9464", Some("http://127.0.0.1:9464"))
        ));
        assert!(origin_allowed(
            &c,
            &h("127.0.0.1:9464", Some("https://cg.example.net"))
        ));
        assert!(!origin_allowed(
            &c,
            &h("127.0.0.1:9464", Some("https://evil.example"))
        ));
        assert!(!origin_allowed(&c, &h("127.0.0.1:9464", Some("null"))));
        assert!(!origin_allowed(
            &cfg(&["*"]),
            &h("a:1", Some("https://evil.example"))
        ));
    }

    #[test]
    fn json_routes() {
        assert!(takes_json(&Method::POST, "/api/v1/test"));
        assert!(takes_json(&Method::POST, "/api/v1/lists/spam/entries"));
        assert!(takes_json(&Method::PUT, "/api/v1/lists/spam/entries/x"));
        assert!(!takes_json(&Method::PUT, "/api/v1/lists/spam"));
        assert!(!takes_json(&Method::POST, "/api/v1/lists/spam/import"));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(!is_json("text/plain"));
    }
}
