//! Webhook triggers: the core decides ([`kite_core::trigger::webhook`]), the engine
//! creates the execution.

use kite_core::execution::Execution;
use kite_core::trigger::webhook::{
    self, WebhookError, WebhookFiring, WebhookOutcome, WebhookRequest, WebhookResponse,
};
use tracing::{info, warn};

use super::{CreateExecution, Engine};
use crate::error::EngineError;

/// What a webhook call did.
#[derive(Debug)]
pub enum WebhookFired {
    /// The trigger's conditions do not hold: no execution.
    ConditionsNotMet,
    /// A provider's URL handshake: answer this text as `text/plain`; no execution.
    Handshake(String),
    /// An execution was created, or found when the delivery was seen before;
    /// `response` says how to answer the caller.
    Created {
        execution: Box<Execution>,
        response: WebhookResponse,
    },
}

/// What a caller is told when a signature check fails; why is only logged.
pub const INVALID_SIGNATURE: &str = "Invalid webhook signature";

impl Engine {
    /// Fires the Webhook trigger of the latest revision of a flow that `request` opens.
    pub async fn fire_webhook(
        &self,
        namespace: &str,
        flow_id: &str,
        request: &WebhookRequest<'_>,
    ) -> Result<WebhookFired, EngineError> {
        let flow = match self.get_flow(namespace, flow_id, None).await {
            Err(EngineError::NotFound(_)) => return Err(EngineError::NotFound("Flow not found".into())),
            other => other?,
        };
        // Only signed triggers read secrets: unsigned webhooks (the benchmark's hot path)
        // neither scan the source for names nor ask the store.
        let signed = flow
            .flow
            .triggers
            .iter()
            .any(|t| t.properties.contains_key("signature"));
        let secrets = if signed {
            Some(self.pass_secrets(&flow).await)
        } else {
            None
        };
        let outcome = webhook::evaluate(
            &flow.flow,
            flow.revision,
            request,
            self.expressions(),
            secrets.as_ref(),
            self.now(),
        )
        .map_err(|e| match e {
            WebhookError::NotFound => EngineError::NotFound(e.to_string()),
            WebhookError::Disabled => EngineError::IllegalState(e.to_string()),
            WebhookError::IllegalArgument(m) => EngineError::IllegalArgument(m),
            WebhookError::Unauthorized(reason) => {
                warn!(%namespace, flow = %flow_id, %reason, "webhook request refused: nothing created");
                EngineError::Unauthorized(INVALID_SIGNATURE.into())
            }
        })?;
        let firing = match outcome {
            WebhookOutcome::ConditionsNotMet => return Ok(WebhookFired::ConditionsNotMet),
            WebhookOutcome::Handshake(answer) => return Ok(WebhookFired::Handshake(answer)),
            WebhookOutcome::Fire(firing) => firing,
        };
        let WebhookFiring {
            trigger,
            inputs,
            response,
            execution_id,
        } = *firing;
        // A delivery seen before answers with the execution it created (providers retry
        // on timeouts and 5xx; the id is derived from their delivery id).
        if let Some(id) = &execution_id {
            if let Some(existing) = self.inner.ports.executions.get(id).await? {
                info!(execution = %id, flow = %flow_id, "webhook delivery seen before");
                return Ok(WebhookFired::Created {
                    execution: Box::new(existing.execution),
                    response,
                });
            }
        }
        let created = self
            .create_execution(CreateExecution {
                id: execution_id.clone(),
                namespace: namespace.to_string(),
                flow_id: flow_id.to_string(),
                revision: Some(flow.revision),
                inputs,
                trigger: Some(trigger),
                ..Default::default()
            })
            .await;
        let execution = match (created, execution_id) {
            // The same delivery, concurrently: the first one's execution answers both.
            (Err(EngineError::IllegalState(m)), Some(id)) if m.ends_with("already exists") => {
                match self.inner.ports.executions.get(&id).await? {
                    Some(existing) => existing.execution,
                    None => return Err(EngineError::IllegalState(m)),
                }
            }
            (created, _) => created?,
        };
        Ok(WebhookFired::Created {
            execution: Box::new(execution),
            response,
        })
    }
}
