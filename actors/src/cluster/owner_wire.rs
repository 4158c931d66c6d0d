//! Re-attaching a terminal through another instance: the subjects and bodies between the
//! instance an operator re-attached through (the owner's) and the instance running the session
//! (its home). The owner's instance asks on [`terminal_attach_subject`] (every instance hears
//! it; only the home answers); from then on the owner's requests go to the home on
//! [`owner_in_subject`] and the home delivers the owner's events on [`owner_out_subject`], both
//! keyed by a random owner key chosen for that one attach. docs/architecture.md describes it.

use serde::{Deserialize, Serialize};

use crate::protocol::ConnectionId;
use crate::terminal::OwnerRequest;

/// Where an instance asks for a session it does not run.
pub fn terminal_attach_subject(cluster: &str) -> String {
    format!("fg.{cluster}.terminal.attach")
}

/// Where the owner's requests (input, resize, close) go to the session's home.
pub fn owner_in_subject(cluster: &str, owner_key: &str) -> String {
    format!("fg.{cluster}.owner.{owner_key}.in")
}

/// Where the session's home delivers the owner's events.
pub fn owner_out_subject(cluster: &str, owner_key: &str) -> String {
    format!("fg.{cluster}.owner.{owner_key}.out")
}

/// A fresh owner key (32 hex digits).
pub fn new_owner_key() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Whether `key` is one [`new_owner_key`] could have made (nothing that changes a subject).
pub fn is_owner_key(key: &str) -> bool {
    key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit())
}

/// "Re-bind session `session_id` of `user_id` to the owner behind `owner_key`."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachWire {
    /// The session.
    pub session_id: String,
    /// The user asking (checked against the session's owner by its home).
    pub user_id: String,
    /// The key of the owner's subjects.
    pub owner_key: String,
    /// Output the client already has, as in `attach_terminal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_offset: Option<u64>,
}

/// A request of the owner, on its way to the session's home.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum OwnerWire {
    /// Keystrokes.
    Input {
        /// The keystrokes.
        data: String,
        /// Echoed on errors.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
    /// Resize.
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// Close the session (the owner asked, or an administrator ended it).
    Close,
    /// The owner's socket closed.
    OwnerGone,
    /// The owner lets one watcher type, or stops it.
    SetWatcherInput {
        /// From `watcher_joined`.
        watcher_id: String,
        /// Whether the watcher may type.
        allowed: bool,
        /// Echoed on errors.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
    /// The owner ends one watcher of the session.
    RemoveWatcher {
        /// From `watcher_joined`.
        watcher_id: String,
        /// Echoed on errors.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
}

impl OwnerWire {
    /// The wire form of `request` (the sending socket is implied by the owner key).
    pub fn from_request(request: OwnerRequest) -> Self {
        match request {
            OwnerRequest::Input {
                data, request_id, ..
            } => OwnerWire::Input { data, request_id },
            OwnerRequest::Resize { cols, rows, .. } => OwnerWire::Resize { cols, rows },
            OwnerRequest::Close { .. } | OwnerRequest::Kill => OwnerWire::Close,
            OwnerRequest::OwnerGone { .. } => OwnerWire::OwnerGone,
            OwnerRequest::RemoveWatcher {
                watcher_id,
                request_id,
                ..
            } => OwnerWire::RemoveWatcher {
                watcher_id,
                request_id,
            },
            OwnerRequest::SetWatcherInput {
                watcher_id,
                allowed,
                request_id,
                ..
            } => OwnerWire::SetWatcherInput {
                watcher_id,
                allowed,
                request_id,
            },
        }
    }

    /// The request as the session's home hands it to the session, from `owner` (the stand-in
    /// owner the home made for this attach).
    pub fn into_request(self, owner: ConnectionId) -> OwnerRequest {
        match self {
            OwnerWire::Input { data, request_id } => OwnerRequest::Input {
                from: owner,
                data,
                request_id,
            },
            OwnerWire::Resize { cols, rows } => OwnerRequest::Resize {
                from: owner,
                cols,
                rows,
            },
            OwnerWire::Close => OwnerRequest::Close { from: owner },
            OwnerWire::OwnerGone => OwnerRequest::OwnerGone { from: owner },
            OwnerWire::RemoveWatcher {
                watcher_id,
                request_id,
            } => OwnerRequest::RemoveWatcher {
                from: owner,
                watcher_id,
                request_id,
            },
            OwnerWire::SetWatcherInput {
                watcher_id,
                allowed,
                request_id,
            } => OwnerRequest::SetWatcherInput {
                from: owner,
                watcher_id,
                allowed,
                request_id,
            },
        }
    }
}

/// Events for the owner's socket, already encoded as the frames it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryWire {
    /// Text frames, in order.
    pub frames: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_requests_cross_the_wire_as_the_stand_in_owners() {
        let browser = ConnectionId(7);
        let stand_in = ConnectionId(99);
        let input = OwnerRequest::Input {
            from: browser,
            data: "ls\r".into(),
            request_id: Some("r1".into()),
        };
        let body = serde_json::to_string(&OwnerWire::from_request(input)).expect("encodes");
        assert_eq!(body, r#"{"kind":"input","data":"ls\r","requestId":"r1"}"#);
        let read: OwnerWire = serde_json::from_str(&body).expect("decodes");
        assert_eq!(
            read.into_request(stand_in),
            OwnerRequest::Input {
                from: stand_in,
                data: "ls\r".into(),
                request_id: Some("r1".into()),
            }
        );
        let kill = OwnerWire::from_request(OwnerRequest::Kill);
        assert_eq!(
            kill.into_request(stand_in),
            OwnerRequest::Close { from: stand_in }
        );
    }

    #[test]
    fn owner_keys_cannot_reach_other_subjects() {
        assert!(is_owner_key(&new_owner_key()));
        assert!(!is_owner_key("a.b"));
        assert!(!is_owner_key(">"));
        assert!(!is_owner_key(&"f".repeat(31)));
        assert!(!is_owner_key(&format!("{}*", "f".repeat(31))));
    }
}
