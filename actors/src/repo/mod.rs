//! Repository actors: each owns the database access of one aggregate, so writes to its
//! tables are serialized in one place and can be batched.

pub mod access;
pub mod audit;
pub mod command;
pub mod machine;
pub mod machine_admin;
pub mod metric;
pub mod port;
pub mod queries;
pub mod report;
pub mod session;
pub mod user;

pub use access::AccessRepo;
pub use audit::AuditRepo;
pub use command::CommandRepo;
pub use machine::{Enrollment, MachineRepo};
pub use metric::MetricRepo;
pub use port::PortRepo;
pub use queries::QueryRepo;
pub use report::ReportRepo;
pub use session::SessionRepo;
pub use user::UserRepo;
