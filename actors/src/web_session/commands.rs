//! `execute_command`: a command run through the agent's link, its output streamed back here.

use actix::{Actor, AsyncContext};
use actix_web_actors::ws::WebsocketContext;

use super::WebSession;
use crate::command::{CommandRun, CommandSpec};
use crate::protocol::CommandId;
use crate::registry::RouteCommand;
use crate::repo::access::Action;

type Ctx = WebsocketContext<WebSession>;

impl WebSession {
    /// `execute_command`: checks access, audits, then starts the run through the agent's link.
    pub(super) fn execute(
        &mut self,
        machine: &str,
        command: String,
        timeout_secs: Option<u64>,
        request_id: Option<String>,
        ctx: &mut Ctx,
    ) {
        let timeout =
            timeout_secs.map_or(self.config.command_timeout, std::time::Duration::from_secs);
        self.with_agent(
            machine,
            Action::Command,
            request_id,
            ctx,
            move |session, machine, agent, request_id, ctx| {
                let command_id = CommandId::random();
                let detail =
                    serde_json::json!({ "commandId": command_id.to_string(), "command": command });
                session.after_audit(
                    "command.run",
                    machine.id,
                    detail,
                    request_id,
                    ctx,
                    move |session, request_id, ctx| {
                        let spec = CommandSpec {
                            command_id: command_id.clone(),
                            agent,
                            user_id: session.user.user_id,
                            command,
                            timeout,
                            requester: Some(ctx.address().recipient()),
                            request_id,
                            on_started: None,
                        };
                        let run = CommandRun::new(spec, session.links.command.clone()).start();
                        session.links.routing.route_command.do_send(RouteCommand {
                            command_id,
                            machine_id: machine.id,
                            chunks: run.recipient(),
                        });
                    },
                );
            },
        );
    }
}
