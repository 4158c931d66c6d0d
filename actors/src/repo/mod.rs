//! Repository actors: each owns the database access of one aggregate, so writes to its
//! tables are serialized in one place and can be batched.

pub mod machine;
pub mod metric;
pub mod port;
pub mod report;

pub use machine::{Enrollment, MachineRepo};
pub use metric::MetricRepo;
pub use port::PortRepo;
pub use report::ReportRepo;
