//! Integration tests: the real server on port 0, spoken to through real sockets.

mod agent_client;
mod agent_connection;
mod api;
mod api_client;
mod cli;
mod cluster;
mod cluster_failover;
mod cluster_routing;
mod commands_and_status;
mod deployed_agents;
mod fixtures;
mod hostile_process;
mod jwt_attacks;
mod machine_list;
mod migrations;
mod openapi_schemas;
mod real_agent;
mod repositories;
mod repositories_access;
mod server_process;
mod simulator;
mod support;
mod terminals;
mod upgrade_gate;
mod users;
mod web_client;
