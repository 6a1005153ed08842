//! Every kind of bad input gets a 4xx that names the field, and nothing is written.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, cluster, component, reply, spawn_app, spawn_app_with};

/// One refused request: what is sent, and what must come back.
struct Case {
    what: &'static str,
    method: Method,
    path: &'static str,
    body: Body,
    status: u16,
    code: &'static str,
    /// The field the problem's `errors` must name (`None`: no field-level errors expected).
    field: Option<&'static str>,
}

enum Body {
    Json(Value),
    Raw(&'static str, &'static str),
}

fn case(
    what: &'static str,
    path: &'static str,
    body: Value,
    status: u16,
    code: &'static str,
    field: &'static str,
) -> Case {
    Case {
        what,
        method: Method::POST,
        path,
        body: Body::Json(body),
        status,
        code,
        field: Some(field),
    }
}

/// `base` with the value at `pointer` set (added if the parent object lacks it).
fn with(mut base: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("a JSON pointer");
    match base
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent} in the base document"))
    {
        Value::Object(map) => {
            map.insert(key.to_owned(), value);
        }
        Value::Array(items) => items[key.parse::<usize>().unwrap()] = value,
        other => panic!("{parent} is {other}"),
    }
    base
}

fn added(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

fn without(mut base: Value, key: &str) -> Value {
    base.as_object_mut().unwrap().remove(key);
    base
}

/// A catalog the cases can reference: component `a`, namespace `ns`, rolebinding `rb`, and
/// cluster `c1` using `a`.
async fn catalog(app: &TestApp) {
    app.create("/platform_components", component("a", &[]))
        .await;
    app.create("/namespaces", json!({"id": "ns"})).await;
    app.create("/rolebindings", json!({"id": "rb", "role": "view"}))
        .await;
    app.create("/clusters", cluster("c1", &["a"])).await;
}

fn cases() -> Vec<Case> {
    let c = || cluster("c2", &["a"]);
    let p = || component("b", &["a"]);
    vec![
        // Not JSON, or not the right shape: 400.
        Case {
            what: "malformed JSON",
            method: Method::POST,
            path: "/clusters",
            body: Body::Raw("application/json", "{\"id\": "),
            status: 400,
            code: "MALFORMED_JSON",
            field: None,
        },
        Case {
            what: "empty body",
            method: Method::POST,
            path: "/clusters",
            body: Body::Raw("application/json", ""),
            status: 400,
            code: "MALFORMED_JSON",
            field: None,
        },
        Case {
            what: "trailing garbage",
            method: Method::POST,
            path: "/namespaces",
            body: Body::Raw("application/json", "{\"id\": \"x\"} x"),
            status: 400,
            code: "MALFORMED_JSON",
            field: None,
        },
        Case {
            what: "an array instead of an object",
            method: Method::POST,
            path: "/clusters",
            body: Body::Json(json!([c()])),
            status: 400,
            code: "INVALID_REQUEST",
            field: Some("body"),
        },
        case(
            "wrong type in a nested field",
            "/clusters",
            with(c(), "/platform_components/0/enabled", json!("yes")),
            400,
            "INVALID_REQUEST",
            "platform_components[0].enabled",
        ),
        case(
            "wrong type at the top",
            "/platform_components",
            with(p(), "/cluster_env_enabled", json!(1)),
            400,
            "INVALID_REQUEST",
            "cluster_env_enabled",
        ),
        case(
            "string where a list belongs",
            "/platform_components",
            with(p(), "/depends_on", json!("a")),
            400,
            "INVALID_REQUEST",
            "depends_on",
        ),
        case(
            "unknown top-level field",
            "/clusters",
            added(c(), "region", json!("eu")),
            400,
            "INVALID_REQUEST",
            "region",
        ),
        case(
            "unknown field in a reference",
            "/clusters",
            with(
                c(),
                "/platform_components/0",
                json!({"id": "a", "enabled": true, "tag": "x"}),
            ),
            400,
            "INVALID_REQUEST",
            "platform_components[0].tag",
        ),
        case(
            "missing required field",
            "/clusters",
            without(c(), "cluster_dns"),
            400,
            "INVALID_REQUEST",
            "cluster_dns",
        ),
        case(
            "missing enabled in a reference",
            "/clusters",
            with(c(), "/platform_components/0", json!({"id": "a"})),
            400,
            "INVALID_REQUEST",
            "platform_components[0].enabled",
        ),
        case(
            "null for a required field",
            "/platform_components",
            with(p(), "/oci_tag", Value::Null),
            400,
            "INVALID_REQUEST",
            "oci_tag",
        ),
        case(
            "negative node count",
            "/clusters",
            added(c(), "node_count", json!(-1)),
            400,
            "INVALID_REQUEST",
            "node_count",
        ),
        case(
            "label value not a string",
            "/namespaces",
            json!({"id": "n2", "labels": {"app": 1}}),
            400,
            "INVALID_REQUEST",
            "labels.app",
        ),
        case(
            "patch values not an object",
            "/clusters",
            with(c(), "/patches", json!({"a": 5})),
            400,
            "INVALID_REQUEST",
            "patches.a",
        ),
        // The right shape, the wrong values: 422.
        case(
            "empty id",
            "/clusters",
            with(c(), "/id", json!("")),
            422,
            "VALIDATION_FAILED",
            "id",
        ),
        case(
            "uppercase id",
            "/platform_components",
            with(p(), "/id", json!("Cert-Manager")),
            422,
            "VALIDATION_FAILED",
            "id",
        ),
        case(
            "id with a dot",
            "/namespaces",
            json!({"id": "a.b"}),
            422,
            "VALIDATION_FAILED",
            "id",
        ),
        case(
            "id too long",
            "/rolebindings",
            json!({"id": "x".repeat(64), "role": "view"}),
            422,
            "VALIDATION_FAILED",
            "id",
        ),
        case(
            "id ending in a dash",
            "/clusters",
            with(c(), "/id", json!("c2-")),
            422,
            "VALIDATION_FAILED",
            "id",
        ),
        case(
            "invalid cluster_dns",
            "/clusters",
            with(c(), "/cluster_dns", json!("c2..example.com")),
            422,
            "VALIDATION_FAILED",
            "cluster_dns",
        ),
        case(
            "cluster_dns with uppercase",
            "/clusters",
            with(c(), "/cluster_dns", json!("C2.example.com")),
            422,
            "VALIDATION_FAILED",
            "cluster_dns",
        ),
        case(
            "environment outside the tiers",
            "/clusters",
            with(c(), "/environment", json!("staging")),
            422,
            "VALIDATION_FAILED",
            "environment",
        ),
        case(
            "cluster_name not a label",
            "/clusters",
            with(c(), "/cluster_name", json!("My Cluster")),
            422,
            "VALIDATION_FAILED",
            "cluster_name",
        ),
        case(
            "label key Kubernetes rejects",
            "/namespaces",
            json!({"id": "n2", "labels": {"bad key": "v"}}),
            422,
            "VALIDATION_FAILED",
            "labels.\"bad key\"",
        ),
        case(
            "label value Kubernetes rejects",
            "/namespaces",
            json!({"id": "n2", "labels": {"app": "has space"}}),
            422,
            "VALIDATION_FAILED",
            "labels.app",
        ),
        case(
            "annotation key Kubernetes rejects",
            "/namespaces",
            json!({"id": "n2", "annotations": {"-x": "v"}}),
            422,
            "VALIDATION_FAILED",
            "annotations.-x",
        ),
        case(
            "subject kind RBAC does not know",
            "/rolebindings",
            json!({"id": "rb2", "role": "view", "subjects": [{"kind": "Robot", "name": "r"}]}),
            422,
            "VALIDATION_FAILED",
            "subjects[0].kind",
        ),
        case(
            "subject without kind",
            "/rolebindings",
            json!({"id": "rb2", "role": "view", "subjects": [{"name": "r"}]}),
            400,
            "INVALID_REQUEST",
            "subjects[0].kind",
        ),
        case(
            "subject without name",
            "/rolebindings",
            json!({"id": "rb2", "role": "view", "subjects": [{"kind": "User"}]}),
            400,
            "INVALID_REQUEST",
            "subjects[0].name",
        ),
        case(
            "empty role",
            "/rolebindings",
            json!({"id": "rb2", "role": ""}),
            422,
            "VALIDATION_FAILED",
            "role",
        ),
        case(
            "oci_url without a scheme",
            "/platform_components",
            with(p(), "/oci_url", json!("ghcr.io/x")),
            422,
            "VALIDATION_FAILED",
            "oci_url",
        ),
        case(
            "absolute component_path",
            "/platform_components",
            with(p(), "/component_path", json!("/etc/x")),
            422,
            "VALIDATION_FAILED",
            "component_path",
        ),
        case(
            "oci_tag with spaces",
            "/platform_components",
            with(p(), "/oci_tag", json!("1 0")),
            422,
            "VALIDATION_FAILED",
            "oci_tag",
        ),
        case(
            "override tag with spaces",
            "/clusters",
            with(
                c(),
                "/platform_components/0",
                json!({"id": "a", "enabled": true, "oci_tag": " "}),
            ),
            422,
            "VALIDATION_FAILED",
            "platform_components[0].oci_tag",
        ),
        case(
            "depends_on itself",
            "/platform_components",
            with(p(), "/depends_on", json!(["b"])),
            422,
            "VALIDATION_FAILED",
            "depends_on[0]",
        ),
        case(
            "depends_on twice",
            "/platform_components",
            with(p(), "/depends_on", json!(["a", "a"])),
            422,
            "VALIDATION_FAILED",
            "depends_on[1]",
        ),
        case(
            "depends_on an invalid id",
            "/platform_components",
            with(p(), "/depends_on", json!(["A"])),
            422,
            "VALIDATION_FAILED",
            "depends_on[0]",
        ),
        case(
            "duplicate component reference",
            "/clusters",
            with(
                c(),
                "/platform_components",
                json!([{"id": "a", "enabled": true}, {"id": "a", "enabled": false}]),
            ),
            422,
            "VALIDATION_FAILED",
            "platform_components[1].id",
        ),
        case(
            "duplicate namespace reference",
            "/clusters",
            with(c(), "/namespaces", json!([{"id": "ns"}, {"id": "ns"}])),
            422,
            "VALIDATION_FAILED",
            "namespaces[1].id",
        ),
        case(
            "patches for a component the cluster does not reference",
            "/clusters",
            with(c(), "/patches", json!({"b": {"k": 1}})),
            422,
            "VALIDATION_FAILED",
            "patches.b",
        ),
        case(
            "empty patch key",
            "/clusters",
            with(c(), "/patches", json!({"a": {"": 1}})),
            422,
            "VALIDATION_FAILED",
            "patches.a.\"\"",
        ),
        // References to what does not exist: 422 UNKNOWN_REFERENCE.
        case(
            "reference to an unknown component",
            "/clusters",
            with(c(), "/platform_components/0/id", json!("ghost")),
            422,
            "UNKNOWN_REFERENCE",
            "platform_components[0].id",
        ),
        case(
            "reference to an unknown namespace",
            "/clusters",
            with(c(), "/namespaces", json!([{"id": "ns"}, {"id": "ghost"}])),
            422,
            "UNKNOWN_REFERENCE",
            "namespaces[1].id",
        ),
        case(
            "reference to an unknown rolebinding",
            "/clusters",
            with(c(), "/rolebindings", json!([{"id": "ghost"}])),
            422,
            "UNKNOWN_REFERENCE",
            "rolebindings[0].id",
        ),
        case(
            "depends_on an unknown component",
            "/platform_components",
            with(p(), "/depends_on", json!(["ghost"])),
            422,
            "UNKNOWN_REFERENCE",
            "depends_on[0]",
        ),
        // Conflicts: 409.
        case(
            "existing id",
            "/platform_components",
            component("a", &[]),
            409,
            "ALREADY_EXISTS",
            "id",
        ),
        case(
            "existing cluster_dns",
            "/clusters",
            with(c(), "/cluster_dns", json!("c1.k8s.example.com")),
            409,
            "ALREADY_EXISTS",
            "cluster_dns",
        ),
        // Media types.
        Case {
            what: "form-encoded body",
            method: Method::POST,
            path: "/namespaces",
            body: Body::Raw("application/x-www-form-urlencoded", "id=x"),
            status: 415,
            code: "UNSUPPORTED_MEDIA_TYPE",
            field: None,
        },
        Case {
            what: "text body",
            method: Method::POST,
            path: "/namespaces",
            body: Body::Raw("text/plain", "{\"id\": \"x\"}"),
            status: 415,
            code: "UNSUPPORTED_MEDIA_TYPE",
            field: None,
        },
        // Updates refuse the same things.
        Case {
            what: "PUT with a wrong type",
            method: Method::PUT,
            path: "/clusters/c1",
            body: Body::Json(json!({"node_count": "3"})),
            status: 400,
            code: "INVALID_REQUEST",
            field: Some("node_count"),
        },
        Case {
            what: "PUT with an unknown field",
            method: Method::PUT,
            path: "/clusters/c1",
            body: Body::Json(json!({"nodes": 3})),
            status: 400,
            code: "INVALID_REQUEST",
            field: Some("nodes"),
        },
        Case {
            what: "PUT null for a required field",
            method: Method::PUT,
            path: "/clusters/c1",
            body: Body::Json(json!({"environment": null})),
            status: 400,
            code: "INVALID_REQUEST",
            field: Some("environment"),
        },
        Case {
            what: "PATCH removing a required field",
            method: Method::PATCH,
            path: "/clusters/c1",
            body: Body::Raw("application/merge-patch+json", "{\"cluster_dns\": null}"),
            status: 400,
            code: "INVALID_REQUEST",
            field: Some("cluster_dns"),
        },
        Case {
            what: "PATCH with an invalid value",
            method: Method::PATCH,
            path: "/clusters/c1",
            body: Body::Raw(
                "application/merge-patch+json",
                "{\"environment\": \"staging\"}",
            ),
            status: 422,
            code: "VALIDATION_FAILED",
            field: Some("environment"),
        },
        Case {
            what: "PATCH with an unknown reference",
            method: Method::PATCH,
            path: "/clusters/c1",
            body: Body::Raw(
                "application/merge-patch+json",
                "{\"namespaces\": [{\"id\": \"ghost\"}]}",
            ),
            status: 422,
            code: "UNKNOWN_REFERENCE",
            field: Some("namespaces[0].id"),
        },
        Case {
            what: "PATCH that is not an object",
            method: Method::PATCH,
            path: "/clusters/c1",
            body: Body::Raw("application/merge-patch+json", "[1]"),
            status: 400,
            code: "INVALID_REQUEST",
            field: Some("body"),
        },
        Case {
            what: "a patch key sent twice, of which one would be lost",
            method: Method::PATCH,
            path: "/clusters/c1",
            body: Body::Raw(
                "application/merge-patch+json",
                "{\"patches\": {\"a\": {\"replicas\": 1, \"replicas\": 2}}}",
            ),
            status: 400,
            code: "INVALID_REQUEST",
            field: Some("patches.a"),
        },
        Case {
            what: "PUT with malformed JSON",
            method: Method::PUT,
            path: "/namespaces/ns",
            body: Body::Raw("application/json", "{"),
            status: 400,
            code: "MALFORMED_JSON",
            field: None,
        },
        // Query strings.
        Case {
            what: "unknown query parameter",
            method: Method::GET,
            path: "/clusters?enviroment=prod",
            body: Body::Raw("application/json", ""),
            status: 400,
            code: "INVALID_REQUEST",
            field: Some("enviroment"),
        },
        Case {
            what: "a parameter on a per-cluster Flux endpoint, which takes none",
            method: Method::GET,
            path: "/api/v2/flux/clusters/c1.k8s.example.com/platform-components?environment=prod",
            body: Body::Raw("application/json", ""),
            status: 400,
            code: "INVALID_REQUEST",
            field: Some("environment"),
        },
        Case {
            what: "limit not a number",
            method: Method::GET,
            path: "/clusters?limit=ten",
            body: Body::Raw("application/json", ""),
            status: 400,
            code: "INVALID_REQUEST",
            field: Some("limit"),
        },
        Case {
            what: "limit zero",
            method: Method::GET,
            path: "/namespaces?limit=0",
            body: Body::Raw("application/json", ""),
            status: 400,
            code: "INVALID_REQUEST",
            field: Some("limit"),
        },
        Case {
            what: "limit over 1000",
            method: Method::GET,
            path: "/namespaces?limit=1001",
            body: Body::Raw("application/json", ""),
            status: 400,
            code: "INVALID_REQUEST",
            field: Some("limit"),
        },
        Case {
            what: "negative offset",
            method: Method::GET,
            path: "/rolebindings?offset=-1",
            body: Body::Raw("application/json", ""),
            status: 400,
            code: "INVALID_REQUEST",
            field: Some("offset"),
        },
    ]
}

#[tokio::test]
async fn bad_input_is_refused_with_a_4xx_naming_the_field_and_nothing_is_written() {
    let app = spawn_app().await;
    catalog(&app).await;
    let before = app.all_counts().await;
    let stored_before = snapshot(&app).await;
    let mut failures = Vec::new();
    for case in cases() {
        let mut request = app.request(case.method.clone(), case.path);
        request = match &case.body {
            Body::Json(value) => request.json(value),
            Body::Raw(content_type, text) => {
                request.header("content-type", *content_type).body(*text)
            }
        };
        let r = reply(request.send().await.unwrap()).await;
        let fields = r.error_fields();
        let ok = r.status == case.status
            && r.code() == case.code
            && r.header("content-type") == Some("application/problem+json")
            && match case.field {
                Some(field) => fields == [field],
                None => true,
            };
        if !ok {
            failures.push(format!(
                "{}: expected {} {} {:?}, got {} {}",
                case.what, case.status, case.code, case.field, r.status, r.text
            ));
        }
        assert_eq!(
            app.all_counts().await,
            before,
            "{} wrote something",
            case.what
        );
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert_eq!(
        snapshot(&app).await,
        stored_before,
        "a refused request changed stored data"
    );
}

/// Everything readable, to prove refused updates changed nothing.
async fn snapshot(app: &TestApp) -> Vec<Value> {
    let mut all = Vec::new();
    for collection in [
        "/clusters",
        "/platform_components",
        "/namespaces",
        "/rolebindings",
    ] {
        all.push(app.get(collection).await.body);
    }
    all
}

#[tokio::test]
async fn every_error_is_reported_not_only_the_first() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/clusters",
            &json!({"id": "Bad", "cluster_name": "ok", "cluster_dns": "-bad-", "environment": "nowhere",
                    "platform_components": [{"id": "UPPER", "enabled": true}]}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(
        r.error_fields(),
        [
            "id",
            "cluster_dns",
            "environment",
            "platform_components[0].id"
        ]
    );
}

#[tokio::test]
async fn a_body_over_the_configured_limit_is_413_and_writes_nothing() {
    let app = spawn_app_with(|env| {
        env.insert("FLUX_CATALOG_HTTP__MAX_BODY_BYTES".into(), "512".into());
    })
    .await;
    let big = json!({"id": "n", "annotations": {"example.com/blob": "x".repeat(600)}});
    let r = app.post("/namespaces", &big).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.code(), "PAYLOAD_TOO_LARGE");
    // Without a Content-Length the limit still holds (chunked body).
    let chunks =
        futures_util::stream::iter(vec![Ok::<_, std::io::Error>(big.to_string().into_bytes())]);
    let r = reply(
        app.request(Method::POST, "/namespaces")
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(app.count("namespaces").await, 0);
    assert_eq!(
        app.post("/namespaces", &json!({"id": "small"}))
            .await
            .status,
        201
    );
}

/// Characters a reader cannot see or that reorder what is shown: format characters
/// (Unicode category Cf: zero-width, bidi controls, BOM, soft hyphen) and control
/// characters (Cc) beyond ASCII. Refused in every string that reaches Flux, so a value in
/// a Kubernetes object reads as it is.
#[tokio::test]
async fn invisible_and_direction_changing_characters_are_refused_in_every_string_for_flux() {
    let app = spawn_app().await;
    catalog(&app).await;
    let before = app.all_counts().await;
    let characters = [
        '\u{200B}',  // zero-width space
        '\u{202E}',  // right-to-left override
        '\u{2066}',  // left-to-right isolate
        '\u{FEFF}',  // byte order mark
        '\u{00AD}',  // soft hyphen
        '\u{061C}',  // Arabic letter mark
        '\u{E0041}', // tag latin capital letter A
        '\u{0085}',  // next line (Cc)
        '\u{009B}',  // control sequence introducer (Cc)
    ];
    let mut failures = Vec::new();
    for c in characters {
        let p = || component("b", &["a"]);
        let cl = || cluster("c2", &["a"]);
        let cases: Vec<(&str, &str, Value, &str)> = vec![
            (
                "/platform_components",
                "oci_tag",
                with(p(), "/oci_tag", json!(format!("1.0{c}"))),
                "oci_tag",
            ),
            (
                "/platform_components",
                "component_version",
                with(p(), "/component_version", json!(format!("1.0.0{c}-evil"))),
                "component_version",
            ),
            (
                "/platform_components",
                "component_path",
                with(p(), "/component_path", json!(format!("charts/{c}b"))),
                "component_path",
            ),
            (
                "/platform_components",
                "oci_url",
                with(
                    p(),
                    "/oci_url",
                    json!(format!("oci://registry.example.com/{c}b")),
                ),
                "oci_url",
            ),
            (
                "/clusters",
                "override oci_tag",
                with(
                    cl(),
                    "/platform_components/0",
                    json!({"id": "a", "enabled": true, "oci_tag": format!("2{c}")}),
                ),
                "platform_components[0].oci_tag",
            ),
            (
                "/clusters",
                "override component_path",
                with(
                    cl(),
                    "/platform_components/0",
                    json!({"id": "a", "enabled": true, "component_path": format!("x{c}")}),
                ),
                "platform_components[0].component_path",
            ),
            (
                "/clusters",
                "vm_image",
                added(cl(), "vm_image", json!(format!("ubuntu{c} 24.04"))),
                "vm_image",
            ),
            (
                "/clusters",
                "k0s_version",
                added(cl(), "k0s_version", json!(format!("v1.30{c}"))),
                "k0s_version",
            ),
            (
                "/rolebindings",
                "role",
                json!({"id": "rb2", "role": format!("view{c}")}),
                "role",
            ),
            (
                "/rolebindings",
                "subject name",
                json!({"id": "rb2", "role": "view", "subjects": [{"kind": "User", "name": format!("jane{c}")}]}),
                "subjects[0].name",
            ),
        ];
        for (path, what, body, field) in cases {
            let r = app.post(path, &body).await;
            if r.status != 422 || r.code() != "VALIDATION_FAILED" || r.error_fields() != [field] {
                failures.push(format!(
                    "U+{:04X} in {what}: got {} {}",
                    c as u32, r.status, r.text
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert_eq!(
        app.all_counts().await,
        before,
        "a refused request wrote something"
    );
}

/// Without a `Content-Type` a browser may send a body cross-site without a preflight; the
/// API takes JSON only, so such a body is refused before it is read.
#[tokio::test]
async fn a_body_without_a_content_type_is_refused_with_415_naming_the_accepted_types() {
    let app = spawn_app().await;
    catalog(&app).await;
    let before = app.all_counts().await;
    let cases = [
        (
            Method::POST,
            "/namespaces",
            json!({"id": "n2"}),
            "application/json",
        ),
        (
            Method::PUT,
            "/namespaces/ns",
            json!({"labels": {"a": "b"}}),
            "application/json",
        ),
        (
            Method::PATCH,
            "/platform_components/a",
            json!({"oci_tag": "9.9.9"}),
            "application/merge-patch+json",
        ),
    ];
    for (method, path, body, accepted) in cases {
        // reqwest adds no Content-Type to a plain byte body.
        let r = reply(
            app.request(method.clone(), path)
                .body(body.to_string())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            r.status, 415,
            "{method} {path} without Content-Type: {}",
            r.text
        );
        assert_eq!(r.code(), "UNSUPPORTED_MEDIA_TYPE", "{}", r.text);
        let detail = r.body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("Content-Type") && detail.contains(accepted),
            "{method} {path}: the detail names the header and the accepted types: {detail}"
        );
    }
    assert_eq!(app.all_counts().await, before);
    assert_eq!(
        app.get("/platform_components/a").await.body["oci_tag"],
        "1.0.0"
    );
}
