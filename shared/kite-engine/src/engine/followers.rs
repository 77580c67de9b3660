//! Followers of an execution (`follow`, `wait`): a watch channel per followed execution,
//! fed by this engine's commits and, where other processes make progress too (the
//! Lambdas), by a poller that reads the store.

use std::sync::Arc;
use std::time::Duration;

use kite_core::execution::Execution;
use tokio::sync::watch;

use super::{Engine, ExecutionWatch};
use crate::error::EngineError;

impl Engine {
    pub(super) fn notify(&self, execution: &Execution) {
        let Ok(mut watchers) = self.inner.watchers.lock() else {
            return;
        };
        if let Some(tx) = watchers.get(&execution.id) {
            let _ = tx.send(Arc::new(execution.clone()));
            if execution.state.current.is_terminated() || tx.receiver_count() == 0 {
                watchers.remove(&execution.id);
            }
        }
    }

    /// Follows an execution: the receiver holds the latest state and changes on each step.
    /// The sender is dropped once the execution is terminated.
    pub async fn subscribe(&self, id: &str) -> Result<ExecutionWatch, EngineError> {
        let current = self.get_execution(id).await?;
        let rx = {
            let mut watchers = self
                .inner
                .watchers
                .lock()
                .map_err(|_| EngineError::Internal("watchers poisoned".into()))?;
            match watchers.get(id) {
                Some(tx) => tx.subscribe(),
                None => {
                    let (tx, rx) = watch::channel(Arc::new(current.clone()));
                    if !current.state.current.is_terminated() {
                        watchers.insert(id.to_string(), tx);
                        if let Some(max) = self.inner.config.watch_poll {
                            self.spawn_poller(id.to_string(), max);
                        }
                    }
                    rx
                }
            }
        };
        // A step may have committed between the read and the registration.
        let latest = self.get_execution(id).await?;
        if latest != current {
            self.notify(&latest);
        }
        Ok(rx)
    }

    /// Reads a followed execution from the store until it ends or nobody follows it: the
    /// first reads come quickly (most executions end within a second), then the interval
    /// grows to `max`, and shrinks again after each change seen.
    fn spawn_poller(&self, id: String, max: Duration) {
        const FIRST: Duration = Duration::from_millis(50);
        let engine = self.clone();
        tokio::spawn(async move {
            let mut delay = FIRST;
            loop {
                tokio::time::sleep(delay).await;
                let last = {
                    let Ok(mut watchers) = engine.inner.watchers.lock() else {
                        return;
                    };
                    match watchers.get(&id) {
                        None => return,
                        Some(tx) if tx.receiver_count() == 0 => {
                            watchers.remove(&id);
                            return;
                        }
                        Some(tx) => tx.borrow().clone(),
                    }
                };
                match engine.inner.ports.executions.get(&id).await {
                    Ok(Some(v)) if v.execution != *last => {
                        engine.notify(&v.execution);
                        delay = FIRST;
                    }
                    Ok(Some(_)) | Err(_) => delay = (delay * 3 / 2).min(max),
                    // Deleted: followers see the sender go and read the 404 themselves.
                    Ok(None) => {
                        if let Ok(mut watchers) = engine.inner.watchers.lock() {
                            watchers.remove(&id);
                        }
                        return;
                    }
                }
            }
        });
    }

    /// Waits until the execution is terminated or `timeout` passes; returns the latest state.
    pub async fn wait_for_terminal(&self, id: &str, timeout: Duration) -> Result<Execution, EngineError> {
        let mut rx = self.subscribe(id).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let current = rx.borrow_and_update().clone();
            if current.state.current.is_terminated() {
                return Ok(current.as_ref().clone());
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                // Sender dropped: the execution terminated (or watchers were reset): read it.
                Ok(Err(_)) => {
                    let latest = self.get_execution(id).await?;
                    if latest.state.current.is_terminated() || tokio::time::Instant::now() >= deadline {
                        return Ok(latest);
                    }
                    rx = self.subscribe(id).await?;
                }
                Err(_) => return self.get_execution(id).await,
            }
        }
    }
}
