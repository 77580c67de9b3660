//! DynamoDB repositories (flows, executions, logs, trigger state, KV pairs) and the SQS work
//! queue with its DynamoDB outbox, in one table (see docs/aws.md, "Storage").
//!
//! This module holds [`AwsStore`], the clients and settings every port shares; each
//! port is implemented in its own module:
//!
//! - `flows`: [`FlowRepository`](kite_engine::ports::FlowRepository), flow revisions;
//! - `executions`: [`ExecutionRepository`](kite_engine::ports::ExecutionRepository),
//!   execution items and the commit of a step;
//! - `logs`: [`LogRepository`](kite_engine::ports::LogRepository), log lines;
//! - `queue`: [`TaskQueue`](kite_engine::ports::TaskQueue) over SQS;
//! - `triggers`: [`TriggerRepository`](kite_engine::ports::TriggerRepository), trigger state;
//! - `kv`: [`KvStore`](kite_engine::ports::KvStore), Kestra's KV store;
//! - `search`: execution search over the namespace index, and the paging and sorting
//!   every search shares;
//! - `outbox`: the durable record of queued work, its sending to SQS and the sweeper;
//! - `stream`: executions decoded from DynamoDB Streams images;
//! - `requests`: the DynamoDB reads and writes the ports share;
//! - `encoding`: keys, expression attributes, conditions and compression.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

mod encoding;
mod executions;
mod flows;
mod kv;
mod logs;
mod outbox;
mod queue;
mod requests;
mod search;
mod slots;
mod stream;
mod triggers;

pub use executions::INLINE_BODY_LIMIT;
pub use outbox::{sweep_outbox, SweepReport};
pub use search::SearchBudget;

use logs::process_nonce;

use crate::config::AwsConfig;
use crate::files::S3FileStorage;

/// The DynamoDB table and the SQS queue behind the engine's repositories and queue.
pub struct AwsStore {
    ddb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    files: Arc<S3FileStorage>,
    table: String,
    queue_url: Option<String>,
    grace: chrono::Duration,
    log_retention: chrono::Duration,
    /// Receipt handles of the messages this process leased, by work item id.
    receipts: Mutex<HashMap<String, String>>,
    log_seq: AtomicU64,
    log_nonce: u32,
    search_budget: SearchBudget,
}

impl AwsStore {
    pub fn new(
        ddb: aws_sdk_dynamodb::Client,
        sqs: aws_sdk_sqs::Client,
        files: Arc<S3FileStorage>,
        config: &AwsConfig,
    ) -> AwsStore {
        AwsStore {
            ddb,
            sqs,
            files,
            table: config.table_name.clone(),
            queue_url: config.queue_url.clone(),
            grace: chrono::Duration::from_std(config.outbox_grace)
                .unwrap_or_else(|_| chrono::Duration::seconds(120)),
            log_retention: chrono::Duration::days(i64::from(config.log_retention_days)),
            receipts: Mutex::new(HashMap::new()),
            log_seq: AtomicU64::new(0),
            log_nonce: process_nonce(),
            search_budget: SearchBudget::default(),
        }
    }

    /// The same store with another search budget (see [`SearchBudget`]).
    pub fn with_search_budget(mut self, budget: SearchBudget) -> AwsStore {
        self.search_budget = budget;
        self
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    pub fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        &self.ddb
    }

    /// The work queue's URL, if configured.
    pub fn queue_url(&self) -> Option<&str> {
        self.queue_url.as_deref()
    }
}
