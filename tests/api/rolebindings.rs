//! `/rolebindings`.

use serde_json::json;

use crate::helpers::{at_revision, spawn_app};

#[tokio::test]
async fn rolebindings_keep_their_subjects_as_given() {
    let app = spawn_app().await;
    let body = json!({
        "id": "platform-admins",
        "role": "cluster-admin",
        "subjects": [
            {"kind": "Group", "name": "platform-team", "apiGroup": "rbac.authorization.k8s.io"},
            {"kind": "User", "name": "jane@example.com"},
            {"kind": "ServiceAccount", "name": "flux-reconciler", "namespace": "flux-system"}
        ]
    });
    let r = app.post("/rolebindings", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body, at_revision(body.clone(), 1));
    assert_eq!(
        app.get("/rolebindings/platform-admins").await.body,
        at_revision(body, 1)
    );
}

#[tokio::test]
async fn subjects_are_checked_as_the_rbac_api_would() {
    let app = spawn_app().await;
    let cases = [
        (
            json!([{"kind": "Team", "name": "x"}]),
            422,
            "subjects[0].kind",
        ),
        (
            json!([{"kind": "Group", "name": ""}]),
            422,
            "subjects[0].name",
        ),
        (
            json!([{"kind": "Group", "name": "t", "apiGroup": "apps"}]),
            422,
            "subjects[0].apiGroup",
        ),
        (
            json!([{"kind": "ServiceAccount", "name": "sa", "namespace": "Bad_NS"}]),
            422,
            "subjects[0].namespace",
        ),
        (json!([{"kind": "Group"}]), 400, "subjects[0].name"),
        (json!([{"name": "x"}]), 400, "subjects[0].kind"),
        (
            json!([{"kind": "Group", "name": "x", "extra": 1}]),
            400,
            "subjects[0].extra",
        ),
    ];
    for (subjects, status, field) in cases {
        let r = app
            .post(
                "/rolebindings",
                &json!({"id": "rb", "role": "view", "subjects": subjects}),
            )
            .await;
        assert_eq!(r.status, status, "{subjects}: {}", r.text);
        assert_eq!(r.error_fields(), [field], "{subjects}");
    }
    assert_eq!(app.count("rolebindings").await, 0);
}

#[tokio::test]
async fn patch_replaces_the_subject_list_whole() {
    let app = spawn_app().await;
    app.create(
        "/rolebindings",
        json!({"id": "rb", "role": "view", "subjects": [{"kind": "User", "name": "a"}]}),
    )
    .await;
    let r = app
        .patch(
            "/rolebindings/rb",
            &json!({"subjects": [{"kind": "User", "name": "b"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["subjects"], json!([{"kind": "User", "name": "b"}]));
    assert_eq!(r.body["role"], "view");
}

#[tokio::test]
async fn a_rolebinding_in_use_cannot_be_deleted() {
    let app = spawn_app().await;
    app.create("/rolebindings", json!({"id": "rb", "role": "view"}))
        .await;
    let mut c = crate::helpers::cluster("c1", &[]);
    c["rolebindings"] = json!([{"id": "rb"}]);
    app.create("/clusters", c).await;
    let r = app.delete("/rolebindings/rb").await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(
        r.body["referenced_by"],
        json!([{"kind": "cluster", "id": "c1"}])
    );
}
