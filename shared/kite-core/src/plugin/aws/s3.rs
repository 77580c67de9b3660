//! `io.kestra.plugin.aws.s3.*`: `Upload`, `Download`, `List`, `Delete` and `Copy`.

use serde_json::{Map, Value};

use super::super::props::Props;
use super::super::{IoCall, IoKind, IoTaskSpec, Property, Render};
use super::{finish, with_connection, AwsCall, AwsOp};
use crate::plugin::Check;

/// An S3 operation, rendered.
#[derive(Debug, Clone, PartialEq)]
pub enum S3Op {
    Upload {
        bucket: String,
        key: String,
        /// (key under `key` when several, `kestra:///` URI). One file is put at `key`
        /// itself, as in Kestra.
        files: Vec<(String, String)>,
        options: PutOptions,
    },
    Download {
        bucket: String,
        /// One object (`key`), or every file a listing finds (`prefix`, `delimiter`,
        /// `regexp`).
        target: DownloadTarget,
        version_id: Option<String>,
        request_payer: Option<String>,
    },
    List(ListSpec),
    Delete {
        bucket: String,
        key: String,
        request_payer: Option<String>,
        bypass_governance_retention: Option<bool>,
        mfa: Option<String>,
    },
    Copy {
        from: ObjectRef,
        to: ObjectRef,
        from_version_id: Option<String>,
        server_side_encryption: Option<String>,
        kms_key_id: Option<String>,
        /// Deletes the source once copied.
        delete: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum DownloadTarget {
    Key(String),
    Listing(ListSpec),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
}

/// `Upload`'s object settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PutOptions {
    pub metadata: Vec<(String, String)>,
    pub cache_control: Option<String>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub acl: Option<String>,
    pub storage_class: Option<String>,
    pub request_payer: Option<String>,
}

/// Which objects `List` (and `Download` by prefix) returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ListSpec {
    pub bucket: String,
    pub prefix: Option<String>,
    pub delimiter: Option<String>,
    /// Lists after this key.
    pub marker: Option<String>,
    pub encoding_type: Option<String>,
    pub expected_bucket_owner: Option<String>,
    pub request_payer: Option<String>,
    /// The most keys read from S3 (over pages), 1000 by default.
    pub max_keys: usize,
    /// The whole key must match, as Java's `String.matches`.
    pub regexp: Option<String>,
    pub filter: ListFilter,
    /// The most objects returned, 25 by default; more are cut with a warning.
    pub max_files: usize,
}

/// `filter`: keys ending in `/` are directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFilter {
    Files,
    Directory,
    Both,
}

impl ListSpec {
    /// Whether a listed key is returned (`regexp` and `filter`).
    pub fn keeps(&self, key: &str, regexp: Option<&regex::Regex>) -> bool {
        let kind = match self.filter {
            ListFilter::Both => true,
            ListFilter::Directory => key.ends_with('/'),
            ListFilter::Files => !key.ends_with('/'),
        };
        kind && regexp.is_none_or(|re| re.is_match(key))
    }

    /// `regexp` compiled to match whole keys.
    pub fn compiled_regexp(&self) -> Result<Option<regex::Regex>, String> {
        self.regexp
            .as_deref()
            .map(|re| {
                regex::Regex::new(&format!("^(?:{re})$")).map_err(|e| format!("Invalid regexp '{re}': {e}"))
            })
            .transpose()
    }
}

const UPLOAD: &[Property] = with_connection![
    Property::new("bucket", Check::Required),
    Property::new("requestPayer", Check::Any),
    Property::new("from", Check::Required),
    Property::new("key", Check::Required),
    Property::new("metadata", Check::Any),
    Property::new("cacheControl", Check::Any),
    Property::new("contentType", Check::Any),
    Property::new("contentEncoding", Check::Any),
    Property::new("contentDisposition", Check::Any),
    Property::new("contentLanguage", Check::Any),
    Property::new("acl", Check::Any),
    Property::new("storageClass", Check::Any),
];

const LIST_PROPERTIES: &[Property] = with_connection![
    Property::new("bucket", Check::Required),
    Property::new("requestPayer", Check::Any),
    Property::new("prefix", Check::Any),
    Property::new("delimiter", Check::Any),
    Property::new("marker", Check::Any),
    Property::new("encodingType", Check::Any),
    Property::new("maxKeys", Check::Any),
    Property::new("expectedBucketOwner", Check::Any),
    Property::new("regexp", Check::Any),
    Property::new("filter", Check::Any),
    Property::new("maxFiles", Check::Any),
];

const DOWNLOAD: &[Property] = with_connection![
    Property::new("bucket", Check::Required),
    Property::new("requestPayer", Check::Any),
    Property::new("key", Check::Any),
    Property::new("versionId", Check::Any),
    Property::new("prefix", Check::Any),
    Property::new("delimiter", Check::Any),
    Property::new("marker", Check::Any),
    Property::new("maxKeys", Check::Any),
    Property::new("expectedBucketOwner", Check::Any),
    Property::new("regexp", Check::Any),
    Property::new("maxFiles", Check::Any),
];

const DELETE: &[Property] = with_connection![
    Property::new("bucket", Check::Required),
    Property::new("requestPayer", Check::Any),
    Property::new("key", Check::Required),
    Property::new("bypassGovernanceRetention", Check::Any),
    Property::new("mfa", Check::Any),
];

const COPY: &[Property] = with_connection![
    Property::new("from", Check::Map),
    Property::new("to", Check::Any),
    Property::new("delete", Check::Any),
];

pub const TASKS: &[IoTaskSpec] = &[
    IoTaskSpec::new(
        IoKind::AwsS3Upload,
        "io.kestra.plugin.aws.s3.Upload",
        UPLOAD,
        prepare_upload,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::AwsS3Download,
        "io.kestra.plugin.aws.s3.Download",
        DOWNLOAD,
        prepare_download,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::AwsS3List,
        "io.kestra.plugin.aws.s3.List",
        LIST_PROPERTIES,
        prepare_list,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::AwsS3Delete,
        "io.kestra.plugin.aws.s3.Delete",
        DELETE,
        prepare_delete,
        finish,
    ),
    IoTaskSpec::new(
        IoKind::AwsS3Copy,
        "io.kestra.plugin.aws.s3.Copy",
        COPY,
        prepare_copy,
        finish,
    ),
];

fn call(p: &Props, op: S3Op) -> Result<IoCall, String> {
    Ok(IoCall::Aws(AwsCall {
        connection: p.aws_connection()?,
        op: AwsOp::S3(op),
    }))
}

/// The file name part of a URI, as Kestra keys a list of files.
fn file_name(uri: &str) -> String {
    uri.rsplit('/').next().unwrap_or(uri).to_string()
}

/// `from`: one URI, a list of URIs (keyed by file name), a map of key to URI, or a
/// JSON list or map in a string.
fn upload_files(p: &Props) -> Result<Vec<(String, String)>, String> {
    let from = p.rendered_deep("from")?.unwrap_or(Value::Null);
    let from = match from {
        Value::String(text) => {
            let trimmed = text.trim();
            if trimmed.starts_with('[') || trimmed.starts_with('{') {
                serde_json::from_str(trimmed)
                    .map_err(|e| format!("Invalid 'from' property '{trimmed}': {e}"))?
            } else {
                Value::String(trimmed.to_string())
            }
        }
        other => other,
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let files: Vec<(String, String)> = match from {
        Value::String(uri) => vec![(file_name(&uri), uri)],
        Value::Array(items) => items.iter().map(|v| (file_name(&text(v)), text(v))).collect(),
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        other => return Err(format!("Invalid 'from' property: {other}")),
    };
    if files.is_empty() {
        return Err("No files to upload: the 'from' property contains an empty collection or array".into());
    }
    Ok(files)
}

fn prepare_upload(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let metadata = p
        .object("metadata")?
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect();
    let options = PutOptions {
        metadata,
        cache_control: p.rendered("cacheControl")?,
        content_type: p.rendered("contentType")?,
        content_encoding: p.rendered("contentEncoding")?,
        content_disposition: p.rendered("contentDisposition")?,
        content_language: p.rendered("contentLanguage")?,
        acl: p.rendered("acl")?,
        storage_class: p.rendered("storageClass")?,
        request_payer: p.rendered("requestPayer")?,
    };
    let op = S3Op::Upload {
        bucket: p.required("bucket")?,
        key: p.required("key")?,
        files: upload_files(&p)?,
        options,
    };
    call(&p, op)
}

fn list_spec(p: &Props, filter: Option<ListFilter>) -> Result<ListSpec, String> {
    let filter = match filter {
        Some(filter) => filter,
        None => match p.rendered("filter")?.as_deref().map(str::trim) {
            None | Some("BOTH") => ListFilter::Both,
            Some("FILES") => ListFilter::Files,
            Some("DIRECTORY") => ListFilter::Directory,
            Some(other) => {
                return Err(format!(
                    "Invalid filter '{other}': expected one of FILES, DIRECTORY, BOTH"
                ))
            }
        },
    };
    let count = |name: &str, default: usize| -> Result<usize, String> {
        match p.integer(name)? {
            None => Ok(default),
            Some(n) if n > 0 => Ok(n as usize),
            Some(n) => Err(format!(
                "Invalid value '{n}' for property '{name}': expected a positive integer"
            )),
        }
    };
    let spec = ListSpec {
        bucket: p.required("bucket")?,
        prefix: p.rendered("prefix")?,
        delimiter: p.rendered("delimiter")?,
        marker: p.rendered("marker")?,
        encoding_type: p.rendered("encodingType")?,
        expected_bucket_owner: p.rendered("expectedBucketOwner")?,
        request_payer: p.rendered("requestPayer")?,
        max_keys: count("maxKeys", 1000)?,
        regexp: p.rendered("regexp")?,
        filter,
        max_files: count("maxFiles", 25)?,
    };
    spec.compiled_regexp()?;
    Ok(spec)
}

fn prepare_list(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let spec = list_spec(&p, None)?;
    call(&p, S3Op::List(spec))
}

fn prepare_download(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let listing = ["prefix", "delimiter", "regexp"]
        .iter()
        .any(|name| properties.get(*name).is_some_and(|v| !v.is_null()));
    let target = match p.rendered("key")? {
        Some(key) if !listing => DownloadTarget::Key(key),
        _ if listing => DownloadTarget::Listing(list_spec(&p, Some(ListFilter::Files))?),
        _ => {
            return Err(
                "Invalid configuration: either specify 'key' for single file download or at least one \
                        filtering parameter (prefix, delimiter, regexp) for multiple files download"
                    .into(),
            )
        }
    };
    let op = S3Op::Download {
        bucket: p.required("bucket")?,
        target,
        version_id: p.rendered("versionId")?,
        request_payer: p.rendered("requestPayer")?,
    };
    call(&p, op)
}

fn prepare_delete(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let bypass = match properties.get("bypassGovernanceRetention") {
        None | Some(Value::Null) => None,
        Some(_) => Some(p.flag("bypassGovernanceRetention", false)?),
    };
    let op = S3Op::Delete {
        bucket: p.required("bucket")?,
        key: p.required("key")?,
        request_payer: p.rendered("requestPayer")?,
        bypass_governance_retention: bypass,
        mfa: p.rendered("mfa")?,
    };
    call(&p, op)
}

fn prepare_copy(properties: &Map<String, Value>, render: &Render) -> Result<IoCall, String> {
    let p = Props::new(properties, render);
    let from = p.object("from")?.ok_or("Missing required property 'from'")?;
    let to = p.object("to")?.unwrap_or_default();
    let text = |map: &Map<String, Value>, name: &str| -> Option<String> {
        match map.get(name) {
            Some(Value::String(s)) => Some(s.clone()),
            None | Some(Value::Null) => None,
            Some(other) => Some(other.to_string()),
        }
    };
    let from_ref = ObjectRef {
        bucket: text(&from, "bucket").ok_or("Missing required property 'from.bucket'")?,
        key: text(&from, "key").ok_or("Missing required property 'from.key'")?,
    };
    let to_ref = ObjectRef {
        bucket: text(&to, "bucket").unwrap_or_else(|| from_ref.bucket.clone()),
        key: text(&to, "key").unwrap_or_else(|| from_ref.key.clone()),
    };
    // NONE is Kestra's way of asking for no encryption; AWS_KMS is `aws:kms` on the wire.
    let sse = match text(&to, "serverSideEncryption").as_deref() {
        None | Some("NONE") => None,
        Some("AES256") => Some("AES256".to_string()),
        Some("AWS_KMS") => Some("aws:kms".to_string()),
        Some(other) => {
            return Err(format!(
                "Invalid serverSideEncryption '{other}': expected one of NONE, AES256, AWS_KMS"
            ))
        }
    };
    let kms_key_id = if sse.as_deref() == Some("aws:kms") {
        text(&to, "kmsKeyId")
    } else {
        None
    };
    let op = S3Op::Copy {
        from_version_id: text(&from, "versionId"),
        from: from_ref,
        to: to_ref,
        server_side_encryption: sse,
        kms_key_id,
        delete: p.flag("delete", false)?,
    };
    call(&p, op)
}
