//! The API browser at /docs: served without a token, from files in the binary, loading
//! nothing from another host.

use reqwest::Url;

use crate::helpers::{TestApp, reply, spawn_app};

/// What `page` refers to with `src="…"` and `href="…"`.
fn references(page: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for (at, _) in page.match_indices(attribute) {
            let rest = &page[at + attribute.len()..];
            found.push(rest[..rest.find('"').unwrap()].to_owned());
        }
    }
    found
}

/// GET without a token, as a browser on a first visit sends it.
async fn fetch(app: &TestApp, url: &Url) -> reqwest::Response {
    app.client
        .get(url.clone())
        .header("accept-encoding", "gzip, deflate, br")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn docs_is_an_html_page_served_without_a_token() {
    let app = spawn_app().await;
    let r = reply(app.client.get(app.url("/docs")).send().await.unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(r.text.contains("<div id=\"swagger-ui\">"), "{}", r.text);
    let policy = r.header("content-security-policy").unwrap_or_default();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
    ] {
        assert!(policy.contains(directive), "{directive} missing: {policy}");
    }
}

/// Everything the page loads is served here without a token, by relative URLs (so a path
/// prefix in front of the service keeps working), and names no other host; the page's
/// script reads the OpenAPI document from /openapi.json.
#[tokio::test]
async fn everything_the_page_loads_comes_from_this_server() {
    let app = spawn_app().await;
    let page_url = Url::parse(&app.url("/docs")).unwrap();
    let page = fetch(&app, &page_url).await.text().await.unwrap();
    let references = references(&page);
    for wanted in ["swagger-ui-bundle.js", "swagger-ui.css", "start.js"] {
        assert!(
            references.iter().any(|r| r.ends_with(wanted)),
            "the page does not load {wanted}: {page}"
        );
    }
    for reference in &references {
        assert!(
            !reference.contains(':') && !reference.starts_with('/'),
            "{reference} is not relative to the page"
        );
        let url = page_url.join(reference).unwrap();
        let r = fetch(&app, &url).await;
        assert_eq!(r.status(), 200, "{url}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{url}");
        if reference.ends_with("start.js") {
            let script = r.text().await.unwrap();
            assert!(!script.contains("://"), "start.js names a host: {script}");
            let document = script
                .split("url: \"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .expect("start.js names the document's URL");
            let document = page_url.join(document).unwrap();
            assert_eq!(document.path(), "/openapi.json");
            let r = reply(fetch(&app, &document).await).await;
            assert_eq!(r.status, 200);
            assert_eq!(r.body["info"]["title"], "flux-catalog");
        }
    }
    // The stylesheet's own references (fonts, images) are inline.
    let css = app
        .client
        .get(app.url("/docs/swagger-ui.css"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(css.contains("url("), "not the stylesheet: {}", &css[..100]);
    for (at, _) in css.match_indices("url(") {
        let target = css[at + 4..].trim_start_matches(['"', '\'']);
        assert!(
            target.starts_with("data:"),
            "the stylesheet loads {}",
            &target[..target.len().min(60)]
        );
    }
}

#[tokio::test]
async fn docs_files_are_gzipped_for_clients_that_take_it_and_plain_for_others() {
    let app = spawn_app().await;
    let url = Url::parse(&app.url("/docs/swagger-ui-bundle.js")).unwrap();
    let gzipped = fetch(&app, &url).await;
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    assert_eq!(gzipped.headers()["vary"], "accept-encoding");
    let gzipped = gzipped.bytes().await.unwrap();
    assert_eq!(gzipped[..2], [0x1f, 0x8b], "not gzip");

    // No Accept-Encoding (curl's default): the file as it is.
    let plain = app.client.get(url.clone()).send().await.unwrap();
    assert_eq!(plain.status(), 200);
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(
        plain.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let plain = plain.text().await.unwrap();
    assert!(plain.contains("SwaggerUIBundle"), "not Swagger UI");
    assert!(plain.len() > gzipped.len() * 2);
}

#[tokio::test]
async fn unknown_paths_under_docs_are_404_and_writes_are_405_without_a_token() {
    let app = spawn_app().await;
    for path in [
        "/docs/nothing.js",
        "/docs/a/b",
        // Parts of Swagger UI's distribution the page does not use are not served.
        "/docs/index.html",
        "/docs/swagger-initializer.js",
    ] {
        let r = reply(app.client.get(app.url(path)).send().await.unwrap()).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        assert_eq!(r.code(), "NOT_FOUND", "{path}");
    }
    for (method, path) in [
        (reqwest::Method::POST, "/docs"),
        (reqwest::Method::DELETE, "/docs/start.js"),
    ] {
        let r = reply(
            app.client
                .request(method.clone(), app.url(path))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 405, "{method} {path}: {}", r.text);
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method} {path}");
    }
}

/// The page's references are relative to `/docs`; from `/docs/` they would miss, so the
/// browser is sent back, by a relative redirect that keeps any path prefix.
#[tokio::test]
async fn docs_with_a_trailing_slash_redirects_to_docs() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (sent, location) in [("/docs/", "../docs"), ("/docs//", "../../docs")] {
        let r = client.get(app.url(sent)).send().await.unwrap();
        assert_eq!(r.status(), 308, "{sent}");
        assert_eq!(r.headers()["location"], location, "{sent}");
        let target = Url::parse(&app.url(sent)).unwrap().join(location).unwrap();
        assert_eq!(target.path(), "/docs", "{sent}");
    }
    let followed = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(followed.url().path(), "/docs");
    assert_eq!(followed.status(), 200);
}
