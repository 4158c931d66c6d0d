//! `CommandRun`: one command on one machine. Signs it towards the agent, streams its output to
//! the requesting socket only, and persists the result (also when the requester is gone).

use std::time::Duration;

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message, Recipient,
    WrapFuture,
};
use chrono::Utc;

use crate::agent_link::AgentLink;
use crate::protocol::envelope::{SignedKind, sign_now};
use crate::protocol::ids::random_hex_id;
use crate::protocol::payloads::execute_payload;
use crate::protocol::web::ServerEvent;
use crate::protocol::{CommandId, ErrorCode, ErrorFrame, UserId};
use crate::registry::DropCommand;
use crate::repo::audit::RecordAudit;
use crate::repo::command::{CommandFinished, CommandProgress, CommandStarted, MAX_STORED_OUTPUT};

/// Output so far is written at most this often while a command runs.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
use crate::web_session::Deliver;

/// A chunk of `command_response` routed to this command.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct CommandChunk {
    /// Output.
    pub output: String,
    /// Whether this is the last chunk.
    pub completed: bool,
    /// Exit code (meaningful when completed).
    pub exit_code: i32,
}

/// The actors a command talks to.
#[derive(Clone)]
pub struct CommandLinks {
    /// `Registry`: withdraw the route when done.
    pub drop_route: Recipient<DropCommand>,
    /// `CommandRepo`: started.
    pub started: Recipient<CommandStarted>,
    /// `CommandRepo`: finished.
    pub finished: Recipient<CommandFinished>,
    /// `CommandRepo`: output so far.
    pub progress: Recipient<CommandProgress>,
    /// `AuditRepo`.
    pub audit: Recipient<RecordAudit>,
}

/// Everything a command needs to know.
pub struct CommandSpec {
    /// The command.
    pub command_id: CommandId,
    /// The way to the machine's agent (its id and secret too).
    pub agent: AgentLink,
    /// Who runs it (a UUID string).
    pub user_id: UserId,
    /// The command text.
    pub command: String,
    /// Killed after this long.
    pub timeout: Duration,
    /// The requesting socket (none for HTTP API requests).
    pub requester: Option<Recipient<Deliver>>,
    /// `requestId` of the request.
    pub request_id: Option<String>,
    /// Told whether the command was recorded and sent.
    pub on_started: Option<tokio::sync::oneshot::Sender<bool>>,
}

/// One running command.
pub struct CommandRun {
    spec: CommandSpec,
    links: CommandLinks,
    output: String,
    output_bytes: u64,
    last_progress: std::time::Instant,
    finished: bool,
}

impl CommandRun {
    /// A command that is persisted and sent when started.
    pub fn new(spec: CommandSpec, links: CommandLinks) -> Self {
        Self {
            spec,
            links,
            output: String::new(),
            output_bytes: 0,
            last_progress: std::time::Instant::now(),
            finished: false,
        }
    }

    fn tell(&self, event: ServerEvent) {
        if let Some(requester) = &self.spec.requester {
            requester.do_send(Deliver {
                events: vec![event],
                request_id: self.spec.request_id.clone(),
                error: None,
                relayed: Vec::new(),
            });
        }
    }

    fn started_outcome(&mut self, ok: bool) {
        if let Some(tell) = self.spec.on_started.take()
            && tell.send(ok).is_err()
        {
            tracing::debug!(command_id = %self.spec.command_id, "nobody waited for the command start");
        }
    }

    fn keep_output(&mut self, chunk: &str) {
        self.output_bytes += chunk.len() as u64;
        let room = MAX_STORED_OUTPUT.saturating_sub(self.output.len());
        let mut take = chunk.len().min(room);
        while !chunk.is_char_boundary(take) {
            take -= 1;
        }
        self.output.push_str(&chunk[..take]);
    }

    /// Persists the result (acknowledged before the route is withdrawn), then stops.
    fn finish(&mut self, status: &'static str, exit_code: Option<i32>, ctx: &mut Context<Self>) {
        if self.finished {
            return;
        }
        self.finished = true;
        let record = CommandFinished {
            command_id: self.spec.command_id.clone(),
            status,
            exit_code,
            at: Utc::now(),
            output_bytes: self.output_bytes,
            output: std::mem::take(&mut self.output),
        };
        self.links.audit.do_send(RecordAudit {
            actor: self.spec.user_id.to_string(),
            action: "command.finish",
            machine_id: Some(self.spec.agent.machine_id()),
            detail: serde_json::json!({
                "commandId": self.spec.command_id.to_string(), "status": status,
                "exitCode": exit_code, "outputBytes": self.output_bytes,
            }),
            source_ip: None,
        });
        let stored = self.links.finished.send(record);
        ctx.wait(stored.into_actor(self).map(|result, run, ctx| {
            if !matches!(result, Ok(Ok(()))) {
                tracing::error!(command_id = %run.spec.command_id, "command result could not be stored");
            }
            run.links.drop_route.do_send(DropCommand { command_id: run.spec.command_id.clone() });
            ctx.stop();
        }));
    }
}

impl Actor for CommandRun {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Self::Context) {
        crate::instruments::commands_running(-1.0);
    }

    fn started(&mut self, ctx: &mut Self::Context) {
        crate::instruments::commands_running(1.0);
        let user_id = self.spec.user_id;
        let record = CommandStarted {
            command_id: self.spec.command_id.clone(),
            user_id,
            machine_id: self.spec.agent.machine_id(),
            command: self.spec.command.clone(),
            at: Utc::now(),
        };
        let stored = self.links.started.send(record);
        ctx.wait(stored.into_actor(self).map(|result, run, ctx| {
            if !matches!(result, Ok(Ok(()))) {
                let error = ErrorFrame {
                    code: ErrorCode::Internal,
                    message: "command could not be recorded".into(),
                    request_id: run.spec.request_id.clone(),
                };
                if let Some(requester) = &run.spec.requester {
                    requester.do_send(Deliver {
                        events: Vec::new(),
                        request_id: None,
                        error: Some(error),
                        relayed: Vec::new(),
                    });
                }
                run.started_outcome(false);
                run.finished = true;
                run.links.drop_route.do_send(DropCommand {
                    command_id: run.spec.command_id.clone(),
                });
                ctx.stop();
                return;
            }
            run.spec
                .agent
                .open_command(&run.spec.command_id, ctx.address().recipient());
            let payload = execute_payload(run.spec.command_id.as_str(), &run.spec.command);
            let frame = sign_now(
                SignedKind::ExecuteCommand,
                &random_hex_id(),
                &run.spec.agent.machine_id().to_string(),
                &payload,
                run.spec.agent.secret().expose(),
            );
            run.spec.agent.post(frame);
            run.started_outcome(true);
            run.tell(ServerEvent::CommandStarted {
                command_id: run.spec.command_id.to_string(),
                machine_id: run.spec.agent.machine_id().to_string(),
            });
        }));
        ctx.run_later(self.spec.timeout, |run, ctx| {
            run.tell(ServerEvent::CommandOutput {
                command_id: run.spec.command_id.to_string(),
                output: String::new(),
                completed: true,
                exit_code: None,
                status: "timed_out",
            });
            run.finish("timed_out", None, ctx);
        });
    }
}

impl Handler<CommandChunk> for CommandRun {
    type Result = ();

    fn handle(&mut self, chunk: CommandChunk, ctx: &mut Context<Self>) {
        if self.finished {
            return;
        }
        self.keep_output(&chunk.output);
        self.tell(ServerEvent::CommandOutput {
            command_id: self.spec.command_id.to_string(),
            output: chunk.output,
            completed: chunk.completed,
            exit_code: chunk.completed.then_some(chunk.exit_code),
            status: if chunk.completed {
                "completed"
            } else {
                "running"
            },
        });
        if chunk.completed {
            self.finish("completed", Some(chunk.exit_code), ctx);
        } else if self.last_progress.elapsed() >= PROGRESS_EVERY {
            self.last_progress = std::time::Instant::now();
            self.links.progress.do_send(CommandProgress {
                command_id: self.spec.command_id.clone(),
                output_bytes: self.output_bytes,
                output: self.output.clone(),
            });
        }
    }
}
