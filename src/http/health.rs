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
    /// `ok`, or `unavailable` while the database cannot be reached (the Flux endpoints keep
    /// answering from the snapshot).
    #[schema(example = "ok")]
    pub database: &'static str,
    /// Why the database could not be reached, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_error: Option<String>,
    pub snapshot: SnapshotStatus,
}

/// The in-memory snapshot the Flux endpoints answer from.
#[derive(Serialize, ToSchema)]
pub struct SnapshotStatus {
    /// The change-log version it reflects.
    pub version: i64,
    /// Seconds since it was last confirmed in sync with the database.
    pub age_seconds: f64,
    pub clusters: usize,
}

/// Liveness: the process serves HTTP. Does not touch the database, so a database outage
/// does not get every replica restarted.
#[utoipa::path(get, operation_id = "getHealth", path = "/health", tag = "service", security(()),
    responses((status = 200, description = "The process is alive", body = HealthStatus)))]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(HealthStatus { status: "ok" })
}

/// Readiness: 200 once the catalog snapshot is loaded, and while it is held even when the
/// database is unreachable (so an outage does not take every replica out of the Service at
/// once); the body reports the database's state and the snapshot's age. 503 until the
/// first load, with the reason.
#[utoipa::path(get, operation_id = "getReady", path = "/ready", tag = "service", security(()),
    responses(
        (status = 200, description = "Serving", body = ReadyStatus),
        (status = 503, description = "Not ready; `detail` says why", body = Problem, content_type = "application/problem+json")))]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let status = state.snapshot.status();
    let (Some(version), Some(age)) = (status.version, status.age) else {
        let reason = status
            .database_error
            .unwrap_or_else(|| "loading".to_owned());
        return Err(ApiError::NotReady(format!(
            "the catalog snapshot is not loaded yet: {reason}"
        )));
    };
    Ok(HttpResponse::Ok().json(ReadyStatus {
        status: "ok",
        database: if status.database_error.is_none() {
            "ok"
        } else {
            "unavailable"
        },
        database_error: status.database_error,
        snapshot: SnapshotStatus {
            version,
            age_seconds: age.as_secs_f64(),
            clusters: status.clusters,
        },
    }))
}
