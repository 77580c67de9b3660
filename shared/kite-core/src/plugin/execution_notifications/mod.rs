//! Kestra's execution notifications (`SlackExecution`, `DiscordExecution`,
//! `TeamsExecution`, `GoogleChatExecution`, `MailExecution`): a message about one
//! execution (by default the current one; in a flow started by a Flow trigger, the one
//! named by `{{ trigger.executionId }}`) with its flow, namespace, id, state, start date,
//! duration, the task it failed on and a link to its page in the UI when `kestraUrl` is
//! given. The worker reads the execution from the store (waiting, as Kestra does, until
//! another execution is terminated, or in the state the Flow trigger saw), builds the
//! message with [`message::build`] and sends it like `*IncomingWebhook` or `MailSend`.

pub mod message;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::mail::{self, MailCall};
use super::props::Props;
use super::{notifications, Check, IoAnswer, IoCall, IoKind, IoTaskSpec, Property, Render, TaskRunContext};
use crate::execution::{StateType, TaskResult};

/// A notification about an execution, rendered but for the message itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionNotificationCall {
    pub execution_id: String,
    /// The state a Flow trigger saw (`trigger.state`): the notification waits for the
    /// execution to be in it. `None`: it waits for the execution to end, unless it is
    /// the task run's own execution.
    pub wanted_state: Option<StateType>,
    pub custom_message: Option<String>,
    pub custom_fields: IndexMap<String, Value>,
    /// Kestra's base URL, for the link to the execution's page.
    pub kestra_url: Option<String>,
    pub channel: Channel,
}

/// Where the message goes, with the settings of its family.
#[derive(Debug, Clone, PartialEq)]
pub enum Channel {
    Slack {
        url: String,
        channel: Option<String>,
        username: Option<String>,
        icon_url: Option<String>,
        icon_emoji: Option<String>,
    },
    Discord {
        url: String,
        username: Option<String>,
        avatar_url: Option<String>,
        content: Option<String>,
    },
    Teams {
        url: String,
        theme_color: String,
        activity_title: Option<String>,
        activity_subtitle: Option<String>,
    },
    GoogleChat {
        url: String,
        /// Text put before the message.
        text: Option<String>,
    },
    /// The email's SMTP settings and addresses; its subject (if none is given) and bodies
    /// come from the execution.
    Mail(MailCall),
}

impl ExecutionNotificationCall {
    pub fn files_read(&self) -> Vec<&str> {
        match &self.channel {
            Channel::Mail(call) => call.files_read(),
            _ => Vec::new(),
        }
    }

    /// Whether the execution, as read, is the one to report on (Kestra's rule): the task
    /// run's own execution at once, else in the Flow trigger's state, else terminated.
    pub fn ready(&self, execution: &crate::execution::Execution, own_execution_id: &str) -> bool {
        if execution.id == own_execution_id {
            return true;
        }
        match self.wanted_state {
            // A trigger on RUNNING takes the first state read.
            Some(StateType::Running) => true,
            Some(state) => execution.state.current == state,
            None => execution.state.current.is_terminated(),
        }
    }
}

/// What the worker sent for a notification, and what it got back.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub call: IoCall,
    pub answer: IoAnswer,
}

const EXECUTION: [Property; 4] = [
    Property::new("executionId", Check::Any),
    Property::new("customMessage", Check::Any),
    Property::new("customFields", Check::Map),
    Property::new("kestraUrl", Check::Any),
];

const fn with_execution<const N: usize, const M: usize>(own: [Property; N]) -> [Property; M] {
    let mut all = [Property::new("", Check::Any); M];
    let mut i = 0;
    while i < M {
        all[i] = if i < 4 { EXECUTION[i] } else { own[i - 4] };
        i += 1;
    }
    all
}

const SLACK: [Property; 10] = with_execution([
    Property::new("url", Check::Required),
    Property::new("channel", Check::Any),
    Property::new("username", Check::Any),
    Property::new("iconUrl", Check::Any),
    Property::new("iconEmoji", Check::Any),
    Property::new("options", Check::Any),
]);

const DISCORD: [Property; 9] = with_execution([
    Property::new("url", Check::Required),
    Property::new("username", Check::Any),
    Property::new("avatarUrl", Check::Any),
    Property::new("content", Check::Any),
    Property::new("options", Check::Any),
]);

const TEAMS: [Property; 9] = with_execution([
    Property::new("url", Check::Required),
    Property::new("themeColor", Check::Any),
    Property::new("activityTitle", Check::Any),
    Property::new("activitySubtitle", Check::Any),
    Property::new("options", Check::Any),
]);

const GOOGLE_CHAT: [Property; 7] = with_execution([
    Property::new("url", Check::Required),
    Property::new("text", Check::Any),
    Property::new("options", Check::Any),
]);

const MAIL: [Property; 18] = with_execution([
    Property::new("host", Check::Any),
    Property::new("port", Check::Any),
    Property::new("username", Check::Any),
    Property::new("password", Check::Any),
    Property::new("transportStrategy", Check::Any),
    Property::new("sessionTimeout", Check::Any),
    Property::new("verifyServerIdentity", Check::Any),
    Property::new("trustedHosts", Check::Any),
    Property::new("from", Check::Any),
    Property::new("to", Check::Any),
    Property::new("cc", Check::Any),
    Property::new("subject", Check::Any),
    Property::new("attachments", Check::Any),
    Property::new("embeddedImages", Check::Any),
]);

pub const TASKS: &[IoTaskSpec] = &[
    IoTaskSpec::new(
        IoKind::SlackExecution,
        "io.kestra.plugin.slack.SlackExecution",
        &SLACK,
        prepare_slack,
        finish,
    )
    .with_aliases(&["io.kestra.plugin.notifications.slack.SlackExecution"]),
    IoTaskSpec::new(
        IoKind::DiscordExecution,
        "io.kestra.plugin.notifications.discord.DiscordExecution",
        &DISCORD,
        prepare_discord,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::TeamsExecution,
        "io.kestra.plugin.microsoft365.teams.TeamsExecution",
        &TEAMS,
        prepare_teams,
        finish,
    )
    .with_aliases(&["io.kestra.plugin.notifications.teams.TeamsExecution"]),
    IoTaskSpec::new(
        IoKind::GoogleChatExecution,
        "io.kestra.plugin.googleworkspace.chat.GoogleChatExecution",
        &GOOGLE_CHAT,
        prepare_google_chat,
        finish,
    )
    .with_aliases(&["io.kestra.plugin.notifications.google.GoogleChatExecution"]),
    IoTaskSpec::new(
        IoKind::MailExecution,
        "io.kestra.plugin.email.MailExecution",
        &MAIL,
        prepare_mail,
        finish,
    )
    .with_aliases(&["io.kestra.plugin.notifications.mail.MailExecution"]),
];

/// The call for `channel`, with the execution properties of `p`.
fn notification(p: &Props, channel: Channel) -> Result<IoCall, String> {
    let execution_id = match p.rendered("executionId")? {
        Some(id) => id,
        None => p.render_value(&Value::String("{{ execution.id }}".into()))?,
    };
    let mut custom_fields = IndexMap::new();
    if let Some(Value::Object(fields)) = p.properties.get("customFields") {
        for (name, value) in fields {
            let value = match value {
                Value::String(_) => Value::String(p.render_value(value)?),
                other => other.clone(),
            };
            custom_fields.insert(name.clone(), value);
        }
    }
    // The state a Flow trigger fired on; none outside such a flow.
    let wanted_state = p
        .render_value(&Value::String("{{ trigger.state ?? '' }}".into()))
        .ok()
        .and_then(|s| serde_json::from_value(Value::String(s)).ok());
    Ok(IoCall::ExecutionNotification(Box::new(
        ExecutionNotificationCall {
            execution_id: execution_id.trim().to_string(),
            wanted_state,
            custom_message: p.rendered("customMessage")?,
            custom_fields,
            kestra_url: p
                .rendered("kestraUrl")?
                .map(|u| u.trim_end_matches('/').to_string()),
            channel,
        },
    )))
}

fn prepare_slack(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let channel = Channel::Slack {
        url: p.required("url")?,
        channel: p.rendered("channel")?,
        username: p.rendered("username")?,
        icon_url: p.rendered("iconUrl")?,
        icon_emoji: p.rendered("iconEmoji")?,
    };
    notification(&p, channel)
}

fn prepare_discord(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let channel = Channel::Discord {
        url: p.required("url")?,
        username: p.rendered("username")?,
        avatar_url: p.rendered("avatarUrl")?,
        content: p.rendered("content")?,
    };
    notification(&p, channel)
}

fn prepare_teams(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let channel = Channel::Teams {
        url: p.required("url")?,
        // Kestra's default theme color.
        theme_color: p.rendered("themeColor")?.unwrap_or_else(|| "0076D7".into()),
        activity_title: p.rendered("activityTitle")?,
        activity_subtitle: p.rendered("activitySubtitle")?,
    };
    notification(&p, channel)
}

fn prepare_google_chat(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let channel = Channel::GoogleChat {
        url: p.required("url")?,
        text: p.rendered("text")?,
    };
    notification(&p, channel)
}

fn prepare_mail(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let channel = Channel::Mail(mail::smtp_call(&p)?);
    notification(&p, channel)
}

fn finish(call: &IoCall, answer: IoAnswer, task_run: &TaskRunContext, now: DateTime<Utc>) -> TaskResult {
    let (IoCall::ExecutionNotification(_), IoAnswer::ExecutionNotification(answer)) = (call, answer) else {
        return task_run.failed("The worker answered another kind of call", now);
    };
    match answer {
        Err(message) => task_run.failed(message, now),
        Ok(sent) => {
            let Sent { call, answer } = *sent;
            match &call {
                IoCall::Mail(_) => mail::finish(&call, answer, task_run, now),
                _ => notifications::finish(&call, answer, task_run, now),
            }
        }
    }
}
