//! Kestra's AWS tasks (`kite_core::plugin::aws`), made with the AWS SDK: one module per
//! service. Clients are built on first use, one set per connection (region, endpoint,
//! credentials), all over one HTTPS client: a worker that never runs an AWS task builds
//! none (the worker Lambda's cold start).

mod dynamodb;
mod eventbridge;
mod lambda;
mod s3;
mod sqs;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, OnceLock};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_types::region::Region;
use aws_types::SdkConfig;
use kite_core::plugin::aws::{AwsCall, AwsConnection, AwsError, AwsOp, AwsOutcome};
use kite_core::plugin::storage::files::MAX_FILE_BYTES;
use kite_core::plugin::storage::{readable, StorageError};
use kite_engine::ports::FileStorage;
use tokio::io::AsyncReadExt;

use crate::storage::port_error;

/// The largest internal storage file an AWS task reads whole (an `Upload`'s file, a
/// file of messages or events).
pub const MAX_READ_BYTES: u64 = 256 * 1024 * 1024;

/// The most connections whose clients are kept: past it the cache starts again (keys
/// that change per execution, such as session tokens, must not grow it forever).
const MAX_CONNECTIONS: usize = 64;

/// The SDK clients of the connections used so far.
#[derive(Default)]
pub struct AwsClients {
    http: OnceLock<SharedHttpClient>,
    by_connection: Mutex<HashMap<AwsConnection, Arc<Clients>>>,
    /// Sees every call the clients make (the AWS host's count of calls per invocation).
    interceptor: Option<SharedInterceptor>,
}

/// The clients of one connection, each built when a task first needs it.
struct Clients {
    config: SdkConfig,
    path_style: bool,
    interceptor: Option<SharedInterceptor>,
    s3: OnceLock<aws_sdk_s3::Client>,
    dynamodb: OnceLock<aws_sdk_dynamodb::Client>,
    sqs: OnceLock<aws_sdk_sqs::Client>,
    lambda: OnceLock<aws_sdk_lambda::Client>,
    eventbridge: OnceLock<aws_sdk_eventbridge::Client>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl AwsClients {
    pub fn new() -> AwsClients {
        AwsClients::default()
    }

    /// Clients whose every call also goes through `interceptor`.
    pub fn with_interceptor(interceptor: SharedInterceptor) -> AwsClients {
        AwsClients {
            interceptor: Some(interceptor),
            ..AwsClients::default()
        }
    }

    fn clients(&self, connection: &AwsConnection) -> Arc<Clients> {
        let mut cache = self.by_connection.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(clients) = cache.get(connection) {
            return clients.clone();
        }
        let http = self
            .http
            .get_or_init(|| {
                aws_smithy_http_client::Builder::new()
                    .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
                    .build_https()
            })
            .clone();
        let clients = Arc::new(Clients::new(connection, http, self.interceptor.clone()));
        if cache.len() >= MAX_CONNECTIONS {
            cache.clear();
        }
        cache.insert(connection.clone(), clients.clone());
        clients
    }
}

impl Clients {
    /// The task's connection over the SDK's defaults from the environment (as Lambda
    /// sets it: `AWS_REGION`, the role's keys, and `AWS_ENDPOINT_URL` for emulators).
    fn new(
        connection: &AwsConnection,
        http: SharedHttpClient,
        interceptor: Option<SharedInterceptor>,
    ) -> Clients {
        let region = connection
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"));
        let mut config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(http)
            .region(region.map(Region::new));
        let credentials = match (&connection.access_key_id, &connection.secret_key_id) {
            (Some(key), Some(secret)) => Some(Credentials::new(
                key,
                secret,
                connection.session_token.clone(),
                None,
                "task",
            )),
            _ => match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
                (Some(key), Some(secret)) => Some(Credentials::new(
                    key,
                    secret,
                    env("AWS_SESSION_TOKEN"),
                    None,
                    "environment",
                )),
                _ => None,
            },
        };
        if let Some(credentials) = credentials {
            config = config.credentials_provider(SharedCredentialsProvider::new(credentials));
        }
        let endpoint = connection
            .endpoint_override
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL"));
        let path_style = connection.force_path_style || endpoint.is_some();
        if let Some(endpoint) = endpoint {
            config = config.endpoint_url(endpoint);
        }
        Clients {
            config: config.build(),
            path_style,
            interceptor,
            s3: OnceLock::new(),
            dynamodb: OnceLock::new(),
            sqs: OnceLock::new(),
            lambda: OnceLock::new(),
            eventbridge: OnceLock::new(),
        }
    }

    fn s3(&self) -> &aws_sdk_s3::Client {
        self.s3.get_or_init(|| {
            let mut config =
                aws_sdk_s3::config::Builder::from(&self.config).force_path_style(self.path_style);
            config.set_interceptors(self.interceptor.clone());
            aws_sdk_s3::Client::from_conf(config.build())
        })
    }

    fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        self.dynamodb.get_or_init(|| {
            let mut config = aws_sdk_dynamodb::config::Builder::from(&self.config);
            config.set_interceptors(self.interceptor.clone());
            aws_sdk_dynamodb::Client::from_conf(config.build())
        })
    }

    fn sqs(&self) -> &aws_sdk_sqs::Client {
        self.sqs.get_or_init(|| {
            let mut config = aws_sdk_sqs::config::Builder::from(&self.config);
            config.set_interceptors(self.interceptor.clone());
            aws_sdk_sqs::Client::from_conf(config.build())
        })
    }

    fn lambda(&self) -> &aws_sdk_lambda::Client {
        self.lambda.get_or_init(|| {
            let mut config = aws_sdk_lambda::config::Builder::from(&self.config);
            config.set_interceptors(self.interceptor.clone());
            aws_sdk_lambda::Client::from_conf(config.build())
        })
    }

    fn eventbridge(&self) -> &aws_sdk_eventbridge::Client {
        self.eventbridge.get_or_init(|| {
            let mut config = aws_sdk_eventbridge::config::Builder::from(&self.config);
            config.set_interceptors(self.interceptor.clone());
            aws_sdk_eventbridge::Client::from_conf(config.build())
        })
    }
}

/// What a task run may read and where it writes.
pub struct Scope<'a> {
    pub files: &'a dyn FileStorage,
    /// The task run's storage prefix (`kestra:///…/tasks/{taskId}/{taskRunId}/`).
    pub prefix: &'a str,
    pub readable: &'a [String],
}

impl Scope<'_> {
    /// A whole internal storage file the task run may read, up to [`MAX_READ_BYTES`].
    async fn read(&self, uri: &str) -> Result<Vec<u8>, AwsError> {
        readable(uri, self.readable)?;
        let mut stream = self.files.get(uri).await.map_err(|e| port_error(uri, e))?;
        let mut bytes = Vec::new();
        (&mut stream)
            .take(MAX_READ_BYTES + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| StorageError::Storage {
                uri: uri.to_string(),
                reason: e.to_string(),
            })?;
        if bytes.len() as u64 > MAX_READ_BYTES {
            return Err(StorageError::TooLarge {
                uri: uri.to_string(),
                limit: MAX_READ_BYTES,
            }
            .into());
        }
        Ok(bytes)
    }

    /// The values of an Ion file (one a line, as Kestra and Kite write them), as JSON.
    async fn read_items(&self, uri: &str) -> Result<Vec<serde_json::Value>, AwsError> {
        let bytes = self.read(uri).await?;
        let text = String::from_utf8_lossy(&bytes);
        text.lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| {
                kite_core::ion::from_line(line)
                    .map(|value| value.to_json())
                    .map_err(|e| AwsError::Task(format!("Invalid item on line {} of '{uri}': {e}", i + 1)))
            })
            .collect()
    }

    /// Writes `bytes` under the task run's prefix as `name`; returns the URI.
    async fn write(&self, name: &str, bytes: Vec<u8>) -> Result<String, AwsError> {
        let uri = format!("{}{name}", self.prefix);
        self.files
            .put(&uri, Box::pin(std::io::Cursor::new(bytes)), MAX_FILE_BYTES)
            .await
            .map_err(|e| port_error(&uri, e))?;
        Ok(uri)
    }
}

/// An SDK error in the task's words: the service, the operation, the resource, and
/// the service's error code and message (or why no answer came).
fn sdk_error<E, R>(
    service: &'static str,
    operation: &'static str,
    target: impl Into<String>,
    err: SdkError<E, R>,
) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug,
{
    let reason = match (&err, err.code(), err.message()) {
        (SdkError::ServiceError(_), Some(code), Some(message)) => format!("{code}: {message}"),
        (SdkError::ServiceError(_), Some(code), None) => code.to_string(),
        _ => DisplayErrorContext(&err).to_string(),
    };
    AwsError::Service {
        service,
        operation,
        target: target.into(),
        reason,
    }
}

/// A file name from an object key: its last part, with only safe characters.
fn file_name(key: &str) -> String {
    let name: String = key
        .rsplit('/')
        .next()
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match name.trim_matches('.') {
        "" => "object".to_string(),
        _ => name,
    }
}

/// Makes `call` with the clients of its connection.
pub async fn run(clients: &AwsClients, call: &AwsCall, scope: &Scope<'_>) -> Result<AwsOutcome, AwsError> {
    let clients = clients.clients(&call.connection);
    match &call.op {
        AwsOp::S3(op) => s3::run(clients.s3(), op, scope).await,
        AwsOp::DynamoDb(op) => dynamodb::run(clients.dynamodb(), op, scope).await,
        AwsOp::Lambda(op) => lambda::run(clients.lambda(), op, scope).await,
        AwsOp::EventBridge(op) => eventbridge::run(clients.eventbridge(), op, scope).await,
        AwsOp::Sqs(op) => sqs::run(clients.sqs(), op, scope).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(region: &str) -> AwsConnection {
        AwsConnection {
            region: Some(region.into()),
            endpoint_override: Some("http://127.0.0.1:1".into()),
            force_path_style: true,
            ..AwsConnection::default()
        }
    }

    #[test]
    fn clients_are_kept_per_connection_and_built_when_first_needed() {
        let cache = AwsClients::new();
        assert!(
            cache.http.get().is_none(),
            "nothing is built before a task needs it"
        );
        let a = cache.clients(&connection("eu-west-1"));
        assert!(a.s3.get().is_none() && a.dynamodb.get().is_none());
        a.s3();
        assert!(a.s3.get().is_some() && a.sqs.get().is_none());
        assert!(Arc::ptr_eq(&a, &cache.clients(&connection("eu-west-1"))));
        assert!(!Arc::ptr_eq(&a, &cache.clients(&connection("us-east-1"))));
        for i in 0..MAX_CONNECTIONS {
            cache.clients(&connection(&format!("region-{i}")));
        }
        let kept = cache.by_connection.lock().unwrap().len();
        assert!(kept <= MAX_CONNECTIONS, "{kept}");
    }

    #[test]
    fn file_names_keep_safe_characters() {
        assert_eq!(
            file_name("reports/2024 q1/sales (final).csv"),
            "sales__final_.csv"
        );
        assert_eq!(file_name("folder/"), "object");
    }
}
