//! A task's properties as its `prepare` reads them: each value rendered with the task
//! run's variables when it is read, with Kestra's messages for what is missing or wrong.
//! Task families add their own readers in `impl Props` blocks of their module.

use serde_json::{Map, Value};

use super::Render;

/// A task's properties and the renderer of their values.
pub(crate) struct Props<'a> {
    pub(crate) properties: &'a Map<String, Value>,
    pub(crate) render: &'a Render<'a>,
}

impl<'a> Props<'a> {
    pub(crate) fn new(properties: &'a Map<String, Value>, render: &'a Render<'a>) -> Props<'a> {
        Props { properties, render }
    }

    /// A property rendered, or `None` when absent or null.
    pub(crate) fn rendered(&self, name: &str) -> Result<Option<String>, String> {
        match self.properties.get(name) {
            Some(value) if !value.is_null() => self.render_value(value).map(Some),
            _ => Ok(None),
        }
    }

    pub(crate) fn render_value(&self, value: &Value) -> Result<String, String> {
        (self.render)(value).map_err(|e| e.to_string())
    }

    pub(crate) fn required(&self, name: &str) -> Result<String, String> {
        self.rendered(name)?
            .ok_or_else(|| format!("Missing required property '{name}'"))
    }

    /// A boolean property; templates are allowed, so it is checked once rendered.
    pub(crate) fn flag(&self, name: &str, default: bool) -> Result<bool, String> {
        Ok(match self.rendered(name)? {
            None => default,
            Some(text) => match text.trim() {
                t if t.eq_ignore_ascii_case("true") => true,
                t if t.eq_ignore_ascii_case("false") => false,
                other => return Err(format!("Invalid boolean value '{other}' for property '{name}'")),
            },
        })
    }

    /// `namespace`, by default `{{ flow.namespace }}` as in Kestra.
    pub(crate) fn namespace(&self) -> Result<String, String> {
        match self.rendered("namespace")? {
            Some(ns) => Ok(ns),
            None => self.render_value(&Value::String("{{ flow.namespace }}".into())),
        }
    }

    /// `timeZoneId`: an IANA zone, UTC when absent.
    pub(crate) fn time_zone(&self) -> Result<chrono_tz::Tz, String> {
        match self.rendered("timeZoneId")? {
            None => Ok(chrono_tz::UTC),
            Some(id) => id
                .trim()
                .parse::<chrono_tz::Tz>()
                .map_err(|_| format!("Invalid `timeZoneId` '{id}': unknown time zone")),
        }
    }
}
