//! Who may change lists: `Authorization: Bearer <token>` against the tokens
//! of `http.tokens`, whose secrets live in environment variables (never in
//! the YAML, which is often in git).
//!
//! The tokens are those of the installed snapshot (`Snapshot::service`): adding
//! or revoking one takes effect with the reload that follows the edit, like
//! every other change, and a request never re-reads the file. The secret is
//! read from the environment per request, so rotating it needs no reload.

use axum::http::{HeaderMap, StatusCode, header};
use subtle::ConstantTimeEq;

use super::ApiError;
use crate::config::types::{HttpConfig, TokenConfig};

/// The name of the token presented, or the error refusing the request.
pub(crate) fn authorize(http: &HttpConfig, headers: &HeaderMap) -> Result<String, ApiError> {
    token(http, headers).map(|t| t.name.clone())
}

/// The token presented (with its scope), or the error refusing the request.
pub(crate) fn token<'a>(
    http: &'a HttpConfig,
    headers: &HeaderMap,
) -> Result<&'a TokenConfig, ApiError> {
    if http.tokens.is_empty() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "changes through the API are disabled: no API tokens are configured. Add \
             `http: { tokens: [{ name: ops, token_env: CALLGUARD_TOKEN_OPS }] }` to the \
             configuration and set that environment variable for callguard",
        ));
    }
    let unauthorized = ApiError::unauthorized;
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthorized("missing `Authorization: Bearer <token>`"))?;
    let mut found: Option<&TokenConfig> = None;
    // Compare against every token, without stopping at the first match, so
    // the time taken says nothing about which token (or how much of it) matched.
    for t in &http.tokens {
        let Ok(secret) = std::env::var(&t.token_env) else {
            continue;
        };
        if secret.is_empty() {
            continue;
        }
        let equal: bool = secret.as_bytes().ct_eq(presented.as_bytes()).into();
        if equal && found.is_none() {
            found = Some(t);
        }
    }
    found.ok_or_else(|| unauthorized("invalid API token"))
}
