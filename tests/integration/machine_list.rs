//! `GET /api/v1/machines` at fleet size: pages by id, filters, grants, latest metrics.

use fleetgate_actors::identity::Role;

use crate::agent_client::ScriptedAgent;
use crate::api_client::call;
use crate::support::{enroll, eventually, spawn_app};
use crate::web_client::user;

#[actix_web::test]
async fn the_machine_list_pages_filters_and_carries_the_latest_metrics() {
    let server = spawn_app().await;
    let mut ids = Vec::new();
    for name in [
        "alpha-web",
        "beta-db",
        "gamma-web",
        "delta-cache",
        "Epsilon-WEB",
    ] {
        ids.push(enroll(&server, name).await.0);
    }
    ids.sort();
    let (_, admin) = user(&server, Role::Admin, &[]).await;
    let (_, viewer) = user(
        &server,
        Role::Viewer,
        &[(&ids[1], "view"), (&ids[3], "view")],
    )
    .await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/machines?limit=2&cursor={c}"),
            None => "/machines?limit=2".to_owned(),
        };
        let (status, page) = call(&server, "GET", &path, Some(&admin), None).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|m| m["id"].as_str().expect("id").to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every machine once, in id order, across pages");

    let (_, web) = call(&server, "GET", "/machines?q=WeB", Some(&admin), None).await;
    let mut names: Vec<&str> = web["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["name"].as_str().expect("name"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["Epsilon-WEB", "alpha-web", "gamma-web"],
        "case-insensitive search"
    );
    let (_, literal) = call(&server, "GET", "/machines?q=%25", Some(&admin), None).await;
    assert!(
        literal["items"].as_array().expect("items").is_empty(),
        "% is matched literally"
    );
    let (_, online) = call(
        &server,
        "GET",
        "/machines?status=online",
        Some(&admin),
        None,
    )
    .await;
    assert!(online["items"].as_array().expect("items").is_empty());
    let (status, _) = call(
        &server,
        "GET",
        "/machines?status=sideways",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = call(&server, "GET", "/machines?limit=0", Some(&admin), None).await;
    assert_eq!(status, 400);

    let (_, mine) = call(&server, "GET", "/machines?limit=10", Some(&viewer), None).await;
    let visible: Vec<&str> = mine["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        visible,
        [ids[1].as_str(), ids[3].as_str()],
        "a viewer pages through their grants only"
    );

    // A heartbeat's metrics show in the list without a read of the metrics table per machine.
    let (machine, secret) = enroll(&server, "beating").await;
    let mut agent = ScriptedAgent::connect(&server.ws_url("/ws/agent")).await;
    agent.register(&secret, "beating").await;
    agent
        .send(&crate::agent_client::heartbeat_frame(&machine, 42.5, &[]))
        .await;
    let listed = eventually(|| {
        let (server, admin, machine) = (&server, admin.clone(), machine.clone());
        async move {
            let (_, list) = call(server, "GET", "/machines?q=beating", Some(&admin), None).await;
            list["items"][0]["id"] == machine.as_str()
                && list["items"][0]["latestMetrics"]["cpu"] == 42.5
        }
    })
    .await;
    assert!(listed, "the latest sample is listed");
    server.stop().await;
}
