//! The REST flow every catalog resource shares: list, get, create, replace (PUT), merge
//! patch (PATCH) and delete. Each resource module adds its wire types and documented
//! handlers on top.

use actix_web::http::header;
use actix_web::web::Payload;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::AppState;
use super::body::{self, MediaTypes};
use super::error::ApiError;
use crate::domain::validation::Rejection;
use crate::domain::{Environments, FieldErrors};
use crate::storage::{Page, Resource};

/// What validating a resource may depend on besides the resource itself.
#[derive(Debug, Clone)]
pub struct Rules {
    pub environments: Environments,
}

/// A resource as the REST API exposes it.
pub trait ApiResource: Resource + 'static {
    /// The collection's path, such as `/clusters`.
    const COLLECTION: &'static str;
    /// The resource as clients send and receive it.
    type Body: Serialize + DeserializeOwned;
    /// The list query: `limit`, `offset` and the resource's filters.
    type Query: ListQuery<Filter = Self::Filter>;

    fn to_body(&self) -> Self::Body;

    /// Checks every rule and reports every broken one, naming the fields.
    fn from_body(body: Self::Body, rules: &Rules) -> Result<Self, FieldErrors>;
}

/// A list endpoint's query parameters.
pub trait ListQuery: DeserializeOwned {
    type Filter;
    fn limit(&self) -> Option<i64>;
    fn offset(&self) -> Option<i64>;
    /// The filters as given, to carry them into `Link` headers.
    fn filter_params(&self) -> Vec<(&'static str, String)>;
    fn into_filter(self) -> Self::Filter;
}

/// The list query of resources without filters.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PagingQuery {
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Items to skip (default 0).
    #[param(minimum = 0)]
    offset: Option<i64>,
}

impl ListQuery for PagingQuery {
    type Filter = ();
    fn limit(&self) -> Option<i64> {
        self.limit
    }
    fn offset(&self) -> Option<i64> {
        self.offset
    }
    fn filter_params(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    fn into_filter(self) {}
}

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

fn page<Q: ListQuery>(query: &Q) -> Result<Page, ApiError> {
    let mut errors = FieldErrors::new();
    let limit = query.limit().unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        errors.add(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}, got {limit}"),
        );
    }
    let offset = query.offset().unwrap_or(0);
    if offset < 0 {
        errors.add("offset", format!("must not be negative, got {offset}"));
    }
    errors
        .into_result(|| Page { limit, offset })
        .map_err(ApiError::InvalidRequest)
}

/// `GET /{collection}`: a JSON array, with `X-Total-Count` and a `Link` to the neighbouring pages.
pub async fn list<R: ApiResource>(
    state: &AppState,
    request: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query: R::Query = body::parse_query(request.query_string())?;
    let page = page(&query)?;
    let filter_params = query.filter_params();
    let listed = state.store.list::<R>(&query.into_filter(), page).await?;
    let bodies: Vec<R::Body> = listed.items.iter().map(R::to_body).collect();

    let link_to = |offset: i64, rel: &str| {
        let mut params = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &filter_params {
            params.append_pair(name, value);
        }
        params.append_pair("limit", &page.limit.to_string());
        params.append_pair("offset", &offset.to_string());
        format!("<{}?{}>; rel=\"{rel}\"", R::COLLECTION, params.finish())
    };
    let mut links = Vec::new();
    if page.offset + (bodies.len() as i64) < listed.total {
        links.push(link_to(page.offset + page.limit, "next"));
    }
    if page.offset > 0 {
        links.push(link_to((page.offset - page.limit).max(0), "prev"));
    }
    let mut response = HttpResponse::Ok();
    response.insert_header(("X-Total-Count", listed.total.to_string()));
    if !links.is_empty() {
        response.insert_header((header::LINK, links.join(", ")));
    }
    Ok(response.json(bodies))
}

fn not_found<R: ApiResource>(id: &str) -> ApiError {
    ApiError::NotFound(format!("no {} with id {id:?}", R::KIND))
}

pub async fn get<R: ApiResource>(state: &AppState, id: &str) -> Result<HttpResponse, ApiError> {
    let resource = state
        .store
        .get::<R>(id)
        .await?
        .ok_or_else(|| not_found::<R>(id))?;
    Ok(HttpResponse::Ok().json(resource.to_body()))
}

/// `POST /{collection}`: 201 with the stored resource and its `Location`.
pub async fn create<R: ApiResource>(
    state: &AppState,
    request: &HttpRequest,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    let bytes = body::read(request, payload, state.max_body_bytes, MediaTypes::Json).await?;
    let body: R::Body = body::parse_document(&bytes)?;
    let resource = R::from_body(body, &state.rules).map_err(ApiError::ValidationFailed)?;
    state.store.create(&resource).await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("{}/{}", R::COLLECTION, resource.id()),
        ))
        .json(resource.to_body()))
}

/// How a partial document changes the stored resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    /// `PUT`: top-level fields present replace, fields omitted keep their value.
    Replace,
    /// `PATCH`: RFC 7396 JSON merge patch; `null` removes.
    MergePatch,
}

/// `PUT` or `PATCH /{collection}/{id}`. The new content is computed from the stored one
/// inside the write's transaction, under a row lock, so concurrent updates never lose each
/// other's changes; every rule is checked on the result.
pub async fn update<R: ApiResource>(
    state: &AppState,
    request: &HttpRequest,
    id: &str,
    payload: Payload,
    kind: UpdateKind,
) -> Result<HttpResponse, ApiError> {
    let media_types = match kind {
        UpdateKind::Replace => MediaTypes::Json,
        UpdateKind::MergePatch => MediaTypes::MergePatch,
    };
    let bytes = body::read(request, payload, state.max_body_bytes, media_types).await?;
    let changes = body::parse_object(&bytes)?;
    if let Some(new_id) = changes.get("id")
        && new_id.as_str() != Some(id)
    {
        return Err(ApiError::ValidationFailed(FieldErrors::single(
            "id",
            format!("cannot be changed: the path names {id:?}; create a new resource instead"),
        )));
    }
    let rules = &state.rules;
    let updated = state
        .store
        .update::<R>(id, |current| {
            let mut document = serde_json::to_value(current.to_body()).expect("bodies serialise");
            match kind {
                UpdateKind::Replace => replace_fields(&mut document, changes),
                UpdateKind::MergePatch => merge_patch(&mut document, &Value::Object(changes)),
            }
            let body: R::Body = body::from_value(document).map_err(Rejection::Malformed)?;
            R::from_body(body, rules).map_err(Rejection::Invalid)
        })
        .await?
        .ok_or_else(|| not_found::<R>(id))?;
    Ok(HttpResponse::Ok().json(updated.to_body()))
}

/// `DELETE /{collection}/{id}`: 200 with what was deleted.
pub async fn delete<R: ApiResource>(state: &AppState, id: &str) -> Result<HttpResponse, ApiError> {
    let deleted = state
        .store
        .delete::<R>(id)
        .await?
        .ok_or_else(|| not_found::<R>(id))?;
    Ok(HttpResponse::Ok().json(deleted.to_body()))
}

fn replace_fields(document: &mut Value, changes: Map<String, Value>) {
    let fields = document.as_object_mut().expect("resources are objects");
    for (key, value) in changes {
        fields.insert(key, value);
    }
}

/// RFC 7396: objects merge recursively, `null` removes a member, anything else replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target = target.as_object_mut().expect("made an object above");
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Defines the documented handlers of one resource (`list`, `get`, `create`, `replace`,
/// `patch`, `delete`), each delegating to the generic flow above. The resource module
/// supplies its types, its paths and the sentences its documentation needs.
macro_rules! resource_handlers {
    (
        resource: $resource:ident,
        body: $body:ident,
        update: $update:ident,
        query: $query:ident,
        tag: $tag:literal,
        collection: $collection:literal,
        item: $item:literal,
        operation: ($singular:literal, $plural:literal),
        id: $id_doc:literal,
        summaries: {
            list: $list_doc:literal,
            get: $get_doc:literal,
            create: $create_doc:literal,
            replace: $replace_doc:literal,
            patch: $patch_doc:literal,
            delete: $delete_doc:literal $(,)?
        } $(,)?
    ) => {
        #[utoipa::path(get, operation_id = concat!("list", $plural), path = $collection, tag = $tag,
            summary = $list_doc, params($query),
            responses(
                (status = 200, description = "One page, sorted by id", body = [$body],
                    headers(("X-Total-Count" = i64, description = "Items matching the filters, on all pages"),
                            ("Link" = String, description = "RFC 8288 links to the next and previous pages"))),
                $crate::http::docs::QueryErrors, $crate::http::docs::AuthErrors))]
        pub async fn list(
            state: actix_web::web::Data<$crate::http::AppState>,
            request: actix_web::HttpRequest,
        ) -> Result<actix_web::HttpResponse, $crate::http::error::ApiError> {
            $crate::http::crud::list::<$resource>(&state, &request).await
        }

        #[utoipa::path(get, operation_id = concat!("get", $singular), path = $item, tag = $tag,
            summary = $get_doc, params(("id" = String, Path, description = $id_doc)),
            responses((status = 200, description = "The resource", body = $body),
                $crate::http::docs::NotFoundError, $crate::http::docs::AuthErrors))]
        pub async fn get(
            state: actix_web::web::Data<$crate::http::AppState>,
            id: actix_web::web::Path<String>,
        ) -> Result<actix_web::HttpResponse, $crate::http::error::ApiError> {
            $crate::http::crud::get::<$resource>(&state, &id).await
        }

        #[utoipa::path(post, operation_id = concat!("create", $singular), path = $collection, tag = $tag,
            summary = $create_doc, request_body = $body,
            responses(
                (status = 201, description = "Created", body = $body,
                    headers(("Location" = String, description = "Path of the new resource"))),
                $crate::http::docs::BodyErrors, $crate::http::docs::ConflictError,
                $crate::http::docs::WriteErrors, $crate::http::docs::AuthErrors))]
        pub async fn create(
            state: actix_web::web::Data<$crate::http::AppState>,
            request: actix_web::HttpRequest,
            payload: actix_web::web::Payload,
        ) -> Result<actix_web::HttpResponse, $crate::http::error::ApiError> {
            $crate::http::crud::create::<$resource>(&state, &request, payload).await
        }

        #[utoipa::path(put, operation_id = concat!("replace", $singular), path = $item, tag = $tag,
            summary = $replace_doc, params(("id" = String, Path, description = $id_doc)),
            request_body = $update,
            responses((status = 200, description = "The updated resource", body = $body),
                $crate::http::docs::BodyErrors, $crate::http::docs::NotFoundError,
                $crate::http::docs::ConflictError, $crate::http::docs::WriteErrors,
                $crate::http::docs::AuthErrors))]
        pub async fn replace(
            state: actix_web::web::Data<$crate::http::AppState>,
            request: actix_web::HttpRequest,
            id: actix_web::web::Path<String>,
            payload: actix_web::web::Payload,
        ) -> Result<actix_web::HttpResponse, $crate::http::error::ApiError> {
            $crate::http::crud::update::<$resource>(
                &state, &request, &id, payload, $crate::http::crud::UpdateKind::Replace,
            )
            .await
        }

        #[utoipa::path(patch, operation_id = concat!("patch", $singular), path = $item, tag = $tag,
            summary = $patch_doc, params(("id" = String, Path, description = $id_doc)),
            request_body(content = $update, content_type = "application/merge-patch+json"),
            responses((status = 200, description = "The updated resource", body = $body),
                $crate::http::docs::BodyErrors, $crate::http::docs::NotFoundError,
                $crate::http::docs::ConflictError, $crate::http::docs::WriteErrors,
                $crate::http::docs::AuthErrors))]
        pub async fn patch(
            state: actix_web::web::Data<$crate::http::AppState>,
            request: actix_web::HttpRequest,
            id: actix_web::web::Path<String>,
            payload: actix_web::web::Payload,
        ) -> Result<actix_web::HttpResponse, $crate::http::error::ApiError> {
            $crate::http::crud::update::<$resource>(
                &state, &request, &id, payload, $crate::http::crud::UpdateKind::MergePatch,
            )
            .await
        }

        #[utoipa::path(delete, operation_id = concat!("delete", $singular), path = $item, tag = $tag,
            summary = $delete_doc, params(("id" = String, Path, description = $id_doc)),
            responses((status = 200, description = "The deleted resource", body = $body),
                $crate::http::docs::NotFoundError, $crate::http::docs::DeleteConflictError,
                $crate::http::docs::WriteErrors, $crate::http::docs::AuthErrors))]
        pub async fn delete(
            state: actix_web::web::Data<$crate::http::AppState>,
            id: actix_web::web::Path<String>,
        ) -> Result<actix_web::HttpResponse, $crate::http::error::ApiError> {
            $crate::http::crud::delete::<$resource>(&state, &id).await
        }
    };
}

pub(crate) use resource_handlers;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The examples of RFC 7396, appendix A.
    #[test]
    fn merge_patch_follows_rfc_7396() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (target, patch, expected) in cases {
            let mut result = target.clone();
            merge_patch(&mut result, &patch);
            assert_eq!(result, expected, "{target} + {patch}");
        }
    }

    #[test]
    fn replace_keeps_fields_that_are_not_sent() {
        let mut document = json!({"a": 1, "b": {"x": 1}});
        replace_fields(
            &mut document,
            json!({"b": {"y": 2}}).as_object().unwrap().clone(),
        );
        assert_eq!(
            document,
            json!({"a": 1, "b": {"y": 2}}),
            "PUT replaces a field whole"
        );
    }
}
