//! `fleetgate login`, `machines`, `exec`, `audit`: the operator's client commands.

use std::io::{BufRead, Write};

use anyhow::bail;
use serde_json::{Value, json};

use super::api::{self, connect_web, next_json, resolve_machine, send_json};
use super::credentials::{self, Credentials};
use super::server_trust::ServerTrust;

/// Exit code of `exec` when the remote command timed out.
pub const EXIT_TIMED_OUT: u8 = 124;

/// `fleetgate login --server URL [--user NAME]`; the password comes from
/// `FLEETGATE_PASSWORD`, the terminal, or one line of stdin.
pub async fn login(server: &str, user: Option<String>, tls: ServerTrust) -> anyhow::Result<()> {
    let username = match user {
        Some(user) => user,
        None => prompt_line("user name: ")?,
    };
    let password = match std::env::var("FLEETGATE_PASSWORD") {
        Ok(password) => password,
        Err(_) if atty_stdin() => rpassword::prompt_password("password: ")?,
        Err(_) => prompt_line("")?,
    };
    let body = json!({ "username": username, "password": password });
    let reply = api::request(server, &tls, None, "POST", "/auth/login", Some(body)).await?;
    let credentials = Credentials {
        server: server.trim_end_matches('/').to_owned(),
        token: reply["token"].as_str().unwrap_or_default().to_owned(),
        expires_at: reply["expiresAt"].as_str().unwrap_or_default().to_owned(),
        tls,
    };
    let path = credentials::save(&credentials)?;
    eprintln!(
        "logged in to {server} until {}; token saved in {}",
        credentials.expires_at,
        path.display()
    );
    Ok(())
}

fn atty_stdin() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal()
}

fn prompt_line(prompt: &str) -> anyhow::Result<String> {
    if !prompt.is_empty() {
        eprint!("{prompt}");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Prints rows as aligned columns.
fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Prints a page's `items` as JSON (`as_json`) or as a table of `headers`, one `row` each.
fn show_items(
    page: &Value,
    as_json: bool,
    headers: &[&str],
    row: impl Fn(&Value) -> Vec<String>,
) -> anyhow::Result<()> {
    if as_json {
        println!("{}", serde_json::to_string_pretty(&page["items"])?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(row)
        .collect();
    print_table(headers, &rows);
    Ok(())
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `fleetgate machines [--json]`
pub async fn machines(as_json: bool) -> anyhow::Result<()> {
    let credentials = credentials::load()?;
    let list = api::get(&credentials, "/machines").await?;
    let headers = ["ID", "NAME", "HOSTNAME", "IP", "STATUS", "LAST SEEN", "CPU"];
    show_items(&list, as_json, &headers, |m| {
        let cpu = m["latestMetrics"]["cpu"]
            .as_f64()
            .map_or("-".into(), |c| format!("{c:.1}%"));
        vec![
            text(&m["id"]),
            text(&m["name"]),
            text(&m["hostname"]),
            text(&m["ip"]),
            text(&m["status"]),
            text(&m["lastSeen"]),
            cpu,
        ]
    })
}

/// `fleetgate audit [--json]`
pub async fn audit(as_json: bool, limit: u32) -> anyhow::Result<()> {
    let credentials = credentials::load()?;
    let page = api::get(&credentials, &format!("/audit?limit={limit}")).await?;
    let headers = ["AT", "ACTOR", "ACTION", "MACHINE", "DETAIL"];
    show_items(&page, as_json, &headers, |e| {
        vec![
            text(&e["at"]),
            text(&e["actor"]),
            text(&e["action"]),
            text(&e["machineId"]),
            text(&e["detail"]),
        ]
    })
}

/// `fleetgate sessions [MACHINE]`: open terminal sessions (all of them with `ended`): yours,
/// everyone's on a machine you may observe, everyone's for admins.
pub async fn sessions(machine: Option<&str>, ended: bool, as_json: bool) -> anyhow::Result<()> {
    let credentials = credentials::load()?;
    let mut path = String::from("/sessions?limit=100");
    if !ended {
        path.push_str("&active=true");
    }
    if let Some(machine) = machine {
        let machine_id = resolve_machine(&credentials, machine).await?;
        path.push_str(&format!("&machine={machine_id}"));
    }
    let page = api::get(&credentials, &path).await?;
    let headers = ["SESSION", "USER", "MACHINE", "STARTED", "STATE"];
    show_items(&page, as_json, &headers, |s| {
        let state = match s["endedAt"].as_str() {
            Some(_) => text(&s["closeReason"]),
            None => "open".to_owned(),
        };
        vec![
            text(&s["id"]),
            text(&s["userId"]),
            text(&s["machineId"]),
            text(&s["startedAt"]),
            state,
        ]
    })
}

/// `fleetgate exec MACHINE -- CMD…`: streams output; answers with the remote exit code.
pub async fn exec(
    machine: &str,
    command: &[String],
    timeout_secs: Option<u64>,
) -> anyhow::Result<u8> {
    if command.is_empty() {
        bail!("no command given; use `fleetgate exec MACHINE -- COMMAND`");
    }
    let credentials = credentials::load()?;
    let machine_id = resolve_machine(&credentials, machine).await?;
    let mut socket = connect_web(&credentials).await?;
    let mut request =
        json!({ "type": "execute_command", "machineId": machine_id, "command": command.join(" ") });
    if let Some(timeout) = timeout_secs {
        request["timeoutSecs"] = json!(timeout);
    }
    send_json(&mut socket, request).await?;
    let mut stdout = std::io::stdout();
    while let Some(message) = next_json(&mut socket).await? {
        match message["type"].as_str() {
            Some("command_output") => {
                stdout.write_all(message["output"].as_str().unwrap_or("").as_bytes())?;
                stdout.flush()?;
                if message["completed"] == true {
                    if message["status"] == "timed_out" {
                        eprintln!("fleetgate: command timed out");
                        return Ok(EXIT_TIMED_OUT);
                    }
                    let code = message["exitCode"].as_i64().unwrap_or(1);
                    return Ok(u8::try_from(code).unwrap_or(1));
                }
            }
            Some("error") => bail!("{}: {}", text(&message["code"]), text(&message["message"])),
            _ => {}
        }
    }
    bail!("the connection closed before the command finished")
}
