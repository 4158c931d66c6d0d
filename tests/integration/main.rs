//! Integration tests: the real server on port 0, spoken to through real sockets.

mod migrations;
mod support;
mod upgrade_gate;
