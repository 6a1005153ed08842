//! `GET /metrics`, and the middleware that counts every request into [`Metrics`].

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};

use super::AppState;
use super::error::ApiError;
use crate::metrics::{CONTENT_TYPE, Metrics};

/// The route template of a request the router does not match by pattern (the Flux cluster
/// endpoints are routed by hand), set by its handler.
#[derive(Debug, Clone, Copy)]
pub struct RouteTemplate(pub &'static str);

/// Which Flux endpoint answered: `platform-components`, `namespaces`, `rolebindings` or
/// `clusters`.
#[derive(Debug, Clone, Copy)]
pub struct FluxEndpoint(pub &'static str);

/// What a successful write did, set on its response for the writes counter.
#[derive(Debug, Clone, Copy)]
pub struct WriteDone {
    pub outcome: &'static str,
    pub dry_run: bool,
}

/// The Prometheus text exposition of every metric.
#[utoipa::path(get, operation_id = "getMetrics", path = "/metrics", tag = "service", security(()),
    responses((status = 200, description = "Prometheus metrics in the text exposition format (no token unless `metrics.require_token` is set)",
        content_type = "text/plain", body = String)))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let metrics = &state.metrics;
    let status = state.snapshot.status();
    metrics.snapshot_clusters.set(status.clusters as i64);
    metrics.snapshot_version.set(status.version.unwrap_or(0));
    metrics
        .snapshot_age_seconds
        .set(status.age.map_or(0, |age| age.as_secs() as i64));
    metrics
        .snapshot_stale
        .set(i64::from(status.database_error.is_some()));
    let pool = state.store.pool_status();
    let connections = &metrics.pool_connections;
    connections
        .with_label_values(&["max"])
        .set(pool.max_size as i64);
    connections
        .with_label_values(&["open"])
        .set(pool.size as i64);
    connections
        .with_label_values(&["in_use"])
        .set(pool.size.saturating_sub(pool.available) as i64);
    metrics.pool_waiting.set(pool.waiting as i64);
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .body(metrics.render())
}

/// The route's template for labels: never the raw path, which holds cluster names and
/// whatever else clients send.
fn route(response: &ServiceResponse<impl MessageBody>) -> &'static str {
    if let Some(RouteTemplate(template)) = response.request().extensions().get() {
        return template;
    }
    match response.request().match_pattern() {
        Some(pattern) if !pattern.is_empty() => intern(pattern),
        _ => "unmatched",
    }
}

/// Route templates are few and fixed (the router's own), so each is leaked once to get a
/// `&'static str`: the label lookup then allocates nothing per request.
fn intern(pattern: String) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static TEMPLATES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut templates = TEMPLATES
        .get_or_init(Default::default)
        .lock()
        .expect("the template set is never poisoned");
    if let Some(&template) = templates.get(pattern.as_str()) {
        return template;
    }
    let template: &'static str = Box::leak(pattern.into_boxed_str());
    templates.insert(template);
    template
}

/// The collection a route belongs to: its first segment (`clusters` of
/// `/clusters/{id}/rollback`).
fn kind(route: &str) -> &str {
    route
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("")
}

/// Middleware counting each request: by route, method and status, its latency, and for
/// Flux endpoints and writes what they did.
pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let Some(state) = request.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(request).await;
    };
    let response = next.call(request).await?;
    record(&state.metrics, &response, started);
    Ok(response)
}

fn record(metrics: &Metrics, response: &ServiceResponse<impl MessageBody>, started: Instant) {
    let route = route(response);
    let method = response.request().method().as_str();
    let status = response.status();
    let code = status.as_str();
    metrics
        .requests
        .with_label_values(&[route, method, code])
        .inc();
    metrics
        .request_seconds
        .with_label_values(&[route, method])
        .observe(started.elapsed().as_secs_f64());

    if let Some(FluxEndpoint(endpoint)) = response.request().extensions().get() {
        metrics
            .flux_responses
            .with_label_values(&[endpoint, code])
            .inc();
        if let actix_web::body::BodySize::Sized(bytes) = response.response().body().size() {
            let encoding = match response.headers().get(header::CONTENT_ENCODING) {
                Some(value) if value == "gzip" => "gzip",
                _ => "identity",
            };
            metrics
                .flux_bytes
                .with_label_values(&[endpoint, encoding])
                .inc_by(bytes);
        }
        return;
    }

    if let Some(done) = response.response().extensions().get::<WriteDone>() {
        let dry_run = if done.dry_run { "true" } else { "false" };
        metrics
            .writes
            .with_label_values(&[kind(route), done.outcome, dry_run])
            .inc();
    } else if !response.request().method().is_safe() && status.as_u16() >= 400 {
        let reason = response
            .response()
            .error()
            .and_then(|error| error.as_error::<ApiError>())
            .map_or_else(|| code.to_owned(), |error| error.code().label());
        metrics
            .writes_refused
            .with_label_values(&[kind(route), &reason])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_is_the_routes_collection() {
        assert_eq!(kind("/clusters/{id}"), "clusters");
        assert_eq!(
            kind("/platform-components/{id}/rollback"),
            "platform-components"
        );
        assert_eq!(kind("unmatched"), "unmatched");
    }

    #[test]
    fn a_template_is_interned_once() {
        let first = intern("/x/{id}".to_owned());
        let second = intern("/x/{id}".to_owned());
        assert!(std::ptr::eq(first, second));
    }
}
