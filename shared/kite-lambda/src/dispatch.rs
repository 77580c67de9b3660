//! The in-process fast path of a Lambda: work the engine committed as claimed (due now) runs
//! in this invocation, and the handler waits for it before answering, because Lambda
//! freezes the process once the answer is sent. Unclaimed and later work goes through the
//! queue; claimed work that does not finish here is redelivered once its claim lapses.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use kite_engine::ports::{Dispatcher, Work, WorkItem};
use kite_engine::{Engine, EngineError};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{error, warn, Instrument};

/// The invocation's deadline as an instant (`Context::deadline` is epoch milliseconds), half
/// a second early so the answer still gets out; 30 s from now when the runtime gives none.
pub fn deadline_of(context: &lambda_runtime::Context) -> Instant {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let left = if context.deadline > now_ms {
        std::time::Duration::from_millis(context.deadline - now_ms)
            .saturating_sub(std::time::Duration::from_millis(500))
    } else {
        std::time::Duration::from_secs(30)
    };
    Instant::now() + left
}

/// Counts work running in this process.
#[derive(Default)]
pub struct InFlight {
    running: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    fn start(&self) {
        self.running.fetch_add(1, Ordering::AcqRel);
    }

    fn finish(&self) {
        if self.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Items running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    /// Waits until nothing runs (work spawned by running work included) or `deadline`;
    /// `true` if idle.
    pub async fn wait_idle(&self, deadline: Instant) -> bool {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Registered before the check so a finish in between is not missed.
            notified.as_mut().enable();
            if self.running() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.running() == 0;
            }
        }
    }
}

/// The [`Dispatcher`] of the functions: each claimed item runs as a task on this runtime.
pub struct InProcess {
    engine: Engine,
    in_flight: Arc<InFlight>,
    runs_task_io: bool,
}

impl InProcess {
    /// Installs the dispatcher on `engine`; the returned counter tells when the work is done.
    /// Only the worker function makes task runs' I/O (`runs_task_io`): the others hand it
    /// to the worker through the queue and run light work only.
    pub fn install(engine: &Engine, runs_task_io: bool) -> Arc<InFlight> {
        let in_flight = Arc::new(InFlight::default());
        engine.set_dispatcher(Arc::new(InProcess {
            engine: engine.clone(),
            in_flight: in_flight.clone(),
            runs_task_io,
        }));
        in_flight
    }
}

impl Dispatcher for InProcess {
    fn runs(&self, work: &Work) -> bool {
        self.runs_task_io || !matches!(work, Work::RunTask { .. })
    }

    fn dispatch(&self, items: Vec<WorkItem>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            // No runtime: the claim lapses and the queue redelivers the items.
            warn!(items = items.len(), "no async runtime for in-process work");
            return;
        };
        for item in items {
            self.in_flight.start();
            let engine = self.engine.clone();
            let in_flight = self.in_flight.clone();
            let span = tracing::info_span!("work", item = %item.id);
            handle.spawn(
                async move {
                    let execution_id = item.execution_id.clone();
                    match engine.process(item).await {
                        Ok(()) => {}
                        // Refused for good by the state machine: the engine logged and acked it.
                        Err(EngineError::Internal(_)) => {}
                        Err(e) => {
                            error!(execution = %execution_id, error = %e, "in-process work failed; the queue redelivers it")
                        }
                    }
                    in_flight.finish();
                }
                .instrument(span),
            );
        }
    }

    /// Later work is in the queue with its delay; nothing to arm in a Lambda.
    fn wake_at(&self, _due: DateTime<Utc>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn idle_waits_for_running_work() {
        let f = Arc::new(InFlight::default());
        assert!(f.wait_idle(Instant::now()).await);
        f.start();
        // Nothing can finish the work: this wait always reaches its deadline, however slow
        // the machine.
        assert!(!f.wait_idle(Instant::now() + Duration::from_millis(20)).await);
        let g = f.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            g.finish();
        });
        // Bounded against a hang only.
        assert!(f.wait_idle(Instant::now() + Duration::from_secs(60)).await);
    }
}
