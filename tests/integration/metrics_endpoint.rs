//! `/metrics` of a real server process (the recorder is per process): the text parses as
//! Prometheus' exposition format, and the figures move with real traffic: one agent registers
//! → `fleetgate_agents_connected` 1; a refused frame → its reason's counter +1; a failed login
//! → the failed-login counter +1.

use std::collections::HashMap;

use serde_json::json;

use crate::agent_client::ScriptedAgent;
use crate::server_process::{ServerProcess, free_port};
use crate::support::eventually;

/// The samples of an exposition: `name{labels}` → value; panics on any malformed line.
fn parse_exposition(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.split_whitespace().collect();
            if words.first() == Some(&"TYPE") {
                assert!(
                    matches!(
                        words.get(2).copied(),
                        Some("counter" | "gauge" | "histogram" | "summary" | "untyped")
                    ),
                    "bad TYPE line: {line}"
                );
            }
            continue;
        }
        let (series, rest) = match line.find('}') {
            Some(end) => (&line[..=end], &line[end + 1..]),
            None => line.split_once(' ').expect("a value"),
        };
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !name.starts_with(|c: char| c.is_ascii_digit()),
            "bad metric name in: {line}"
        );
        if name_end < series.len() {
            let labels = &series[name_end + 1..series.len() - 1];
            for pair in labels.split("\",").filter(|p| !p.is_empty()) {
                let (key, value) = pair.split_once("=\"").expect("label=\"value\"");
                assert!(
                    key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{line}"
                );
                assert!(!value.trim_end_matches('"').contains('\n'), "{line}");
            }
        }
        let value = rest.split_whitespace().next().expect("value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            other => other
                .parse()
                .unwrap_or_else(|_| panic!("bad value in: {line}")),
        };
        samples.insert(series.to_owned(), value);
    }
    samples
}

async fn scrape(url: &str) -> HashMap<String, f64> {
    let mut response = awc::Client::default()
        .get(url)
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers().get("content-type").cloned();
    assert!(
        content_type.is_some_and(|t| t.to_str().unwrap_or("").starts_with("text/plain")),
        "Prometheus text"
    );
    let body = response.body().await.expect("body");
    parse_exposition(std::str::from_utf8(&body).expect("utf-8"))
}

#[actix_web::test]
async fn metrics_parse_as_prometheus_text_and_move_with_real_traffic() {
    let data = tempfile::tempdir().expect("dir");
    let bind = format!("127.0.0.1:{}", free_port());
    let server =
        ServerProcess::start_with(data.path(), "", "", &[("FLEETGATE__METRICS__BIND", &bind)])
            .await;
    let url = format!("http://{bind}/metrics");
    let before = scrape(&url).await;
    let figure =
        |samples: &HashMap<String, f64>, series: &str| samples.get(series).copied().unwrap_or(0.0);
    assert_eq!(figure(&before, "fleetgate_agents_connected"), 0.0);
    assert!(figure(&before, "fleetgate_process_resident_memory_bytes") > 1e6);
    assert!(figure(&before, "fleetgate_process_open_fds") >= 3.0);

    let admin = server.admin_token().await;
    let (status, enrolled) = server
        .api(
            "POST",
            "/machines",
            Some(&admin),
            Some(json!({"name": "metered"})),
        )
        .await;
    assert_eq!(status, 201, "{enrolled}");
    let secret = enrolled["secret"].as_str().expect("secret").to_owned();
    let mut agent = ScriptedAgent::connect(&server.ws_url("/ws/agent")).await;
    agent.register(&secret, "metered").await;
    let connected =
        eventually(|| async { figure(&scrape(&url).await, "fleetgate_agents_connected") == 1.0 })
            .await;
    assert!(connected, "one agent registered → agents_connected 1");

    let refused = r#"fleetgate_frames_refused_total{peer="agent",reason="bad_json"}"#;
    let refused_before = figure(&scrape(&url).await, refused);
    agent.send("{this is not json\n").await;
    let counted =
        eventually(|| async { figure(&scrape(&url).await, refused) == refused_before + 1.0 }).await;
    assert!(counted, "a refused frame → its reason's counter +1");
    let heartbeats = r#"fleetgate_frames_in_total{peer="agent",type="register"}"#;
    assert_eq!(figure(&scrape(&url).await, heartbeats), 1.0);

    let failed = r#"fleetgate_logins_total{outcome="failed"}"#;
    let failed_before = figure(&scrape(&url).await, failed);
    let (status, _) = server
        .api(
            "POST",
            "/auth/login",
            None,
            Some(json!({"username": "nobody", "password": "wrong-password"})),
        )
        .await;
    assert_eq!(status, 401);
    let after = scrape(&url).await;
    assert_eq!(figure(&after, failed), failed_before + 1.0);
    assert!(
        figure(&after, r#"fleetgate_logins_total{outcome="ok"}"#) >= 1.0,
        "the admin's login was counted"
    );
    drop(server);
}
