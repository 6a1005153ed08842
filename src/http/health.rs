//! Probes: `/health` for liveness, `/ready` for readiness. Neither needs a token.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, Problem};

#[derive(Serialize, ToSchema)]
pub struct HealthStatus {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct ReadyStatus {
    /// `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
    /// `ok`: the database answered.
    #[schema(example = "ok")]
    pub database: &'static str,
}

/// Liveness: the process serves HTTP. Does not touch the database, so a database outage
/// does not get every replica restarted.
#[utoipa::path(get, operation_id = "getHealth", path = "/health", tag = "service", security(()),
    responses((status = 200, description = "The process is alive", body = HealthStatus)))]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(HealthStatus { status: "ok" })
}

/// Readiness: 200 when the database answers within the configured timeout, else 503 with
/// the reason.
#[utoipa::path(get, operation_id = "getReady", path = "/ready", tag = "service", security(()),
    responses(
        (status = 200, description = "Ready to serve", body = ReadyStatus),
        (status = 503, description = "Not ready; `detail` says why", body = Problem, content_type = "application/problem+json")))]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let timeout = state.ready_timeout;
    match tokio::time::timeout(timeout, state.store.ping()).await {
        Ok(Ok(())) => Ok(HttpResponse::Ok().json(ReadyStatus {
            status: "ok",
            database: "ok",
        })),
        Ok(Err(error)) => {
            log::warn!("readiness: database check failed: {error}");
            Err(ApiError::NotReady(format!(
                "the database is not reachable: {error}"
            )))
        }
        Err(_) => Err(ApiError::NotReady(format!(
            "the database did not answer within {} ms",
            timeout.as_millis()
        ))),
    }
}
