//! FILE inputs and where an execution's files are stored
//! (`kestra:///` URIs).

use serde_json::Value;

use super::{InputDefinition, InputError, InputValue};

/// FILE: a `kestra:///` URI of an uploaded file.
pub(super) fn file(def: &InputDefinition, value: InputValue, shown: &str) -> Result<Value, InputError> {
    let id = def.id.as_str();
    let s = value.text();
    if s.starts_with("kestra:///") && !s.contains("/../") {
        Ok(Value::String(s))
    } else {
        Err(InputError::invalid(
            id,
            &format!("Expected `FILE` but received `{shown}`"),
            shown,
        ))
    }
}

/// `kestra:///{namespace as path}/{flowId}/executions/{executionId}/inputs/{inputId}/{filename}`
pub fn file_input_uri(
    namespace: &str,
    flow_id: &str,
    execution_id: &str,
    input_id: &str,
    filename: &str,
) -> String {
    format!(
        "{}inputs/{input_id}/{filename}",
        execution_storage_prefix(namespace, flow_id, execution_id)
    )
}

/// The storage prefix of everything an execution owns.
pub fn execution_storage_prefix(namespace: &str, flow_id: &str, execution_id: &str) -> String {
    format!(
        "kestra:///{}/{flow_id}/executions/{execution_id}/",
        namespace.replace('.', "/")
    )
}

/// `kestra:///{namespace as path}/{flowId}/uploads/`: FILE inputs staged for the flow's
/// executions before they are created (files too large for one request body).
pub fn flow_uploads_prefix(namespace: &str, flow_id: &str) -> String {
    format!("kestra:///{}/{flow_id}/uploads/", namespace.replace('.', "/"))
}
