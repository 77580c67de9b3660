//! Task types that do I/O (Kestra's plugins): each module declares the properties the
//! flow parser checks, renders them into the [`IoCall`] a worker makes, and turns the
//! worker's [`IoAnswer`] into the task run's result. [`io_tasks`] is their registry.
//!
//! - [`http`]: HTTP requests (`io.kestra.plugin.core.http.Request`).
//! - [`notifications`]: Slack, Teams, Discord and Google Chat incoming webhooks.
//! - [`mail`]: emails over SMTP (`io.kestra.plugin.notifications.mail.MailSend`).
//! - [`execution_notifications`]: messages about an execution (`SlackExecution`,
//!   `DiscordExecution`, `TeamsExecution`, `GoogleChatExecution`, `MailExecution`).
//! - [`kv`]: the KV store (`io.kestra.plugin.core.kv.Set`, `Get`, `GetKeys`, `Delete`).
//! - [`storage`]: internal storage files (`io.kestra.plugin.core.storage.Write`, `Concat`,
//!   `Split`, `Size`, `Delete`, `Reverse`, `FilterItems`, `DeduplicateItems`,
//!   `PurgeCurrentExecutionFiles`).
//! - [`foreach_item`]: the split and merge steps of `io.kestra.plugin.core.flow.ForEachItem`.
//! - [`log`]: the log lines of an execution (`io.kestra.plugin.core.log.Fetch`).
//! - [`serdes`]: file conversions (`io.kestra.plugin.serdes.csv.CsvToIon`, `IonToCsv`,
//!   `io.kestra.plugin.serdes.json.JsonToIon`, `IonToJson`, `excel.IonToExcel`).
//! - [`namespace_files`]: namespace files (`io.kestra.plugin.core.namespace.UploadFiles`,
//!   `DownloadFiles`, `DeleteFiles`).
//! - [`aws`]: Kestra's AWS tasks (`io.kestra.plugin.aws.s3.*`, `dynamodb.*`,
//!   `lambda.Invoke`, `eventbridge.PutEvents`, `sqs.Publish`).
//! - [`jdbc`]: SQL queries (`io.kestra.plugin.jdbc.postgresql.Query`, `Queries`, `CopyIn`,
//!   `CopyOut`, `io.kestra.plugin.jdbc.sqlite.Query`, `Queries`, `duckdb.Query`, `Queries`).
//! - [`scripts`]: script tasks run as processes (`io.kestra.plugin.scripts.shell.*`,
//!   `python.*`, `node.*`, the legacy `io.kestra.core.tasks.scripts.Bash` and `Python`).
//!
//! Adding a task type that does I/O: its module here (its `TASKS`), its line in `IO_TASKS`
//! and an [`IoKind`] each. Only a new kind of I/O also adds an [`IoCall`]/[`IoAnswer`] variant and
//! the worker's module that makes that call (`kite-worker`).

pub mod aws;
pub mod execution_notifications;
pub mod fetch_type;
pub mod foreach_item;
pub mod http;
pub mod jdbc;
pub mod kv;
pub mod log;
pub mod mail;
pub mod namespace_files;
pub mod notifications;
mod props;
pub mod scripts;
pub mod serdes;
pub mod storage;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::execution::{Execution, LogEntry, LogLevel, StateType, TaskResult, TaskRun};
use crate::expression::ExpressionError;
use crate::input::execution_storage_prefix;

/// Every task type that does I/O, by module.
const IO_TASKS: &[&[IoTaskSpec]] = &[
    http::TASKS,
    notifications::TASKS,
    mail::TASKS,
    execution_notifications::TASKS,
    kv::TASKS,
    storage::TASKS,
    namespace_files::TASKS,
    aws::s3::TASKS,
    aws::dynamodb::TASKS,
    aws::messaging::TASKS,
    log::TASKS,
    foreach_item::TASKS,
    scripts::TASKS,
    serdes::TASKS,
    jdbc::TASKS,
];

/// Every task type that does I/O.
pub fn io_tasks() -> impl Iterator<Item = &'static IoTaskSpec> {
    IO_TASKS.iter().flat_map(|tasks| tasks.iter())
}

/// Names a task type of [`IO_TASKS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IoKind {
    HttpRequest,
    HttpDownload,
    SlackIncomingWebhook,
    TeamsIncomingWebhook,
    DiscordIncomingWebhook,
    GoogleChatIncomingWebhook,
    MailSend,
    SlackExecution,
    DiscordExecution,
    TeamsExecution,
    GoogleChatExecution,
    MailExecution,
    KvSet,
    KvGet,
    KvGetKeys,
    KvDelete,
    StorageWrite,
    StorageConcat,
    StorageSplit,
    StorageSize,
    StorageDelete,
    StorageReverse,
    StorageFilterItems,
    StorageDeduplicateItems,
    StoragePurgeCurrentExecutionFiles,
    NamespaceUploadFiles,
    NamespaceDownloadFiles,
    NamespaceDeleteFiles,
    AwsS3Upload,
    AwsS3Download,
    AwsS3List,
    AwsS3Delete,
    AwsS3Copy,
    AwsDynamoDbPutItem,
    AwsDynamoDbGetItem,
    AwsDynamoDbDeleteItem,
    AwsDynamoDbQuery,
    AwsDynamoDbScan,
    AwsLambdaInvoke,
    AwsEventBridgePutEvents,
    AwsSqsPublish,
    LogFetch,
    ForEachItemSplit,
    ForEachItemMerge,
    ShellCommands,
    ShellScript,
    PythonCommands,
    PythonScript,
    NodeCommands,
    NodeScript,
    LegacyBash,
    LegacyPython,
    SerdesCsvToIon,
    SerdesIonToCsv,
    SerdesJsonToIon,
    SerdesIonToJson,
    PostgresQuery,
    PostgresQueries,
    PostgresCopyIn,
    PostgresCopyOut,
    SqliteQuery,
    SqliteQueries,
    SerdesIonToExcel,
    DuckDbQuery,
    DuckDbQueries,
}

/// A task type that does I/O: its names, its properties and what it does.
pub struct IoTaskSpec {
    pub kind: IoKind,
    /// The current type name, then the legacy ones Kestra still accepts.
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    /// Its own properties (those every task shares are read by the parser).
    pub properties: &'static [Property],
    /// The call to make, from the task's properties and a renderer of their values; the
    /// error is the FAILED task run's message.
    pub prepare: Prepare,
    /// The task run's result from the worker's answer to the call `prepare` made.
    pub finish: Finish,
}

/// Renders one property value: strings as templates, other values as Pebble prints them.
pub type Render<'a> = dyn Fn(&Value) -> Result<String, ExpressionError> + 'a;

/// One property of a task type and what the flow parser checks of it.
#[derive(Debug, Clone, Copy)]
pub struct Property {
    pub name: &'static str,
    pub check: Check,
}

/// What the flow parser checks of a property (with line and column when it fails) and
/// keeps for `prepare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Anything, kept as written (templates are rendered when the task runs).
    Any,
    /// Present and not null.
    Required,
    /// A map, kept as a JSON object.
    Map,
    /// A boolean (YAML 1.1 spellings too), kept as a JSON boolean.
    Boolean,
    /// A list, or an expression that renders to one, kept as written.
    List,
}

impl Property {
    pub const fn new(name: &'static str, check: Check) -> Property {
        Property { name, check }
    }
}

/// What a task type's `prepare` is.
pub type Prepare = fn(&Map<String, Value>, &Render) -> Result<IoCall, String>;
/// What a task type's `finish` is.
pub type Finish = fn(&IoCall, IoAnswer, &TaskRunContext, DateTime<Utc>) -> TaskResult;

impl IoTaskSpec {
    /// A task type known by its current name only (see [`IoTaskSpec::with_aliases`]).
    pub const fn new(
        kind: IoKind,
        name: &'static str,
        properties: &'static [Property],
        prepare: Prepare,
        finish: Finish,
    ) -> IoTaskSpec {
        IoTaskSpec {
            kind,
            name,
            aliases: &[],
            properties,
            prepare,
            finish,
        }
    }

    /// The same task type, also under the legacy names Kestra still accepts.
    pub const fn with_aliases(self, aliases: &'static [&'static str]) -> IoTaskSpec {
        IoTaskSpec { aliases, ..self }
    }
}

impl IoKind {
    pub fn spec(self) -> &'static IoTaskSpec {
        io_tasks()
            .find(|s| s.kind == self)
            .expect("every kind is registered")
    }
}

/// The variables a task type's properties see besides the task run's (a script task's
/// `workingDir`…).
pub fn task_variables(kind: IoKind, properties: &Map<String, Value>) -> Map<String, Value> {
    match kind {
        IoKind::ShellCommands
        | IoKind::ShellScript
        | IoKind::PythonCommands
        | IoKind::PythonScript
        | IoKind::NodeCommands
        | IoKind::NodeScript
        | IoKind::LegacyBash
        | IoKind::LegacyPython => scripts::variables(kind, properties),
        IoKind::DuckDbQuery | IoKind::DuckDbQueries => jdbc::duckdb::variables(properties),
        _ => Map::new(),
    }
}

/// The task type of `name`, current or legacy.
pub fn by_name(name: &str) -> Option<&'static IoTaskSpec> {
    io_tasks().find(|s| s.name == name || s.aliases.contains(&name))
}

/// The I/O a task run asks of a worker, rendered.
#[derive(Debug, Clone, PartialEq)]
pub enum IoCall {
    Http(http::HttpCall),
    Kv(kv::KvCall),
    Storage(storage::StorageCall),
    NamespaceFiles(namespace_files::NamespaceFilesCall),
    Mail(mail::MailCall),
    /// Read the execution, then send the message built from it (an HTTP or mail call).
    ExecutionNotification(Box<execution_notifications::ExecutionNotificationCall>),
    Aws(aws::AwsCall),
    Logs(log::LogFetchCall),
    Script(scripts::ScriptCall),
    Serdes(serdes::SerdesCall),
    Sql(jdbc::SqlCall),
}

impl IoCall {
    /// The internal storage files the call sends away (an HTTP form's files): the
    /// execution must be allowed to read them as `read()` is. Storage and namespace file
    /// tasks check what they read themselves, as they read it.
    pub fn files_read(&self) -> Vec<&str> {
        match self {
            IoCall::Http(call) => call.files_read(),
            IoCall::Mail(call) => call.files_read(),
            IoCall::ExecutionNotification(call) => call.files_read(),
            IoCall::Aws(call) => call.files_read(),
            IoCall::Sql(call) => call.files_read(),
            IoCall::Kv(_)
            | IoCall::Storage(_)
            | IoCall::NamespaceFiles(_)
            | IoCall::Logs(_)
            | IoCall::Serdes(_) => Vec::new(),
            // Input files are checked by the worker against the job's readable prefixes.
            IoCall::Script(_) => Vec::new(),
        }
    }
}

/// What the worker got for an [`IoCall`] of the same variant.
#[derive(Debug, Clone, PartialEq)]
pub enum IoAnswer {
    Http(Result<http::HttpResponse, http::HttpError>),
    Kv(Result<kv::KvAnswer, crate::kv::KvError>),
    Storage(Result<storage::StorageAnswer, storage::StorageError>),
    NamespaceFiles(namespace_files::NamespaceFilesResult),
    Mail(Result<(), mail::MailError>),
    /// The call sent and its answer, or why the execution could not be read.
    ExecutionNotification(Result<Box<execution_notifications::Sent>, String>),
    Aws(Result<aws::AwsOutcome, aws::AwsError>),
    Logs(Result<log::LogFetchAnswer, log::LogFetchError>),
    Script(Result<scripts::ScriptRun, scripts::ScriptError>),
    Serdes(Result<serdes::SerdesAnswer, serdes::SerdesError>),
    Sql(Result<jdbc::SqlOutcome, jdbc::SqlError>),
}

/// A task run for a worker: what to do, and for which task run.
#[derive(Debug, Clone, PartialEq)]
pub struct IoJob {
    pub kind: IoKind,
    pub call: IoCall,
    pub task_run: TaskRunContext,
    /// The task's `timeout`, if any (the worker stops the I/O then).
    pub timeout: Option<std::time::Duration>,
    /// The `kestra:///` prefixes whose files the task run may read (those `read()` may).
    pub readable_prefixes: Vec<String>,
}

impl IoJob {
    /// The task run's result from the worker's answer.
    pub fn finish(&self, answer: IoAnswer, now: DateTime<Utc>) -> TaskResult {
        (self.kind.spec().finish)(&self.call, answer, &self.task_run, now)
    }
}

/// Which task run a worker runs: enough to write its log lines and files.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRunContext {
    pub namespace: String,
    pub flow_id: String,
    pub execution_id: String,
    pub task_id: String,
    pub task_run_id: String,
    pub attempt_number: u32,
    /// Minimum level of the lines kept (the task's `logLevel`).
    pub log_level: Option<LogLevel>,
}

impl TaskRunContext {
    pub fn new(execution: &Execution, task_run: &TaskRun, log_level: Option<LogLevel>) -> TaskRunContext {
        TaskRunContext {
            namespace: execution.namespace.clone(),
            flow_id: execution.flow_id.clone(),
            execution_id: execution.id.clone(),
            task_id: task_run.task_id.clone(),
            task_run_id: task_run.id.clone(),
            attempt_number: task_run.attempts.len().max(1) as u32,
            log_level,
        }
    }

    /// A log line of this attempt, or `None` below the task's `logLevel`.
    pub fn log(&self, level: LogLevel, message: impl Into<String>, at: DateTime<Utc>) -> Option<LogEntry> {
        if self.log_level.is_some_and(|min| level < min) {
            return None;
        }
        Some(LogEntry {
            namespace: self.namespace.clone(),
            flow_id: self.flow_id.clone(),
            task_id: Some(self.task_id.clone()),
            execution_id: self.execution_id.clone(),
            task_run_id: Some(self.task_run_id.clone()),
            attempt_number: Some(self.attempt_number),
            trigger_id: None,
            timestamp: at,
            level,
            thread: None,
            message: message.into(),
        })
    }

    /// Where the task run's output files go (`kestra:///…/tasks/{taskId}/{taskRunId}/`).
    pub fn storage_prefix(&self) -> String {
        format!(
            "{}tasks/{}/{}/",
            execution_storage_prefix(&self.namespace, &self.flow_id, &self.execution_id),
            self.task_id,
            self.task_run_id
        )
    }

    /// A result with the given state and outputs and no log lines.
    pub fn result(&self, state: StateType, outputs: IndexMap<String, Value>) -> TaskResult {
        TaskResult {
            state,
            outputs,
            logs: Vec::new(),
        }
    }

    /// A FAILED result whose one log line says why.
    pub fn failed(&self, message: impl Into<String>, at: DateTime<Utc>) -> TaskResult {
        let mut result = self.result(StateType::Failed, IndexMap::new());
        result.logs.extend(self.log(LogLevel::Error, message, at));
        result
    }
}
