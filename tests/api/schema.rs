//! Rules the database enforces on its own follow the service's single definitions of them,
//! so a row written by any client meets the same rules as one written through the API.

use flux_catalog::domain::kind::audited_kinds;
use flux_catalog::domain::names::{LABEL_MAX, dns1123_label};

use crate::helpers::spawn_app;

/// The audit log's kinds are `Kind::ALL` and credentials (`audited_kinds`): a kind missing from the constraint would make the
/// first write of that kind fail.
#[tokio::test]
async fn the_audit_logs_kind_constraint_lists_every_kind() {
    let app = spawn_app().await;
    let definition: String = app
        .sql
        .query_one(
            "select pg_get_constraintdef(oid) from pg_constraint where conname = 'audit_log_kind_known'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let mut listed: Vec<&str> = definition.split('\'').skip(1).step_by(2).collect();
    listed.sort_unstable();
    let mut kinds = audited_kinds().to_vec();
    kinds.sort_unstable();
    assert_eq!(listed, kinds, "constraint: {definition}");
}

/// The database's label check accepts exactly what the service's does.
#[tokio::test]
async fn the_databases_label_check_agrees_with_the_service() {
    let app = spawn_app().await;
    let long = "a".repeat(LABEL_MAX);
    let too_long = "a".repeat(LABEL_MAX + 1);
    let cases = [
        "a",
        "0",
        "a-b",
        "a--b",
        "demo-01",
        "-a",
        "a-",
        "A",
        "a_b",
        "a.b",
        "",
        " a",
        "ä",
        long.as_str(),
        too_long.as_str(),
        "a\nb",
    ];
    for case in cases {
        let database: Option<bool> = app
            .sql
            .query_one("select is_k8s_label($1)", &[&case])
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            database,
            Some(dns1123_label(case).is_ok()),
            "the database and the service disagree on {case:?}"
        );
    }
}
