//! The message an execution notification sends: the facts of the execution
//! ([`Summary`]) laid out for each channel (a Slack message with blocks and a colored
//! attachment, a Discord embed, a Teams message card, a Google Chat text, an email with
//! HTML and text bodies).

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::{Channel, ExecutionNotificationCall};
use crate::execution::{Execution, StateType, TaskRun};
use crate::plugin::http::HttpCall;
use crate::plugin::IoCall;

/// What a notification says about an execution.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub namespace: String,
    pub flow_id: String,
    pub execution_id: String,
    pub state: StateType,
    pub start_date: Option<DateTime<Utc>>,
    /// Human-readable, up to the end (or up to now while it runs).
    pub duration: String,
    /// The task the execution failed on: as in Kestra, the first FAILED task run.
    pub failed_task: Option<String>,
    /// The execution's page in the UI, when the base URL is known.
    pub link: Option<String>,
}

impl Summary {
    pub fn of(execution: &Execution, kestra_url: Option<&str>, now: DateTime<Utc>) -> Summary {
        let start = execution
            .state
            .start_date
            .or(execution.state.histories.first().map(|h| h.date));
        let end = execution.state.end_date.unwrap_or(now);
        let failed_task = execution
            .task_runs()
            .iter()
            .find(|t: &&TaskRun| t.state.current == StateType::Failed)
            .map(|t| t.task_id.clone());
        Summary {
            namespace: execution.namespace.clone(),
            flow_id: execution.flow_id.clone(),
            execution_id: execution.id.clone(),
            state: execution.state.current,
            start_date: start,
            duration: start.map_or_else(String::new, |s| human_duration(end - s)),
            failed_task,
            link: kestra_url.map(|base| {
                format!(
                    "{base}/ui/executions/{}/{}/{}",
                    execution.namespace, execution.flow_id, execution.id
                )
            }),
        }
    }

    /// `hello (company.team): FAILED`
    pub fn title(&self) -> String {
        format!("{} ({}): {}", self.flow_id, self.namespace, self.state.as_str())
    }

    /// What happened, in one sentence.
    pub fn detail(&self) -> String {
        match (&self.failed_task, self.state.is_terminated()) {
            (Some(task), true) => format!("Ended on the failure of task `{task}` after {}.", self.duration),
            (Some(task), false) => format!("Task `{task}` failed; running for {}.", self.duration),
            (None, true) => format!("Ended after {}.", self.duration),
            (None, false) => format!("Running for {}.", self.duration),
        }
    }

    /// The facts every channel lists, as (name, value).
    fn facts(&self, custom: &Map<String, Value>) -> Vec<(String, String)> {
        let mut facts = vec![
            ("Namespace".to_string(), self.namespace.clone()),
            ("Flow".to_string(), self.flow_id.clone()),
            ("Execution".to_string(), self.execution_id.clone()),
            ("State".to_string(), self.state.as_str().to_string()),
        ];
        if let Some(start) = self.start_date {
            facts.push((
                "Started".into(),
                start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ));
        }
        facts.push(("Duration".into(), self.duration.clone()));
        if let Some(task) = &self.failed_task {
            facts.push(("Failed task".into(), task.clone()));
        }
        facts.extend(custom.iter().map(|(name, value)| (name.clone(), text_of(value))));
        facts
    }

    fn color(&self) -> (&'static str, u32) {
        match self.state {
            StateType::Success => ("good", 0x2E_B8_86),
            StateType::Warning => ("warning", 0xDA_A0_38),
            s if s.is_terminated() => ("danger", 0xA3_00_00),
            _ => ("#0076D7", 0x00_76_D7),
        }
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `1.234s`, `2m 5.1s`, `1h 2m 5s`.
pub fn human_duration(d: chrono::Duration) -> String {
    let ms = d.num_milliseconds().max(0);
    let (h, m) = (ms / 3_600_000, ms / 60_000 % 60);
    let s = (ms % 60_000) as f64 / 1000.0;
    let secs = format!("{s:.3}");
    let secs = secs.trim_end_matches('0').trim_end_matches('.');
    match (h, m) {
        (0, 0) => format!("{secs}s"),
        (0, m) => format!("{m}m {secs}s"),
        (h, m) => format!("{h}h {m}m {}s", ms % 60_000 / 1000),
    }
}

/// The call that sends `call`'s message about `execution`.
pub fn build(call: &ExecutionNotificationCall, execution: &Execution, now: DateTime<Utc>) -> IoCall {
    let summary = Summary::of(execution, call.kestra_url.as_deref(), now);
    let custom: Map<String, Value> = call.custom_fields.clone().into_iter().collect();
    let message = call.custom_message.as_deref();
    let post = |url: &str, payload: Value| {
        IoCall::Http(HttpCall {
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Some(payload.to_string().into_bytes()),
            ..HttpCall::new("POST", url)
        })
    };
    match &call.channel {
        Channel::Slack {
            url,
            channel,
            username,
            icon_url,
            icon_emoji,
        } => {
            let mut payload = slack(&summary, &custom, message);
            let extra = [
                ("channel", channel),
                ("username", username),
                ("icon_url", icon_url),
                ("icon_emoji", icon_emoji),
            ];
            for (name, value) in extra {
                if let Some(value) = value {
                    payload[name] = Value::String(value.clone());
                }
            }
            post(url, payload)
        }
        Channel::Discord {
            url,
            username,
            avatar_url,
            content,
        } => {
            let mut payload = discord(&summary, &custom);
            let content = content.as_deref().or(message);
            let extra = [
                ("username", username.as_deref()),
                ("avatar_url", avatar_url.as_deref()),
                ("content", content),
            ];
            for (name, value) in extra {
                if let Some(value) = value {
                    payload[name] = Value::String(value.to_string());
                }
            }
            post(url, payload)
        }
        Channel::Teams {
            url,
            theme_color,
            activity_title,
            activity_subtitle,
        } => {
            let mut payload = teams(&summary, &custom, message, theme_color);
            let section = &mut payload["sections"][0];
            if let Some(title) = activity_title {
                section["activityTitle"] = Value::String(title.clone());
            }
            if let Some(subtitle) = activity_subtitle {
                section["activitySubtitle"] = Value::String(subtitle.clone());
            }
            post(url, payload)
        }
        Channel::GoogleChat { url, text } => {
            let message = match (text.as_deref(), message) {
                (Some(text), Some(message)) => Some(format!("{text}\n{message}")),
                (text, message) => text.or(message).map(String::from),
            };
            post(url, google_chat(&summary, &custom, message.as_deref()))
        }
        Channel::Mail(mail) => {
            let mut mail = mail.clone();
            mail.subject = Some(mail.subject.unwrap_or_else(|| summary.title()));
            mail.html = Some(html(&summary, &custom, message));
            mail.text = text(&summary, &custom, message);
            IoCall::Mail(mail)
        }
    }
}

fn slack(summary: &Summary, custom: &Map<String, Value>, message: Option<&str>) -> Value {
    let title = match &summary.link {
        Some(link) => format!("*<{link}|{}>*", summary.title()),
        None => format!("*{}*", summary.title()),
    };
    let headline = format!("{title}\n{}", summary.detail());
    let mut blocks = Vec::new();
    if let Some(message) = message {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": message}}));
    }
    let mut section = json!({"type": "section", "text": {"type": "mrkdwn", "text": headline}});
    if let Some(link) = &summary.link {
        section["accessory"] = json!({
            "type": "button",
            "text": {"type": "plain_text", "text": "Open execution"},
            "url": link,
        });
    }
    blocks.push(section);
    let fields: Vec<Value> = summary
        .facts(custom)
        .into_iter()
        .map(|(title, value)| json!({"title": title, "value": value, "short": true}))
        .collect();
    let mut attachment = json!({"color": summary.color().0, "fields": fields});
    if let Some(start) = summary.start_date {
        attachment["ts"] = json!(start.timestamp());
    }
    json!({"text": headline, "blocks": blocks, "attachments": [attachment]})
}

fn discord(summary: &Summary, custom: &Map<String, Value>) -> Value {
    let fields: Vec<Value> = summary
        .facts(custom)
        .into_iter()
        .map(|(name, value)| json!({"name": name, "value": value, "inline": true}))
        .collect();
    let mut embed = json!({
        "title": summary.title(),
        "description": summary.detail(),
        "color": summary.color().1,
        "fields": fields,
    });
    if let Some(link) = &summary.link {
        embed["url"] = json!(link);
    }
    if let Some(start) = summary.start_date {
        embed["timestamp"] = json!(start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    }
    json!({"tts": false, "embeds": [embed]})
}

fn teams(summary: &Summary, custom: &Map<String, Value>, message: Option<&str>, theme_color: &str) -> Value {
    let facts: Vec<Value> = summary
        .facts(custom)
        .into_iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    let mut card = json!({
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": theme_color,
        "summary": summary.title(),
        "title": summary.title(),
        "text": message.map_or_else(|| summary.detail(), |m| format!("{m}\n\n{}", summary.detail())),
        "sections": [{"facts": facts, "markdown": true}],
    });
    if let Some(link) = &summary.link {
        card["potentialAction"] = json!([{
            "@type": "OpenUri",
            "name": "Open execution",
            "targets": [{"os": "default", "uri": link}],
        }]);
    }
    card
}

fn google_chat(summary: &Summary, custom: &Map<String, Value>, message: Option<&str>) -> Value {
    let mut text = String::new();
    if let Some(message) = message {
        text.push_str(message);
        text.push_str("\n\n");
    }
    match &summary.link {
        Some(link) => text.push_str(&format!("*<{link}|{}>*\n", summary.title())),
        None => text.push_str(&format!("*{}*\n", summary.title())),
    }
    text.push_str(&summary.detail());
    for (name, value) in summary.facts(custom) {
        text.push_str(&format!("\n{name}: {value}"));
    }
    json!({ "text": text })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html(summary: &Summary, custom: &Map<String, Value>, message: Option<&str>) -> String {
    let mut out = String::from("<html><body>\n");
    if let Some(message) = message {
        out.push_str(&format!("<p>{}</p>\n", escape(message)));
    }
    out.push_str(&format!(
        "<h2>{}</h2>\n<p>{}</p>\n<table>\n",
        escape(&summary.title()),
        escape(&summary.detail())
    ));
    for (name, value) in summary.facts(custom) {
        out.push_str(&format!(
            "<tr><th align=\"left\">{}</th><td>{}</td></tr>\n",
            escape(&name),
            escape(&value)
        ));
    }
    out.push_str("</table>\n");
    if let Some(link) = &summary.link {
        out.push_str(&format!(
            "<p><a href=\"{}\">Open execution</a></p>\n",
            escape(link)
        ));
    }
    out.push_str("</body></html>\n");
    out
}

fn text(summary: &Summary, custom: &Map<String, Value>, message: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(message) = message {
        out.push_str(message);
        out.push_str("\n\n");
    }
    out.push_str(&format!("{}\n{}\n\n", summary.title(), summary.detail()));
    for (name, value) in summary.facts(custom) {
        out.push_str(&format!("{name}: {value}\n"));
    }
    if let Some(link) = &summary.link {
        out.push_str(&format!("\n{link}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::human_duration;
    use chrono::Duration;

    #[test]
    fn durations_read_like_a_person_writes_them() {
        assert_eq!(human_duration(Duration::milliseconds(1234)), "1.234s");
        assert_eq!(human_duration(Duration::milliseconds(2000)), "2s");
        assert_eq!(human_duration(Duration::milliseconds(125_100)), "2m 5.1s");
        assert_eq!(human_duration(Duration::seconds(3725)), "1h 2m 5s");
    }
}
