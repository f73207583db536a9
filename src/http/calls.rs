//! The decision log over HTTP: `GET /api/v1/calls`. STUB.

use axum::Router;

use super::Api;

pub fn routes() -> Router<Api> {
    Router::new()
}
