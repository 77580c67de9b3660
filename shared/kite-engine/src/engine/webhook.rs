//! Webhook triggers: the core decides ([`kite_core::trigger::webhook`]), the engine
//! creates the execution.

use kite_core::execution::Execution;
use kite_core::trigger::webhook::{
    self, WebhookError, WebhookFiring, WebhookOutcome, WebhookRequest, WebhookResponse,
};

use super::{CreateExecution, Engine};
use crate::error::EngineError;

/// What a webhook call did.
#[derive(Debug)]
pub enum WebhookFired {
    /// The trigger's conditions do not hold: no execution.
    ConditionsNotMet,
    /// An execution was created; `response` says how to answer the caller.
    Created {
        execution: Box<Execution>,
        response: WebhookResponse,
    },
}

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
        let outcome = webhook::evaluate(&flow.flow, flow.revision, request, self.expressions(), self.now())
            .map_err(|e| match e {
            WebhookError::NotFound => EngineError::NotFound(e.to_string()),
            WebhookError::Disabled => EngineError::IllegalState(e.to_string()),
            WebhookError::IllegalArgument(m) => EngineError::IllegalArgument(m),
        })?;
        let WebhookOutcome::Fire(firing) = outcome else {
            return Ok(WebhookFired::ConditionsNotMet);
        };
        let WebhookFiring {
            trigger,
            inputs,
            response,
        } = *firing;
        let execution = self
            .create_execution(CreateExecution {
                namespace: namespace.to_string(),
                flow_id: flow_id.to_string(),
                revision: Some(flow.revision),
                inputs,
                trigger: Some(trigger),
                ..Default::default()
            })
            .await?;
        Ok(WebhookFired::Created {
            execution: Box::new(execution),
            response,
        })
    }
}
