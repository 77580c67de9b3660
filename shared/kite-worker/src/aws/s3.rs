//! S3: `Upload`, `Download`, `List`, `Delete`, `Copy`.

use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{ObjectCannedAcl, RequestPayer, ServerSideEncryption, StorageClass};
use aws_sdk_s3::Client;
use aws_smithy_types::date_time::Format;
use indexmap::IndexMap;
use kite_core::plugin::aws::s3::{DownloadTarget, ListSpec, PutOptions, S3Op};
use kite_core::plugin::aws::{AwsError, AwsOutcome};
use kite_core::plugin::storage::files::MAX_FILE_BYTES;
use serde_json::{json, Map, Value};

use super::{file_name, sdk_error, Scope};
use crate::storage::port_error;

const S3: &str = "S3";

fn object(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// Leaves out the outputs that are null, as Kestra's do.
fn put(outputs: &mut IndexMap<String, Value>, name: &str, value: Option<Value>) {
    if let Some(value) = value.filter(|v| !v.is_null()) {
        outputs.insert(name.to_string(), value);
    }
}

pub(super) async fn run(client: &Client, op: &S3Op, scope: &Scope<'_>) -> Result<AwsOutcome, AwsError> {
    match op {
        S3Op::Upload {
            bucket,
            key,
            files,
            options,
        } => upload(client, bucket, key, files, options, scope).await,
        S3Op::Download {
            bucket,
            target,
            version_id,
            request_payer,
        } => {
            download(
                client,
                bucket,
                target,
                version_id.as_deref(),
                request_payer.as_deref(),
                scope,
            )
            .await
        }
        S3Op::List(spec) => {
            let (objects, warnings) = list(client, spec).await?;
            let mut outputs = IndexMap::new();
            outputs.insert("objects".to_string(), Value::Array(objects));
            Ok(AwsOutcome {
                outputs,
                warnings,
                warning: false,
            })
        }
        S3Op::Delete {
            bucket,
            key,
            request_payer,
            bypass_governance_retention,
            mfa,
        } => {
            let response = client
                .delete_object()
                .bucket(bucket)
                .key(key)
                .set_request_payer(request_payer.as_deref().map(RequestPayer::from))
                .set_bypass_governance_retention(*bypass_governance_retention)
                .set_mfa(mfa.clone())
                .send()
                .await
                .map_err(|e| sdk_error(S3, "DeleteObject", object(bucket, key), e))?;
            let mut outputs = IndexMap::new();
            put(&mut outputs, "versionId", response.version_id().map(Value::from));
            put(
                &mut outputs,
                "deleteMarker",
                response.delete_marker().map(Value::from),
            );
            put(
                &mut outputs,
                "requestCharged",
                response.request_charged().map(|c| Value::from(c.as_str())),
            );
            Ok(AwsOutcome {
                outputs,
                ..AwsOutcome::default()
            })
        }
        S3Op::Copy {
            from,
            to,
            from_version_id,
            server_side_encryption,
            kms_key_id,
            delete,
        } => {
            let mut source = format!("{}/{}", from.bucket, encode_key(&from.key));
            if let Some(version) = from_version_id {
                source.push_str(&format!("?versionId={}", encode_key(version)));
            }
            let response = client
                .copy_object()
                .copy_source(source)
                .bucket(&to.bucket)
                .key(&to.key)
                .set_server_side_encryption(server_side_encryption.as_deref().map(ServerSideEncryption::from))
                .set_ssekms_key_id(kms_key_id.clone())
                .send()
                .await
                .map_err(|e| {
                    sdk_error(
                        S3,
                        "CopyObject",
                        format!(
                            "{} to {}",
                            object(&from.bucket, &from.key),
                            object(&to.bucket, &to.key)
                        ),
                        e,
                    )
                })?;
            if *delete {
                client
                    .delete_object()
                    .bucket(&from.bucket)
                    .key(&from.key)
                    .send()
                    .await
                    .map_err(|e| sdk_error(S3, "DeleteObject", object(&from.bucket, &from.key), e))?;
            }
            let mut outputs = IndexMap::new();
            outputs.insert("bucket".into(), Value::from(to.bucket.as_str()));
            outputs.insert("key".into(), Value::from(to.key.as_str()));
            put(
                &mut outputs,
                "etag",
                response
                    .copy_object_result()
                    .and_then(|r| r.e_tag())
                    .map(Value::from),
            );
            Ok(AwsOutcome {
                outputs,
                ..AwsOutcome::default()
            })
        }
    }
}

/// A key in `CopySource`: URL-encoded but for `/`.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn upload(
    client: &Client,
    bucket: &str,
    key: &str,
    files: &[(String, String)],
    options: &PutOptions,
    scope: &Scope<'_>,
) -> Result<AwsOutcome, AwsError> {
    let single = files.len() == 1;
    let mut infos = Map::new();
    let mut outputs = IndexMap::new();
    for (name, uri) in files {
        let bytes = scope.read(uri).await?;
        let size = bytes.len();
        // Several files go under `key` as a folder, as Kestra's `Path.of(key, name)`.
        let target = if single {
            key.to_string()
        } else {
            format!("{}/{}", key.trim_end_matches('/'), name.trim_start_matches('/'))
        };
        let response = client
            .put_object()
            .bucket(bucket)
            .key(&target)
            .body(S3Body::from(bytes))
            .set_metadata((!options.metadata.is_empty()).then(|| options.metadata.iter().cloned().collect()))
            .set_cache_control(options.cache_control.clone())
            .set_content_type(options.content_type.clone())
            .set_content_encoding(options.content_encoding.clone())
            .set_content_disposition(options.content_disposition.clone())
            .set_content_language(options.content_language.clone())
            .set_acl(options.acl.as_deref().map(ObjectCannedAcl::from))
            .set_storage_class(options.storage_class.as_deref().map(StorageClass::from))
            .set_request_payer(options.request_payer.as_deref().map(RequestPayer::from))
            .send()
            .await
            .map_err(|e| sdk_error(S3, "PutObject", object(bucket, &target), e))?;
        if single {
            outputs.insert("bucket".into(), Value::from(bucket));
            outputs.insert("key".into(), Value::from(key));
            put(&mut outputs, "etag", response.e_tag().map(Value::from));
            put(&mut outputs, "versionId", response.version_id().map(Value::from));
        } else {
            let mut info = IndexMap::new();
            put(&mut info, "etag", response.e_tag().map(Value::from));
            put(&mut info, "versionId", response.version_id().map(Value::from));
            info.insert("contentLength".into(), Value::from(size));
            infos.insert(name.clone(), json!(info));
        }
    }
    if !single {
        outputs.insert("bucket".into(), Value::from(bucket));
        outputs.insert("key".into(), Value::from(key));
        outputs.insert("files".into(), Value::Object(infos));
    }
    Ok(AwsOutcome {
        outputs,
        ..AwsOutcome::default()
    })
}

/// Gets one object into the task run's storage: its URI and what S3 said of it.
async fn get(
    client: &Client,
    bucket: &str,
    key: &str,
    name: &str,
    version_id: Option<&str>,
    request_payer: Option<&str>,
    scope: &Scope<'_>,
) -> Result<IndexMap<String, Value>, AwsError> {
    let response = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version_id.map(str::to_string))
        .set_request_payer(request_payer.map(RequestPayer::from))
        .send()
        .await
        .map_err(|e| sdk_error(S3, "GetObject", object(bucket, key), e))?;
    let uri = format!("{}{name}", scope.prefix);
    let mut info = IndexMap::new();
    info.insert("uri".to_string(), Value::from(uri.as_str()));
    put(&mut info, "etag", response.e_tag().map(Value::from));
    put(
        &mut info,
        "contentLength",
        response.content_length().map(Value::from),
    );
    put(&mut info, "contentType", response.content_type().map(Value::from));
    put(
        &mut info,
        "metadata",
        response
            .metadata()
            .map(|m| json!(m.iter().collect::<std::collections::BTreeMap<_, _>>())),
    );
    put(&mut info, "versionId", response.version_id().map(Value::from));
    let body = Box::pin(response.body.into_async_read());
    scope
        .files
        .put(&uri, body, MAX_FILE_BYTES)
        .await
        .map_err(|e| port_error(&uri, e))?;
    Ok(info)
}

async fn download(
    client: &Client,
    bucket: &str,
    target: &DownloadTarget,
    version_id: Option<&str>,
    request_payer: Option<&str>,
    scope: &Scope<'_>,
) -> Result<AwsOutcome, AwsError> {
    match target {
        DownloadTarget::Key(key) => {
            let outputs = get(
                client,
                bucket,
                key,
                &file_name(key),
                version_id,
                request_payer,
                scope,
            )
            .await?;
            Ok(AwsOutcome {
                outputs,
                ..AwsOutcome::default()
            })
        }
        DownloadTarget::Listing(spec) => {
            let (objects, mut warnings) = list(client, spec).await?;
            if objects.is_empty() {
                warnings.push("No objects found matching the filter criteria".into());
            }
            let mut files = Map::new();
            for (i, object) in objects.iter().enumerate() {
                let key = object["key"].as_str().unwrap_or_default();
                // Numbered: keys in different folders may share a file name.
                let name = format!("{i}_{}", file_name(key));
                let info = get(client, bucket, key, &name, version_id, request_payer, scope).await?;
                files.insert(key.to_string(), json!(info));
            }
            let mut outputs = IndexMap::new();
            outputs.insert("files".to_string(), Value::Object(files));
            Ok(AwsOutcome {
                outputs,
                warnings,
                warning: false,
            })
        }
    }
}

/// Lists a bucket as Kestra's `List`: pages until `maxKeys` keys are read, then
/// `regexp` and `filter`, then at most `maxFiles` objects (with a warning past it).
async fn list(client: &Client, spec: &ListSpec) -> Result<(Vec<Value>, Vec<String>), AwsError> {
    let regexp = spec.compiled_regexp().map_err(AwsError::Task)?;
    let mut listed = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(&spec.bucket)
            .max_keys(spec.max_keys.min(1000) as i32)
            .set_prefix(spec.prefix.clone())
            .set_delimiter(spec.delimiter.clone())
            .set_start_after(spec.marker.clone())
            .set_encoding_type(spec.encoding_type.as_deref().map(Into::into))
            .set_expected_bucket_owner(spec.expected_bucket_owner.clone())
            .set_request_payer(spec.request_payer.as_deref().map(RequestPayer::from))
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| sdk_error(S3, "ListObjectsV2", format!("s3://{}", spec.bucket), e))?;
        listed.extend(page.contents().iter().cloned());
        if listed.len() >= spec.max_keys || !page.is_truncated().unwrap_or(false) {
            break;
        }
        match page.next_continuation_token() {
            Some(next) => token = Some(next.to_string()),
            None => break,
        }
    }
    listed.truncate(spec.max_keys);
    let mut objects: Vec<Value> = listed
        .into_iter()
        .filter(|o| spec.keeps(o.key().unwrap_or_default(), regexp.as_ref()))
        .map(|o| {
            let mut item = IndexMap::new();
            put(&mut item, "key", o.key().map(Value::from));
            put(&mut item, "etag", o.e_tag().map(Value::from));
            put(&mut item, "size", o.size().map(Value::from));
            put(
                &mut item,
                "lastModified",
                o.last_modified()
                    .and_then(|d| d.fmt(Format::DateTime).ok())
                    .map(Value::from),
            );
            if let Some(owner) = o.owner() {
                let mut who = IndexMap::new();
                put(&mut who, "id", owner.id().map(Value::from));
                put(&mut who, "displayName", owner.display_name().map(Value::from));
                item.insert("owner".into(), json!(who));
            }
            json!(item)
        })
        .collect();
    let mut warnings = Vec::new();
    if objects.len() > spec.max_files {
        warnings.push(format!(
            "Listing returned {} files but maxFiles limit is {}. Only the first {} files will be returned. \
             Increase the maxFiles property if you need more files.",
            objects.len(),
            spec.max_files,
            spec.max_files
        ));
        objects.truncate(spec.max_files);
    }
    Ok((objects, warnings))
}
