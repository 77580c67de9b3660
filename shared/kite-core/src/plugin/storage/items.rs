//! Items files (`FilterItems`, `DeduplicateItems`): one Ion struct per line (JSON maps are
//! Ion too), read with [`crate::ion`] and rendered with the core's expression engine, the
//! item's fields as the only variables.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::files::{line_content, StorageError};
use crate::expression::{is_truthy, ExpressionEngine, RenderContext};

/// `FilterItems`' `filterType`: what to do with the items that match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterType {
    Include,
    Exclude,
}

impl FilterType {
    pub fn parse(name: &str) -> Option<FilterType> {
        match name.trim() {
            "INCLUDE" => Some(FilterType::Include),
            "EXCLUDE" => Some(FilterType::Exclude),
            _ => None,
        }
    }
}

/// `FilterItems`' `errorOrNullBehavior`: what to do with an item whose condition fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorOrNullBehavior {
    Fail,
    Include,
    Exclude,
}

impl ErrorOrNullBehavior {
    pub fn parse(name: &str) -> Option<ErrorOrNullBehavior> {
        match name.trim() {
            "FAIL" => Some(ErrorOrNullBehavior::Fail),
            "INCLUDE" => Some(ErrorOrNullBehavior::Include),
            "EXCLUDE" => Some(ErrorOrNullBehavior::Exclude),
            _ => None,
        }
    }
}

/// Renders one template against each item of a file (the template compiles once).
pub struct ItemRenderer {
    engine: ExpressionEngine,
    template: String,
    now: DateTime<Utc>,
}

impl ItemRenderer {
    pub fn new(template: impl Into<String>, now: DateTime<Utc>) -> ItemRenderer {
        ItemRenderer {
            engine: ExpressionEngine::new(),
            template: template.into(),
            now,
        }
    }

    /// The template rendered with the fields of the item on `line` (1-based) as variables.
    pub fn render(&self, item: &[u8], line: u64) -> Result<String, StorageError> {
        let failed = |message: String| StorageError::Item { line, message };
        let text =
            std::str::from_utf8(line_content(item)).map_err(|_| failed("not UTF-8 text".to_string()))?;
        let value: Value = crate::ion::from_line(text)
            .map_err(|e| failed(format!("not an Ion value ({e}); items files hold one per line")))?
            .to_json();
        if !value.is_object() {
            return Err(failed(format!("expected a map of fields, got `{value}`")));
        }
        let ctx = RenderContext::new(&value, self.now);
        self.engine
            .render(&self.template, &ctx)
            .map_err(|e| failed(format!("`{}`: {e}", self.template)))
    }

    /// Whether `FilterItems` keeps the item: the condition's truth (Kestra's truthiness),
    /// turned by `filter_type`; an item whose condition fails follows `on_error`.
    pub fn keep(
        &self,
        item: &[u8],
        line: u64,
        filter_type: FilterType,
        on_error: ErrorOrNullBehavior,
    ) -> Result<bool, StorageError> {
        match self.render(item, line) {
            Ok(rendered) => Ok(is_truthy(&rendered) == (filter_type == FilterType::Include)),
            Err(e) => match on_error {
                ErrorOrNullBehavior::Fail => Err(e),
                ErrorOrNullBehavior::Include => Ok(true),
                ErrorOrNullBehavior::Exclude => Ok(false),
            },
        }
    }
}
