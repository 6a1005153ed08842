//! The REST flow every catalog resource shares: list, get, create, replace (PUT), merge
//! patch (PATCH), delete, history and rollback. Each resource module adds its wire types,
//! its documented handlers (each a call of the flow here) and its routes ([`register`]).

use actix_web::Route;
use actix_web::http::{StatusCode, header};
use actix_web::web::{self, Payload, ServiceConfig};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, HttpResponseBuilder};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

use super::auth::Principal;
use super::body::{self, MediaTypes};
use super::error::ApiError;
use super::metrics::WriteDone;
use super::{AppState, RequestId, get_only, not_allowed, preconditions};
use crate::domain::impact::ClusterChange;
use crate::domain::names::dns1123_label;
use crate::domain::validation::Rejection;
use crate::domain::{Cluster, Namespace, PlatformComponent, RoleBinding};
use crate::domain::{FieldErrors, Rules};
use crate::settings::Mode;
use crate::storage::audit::AuditRecord;
use crate::storage::{
    Documents, Listed, Outcome, Page, Resource, Versioned, WriteContext, Written,
};

/// A resource as the REST API exposes it.
pub trait ApiResource: Resource + 'static {
    /// The collection's path, such as `/clusters`.
    const COLLECTION: &'static str;
    /// The resource as clients send and receive it.
    type Body: Serialize + DeserializeOwned;
    /// The list query: `limit`, `offset` and the resource's filters.
    type Query: ListQuery<Filter = Self::Filter>;

    /// The resource at `revision`, as clients see it.
    fn to_body(&self, revision: i64) -> Self::Body;

    /// Checks every rule and reports every broken one, naming the fields. A `revision` in
    /// the body is not content; the flow above treats it as a precondition.
    fn from_body(body: Self::Body, rules: &Rules) -> Result<Self, FieldErrors>;
}

/// The resource at `revision` as clients see it: what the audit log and history keep.
pub fn document<R: ApiResource>(resource: &R, revision: i64) -> Value {
    serde_json::to_value(resource.to_body(revision)).expect("bodies serialise")
}

/// [`document`] for every kind, for writes of a whole catalog.
pub const DOCUMENTS: Documents = Documents {
    platform_component: document::<PlatformComponent>,
    namespace: document::<Namespace>,
    rolebinding: document::<RoleBinding>,
    cluster: document::<Cluster>,
};

/// A list endpoint's query parameters.
pub trait ListQuery: DeserializeOwned {
    type Filter;
    fn limit(&self) -> Option<i64>;
    fn offset(&self) -> Option<i64>;
    /// The filters as given, to carry them into `Link` headers.
    fn filter_params(&self) -> Vec<(&'static str, String)>;
    /// Filter values no resource can have, so a typo is a 400, not an empty list.
    fn check(&self, _rules: &Rules) -> FieldErrors {
        FieldErrors::new()
    }
    fn into_filter(self) -> Self::Filter;
}

/// The list query of resources without filters.
#[derive(Debug, Deserialize, IntoParams)]
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

pub fn page<Q: ListQuery>(query: &Q) -> Result<Page, ApiError> {
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

/// A page of items as a JSON array, with `X-Total-Count` and `Link`s to the neighbouring
/// pages of `path` that keep the filters.
pub fn page_response<T: Serialize>(
    path: &str,
    filters: &[(&'static str, String)],
    page: Page,
    total: i64,
    items: &[T],
) -> HttpResponse {
    let link_to = |offset: i64, rel: &str| {
        let mut params = form_urlencoded::Serializer::new(String::new());
        for (name, value) in filters {
            params.append_pair(name, value);
        }
        params.append_pair("limit", &page.limit.to_string());
        params.append_pair("offset", &offset.to_string());
        format!("<{path}?{}>; rel=\"{rel}\"", params.finish())
    };
    let mut links = Vec::new();
    if page.offset + (items.len() as i64) < total {
        links.push(link_to(page.offset + page.limit, "next"));
    }
    if page.offset > 0 {
        links.push(link_to((page.offset - page.limit).max(0), "prev"));
    }
    let mut response = HttpResponse::Ok();
    response.insert_header((TOTAL_COUNT_HEADER, total.to_string()));
    if !links.is_empty() {
        response.insert_header((header::LINK, links.join(", ")));
    }
    response.json(items)
}

/// `GET /{collection}`: a JSON array, with `X-Total-Count` and a `Link` to the neighbouring pages.
pub async fn list<R: ApiResource>(
    state: &AppState,
    request: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query: R::Query = body::parse_query(request.query_string())?;
    let page = page(&query)?;
    let refused = query.check(&state.rules);
    if !refused.is_empty() {
        return Err(ApiError::InvalidRequest(refused));
    }
    let filters = query.filter_params();
    let listed = state.store.list::<R>(&query.into_filter(), page).await?;
    let bodies: Vec<R::Body> = listed
        .items
        .iter()
        .map(|v| v.value.to_body(v.revision))
        .collect();
    Ok(page_response(
        R::COLLECTION,
        &filters,
        page,
        listed.total,
        &bodies,
    ))
}

fn not_found<R: ApiResource>(id: &str) -> ApiError {
    ApiError::NotFound(format!("no {} with id {id:?}", R::KIND.label()))
}

/// Ids that are not valid names cannot exist: 404 without asking the database, which also
/// keeps bytes PostgreSQL refuses (NUL) away from it.
fn possible_id<R: ApiResource>(id: &str) -> Result<&str, ApiError> {
    dns1123_label(id)
        .map(|()| id)
        .map_err(|_| not_found::<R>(id))
}

/// `GET /{collection}/{id}`, with its `ETag`; 304 when `If-None-Match` already has it.
pub async fn get<R: ApiResource>(
    state: &AppState,
    request: &HttpRequest,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let id = possible_id::<R>(id)?;
    let Versioned { revision, value } = state
        .store
        .get::<R>(id)
        .await?
        .ok_or_else(|| not_found::<R>(id))?;
    if preconditions::not_modified(request, revision) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, preconditions::etag(revision)))
            .finish());
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, preconditions::etag(revision)))
        .json(value.to_body(revision)))
}

/// The query of every write.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WriteQuery {
    /// Check everything and report what would happen, including what changes for Flux,
    /// without writing anything.
    #[serde(default)]
    dry_run: bool,
    /// `POST /clusters` only: also issue a credential with scope `cluster:<cluster_dns>`,
    /// named `cluster-<id>`; the response is then `{cluster, credential}`, the secret in
    /// `credential.token`, shown once. Deleting the cluster revokes it. Not with `dry_run`
    /// nor `X-Flux-Changes`.
    #[serde(default)]
    issue_token: bool,
}

/// Asks a real write to answer with a [`WriteReport`] instead of just the resource.
pub const CHANGES_HEADER: &str = "x-flux-changes";
pub const TOTAL_COUNT_HEADER: &str = "x-total-count";
/// On every write response: how many clusters' Flux inputs the write changes.
pub const CHANGED_CLUSTERS_HEADER: &str = "x-flux-changed-clusters";

fn write_context(state: &AppState, request: &HttpRequest) -> Result<WriteContext, ApiError> {
    let (context, issue_token) = write_context_issuing(state, request)?;
    if issue_token {
        return Err(ApiError::InvalidRequest(FieldErrors::single(
            "issue_token",
            "only POST /clusters issues a credential",
        )));
    }
    Ok(context)
}

/// The write's context, and whether `issue_token` asks for a cluster credential.
fn write_context_issuing(
    state: &AppState,
    request: &HttpRequest,
) -> Result<(WriteContext, bool), ApiError> {
    let query: WriteQuery = body::parse_query(request.query_string())?;
    let report = wants_report(request)?;
    if query.issue_token && report {
        return Err(ApiError::InvalidRequest(FieldErrors::single(
            "issue_token",
            "a change report has no room for the credential; leave out X-Flux-Changes",
        )));
    }
    if query.issue_token && query.dry_run {
        return Err(ApiError::InvalidRequest(FieldErrors::single(
            "issue_token",
            "a dry run issues no credential; leave out one of dry_run and issue_token",
        )));
    }
    let extensions = request.extensions();
    Ok((
        WriteContext {
            actor: extensions
                .get::<Principal>()
                .map_or_else(|| "unknown".to_owned(), |p| p.name.to_string()),
            request_id: extensions.get::<RequestId>().map(|r| r.0.clone()),
            dry_run: query.dry_run,
            limits: state.limits,
        },
        query.issue_token,
    ))
}

/// What a write did, for dry runs and for writes that ask with `X-Flux-Changes: true`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WriteReport {
    /// True when nothing was written.
    pub dry_run: bool,
    pub outcome: OutcomeName,
    /// The revision the write produced (would produce, for a dry run).
    pub revision: i64,
    /// The resource after the write; for a delete, the deleted resource.
    #[schema(value_type = Object)]
    pub resource: Value,
    /// Every cluster whose Flux inputs change, with how.
    #[schema(value_type = Vec<super::changes::ClusterChangeDoc>)]
    pub changes: Vec<ClusterChange>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeName {
    Created,
    Updated,
    /// Nothing differed; no new revision.
    Unchanged,
    Deleted,
}

impl OutcomeName {
    /// As serialised: `created`, `updated`, `unchanged`, `deleted`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Unchanged => "unchanged",
            Self::Deleted => "deleted",
        }
    }
}

impl From<Outcome> for OutcomeName {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Created => Self::Created,
            Outcome::Updated => Self::Updated,
            Outcome::Unchanged => Self::Unchanged,
            Outcome::Deleted => Self::Deleted,
        }
    }
}

/// Whether the request asks for a report (`X-Flux-Changes: true`); 400 for values other
/// than `true` and `false`, so a typo is not silently read as "no".
fn wants_report(request: &HttpRequest) -> Result<bool, ApiError> {
    match request
        .headers()
        .get(CHANGES_HEADER)
        .map(|v| v.to_str().map(str::trim))
    {
        None => Ok(false),
        Some(Ok(value)) if value.eq_ignore_ascii_case("true") => Ok(true),
        Some(Ok(value)) if value.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(ApiError::InvalidRequest(FieldErrors::single(
            "X-Flux-Changes",
            "must be true or false",
        ))),
    }
}

/// Makes a committed write visible in this server's own snapshot before its response
/// leaves: the writer's next Flux read sees it. Other replicas follow through the change log.
async fn refresh_own_snapshot(state: &AppState, context: &WriteContext) {
    if !context.dry_run
        && let Err(error) = state.snapshot.sync(crate::snapshot::Cause::Write).await
    {
        log::warn!("the write committed, but the snapshot could not follow it yet: {error}");
    }
}

/// The resource (with `ETag`, and `Location` when created), or a [`WriteReport`] for dry
/// runs and on request.
/// The response to a write; with `extra` (a cluster's issued credential), an object of
/// the resource, under its kind's name, and `extra`.
fn write_response<R: ApiResource>(
    request: &HttpRequest,
    context: &WriteContext,
    written: Written<R>,
    extra: Option<(&str, Value)>,
) -> HttpResponse {
    let status = match written.outcome {
        Outcome::Created if !context.dry_run => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    let mut response = HttpResponseBuilder::new(status);
    response.insert_header((CHANGED_CLUSTERS_HEADER, written.changes.len().to_string()));
    let shown_revision = match written.outcome {
        Outcome::Deleted => written.resource.revision,
        _ => written.revision,
    };
    let resource = written.resource.value.to_body(shown_revision);
    if !context.dry_run && written.outcome != Outcome::Deleted {
        response.insert_header((header::ETAG, preconditions::etag(written.revision)));
    }
    if written.outcome == Outcome::Created && !context.dry_run {
        response.insert_header((
            header::LOCATION,
            format!("{}/{}", R::COLLECTION, written.resource.value.id()),
        ));
    }
    let outcome = OutcomeName::from(written.outcome);
    let mut response = if context.dry_run || wants_report(request).unwrap_or(false) {
        response.json(WriteReport {
            dry_run: context.dry_run,
            outcome,
            revision: written.revision,
            resource: serde_json::to_value(resource).expect("bodies serialise"),
            changes: written.changes,
        })
    } else if let Some((name, value)) = extra {
        let resource = serde_json::to_value(resource).expect("bodies serialise");
        response.json(serde_json::json!({ R::KIND.name(): resource, name: value }))
    } else {
        response.json(resource)
    };
    response.extensions_mut().insert(WriteDone {
        outcome: outcome.label(),
        dry_run: context.dry_run,
    });
    response
}

/// `POST /{collection}`: 201 with the stored resource, its `Location` and `ETag`.
pub async fn create<R: ApiResource>(
    state: &AppState,
    request: &HttpRequest,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    // Refuses `issue_token`, which only clusters use.
    write_context(state, request)?;
    create_then::<R, _>(state, request, payload, async |_, _| Ok(None)).await
}

/// [`create`], then `issue` for a created resource when the query has `issue_token=true`
/// (nothing else may ask for it): the response is then the resource and, as
/// `credential`, what `issue` returns.
pub async fn create_then<R: ApiResource, F>(
    state: &AppState,
    request: &HttpRequest,
    payload: Payload,
    issue: F,
) -> Result<HttpResponse, ApiError>
where
    F: AsyncFnOnce(&R, &WriteContext) -> Result<Option<Value>, ApiError>,
{
    let (context, issue_token) = write_context_issuing(state, request)?;
    let bytes = body::read(request, payload, &state.bodies, MediaTypes::Json).await?;
    let body: R::Body = body::parse_document(&bytes)?;
    let resource = R::from_body(body, &state.rules).map_err(ApiError::ValidationFailed)?;
    let preconditions = preconditions::from_headers(request)?;
    let written = state
        .store
        .create(resource, document::<R>, &preconditions, &context)
        .await?;
    refresh_own_snapshot(state, &context).await;
    let extra = match (issue_token, written.outcome) {
        (true, Outcome::Created) => issue(&written.resource.value, &context)
            .await?
            .map(|credential| ("credential", credential)),
        _ => None,
    };
    Ok(write_response(request, &context, written, extra))
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
/// inside the write's transaction, so concurrent updates never lose each other's changes;
/// every rule is checked on the result.
pub async fn update<R: ApiResource>(
    state: &AppState,
    request: &HttpRequest,
    id: &str,
    payload: Payload,
    kind: UpdateKind,
) -> Result<HttpResponse, ApiError> {
    let id = possible_id::<R>(id)?;
    let context = write_context(state, request)?;
    let media_types = match kind {
        UpdateKind::Replace => MediaTypes::Json,
        UpdateKind::MergePatch => MediaTypes::MergePatch,
    };
    let bytes = body::read(request, payload, &state.bodies, media_types).await?;
    let changes = body::parse_object(&bytes)?;
    if let Some(new_id) = changes.get("id")
        && new_id.as_str() != Some(id)
    {
        return Err(ApiError::ValidationFailed(FieldErrors::single(
            "id",
            format!("cannot be changed: the path names {id:?}; create a new resource instead"),
        )));
    }
    let mut preconditions = preconditions::from_headers(request)?;
    preconditions.revision = match changes.get("revision") {
        None | Some(Value::Null) => None,
        Some(revision) => Some(revision.as_i64().ok_or_else(|| {
            ApiError::InvalidRequest(FieldErrors::single(
                "revision",
                "must be the integer revision the change is based on",
            ))
        })?),
    };
    let rules = &state.rules;
    let written = state
        .store
        .update::<R>(id, document::<R>, &preconditions, &context, |current| {
            // The document's revision is not content; the precondition above covers it.
            let mut fields = document(current, 0);
            match kind {
                UpdateKind::Replace => replace_fields(&mut fields, changes),
                UpdateKind::MergePatch => merge_patch(&mut fields, &Value::Object(changes)),
            }
            let body: R::Body = body::from_value(fields).map_err(Rejection::Malformed)?;
            R::from_body(body, rules).map_err(Rejection::Invalid)
        })
        .await?;
    refresh_own_snapshot(state, &context).await;
    Ok(write_response(request, &context, written, None))
}

/// `DELETE /{collection}/{id}`: 200 with what was deleted.
pub async fn delete<R: ApiResource>(
    state: &AppState,
    request: &HttpRequest,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let id = possible_id::<R>(id)?;
    let context = write_context(state, request)?;
    let preconditions = preconditions::from_headers(request)?;
    let written = state
        .store
        .delete::<R>(id, document::<R>, &preconditions, &context)
        .await?;
    refresh_own_snapshot(state, &context).await;
    Ok(write_response(request, &context, written, None))
}

/// One revision of a resource, as its history lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub revision: i64,
    /// When it was written (RFC 3339).
    pub at: String,
    /// The credential that wrote it.
    pub actor: String,
    /// `create`, `update`, `delete` or `rollback`.
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The resource at this revision; `null` for the revision that deleted it.
    #[schema(value_type = Option<Object>)]
    pub resource: Option<Value>,
}

pub fn timestamp(at: time::OffsetDateTime) -> String {
    at.format(&Rfc3339).expect("timestamps format as RFC 3339")
}

/// `GET /{collection}/{id}/history`: revisions, newest first; those of a deleted resource too.
pub async fn history<R: ApiResource>(
    state: &AppState,
    request: &HttpRequest,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let id = possible_id::<R>(id)?;
    let query: PagingQuery = body::parse_query(request.query_string())?;
    let page = page(&query)?;
    let Listed { items, total } = state.store.history(R::KIND.name(), id, page).await?;
    if total == 0 && state.store.get::<R>(id).await?.is_none() {
        return Err(ApiError::NotFound(format!(
            "no {} with id {id:?}, and none in the history",
            R::KIND.label()
        )));
    }
    let entries: Vec<HistoryEntry> = items
        .into_iter()
        .map(|record: AuditRecord| HistoryEntry {
            revision: record.revision,
            at: timestamp(record.at),
            actor: record.actor,
            action: record.action,
            request_id: record.request_id,
            resource: record.after,
        })
        .collect();
    let path = format!("{}/{id}/history", R::COLLECTION);
    Ok(page_response(&path, &[], page, total, &entries))
}

/// The body of a rollback.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The revision whose content becomes the current one again.
    #[schema(minimum = 1)]
    pub revision: i64,
}

/// `POST /{collection}/{id}/rollback`: the content of an earlier revision becomes current
/// again, as a new revision, checked like any write.
pub async fn rollback<R: ApiResource>(
    state: &AppState,
    request: &HttpRequest,
    id: &str,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    let id = possible_id::<R>(id)?;
    let context = write_context(state, request)?;
    let bytes = body::read(request, payload, &state.bodies, MediaTypes::Json).await?;
    let RollbackRequest { revision } = body::parse_document(&bytes)?;
    let record = state
        .store
        .revision(R::KIND.name(), id, revision)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no revision {revision} of {} {id:?}",
                R::KIND.label()
            ))
        })?;
    let Some(content) = record.after else {
        return Err(ApiError::ValidationFailed(FieldErrors::single(
            "revision",
            format!(
                "revision {revision} is the deletion of {id:?}; roll back to a revision before it"
            ),
        )));
    };
    // The stored document passed the rules of its day; today's (the configured tiers, say)
    // may refuse it.
    let reinterpret = ApiError::ValidationFailed;
    let body: R::Body = body::from_value(content).map_err(reinterpret)?;
    let resource = R::from_body(body, &state.rules).map_err(reinterpret)?;
    let preconditions = preconditions::from_headers(request)?;
    let written = state
        .store
        .restore(id, resource, document::<R>, &preconditions, &context)
        .await?;
    refresh_own_snapshot(state, &context).await;
    Ok(write_response(request, &context, written, None))
}

/// PUT: each field sent replaces the stored one; `null` resets it to its default (and is
/// refused for required fields), as in a merge patch.
fn replace_fields(document: &mut Value, changes: Map<String, Value>) {
    let fields = document.as_object_mut().expect("resources are objects");
    for (key, value) in changes {
        if value.is_null() {
            fields.remove(&key);
        } else {
            fields.insert(key, value);
        }
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

/// The routes of one resource, each a handler of its module.
pub struct Routes {
    pub list: Route,
    pub get: Route,
    pub history: Route,
    pub create: Route,
    pub replace: Route,
    pub patch: Route,
    pub delete: Route,
    pub rollback: Route,
}

/// Registers a resource's collection, item, history and rollback paths under `collection`.
/// Write routes exist only in crud mode, so a read-only server has no path to a write
/// handler at all; other methods get 405 naming those the path serves.
pub fn register(config: &mut ServiceConfig, mode: Mode, collection: &str, routes: Routes) {
    let read_only = mode == Mode::ReadOnly;
    let item = format!("{collection}/{{id}}");
    let mut collection_resource = web::resource(collection).route(routes.list);
    let mut item_resource = web::resource(item.as_str()).route(routes.get);
    let history = get_only(&format!("{item}/history")).route(routes.history);
    let mut rollback = web::resource(format!("{item}/rollback"));
    let (collection_allows, item_allows, rollback_allows) = if read_only {
        ("GET, HEAD", "GET, HEAD", "")
    } else {
        collection_resource = collection_resource.route(routes.create);
        item_resource = item_resource
            .route(routes.replace)
            .route(routes.patch)
            .route(routes.delete);
        rollback = rollback.route(routes.rollback);
        ("GET, HEAD, POST", "GET, HEAD, PUT, PATCH, DELETE", "POST")
    };
    config
        .service(
            collection_resource.default_service(web::to(not_allowed(collection_allows, read_only))),
        )
        .service(item_resource.default_service(web::to(not_allowed(item_allows, read_only))))
        .service(history)
        .service(rollback.default_service(web::to(not_allowed(rollback_allows, read_only))));
}

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
    fn outcome_labels_are_the_serialised_names() {
        for outcome in [
            OutcomeName::Created,
            OutcomeName::Updated,
            OutcomeName::Unchanged,
            OutcomeName::Deleted,
        ] {
            assert_eq!(
                serde_json::to_value(outcome).unwrap(),
                json!(outcome.label())
            );
        }
    }

    #[test]
    fn replace_keeps_fields_that_are_not_sent() {
        let mut document = json!({"a": 1, "b": {"x": 1}, "c": 3});
        let changes = json!({"b": {"y": 2}, "c": null});
        replace_fields(&mut document, changes.as_object().unwrap().clone());
        assert_eq!(
            document,
            json!({"a": 1, "b": {"y": 2}}),
            "PUT replaces a field whole; null resets it"
        );
    }
}
