//! Reading agent messages: one pass over each frame, and none at all for the common
//! `terminal_output`.

use std::borrow::Cow;

use bytestring::ByteString;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{
    AgentMessage, CommandResponse, Heartbeat, MAX_DISKS, MAX_NAME_LEN, MAX_PORTS, Metrics, OsInfo,
    PortReport, Register, TerminalExit, TerminalOutput, is_secret_shape,
};
use crate::error::{ErrorCode, ErrorFrame};
use crate::escaped::{EscapedText, scan_body};

/// Every field of every agent message, read in one pass over the frame. Shell output is kept
/// as the agent escaped it (see [`EscapedText`]).
#[derive(Deserialize)]
struct WireFrame<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    ip: Option<String>,
    #[serde(rename = "osInfo", default)]
    os_info: Option<OsInfo>,
    #[serde(rename = "secretKey", default)]
    secret_key: Option<String>,
    #[serde(default)]
    platform: Option<String>,
    #[serde(rename = "agentVersion", default)]
    agent_version: Option<String>,
    #[serde(default)]
    capabilities: Option<Vec<String>>,
    #[serde(rename = "machineId", default)]
    machine_id: Option<String>,
    #[serde(default)]
    metrics: Option<Metrics>,
    #[serde(default)]
    ports: Option<Vec<PortReport>>,
    #[serde(rename = "sessionId", default)]
    session_id: Option<String>,
    #[serde(rename = "commandId", default)]
    command_id: Option<String>,
    #[serde(borrow, default)]
    output: Option<&'a RawValue>,
    #[serde(rename = "exitCode", default)]
    exit_code: Option<i32>,
    #[serde(default)]
    completed: Option<bool>,
}

/// Only the `type` of a frame: read to name what was wrong with a frame that did not parse.
#[derive(Deserialize)]
struct TypeTag<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
}

/// The agent message types.
const AGENT_TYPES: [&str; 5] = [
    "register",
    "heartbeat",
    "command_response",
    "terminal_output",
    "terminal_exit",
];

/// Parses one agent message as received. `terminal_output` in the shape agents send it
/// (`{"type":"terminal_output","sessionId":"…","output":"…"}`) is checked in one pass and its
/// output shares the frame's bytes; anything else goes through [`parse_agent_frame`].
pub fn parse_agent_message(frame: &ByteString) -> Result<AgentMessage, ErrorFrame> {
    match terminal_output_in_place(frame) {
        Some(output) => Ok(AgentMessage::TerminalOutput(output)),
        None => parse_agent_frame(frame),
    }
}

/// The `type` a frame names, if it is a JSON object with a string `type` (used to tell a
/// malformed `register` from other refused frames).
pub fn message_type(text: &str) -> Option<String> {
    let tag: TypeTag<'_> = serde_json::from_str(text).ok()?;
    tag.kind.map(Cow::into_owned)
}

/// The common `terminal_output` without a JSON parser: `None` for any other shape (or for
/// output that is not a valid JSON string body), which then takes the general path.
fn terminal_output_in_place(frame: &ByteString) -> Option<TerminalOutput> {
    const START: &str = r#"{"type":"terminal_output","sessionId":""#;
    const BETWEEN: &str = r#","output":""#;
    const END: &str = r#""}"#;
    let rest = frame.trim_end().strip_prefix(START)?;
    let (session_id, rest) = rest.split_once('"')?;
    if !session_id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return None;
    }
    let body = rest.strip_prefix(BETWEEN)?.strip_suffix(END)?;
    let decoded_len = scan_body(body)?;
    Some(TerminalOutput {
        session_id: session_id.to_owned(),
        output: EscapedText::in_frame(frame, body, decoded_len),
    })
}

/// A `terminal_output` frame with its fields in the order of docs/protocol.md (the order the
/// server's single-pass path expects).
pub fn terminal_output_frame(session_id: &str, output: &str) -> String {
    #[derive(serde::Serialize)]
    struct Frame<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        #[serde(rename = "sessionId")]
        session_id: &'a str,
        output: &'a str,
    }
    serde_json::to_string(&Frame {
        kind: "terminal_output",
        session_id,
        output,
    })
    .unwrap_or_default()
}

/// Parses one agent message (trailing whitespace allowed) into a validated message, reading
/// the text once.
pub fn parse_agent_frame(text: &str) -> Result<AgentMessage, ErrorFrame> {
    let text = text.trim_end();
    let frame: WireFrame<'_> = serde_json::from_str(text).map_err(|err| refusal(text, &err))?;
    let kind = frame
        .kind
        .clone()
        .ok_or_else(|| ErrorFrame::new(ErrorCode::MissingType, "frame has no type"))?;
    let message = match kind.as_ref() {
        "register" => AgentMessage::Register(register(frame)?),
        "heartbeat" => AgentMessage::Heartbeat(Heartbeat {
            machine_id: required(frame.machine_id, "machineId")?,
            metrics: frame.metrics.unwrap_or_default(),
            ports: frame.ports,
        }),
        "command_response" => AgentMessage::CommandResponse(CommandResponse {
            machine_id: required(frame.machine_id, "machineId")?,
            command_id: required(frame.command_id, "commandId")?,
            output: match frame.output {
                Some(raw) => serde_json::from_str(raw.get())
                    .map_err(|_| invalid("output must be a string"))?,
                None => String::new(),
            },
            exit_code: frame.exit_code.unwrap_or(0),
            completed: frame.completed.unwrap_or(false),
        }),
        "terminal_output" => AgentMessage::TerminalOutput(TerminalOutput {
            session_id: required(frame.session_id, "sessionId")?,
            output: EscapedText::from_literal(required(frame.output, "output")?.get())
                .map_err(|_| invalid("output must be a string of valid characters"))?,
        }),
        "terminal_exit" => AgentMessage::TerminalExit(TerminalExit {
            session_id: required(frame.session_id, "sessionId")?,
            exit_code: frame.exit_code.unwrap_or(0),
        }),
        _ => {
            return Err(ErrorFrame::new(
                ErrorCode::UnknownType,
                "unknown message type",
            ));
        }
    };
    validate(&message)?;
    Ok(message)
}

fn register(frame: WireFrame<'_>) -> Result<Register, ErrorFrame> {
    Ok(Register {
        hostname: required(frame.hostname, "hostname")?,
        ip: required(frame.ip, "ip")?,
        os_info: frame.os_info,
        secret_key: required(frame.secret_key, "secretKey")?,
        platform: frame.platform,
        agent_version: frame.agent_version,
        capabilities: frame.capabilities.unwrap_or_default(),
    })
}

fn required<T>(value: Option<T>, name: &str) -> Result<T, ErrorFrame> {
    value.ok_or_else(|| {
        ErrorFrame::new(
            ErrorCode::InvalidField,
            format!("invalid field: missing field `{name}`"),
        )
    })
}

/// The error for a frame that did not parse: bad JSON, no type, an unknown type, or a field
/// of a known type with a bad value.
fn refusal(text: &str, err: &serde_json::Error) -> ErrorFrame {
    if !err.is_data() {
        return ErrorFrame::new(ErrorCode::BadJson, "frame is not valid JSON");
    }
    let tag: Option<TypeTag<'_>> = serde_json::from_str(text).ok();
    match tag.and_then(|tag| tag.kind) {
        None => ErrorFrame::new(
            ErrorCode::MissingType,
            "a frame must be a JSON object with a type",
        ),
        Some(kind) if !AGENT_TYPES.contains(&kind.as_ref()) => {
            ErrorFrame::new(ErrorCode::UnknownType, "unknown message type")
        }
        Some(_) => ErrorFrame::new(ErrorCode::InvalidField, format!("invalid field: {err}")),
    }
}

fn invalid(message: &str) -> ErrorFrame {
    ErrorFrame::new(ErrorCode::InvalidField, message)
}

/// Checks bounds that serde cannot express.
fn validate(message: &AgentMessage) -> Result<(), ErrorFrame> {
    match message {
        AgentMessage::Register(register) => {
            if register.hostname.is_empty() || register.hostname.len() > MAX_NAME_LEN {
                return Err(invalid("hostname must be 1 to 255 characters"));
            }
            if register.ip.len() > MAX_NAME_LEN {
                return Err(invalid("ip must be at most 255 characters"));
            }
            if !is_secret_shape(&register.secret_key) {
                return Err(invalid("secretKey must be 64 lowercase hex characters"));
            }
            let os = register.os_info.as_ref();
            let texts = [
                register.platform.as_deref(),
                os.and_then(|o| o.distro.as_deref()),
                os.and_then(|o| o.release.as_deref()),
                os.and_then(|o| o.kernel.as_deref()),
                register.agent_version.as_deref(),
            ];
            if texts.iter().flatten().any(|t| t.len() > MAX_NAME_LEN)
                || register.capabilities.len() > 64
            {
                return Err(invalid("register field too long"));
            }
            Ok(())
        }
        AgentMessage::Heartbeat(heartbeat) => validate_heartbeat(heartbeat),
        AgentMessage::CommandResponse(_)
        | AgentMessage::TerminalOutput(_)
        | AgentMessage::TerminalExit(_) => Ok(()),
    }
}

fn validate_heartbeat(heartbeat: &Heartbeat) -> Result<(), ErrorFrame> {
    let m = &heartbeat.metrics;
    let amounts = [
        m.cpu_usage,
        m.ram_usage,
        m.ram_total,
        m.ram_used,
        m.disk_usage,
        m.disk_total,
        m.disk_used,
        m.uptime,
    ];
    if amounts.iter().any(|v| !v.is_finite() || *v < 0.0) {
        return Err(invalid("metrics must be non-negative numbers"));
    }
    if m.disks.as_ref().is_some_and(|d| d.len() > MAX_DISKS) {
        return Err(invalid("too many disks"));
    }
    if let Some(ports) = &heartbeat.ports {
        if ports.len() > MAX_PORTS {
            return Err(invalid("too many ports"));
        }
        let too_long = |s: &Option<String>| s.as_ref().is_some_and(|s| s.len() > MAX_NAME_LEN);
        if ports.iter().any(|p| {
            p.proto.is_empty() || p.proto.len() > 16 || too_long(&p.service) || too_long(&p.state)
        }) {
            return Err(invalid("bad port entry"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a97eef2fbf0dbe58d4d7411321e6641d463bdeb5ed1ec1dcc3fffc29b1085de4";

    fn code(text: &str) -> ErrorCode {
        parse_agent_frame(text).expect_err("must be refused").code
    }

    #[test]
    fn protocol_register_example_parses_with_trailing_newline() {
        let frame = format!(
            "{{\"type\":\"register\",\"hostname\":\"web-1\",\"ip\":\"10.0.0.5\",\
             \"osInfo\":{{\"distro\":\"debian\",\"release\":\"12\",\"kernel\":\"6.1.0-18-amd64\"}},\
             \"secretKey\":\"{SECRET}\",\"platform\":\"linux\"}}\n"
        );
        let AgentMessage::Register(register) = parse_agent_frame(&frame).expect("parses") else {
            panic!("not a register");
        };
        assert_eq!(register.hostname, "web-1");
        assert_eq!(
            register.os_info.and_then(|o| o.distro).as_deref(),
            Some("debian")
        );
        assert!(!format!("{:?}", parse_agent_frame(&frame)).contains(SECRET));
    }

    #[test]
    fn protocol_heartbeat_example_parses() {
        let frame = r#"{"type":"heartbeat","machineId":"6f1c2b8e-3d4a-4b5c-9e7f-0a1b2c3d4e5f",
 "metrics":{"cpuUsage":12.5,"ramUsage":41.2,"ramTotal":15.5,"ramUsed":6.4,
            "diskUsage":63.0,"diskTotal":480.0,"diskUsed":302.4,
            "disks":[{"path":"/","usage":63.0,"total":480.0,"used":302.4}],
            "uptime":86400},
 "ports":[{"port":22,"proto":"tcp","service":"sshd","state":"LISTEN"}]}
"#;
        let AgentMessage::Heartbeat(heartbeat) = parse_agent_frame(frame).expect("parses") else {
            panic!("not a heartbeat");
        };
        assert_eq!(heartbeat.metrics.cpu_usage, 12.5);
        assert_eq!(heartbeat.metrics.uptime, 86400.0);
        assert_eq!(heartbeat.ports.map(|p| p.len()), Some(1));
    }

    #[test]
    fn null_ports_and_disks_are_accepted() {
        let frame = r#"{"type":"heartbeat","machineId":"x","metrics":{"disks":null},"ports":null}"#;
        assert!(parse_agent_frame(frame).is_ok());
    }

    #[test]
    fn bad_frames_get_the_right_codes() {
        assert_eq!(code("{not json"), ErrorCode::BadJson);
        assert_eq!(code("[1,2]"), ErrorCode::MissingType);
        assert_eq!(code(r#"{"hostname":"x"}"#), ErrorCode::MissingType);
        assert_eq!(code(r#"{"type":"update_agent"}"#), ErrorCode::UnknownType);
        assert_eq!(
            code(r#"{"type":"register","hostname":"x"}"#),
            ErrorCode::InvalidField
        );
        let short_secret = r#"{"type":"register","hostname":"h","ip":"i","secretKey":"abc"}"#;
        assert_eq!(code(short_secret), ErrorCode::InvalidField);
        let negative = r#"{"type":"heartbeat","machineId":"x","metrics":{"cpuUsage":-1}}"#;
        assert_eq!(code(negative), ErrorCode::InvalidField);
        let bad_port =
            r#"{"type":"heartbeat","machineId":"x","ports":[{"port":70000,"proto":"tcp"}]}"#;
        assert_eq!(code(bad_port), ErrorCode::InvalidField);
    }

    #[test]
    fn the_single_pass_path_agrees_with_the_general_one() {
        let texts = ["plain", "tab\there \"quoted\"\r\n", "\u{1b}[31mé🎉", ""];
        for text in texts {
            let frame = terminal_output_frame("3f2a9c0e5b7d4e1a8c6b2d0f9e7a5c31", text);
            let fast = terminal_output_in_place(&ByteString::from(frame.clone()))
                .expect("the protocol shape takes the single-pass path");
            let AgentMessage::TerminalOutput(general) = parse_agent_frame(&frame).expect("parses")
            else {
                panic!("not terminal_output");
            };
            assert_eq!(fast, general, "{text:?}");
            assert_eq!(fast.output.len(), text.len());
        }
    }

    #[test]
    fn other_shapes_and_bad_output_take_the_general_path() {
        let other_order =
            ByteString::from(r#"{"sessionId":"s","output":"x","type":"terminal_output"}"#);
        assert!(terminal_output_in_place(&other_order).is_none());
        assert!(parse_agent_message(&other_order).is_ok());
        let smuggled =
            ByteString::from(r#"{"type":"terminal_output","sessionId":"s","output":"a","x":"b"}"#);
        assert!(
            terminal_output_in_place(&smuggled).is_none(),
            "a raw quote ends the body"
        );
        let lone =
            ByteString::from(r#"{"type":"terminal_output","sessionId":"s","output":"\ud800"}"#);
        assert_eq!(
            parse_agent_message(&lone).expect_err("refused").code,
            ErrorCode::InvalidField
        );
        let unterminated =
            ByteString::from(r#"{"type":"terminal_output","sessionId":"s","output":"a\"}"#);
        assert_eq!(
            parse_agent_message(&unterminated)
                .expect_err("refused")
                .code,
            ErrorCode::BadJson
        );
    }

    #[test]
    fn long_hostnames_are_refused() {
        let frame = format!(
            r#"{{"type":"register","hostname":"{}","ip":"i","secretKey":"{SECRET}"}}"#,
            "h".repeat(256)
        );
        assert_eq!(code(&frame), ErrorCode::InvalidField);
    }
}
