//! API errors as JSON: `{"error": "..."}`, and 422 with positioned (and, where known,
//! per-field) validation errors.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
pub struct FieldError {
    pub line: usize,
    pub column: usize,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    Unauthorized(String),
    Forbidden(String),
    NotFound(String),
    Conflict(String),
    Invalid(Vec<FieldError>),
    TooMany(Duration),
    Unavailable(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, serde_json::json!({"error": m})),
            ApiError::Unauthorized(m) => {
                (StatusCode::UNAUTHORIZED, serde_json::json!({"error": m}))
            }
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, serde_json::json!({"error": m})),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, serde_json::json!({"error": m})),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, serde_json::json!({"error": m})),
            ApiError::Unavailable(m) => (
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"error": m}),
            ),
            ApiError::Invalid(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                serde_json::json!({"error": "the change is not valid", "errors": errors}),
            ),
            ApiError::TooMany(wait) => {
                let mut resp = (
                    StatusCode::TOO_MANY_REQUESTS,
                    axum::Json(
                        serde_json::json!({"error": "too many failed logins; wait and try again"}),
                    ),
                )
                    .into_response();
                resp.headers_mut().insert(
                    http::header::RETRY_AFTER,
                    http::HeaderValue::from(wait.as_secs().max(1)),
                );
                return resp;
            }
        };
        (status, axum::Json(body)).into_response()
    }
}
