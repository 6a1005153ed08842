//! Paging through lists.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn lists_page_by_id_with_a_total_and_links() {
    let app = spawn_app().await;
    for id in ["e", "c", "a", "d", "b"] {
        app.create("/namespaces", json!({"id": id})).await;
    }
    let ids = |r: &crate::helpers::Reply| -> Vec<String> {
        r.body
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_str().unwrap().to_owned())
            .collect()
    };

    let all = app.get("/namespaces").await;
    assert_eq!(ids(&all), ["a", "b", "c", "d", "e"]);
    assert_eq!(all.header("x-total-count"), Some("5"));
    assert_eq!(all.header("link"), None, "one page: no links");

    let first = app.get("/namespaces?limit=2").await;
    assert_eq!(ids(&first), ["a", "b"]);
    assert_eq!(first.header("x-total-count"), Some("5"));
    assert_eq!(
        first.header("link"),
        Some(r#"</namespaces?limit=2&offset=2>; rel="next""#)
    );

    let middle = app.get("/namespaces?limit=2&offset=2").await;
    assert_eq!(ids(&middle), ["c", "d"]);
    assert_eq!(
        middle.header("link"),
        Some(
            r#"</namespaces?limit=2&offset=4>; rel="next", </namespaces?limit=2&offset=0>; rel="prev""#
        )
    );

    let last = app.get("/namespaces?limit=2&offset=4").await;
    assert_eq!(ids(&last), ["e"]);
    assert!(!last.header("link").unwrap().contains("next"));

    let beyond = app.get("/namespaces?offset=10").await;
    assert_eq!(beyond.status, 200);
    assert_eq!(beyond.body, json!([]));
    assert_eq!(beyond.header("x-total-count"), Some("5"));
}

#[tokio::test]
async fn following_next_links_visits_every_item_once() {
    let app = spawn_app().await;
    for i in 0..23 {
        let mut c = crate::helpers::cluster(&format!("c{i:02}"), &[]);
        if i % 2 == 0 {
            c["environment"] = json!("prod");
        }
        app.create("/clusters", c).await;
    }
    let mut seen = Vec::new();
    let mut next = Some("/clusters?environment=prod&limit=5".to_owned());
    while let Some(path) = next {
        let r = app.get(&path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert_eq!(r.header("x-total-count"), Some("12"));
        seen.extend(
            r.body
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned()),
        );
        next = r.header("link").and_then(|links| {
            links
                .split(", ")
                .find(|l| l.ends_with(r#"rel="next""#))
                .map(|l| {
                    let path = &l[1..l.find('>').unwrap()];
                    assert!(
                        path.contains("environment=prod"),
                        "filters are kept in links: {path}"
                    );
                    path.to_owned()
                })
        });
    }
    let expected: Vec<String> = (0..23).step_by(2).map(|i| format!("c{i:02}")).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn the_largest_page_is_1000() {
    let app = spawn_app().await;
    assert_eq!(app.get("/platform_components?limit=1000").await.status, 200);
    assert_eq!(app.get("/platform_components?limit=1001").await.status, 400);
}
