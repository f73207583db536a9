//! The API's one error shape, `{"error": …, "details": […]}`, as a type.
//!
//! Handlers return `Result<Response, ApiError>` and use `?`: a refusal
//! (no token, a bad body, a store error) is a value converted to its answer
//! in one place, rather than a `Response` returned early from each handler.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::config::Problems;
use crate::list_edit::store::StoreError;

/// An answer other than success: the status, the message and its details
/// (one line per problem, `FILE:LINE:COL: …` where there is a place).
#[derive(Debug)]
pub(crate) struct ApiError {
    code: StatusCode,
    message: String,
    details: Vec<String>,
    /// A 401 says how to authenticate (`WWW-Authenticate: Bearer`).
    challenge: bool,
}

/// What a handler answers.
pub(crate) type ApiResult = Result<Response, ApiError>;

impl ApiError {
    pub(crate) fn new(code: StatusCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: Vec::new(),
            challenge: false,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// 401 with the `WWW-Authenticate: Bearer` challenge.
    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            challenge: true,
            ..Self::new(StatusCode::UNAUTHORIZED, message)
        }
    }

    pub(crate) fn with_details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }

    /// A configuration refused by the loader, its problems as details.
    pub(crate) fn problems(
        code: StatusCode,
        message: impl Into<String>,
        problems: &Problems,
    ) -> Self {
        Self::new(code, message).with_details(problems.0.iter().map(ToString::to_string).collect())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.code,
            axum::Json(json!({ "error": self.message, "details": self.details })),
        )
            .into_response();
        if self.challenge {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Each store refusal has its status: unknown list or rule 404, read-only or
/// invalid 400, duplicate or broken file 409, refused by the whole
/// configuration 422, no history or the store of record unreachable 503,
/// I/O 500.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let code = match &e {
            StoreError::UnknownList(_) | StoreError::NoSuchRule { .. } => StatusCode::NOT_FOUND,
            StoreError::NoSuchVersion { .. } => StatusCode::NOT_FOUND,
            StoreError::ReadOnly(_) | StoreError::Invalid(_) => StatusCode::BAD_REQUEST,
            StoreError::Duplicate { .. } | StoreError::Broken(_) => StatusCode::CONFLICT,
            StoreError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            StoreError::NoHistory | StoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            StoreError::Io(_) | StoreError::Aborted => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(code, e.to_string()).with_details(e.details())
    }
}
