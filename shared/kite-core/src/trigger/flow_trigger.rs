//! Flow triggers: a flow that runs when executions of other flows change state.

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// The current time window of a Flow trigger's `preconditions` and which of its
/// conditions executions have met in it (condition name → the execution that met it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreconditionWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    #[serde(default)]
    pub satisfied: IndexMap<String, String>,
}
