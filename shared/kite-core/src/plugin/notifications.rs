//! Kestra's incoming-webhook notifications (`io.kestra.plugin.notifications.*`): a JSON
//! `payload` POSTed to the chat tool's webhook `url`. As in Kestra, the payload is rendered
//! twice (its text may itself hold expressions, from a template or a variable) and the
//! task has no outputs.

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::http::{self, HttpCall};
use super::{Check, IoAnswer, IoCall, IoKind, IoTaskSpec, Property, Render, TaskRunContext};
use crate::execution::{LogLevel, StateType, TaskResult};
use IoKind::{DiscordIncomingWebhook as Discord, GoogleChatIncomingWebhook as GoogleChat};
use IoKind::{SlackIncomingWebhook as Slack, TeamsIncomingWebhook as Teams};

const PROPERTIES: &[Property] = &[
    Property::new("url", Check::Required),
    Property::new("payload", Check::Any),
    // Accepted, not used yet (docs/compatibility.md).
    Property::new("options", Check::Any),
];

/// A notification task of `kind` named `name`.
const fn incoming_webhook(kind: IoKind, name: &'static str) -> IoTaskSpec {
    IoTaskSpec {
        kind,
        name,
        aliases: &[],
        properties: PROPERTIES,
        prepare,
        finish,
    }
}

/// Slack, Teams, Discord and Google Chat.
pub const TASKS: &[IoTaskSpec] = &[
    incoming_webhook(Slack, "io.kestra.plugin.notifications.slack.SlackIncomingWebhook"),
    incoming_webhook(Teams, "io.kestra.plugin.notifications.teams.TeamsIncomingWebhook"),
    incoming_webhook(
        Discord,
        "io.kestra.plugin.notifications.discord.DiscordIncomingWebhook",
    ),
    incoming_webhook(
        GoogleChat,
        "io.kestra.plugin.notifications.google.GoogleChatIncomingWebhook",
    ),
];

fn prepare(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let rendered = |name: &str| match properties.get(name) {
        Some(value) if !value.is_null() => render(value).map(Some).map_err(|e| e.to_string()),
        _ => Ok(None),
    };
    let url = rendered("url")?.unwrap_or_default();
    let payload = match rendered("payload")? {
        Some(once) => Some(render(&Value::String(once)).map_err(|e| e.to_string())?),
        None => None,
    };
    Ok(IoCall::Http(HttpCall {
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: payload.map(String::into_bytes),
        ..HttpCall::new("POST", url)
    }))
}

pub(crate) fn finish(
    call: &IoCall,
    answer: IoAnswer,
    task_run: &TaskRunContext,
    now: DateTime<Utc>,
) -> TaskResult {
    let (IoCall::Http(call), IoAnswer::Http(response)) = (call, answer) else {
        return task_run.failed("The worker answered another kind of call", now);
    };
    match http::answered(call, response) {
        Err(message) => task_run.failed(message, now),
        Ok(response) => {
            let mut result = task_run.result(StateType::Success, IndexMap::new());
            let sent = String::from_utf8_lossy(call.body.as_deref().unwrap_or_default());
            let line = format!("Sent webhook {sent}: the server answered {}", response.status);
            result.logs.extend(task_run.log(LogLevel::Debug, line, now));
            result
        }
    }
}
