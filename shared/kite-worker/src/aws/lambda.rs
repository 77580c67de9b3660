//! Lambda: `Invoke` (a synchronous invocation; the answer's body goes to a file).

use std::sync::{Arc, Mutex};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::Client;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use indexmap::IndexMap;
use kite_core::plugin::aws::messaging::{lambda_content_type, lambda_error, InvokeOp};
use kite_core::plugin::aws::{AwsError, AwsOutcome};
use kite_core::plugin::storage::files::DEFAULT_EXTENSION;
use serde_json::Value;

use super::{sdk_error, Scope};

/// Keeps the `Content-Type` of the answer, which the SDK's output leaves out.
#[derive(Debug, Clone, Default)]
struct ContentType(Arc<Mutex<Option<String>>>);

impl Intercept for ContentType {
    fn name(&self) -> &'static str {
        "ContentType"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let value = context
            .response()
            .headers()
            .get("content-type")
            .map(str::to_string);
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = value;
        Ok(())
    }
}

pub(super) async fn run(client: &Client, op: &InvokeOp, scope: &Scope<'_>) -> Result<AwsOutcome, AwsError> {
    let header = ContentType::default();
    let response = client
        .invoke()
        .function_name(&op.function_arn)
        .set_payload(op.payload.as_ref().map(|p| Blob::new(p.as_bytes())))
        .customize()
        .interceptor(header.clone())
        .send()
        .await
        .map_err(
            |e| match sdk_error("Lambda", "Invoke", op.function_arn.as_str(), e) {
                // Kestra's message, then the service's code and message.
                AwsError::Service { reason, .. } => AwsError::Task(format!(
                    "Lambda Invoke task execution failed for function: {}: {reason}",
                    op.function_arn
                )),
                other => other,
            },
        )?;
    let header = header.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let content_type = lambda_content_type(header.as_deref());
    let payload = response.payload.map(Blob::into_inner).unwrap_or_default();
    if response.function_error.is_some() {
        return Err(AwsError::Task(lambda_error(
            &op.function_arn,
            &content_type,
            &payload,
        )));
    }
    let size = payload.len();
    let uri = scope
        .write(&format!("response{DEFAULT_EXTENSION}"), payload)
        .await?;
    let mut outputs = IndexMap::new();
    outputs.insert("uri".to_string(), Value::from(uri));
    outputs.insert("contentLength".to_string(), Value::from(size));
    outputs.insert("contentType".to_string(), Value::from(content_type));
    Ok(AwsOutcome {
        outputs,
        ..AwsOutcome::default()
    })
}
