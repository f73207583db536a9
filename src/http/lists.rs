//! List management endpoints (issue: live rule management). STUB.

use axum::Router;

use super::Api;

pub fn routes() -> Router<Api> {
    Router::new()
}
