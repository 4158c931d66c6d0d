//! A full disk under a running server: the recordings directory is a 16 KiB tmpfs. The
//! terminal goes on, byte for byte, and the audit trail says the recording stopped.

use std::path::{Path, PathBuf};
use std::process::Command;

use fleetgate_actors::identity::Role;
use fleetgate_entity::audit_log;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::fixtures::online_agent;
use crate::support::{eventually, spawn_app};
use crate::web_client::{WebClient, user};

/// A tiny tmpfs mounted at a directory, unmounted when dropped (also when the test fails).
struct TinyDisk(PathBuf);

impl TinyDisk {
    fn mount(at: &Path) -> Self {
        std::fs::create_dir_all(at).expect("mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"])
            .arg(at)
            .status()
            .expect("run mount");
        assert!(
            mounted.success(),
            "this test mounts a tmpfs (root with CAP_SYS_ADMIN, as CI runs)"
        );
        Self(at.to_path_buf())
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[actix_web::test]
async fn a_full_disk_stops_the_recording_never_the_terminal() {
    let server = spawn_app().await;
    let _disk = TinyDisk::mount(&server.settings.storage.data_dir.join("recordings"));
    let (mut agent, machine, _) = online_agent(&server, "full-disk").await;
    let (_, token) = user(&server, Role::Operator, &[(&machine, "terminal")]).await;
    let mut web = WebClient::connect(&server, &token).await;
    let (session, _) = web.spawn(&machine).await;

    // 128 KiB of output, eight times what the disk holds, in 4 KiB lines.
    let line = format!("{}\r\n", "y".repeat(4094));
    let mut received = 0;
    for _ in 0..32 {
        let frame = json!({"type":"terminal_output","sessionId":session,"output":line});
        agent.send(&format!("{frame}\n")).await;
        let output = web.next_of("terminal_output").await;
        received += output["data"].as_str().map_or(0, str::len);
    }
    assert_eq!(received, 32 * line.len(), "every byte reached the owner");

    let stopped = || async {
        audit_log::Entity::find()
            .filter(audit_log::Column::Action.eq("recording.stopped"))
            .all(&server.db)
            .await
            .expect("audit")
    };
    assert!(
        eventually(|| async { !stopped().await.is_empty() }).await,
        "the stop is audited"
    );
    let entry = stopped().await.remove(0);
    assert!(
        entry.detail["sessionId"] == session.as_str()
            && entry.detail["error"]
                .as_str()
                .is_some_and(|e| e.to_lowercase().contains("space")),
        "{:?}",
        entry.detail
    );

    // The shell still works both ways after the recording stopped.
    web.send(json!({"type":"terminal_input","sessionId":session,"data":"still-here\r"}))
        .await;
    let stdin = agent.next_of("terminal_stdin").await;
    assert!(
        stdin["data"]["payload"]
            .as_str()
            .is_some_and(|p| p.contains("still-here"))
    );
    web.send(json!({"type":"close_terminal","sessionId":session}))
        .await;
    assert_eq!(web.next_of("terminal_closed").await["reason"], "closed");
    server.stop().await;
}
