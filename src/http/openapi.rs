//! The OpenAPI document, generated from the handlers' annotations at run time.

use actix_web::HttpResponse;
use actix_web::http::header;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme,
};
use utoipa::{Modify, OpenApi};

use super::{
    audit, browser, clusters, components, docs, error, flux, health, namespaces, rate_limit,
    rolebindings, tokens,
};
use crate::domain::names;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "flux-catalog",
        description = "A catalog of platform components, namespaces and rolebindings, and the \
clusters that use them, served to Flux Operator's ResourceSetInputProvider (type: ExternalService).\n\n\
Write operations exist only on servers started with API_MODE=crud; read-only servers answer them \
with 405. Every error is an RFC 9457 problem document (application/problem+json) with a stable `code`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        flux::platform_components, flux::namespaces, flux::rolebindings, flux::clusters,
        clusters::list, clusters::create, clusters::get, clusters::replace, clusters::patch, clusters::delete,
        clusters::history, clusters::rollback,
        components::list, components::create, components::get, components::replace, components::patch, components::delete,
        components::history, components::rollback,
        namespaces::list, namespaces::create, namespaces::get, namespaces::replace, namespaces::patch, namespaces::delete,
        namespaces::history, namespaces::rollback,
        rolebindings::list, rolebindings::create, rolebindings::get, rolebindings::replace, rolebindings::patch, rolebindings::delete,
        rolebindings::history, rolebindings::rollback,
        audit::list,
        tokens::create, tokens::list, tokens::revoke,
        health::health, health::ready, yaml, json, super::metrics::metrics, browser::page,
    ),
    components(schemas(error::Problem, error::ErrorCode, error::ProblemField, error::ProblemReferrer,
        error::ProblemViolation)),
    modifiers(&SecuritySchemes, &FluxResponseHeaders, &NamePatterns, &RateLimitResponses, &OperationScopes),
    security(("bearerAuth" = []), ("basicAuth" = []), ("apiKeyAuth" = [])),
    tags(
        (name = "flux", description = "ExternalService endpoints polled by Flux Operator; both modes"),
        (name = "clusters", description = "Clusters and their per-cluster overrides"),
        (name = "platform components", description = "The component catalog"),
        (name = "namespaces", description = "Namespace definitions"),
        (name = "rolebindings", description = "Rolebinding definitions"),
        (name = "audit", description = "Who changed what; crud mode, scope admin"),
        (name = "credentials", description = "Named, scoped, revocable credentials; crud mode, scope admin"),
        (name = "service", description = "Probes, this document and the API browser; no token needed"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A named credential's secret (fcat_…), AUTH_TOKEN (scope read) or \
                         CRUD_AUTH_TOKEN (scopes read, write, admin)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "basicAuth",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("Any user name; the secret as password"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "apiKeyAuth",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "The secret alone",
            ))),
        );
    }
}

/// Documents [`flux::RESPONSE_HEADERS`] on the 200 response of every Flux endpoint.
/// Each operation's security: the scopes that allow it, from the one rule requests are
/// authorized by ([`super::auth::need`]), as alternatives for each scheme. Operations
/// that declare no security (the probes, this document) stay public.
struct OperationScopes;

const SCHEMES: [&str; 3] = ["bearerAuth", "basicAuth", "apiKeyAuth"];

impl Modify for OperationScopes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use actix_web::http::Method;
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                (Method::GET, &mut item.get),
                (Method::PUT, &mut item.put),
                (Method::POST, &mut item.post),
                (Method::DELETE, &mut item.delete),
                (Method::PATCH, &mut item.patch),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation.as_mut() else {
                    continue;
                };
                let public = operation
                    .security
                    .as_ref()
                    .is_some_and(|s| s.iter().all(is_empty_requirement));
                if public || super::is_public(path) {
                    continue;
                }
                let need = super::auth::need(crate::settings::Mode::Crud, &method, path);
                let scopes = crate::domain::scope::allowing(&need);
                let requirements = SCHEMES
                    .iter()
                    .flat_map(|scheme| {
                        scopes
                            .iter()
                            .map(move |scope| SecurityRequirement::new(*scheme, [scope.as_str()]))
                    })
                    .collect();
                operation.security = Some(requirements);
                // Any authenticated operation refuses more than one credential.
                operation
                    .responses
                    .responses
                    .entry("400".to_owned())
                    .or_insert_with(two_credentials);
                let line = format!("Needs scope {}.", scopes.join(" or "));
                operation.description = Some(match operation.description.take() {
                    Some(text) if !text.is_empty() => format!("{text}\n\n{line}"),
                    _ => line,
                });
            }
        }
    }
}

fn two_credentials() -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::schema::Ref;
    use utoipa::openapi::{ContentBuilder, ResponseBuilder};
    ResponseBuilder::new()
        .description(
            "More than one credential: two Authorization or X-API-Key headers, or different \
             secrets in the two (INVALID_REQUEST)",
        )
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
        .into()
}

fn is_empty_requirement(requirement: &SecurityRequirement) -> bool {
    serde_json::to_value(requirement).is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
}

struct FluxResponseHeaders;

impl Modify for FluxResponseHeaders {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::PartialSchema;
        use utoipa::openapi::{RefOr, header::Header};
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with(flux::CLUSTERS_PATH) {
                continue;
            }
            let Some(operation) = item.get.as_mut() else {
                continue;
            };
            let Some(RefOr::T(ok)) = operation.responses.responses.get_mut("200") else {
                continue;
            };
            for (name, kind, description) in flux::RESPONSE_HEADERS {
                let schema = match kind {
                    "integer" => i64::schema(),
                    _ => String::schema(),
                };
                let mut header = Header::new(schema);
                header.description = Some(description.to_owned());
                ok.headers.insert(name.to_owned(), RefOr::T(header));
            }
        }
    }
}

/// The 429 of [`docs::RateLimited`] on every operation the rate limits apply to, and the
/// [`rate_limit::HEADERS`] on its 2xx responses; both defined once, in the components.
struct RateLimitResponses;

/// The name of the 429 response among the components.
const RATE_LIMITED: &str = "RateLimited";

impl Modify for RateLimitResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::Ref;
        use utoipa::openapi::{RefOr, header::Header};
        use utoipa::{IntoResponses, PartialSchema};
        let header_ref = |name: &str| RefOr::Ref(Ref::new(format!("#/components/headers/{name}")));
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, description) in rate_limit::HEADERS {
            let mut header = Header::new(i64::schema());
            header.description = Some(description.to_owned());
            components.headers.insert(name.to_owned(), RefOr::T(header));
        }
        let mut refused = docs::RateLimited::responses()
            .into_values()
            .next()
            .expect("one response");
        if let RefOr::T(response) = &mut refused {
            for (name, _) in rate_limit::HEADERS {
                response.headers.insert(name.to_owned(), header_ref(name));
            }
        }
        components
            .responses
            .insert(RATE_LIMITED.to_owned(), refused);
        for (path, item) in openapi.paths.paths.iter_mut() {
            if rate_limit::UNLIMITED_PATHS.contains(&path.as_str()) {
                continue;
            }
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                for (status, response) in responses.iter_mut() {
                    if let (true, RefOr::T(response)) = (status.starts_with('2'), response) {
                        for (name, _) in rate_limit::HEADERS {
                            response.headers.insert(name.to_owned(), header_ref(name));
                        }
                    }
                }
                responses.insert(
                    "429".to_owned(),
                    RefOr::Ref(Ref::from_response_name(RATE_LIMITED)),
                );
            }
        }
    }
}

/// Name rules in the schemas, from their one definition in [`crate::domain::names`]:
/// utoipa takes only literal patterns, so fields name their rule (`pattern =
/// "dns1123-label"`) and this puts the regular expression in its place.
struct NamePatterns;

/// The placeholders fields use, and the patterns they stand for.
const NAME_PATTERNS: [(&str, &str); 2] = [
    ("dns1123-label", names::DNS1123_LABEL_PATTERN),
    ("dns1123-subdomain", names::DNS1123_SUBDOMAIN_PATTERN),
];

impl Modify for NamePatterns {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::{ArrayItems, Schema};
        fn visit(schema: &mut RefOr<Schema>) {
            match schema {
                RefOr::T(Schema::Object(object)) => {
                    if let Some(pattern) = object.pattern.as_mut()
                        && let Some((_, real)) = NAME_PATTERNS
                            .iter()
                            .find(|(placeholder, _)| placeholder == pattern)
                    {
                        *pattern = (*real).to_owned();
                    }
                    object.properties.values_mut().for_each(visit);
                }
                RefOr::T(Schema::Array(array)) => {
                    if let ArrayItems::RefOrSchema(items) = &mut array.items {
                        visit(items);
                    }
                }
                RefOr::T(Schema::OneOf(one_of)) => one_of.items.iter_mut().for_each(visit),
                RefOr::T(Schema::AllOf(all_of)) => all_of.items.iter_mut().for_each(visit),
                RefOr::T(Schema::AnyOf(any_of)) => any_of.items.iter_mut().for_each(visit),
                _ => {}
            }
        }
        if let Some(components) = openapi.components.as_mut() {
            components.schemas.values_mut().for_each(visit);
        }
    }
}

/// The document as YAML, exactly as checked in at `openapi/openapi.yaml`.
pub fn yaml_document() -> String {
    ApiDoc::openapi()
        .to_yaml()
        .expect("the OpenAPI document serialises to YAML")
}

/// The document as JSON.
pub fn json_document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serialises to JSON")
}

/// This document, as YAML.
#[utoipa::path(get, operation_id = "getOpenApiYaml", path = "/openapi.yaml", tag = "service", security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/yaml", body = Object)))]
pub async fn yaml(documents: actix_web::web::Data<Documents>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/yaml"))
        .body(super::connection::sliced(documents.yaml.clone()))
}

/// This document, as JSON.
#[utoipa::path(get, operation_id = "getOpenApiJson", path = "/openapi.json", tag = "service", security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)))]
pub async fn json(documents: actix_web::web::Data<Documents>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(super::connection::sliced(documents.json.clone()))
}

/// Both renderings, generated once at start-up and shared by every response (a request
/// costs no copy of them).
pub struct Documents {
    pub yaml: actix_web::web::Bytes,
    pub json: actix_web::web::Bytes,
}

impl Documents {
    pub fn generate() -> Self {
        Self {
            yaml: yaml_document().into(),
            json: json_document().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_rule_placeholder_becomes_its_pattern() {
        let document = json_document();
        for (placeholder, pattern) in NAME_PATTERNS {
            assert!(
                !document.contains(&format!("\"{placeholder}\"")),
                "{placeholder} left in the document"
            );
            let quoted = serde_json::to_string(pattern).unwrap();
            assert!(document.contains(&quoted), "{pattern} missing");
        }
    }
}
