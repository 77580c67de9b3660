//! The in-process runtime: a bounded pool of workers fed by the fast path and by a
//! timer loop that leases due work (timers, redeliveries) from the durable queue.
//!
//! The workers run on threads of their own (a separate async runtime): renders and
//! tasks can keep every worker busy without delaying the HTTP server's threads, which
//! the operating system keeps scheduling (`/ping`, webhooks and the API stay quick).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kite_engine::ports::{Dispatcher, StoreError, WorkItem};
use kite_engine::{Engine, EngineError};
use tokio::sync::{mpsc, watch, Mutex, Notify};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

/// How often the timer loop looks at the queue when nothing woke it (lapsed leases).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// When a work item whose step still conflicted after every retry comes back.
const CONFLICT_REQUEUE_MS: i64 = 200;
/// Items leased by one timer-loop round.
const LEASE_BATCH: usize = 256;
/// The scheduler looks at its triggers at least this often (clock changes, lost wake-ups).
const SCHEDULER_POLL: Duration = Duration::from_secs(60);

/// Hands work to the pool (the engine's fast path) and wakes the timer loop.
struct PoolDispatcher {
    tx: mpsc::UnboundedSender<WorkItem>,
    wake: Arc<Notify>,
    /// The date (ms) the timer loop sleeps until.
    sleeping_until: Arc<AtomicI64>,
}

impl Dispatcher for PoolDispatcher {
    fn dispatch(&self, items: Vec<WorkItem>) {
        for item in items {
            // A closed channel means shutdown: the item stays queued for the next start.
            let _ = self.tx.send(item);
        }
    }

    fn wake_at(&self, due: DateTime<Utc>) {
        if due.timestamp_millis() < self.sleeping_until.load(Ordering::Acquire) {
            self.wake.notify_one();
        }
    }
}

/// Fires Schedule triggers when due: sleeps until the earliest next date, or until a
/// flow with triggers is saved. Trigger state is stored, so a restart neither repeats
/// nor forgets a date (missed ones follow `recoverMissedSchedules`).
async fn scheduler(engine: Engine, mut stop: watch::Receiver<bool>) {
    let changed = engine.schedules_changed();
    loop {
        let next = match engine.fire_due_schedules().await {
            Ok(next) => next,
            Err(e) => {
                warn!(error = %e, "schedule evaluation failed");
                None
            }
        };
        let now = engine.now();
        let pause = next
            .map(|n| (n - now).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(SCHEDULER_POLL)
            .clamp(Duration::from_millis(5), SCHEDULER_POLL);
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = changed.notified() => {}
            _ = stop.changed() => break,
        }
    }
}

/// A running worker pool, timer loop and scheduler; stop it with [`Runtime::shutdown`].
pub struct Runtime {
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// The workers' threads.
    pool: Option<tokio::runtime::Runtime>,
}

impl Runtime {
    /// Recovers queued work, sets the engine's dispatcher and starts `workers` workers.
    pub async fn start(engine: Engine, workers: usize) -> Result<Runtime, kite_engine::EngineError> {
        let (tx, rx) = mpsc::unbounded_channel::<WorkItem>();
        let rx = Arc::new(Mutex::new(rx));
        let wake = Arc::new(Notify::new());
        let sleeping_until = Arc::new(AtomicI64::new(i64::MAX));
        engine.set_dispatcher(Arc::new(PoolDispatcher {
            tx: tx.clone(),
            wake: wake.clone(),
            sleeping_until: sleeping_until.clone(),
        }));
        engine.recover().await?;
        let (shutdown, stop) = watch::channel(false);
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let pool = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.min(workers.max(1)))
            .thread_name("kite-worker")
            .enable_all()
            .build()
            .map_err(|e| {
                kite_engine::EngineError::Internal(format!("cannot start the workers' threads: {e}"))
            })?;
        let mut tasks = Vec::new();
        for n in 0..workers.max(1) {
            let engine = engine.clone();
            let rx = rx.clone();
            let mut stop = stop.clone();
            tasks.push(pool.spawn(async move {
                loop {
                    let item = {
                        let mut rx = rx.lock().await;
                        tokio::select! {
                            item = rx.recv() => item,
                            _ = stop.changed() => None,
                        }
                    };
                    let Some(item) = item else { break };
                    let id = item.id.clone();
                    match engine.process(item).await {
                        Ok(()) => {}
                        // Still conflicting after every retry: back on the queue in a moment,
                        // not after the whole lease.
                        Err(EngineError::Store(StoreError::Conflict(_))) => {
                            let again = engine.now() + chrono::Duration::milliseconds(CONFLICT_REQUEUE_MS);
                            if let Err(e) = engine.ports().queue.reschedule(&id, again).await {
                                warn!(worker = n, item = %id, error = %e, "cannot requeue a conflicting work item; it comes back after its lease");
                            }
                        }
                        Err(e) => {
                            // The item stays leased and comes back when the lease ends.
                            warn!(worker = n, item = %id, error = %e, "work item failed");
                        }
                    }
                }
            }));
        }
        tasks.push(tokio::spawn(scheduler(engine.clone(), stop.clone())));
        let mut stop_timer = stop.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let now = engine.now();
                match engine
                    .ports()
                    .queue
                    .lease(now, LEASE_BATCH, engine.config().lease)
                    .await
                {
                    Ok(items) => {
                        let full = items.len() == LEASE_BATCH;
                        for item in items {
                            debug!(item = %item.id, "leased");
                            let _ = tx.send(item);
                        }
                        if full {
                            continue;
                        }
                    }
                    Err(e) => warn!(error = %e, "leasing work failed"),
                }
                let next = engine.ports().queue.next_due().await.ok().flatten();
                let idle = now + chrono::Duration::from_std(IDLE_POLL).unwrap_or_default();
                let until = next.map_or(idle, |n| n.min(idle));
                sleeping_until.store(until.timestamp_millis(), Ordering::Release);
                let pause = (until - engine.now()).to_std().unwrap_or(Duration::ZERO);
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = wake.notified() => {}
                    _ = stop_timer.changed() => break,
                }
                // Awake: any wake-up now leaves a permit for the next sleep.
                sleeping_until.store(i64::MAX, Ordering::Release);
            }
        }));
        Ok(Runtime {
            shutdown,
            tasks,
            pool: Some(pool),
        })
    }

    /// Stops taking work and waits for the work in progress to finish.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // A runtime cannot be dropped where blocking is not allowed (inside another
        // runtime): its threads end on their own once idle.
        if let Some(pool) = self.pool.take() {
            pool.shutdown_background();
        }
    }
}
