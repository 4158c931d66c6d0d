//! Who is on the other end of a web socket: the authenticated user and their role.

use serde::{Deserialize, Serialize};

use crate::protocol::UserId;

/// An operator's role, carried in the JWT `role` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May do everything, on every machine.
    Admin,
    /// May act on machines granted to them.
    Operator,
    /// May only look.
    Viewer,
}

impl Role {
    /// The role spelled `text` (`admin`, `operator`, `viewer`), if any.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    /// The wire spelling (`admin`, `operator`, `viewer`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }
}

/// A user authenticated by a verified JWT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser {
    /// The JWT `sub`.
    pub user_id: UserId,
    /// The JWT `role`.
    pub role: Role,
    /// The JWT `exp`, seconds since the Unix epoch.
    pub expires_at: i64,
    /// The JWT `name` (display name), when it has one.
    pub name: Option<String>,
}
