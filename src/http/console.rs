//! The web console: the administrator's screens (overview, trunks and their
//! rules, pattern tester, call log, import / export, history, daily report)
//! served at `/` of `listen.http` by callguard itself.
//!
//! Why embedded: PBX networks are often offline and operators will not run a
//! build step, so the page, its style sheet and its script are compiled into
//! the binary (`include_str!`), use no framework, CDN or web font, and talk
//! only to the `/api/v1` endpoints every other client uses. The console has
//! no privileges of its own: a change carries the operator's API token as
//! `Authorization: Bearer` (kept in the tab's session storage, never a
//! cookie, so there is no ambient credential for another site to ride on).

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::Api;

const INDEX: &str = include_str!("console/index.html");
const STYLE: &str = include_str!("console/console.css");
const SCRIPT: &str = include_str!("console/console.js");
const TRUNKS: &str = include_str!("console/trunks.js");
const SCREENS: &str = include_str!("console/screens.js");

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/", get(index))
        .route("/console/console.css", get(style))
        .route("/console/console.js", get(script))
        .route("/console/trunks.js", get(trunks))
        .route("/console/screens.js", get(screens))
}

/// Headers every console asset carries: the page may load only itself (no
/// inline script, no third-party origin), may not be framed, and is never
/// cached stale across an upgrade of the binary.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                 connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn trunks() -> Response {
    asset("text/javascript; charset=utf-8", TRUNKS)
}

async fn screens() -> Response {
    asset("text/javascript; charset=utf-8", SCREENS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The console must work offline: nothing it ships may point at another
    /// origin (a CDN, a web font) or run inline script the CSP would block.
    #[test]
    fn assets_reference_no_other_origin() {
        for (name, text) in [
            ("index.html", INDEX),
            ("console.css", STYLE),
            ("console.js", SCRIPT),
            ("trunks.js", TRUNKS),
            ("screens.js", SCREENS),
        ] {
            for bad in ["http://", "https://", "//fonts.", "@import", "<script>"] {
                assert!(!text.contains(bad), "{name} contains {bad:?}");
            }
        }
        for script in ["console", "trunks", "screens"] {
            let tag = format!(r#"<script src="/console/{script}.js" defer></script>"#);
            assert!(INDEX.contains(&tag), "index.html lacks {tag}");
        }
        assert!(INDEX.contains(r#"<link rel="stylesheet" href="/console/console.css">"#));
    }
}
