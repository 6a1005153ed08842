//! The API browser: Swagger UI at `/docs`, on this service's OpenAPI document, from files
//! built into the binary (utoipa-swagger-ui's vendored copy), so it needs neither a token
//! nor the network.
//!
//! The page refers to everything relative to `/docs` itself (`docs/…`, `openapi.json`), so it
//! also works under a path prefix behind a reverse proxy. Those references only resolve from
//! `/docs` without a trailing slash, so `/docs/` redirects there.

use std::borrow::Cow;
use std::io::Read;
use std::sync::Arc;

use actix_web::http::header::{self, AcceptEncoding, ContentEncoding, Encoding, Header};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, HttpResponseBuilder, web};

use super::SentPath;
use super::error::ApiError;

/// The page; its files are under it.
pub const PATH: &str = "/docs";
/// The route of the page's files.
pub const FILES: &str = "/docs/{file:.*}";

const PAGE: &str = include_str!("browser/index.html");
/// Starts Swagger UI; a file rather than an inline script, so the policy can forbid those.
const START: &str = include_str!("browser/start.js");

/// What the page loads from Swagger UI's distribution, with its media type. Nothing else of
/// it is served.
const SWAGGER_FILES: [(&str, &str); 3] = [
    ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    ("swagger-ui.css", "text/css; charset=utf-8"),
    ("favicon-32x32.png", "image/png"),
];

/// Only this origin's scripts, styles, images and requests; no inline scripts, frames,
/// forms or plugins. `data:` images are the icons inlined in Swagger UI's stylesheet.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
form-action 'none'; frame-ancestors 'none'";

fn response(media_type: &str) -> HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response
        .insert_header((header::CONTENT_TYPE, media_type))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    response
}

/// The API browser: Swagger UI on this document. Its files are under `/docs/`.
#[utoipa::path(get, operation_id = "getDocs", path = "/docs", tag = "service", security(()),
    responses((status = 200, description = "The API browser (Swagger UI)", content_type = "text/html", body = String)))]
pub async fn page(request: HttpRequest) -> HttpResponse {
    let sent_with_slashes = request
        .extensions()
        .get::<SentPath>()
        .map_or(0, |SentPath(sent)| {
            sent.len() - sent.trim_end_matches('/').len()
        });
    if sent_with_slashes > 0 {
        // Relative, so that it keeps any path prefix: `/docs/` + `../docs` is `/docs`.
        return HttpResponse::PermanentRedirect()
            .insert_header((
                header::LOCATION,
                format!("{}docs", "../".repeat(sent_with_slashes)),
            ))
            .finish();
    }
    response("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .body(PAGE)
}

/// One of the files the page loads; 404 for anything else.
pub async fn file(request: HttpRequest, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    if name == "start.js" {
        return Ok(response("text/javascript; charset=utf-8").body(START));
    }
    let (media_type, content) = SWAGGER_FILES
        .iter()
        .find(|(file, _)| *file == name)
        .and_then(|(file, media_type)| Some((*media_type, swagger_file(file)?)))
        .ok_or_else(|| ApiError::NotFound(format!("no file {PATH}/{name}")))?;
    let mut response = response(media_type);
    let gzipped = match content {
        Stored::Plain(plain) => return Ok(response.body(plain)),
        Stored::Gzip(gzipped) => gzipped,
    };
    response.insert_header((header::VARY, "accept-encoding"));
    let accepted = AcceptEncoding::parse(&request)
        .ok()
        .and_then(|accepted| accepted.negotiate([Encoding::gzip(), Encoding::identity()].iter()));
    if accepted == Some(Encoding::gzip()) {
        return Ok(response.insert_header(ContentEncoding::Gzip).body(gzipped));
    }
    // Rare (browsers take gzip), so decompressed on demand rather than kept in memory.
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(gzipped)
        .read_to_end(&mut plain)
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context(format!("gunzip {name}"))))?;
    Ok(response.body(plain))
}

/// A file of Swagger UI's distribution as built into the binary.
enum Stored {
    Gzip(&'static [u8]),
    Plain(&'static [u8]),
}

fn swagger_file(name: &str) -> Option<Stored> {
    // The configuration only fills in Swagger UI's own start script, which is not served.
    let file = utoipa_swagger_ui::serve(name, Arc::new(Default::default())).ok()??;
    let Cow::Borrowed(bytes) = file.bytes else {
        return None;
    };
    Some(if file.gzpipped {
        Stored::Gzip(bytes)
    } else {
        Stored::Plain(bytes)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_loads_is_built_in() {
        for (name, _) in SWAGGER_FILES {
            assert!(swagger_file(name).is_some(), "{name} is not built in");
        }
    }
}
