//! Files in S3: `kestra:///ns/path/file` is the key `ns/path/file` of the bucket.
//! Large execution bodies live under the reserved top-level prefix `_kite/`.

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use kite_engine::ports::{ByteStream, FileStorage, StorageError, StoredFile};
use tokio::io::AsyncReadExt;

const SCHEME: &str = "kestra:///";
/// Top-level prefix for Kite's own objects; URIs cannot reach it.
const INTERNAL: &str = "_kite";
/// Uploads up to this size are one PutObject; larger ones are multipart (S3's minimum
/// part size is 5 MiB).
const PART_SIZE: usize = 8 * 1024 * 1024;

fn io(e: impl std::fmt::Display) -> StorageError {
    StorageError::Io(e.to_string())
}

fn sdk_io<E>(e: E) -> StorageError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error,
{
    StorageError::Io(crate::items::describe(&e))
}

/// Percent-encodes an object key for `x-amz-copy-source`, keeping its `/` separators.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// S3 file storage in one bucket.
#[derive(Debug, Clone)]
pub struct S3FileStorage {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3FileStorage {
    pub fn new(client: aws_sdk_s3::Client, bucket: String) -> S3FileStorage {
        S3FileStorage { client, bucket }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// The object key of a URI, refusing `..`, `.`, empty segments, backslashes, NUL,
    /// colons, Kite's reserved prefix and anything that is not `kestra:///`.
    pub fn key_of(uri: &str) -> Result<String, StorageError> {
        let invalid = || StorageError::InvalidUri(uri.to_string());
        let rest = uri.strip_prefix(SCHEME).ok_or_else(invalid)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() {
            return Err(invalid());
        }
        for segment in rest.split('/') {
            if segment.is_empty() || segment == "." || segment == ".." || segment.contains(['\\', '\0', ':'])
            {
                return Err(invalid());
            }
        }
        if rest.split('/').next() == Some(INTERNAL) {
            return Err(invalid());
        }
        Ok(rest.to_string())
    }

    async fn put_object(&self, key: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(S3Body::from(bytes))
            .send()
            .await
            .map_err(sdk_io)?;
        Ok(())
    }

    async fn get_object_bytes(&self, key: &str, uri: &str) -> Result<Vec<u8>, StorageError> {
        use aws_sdk_s3::operation::get_object::GetObjectError;
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(out.body.collect().await.map_err(io)?.into_bytes().to_vec()),
            Err(err) => match err.into_service_error() {
                GetObjectError::NoSuchKey(_) => Err(StorageError::NotFound(uri.to_string())),
                other => Err(sdk_io(other)),
            },
        }
    }

    /// A URL that uploads the file `uri` with one HTTP `PUT` of its bytes, valid for
    /// `expires_in`: files larger than API Gateway's 10 MB payload go straight to S3.
    /// The size bound cannot be enforced on such an upload; check [`FileStorage::size`]
    /// before using the file.
    pub async fn presigned_put(
        &self,
        uri: &str,
        expires_in: std::time::Duration,
    ) -> Result<String, StorageError> {
        let key = Self::key_of(uri)?;
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(expires_in).map_err(io)?;
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(sdk_io)?;
        Ok(request.uri().to_string())
    }

    /// A URL that downloads the file `uri` for `expires_in`.
    pub async fn presigned_get(
        &self,
        uri: &str,
        expires_in: std::time::Duration,
    ) -> Result<String, StorageError> {
        self.presign_get(uri, expires_in, None).await
    }

    /// [`Self::presigned_get`], S3 answering with `Content-Disposition: disposition` when given.
    async fn presign_get(
        &self,
        uri: &str,
        expires_in: std::time::Duration,
        disposition: Option<String>,
    ) -> Result<String, StorageError> {
        let key = Self::key_of(uri)?;
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(expires_in).map_err(io)?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_response_content_disposition(disposition)
            .presigned(config)
            .await
            .map_err(sdk_io)?;
        Ok(request.uri().to_string())
    }

    /// Stores one of Kite's own objects (a large execution body) under `_kite/`.
    pub(crate) async fn put_internal(&self, key: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        self.put_object(&format!("{INTERNAL}/{key}"), bytes).await
    }

    /// Deletes one of Kite's own objects (S3 deletes of absent keys succeed).
    pub(crate) async fn delete_internal(&self, key: &str) -> Result<(), StorageError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(format!("{INTERNAL}/{key}"))
            .send()
            .await
            .map_err(sdk_io)?;
        Ok(())
    }

    pub(crate) async fn get_internal(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let full = format!("{INTERNAL}/{key}");
        self.get_object_bytes(&full, &full).await
    }

    /// The object named like `prefix` and every object under it as a folder (not `e10/...`
    /// for `e1`), over ListObjectsV2's pages.
    async fn objects_under(&self, prefix: &str) -> Result<Vec<aws_sdk_s3::types::Object>, StorageError> {
        let key = Self::key_of(prefix)?;
        let folder = format!("{key}/");
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&key)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(sdk_io)?;
            let is_truncated = out.is_truncated().unwrap_or(false);
            let next = out.next_continuation_token().map(str::to_string);
            for object in out.contents.unwrap_or_default() {
                if object.key().is_some_and(|k| k == key || k.starts_with(&folder)) {
                    objects.push(object);
                }
            }
            match next {
                Some(t) if is_truncated => token = Some(t),
                _ => break,
            }
        }
        Ok(objects)
    }

    /// Reads up to `buf.len()` bytes (fewer only at the end of the stream).
    async fn fill(content: &mut ByteStream, buf: &mut Vec<u8>, want: usize) -> Result<usize, StorageError> {
        let start = buf.len();
        while buf.len() - start < want {
            let mut chunk = vec![0u8; (want - (buf.len() - start)).min(64 * 1024)];
            let n = content.read(&mut chunk).await.map_err(io)?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok(buf.len() - start)
    }

    async fn multipart(
        &self,
        key: &str,
        first: Vec<u8>,
        content: &mut ByteStream,
        max_bytes: u64,
    ) -> Result<u64, StorageError> {
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(sdk_io)?;
        let upload_id = upload
            .upload_id()
            .ok_or_else(|| StorageError::Io("S3 returned no upload id".into()))?
            .to_string();
        let result = self
            .upload_parts(key, &upload_id, first, content, max_bytes)
            .await;
        match result {
            Ok((parts, written)) => {
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                    .send()
                    .await
                    .map_err(sdk_io)?;
                Ok(written)
            }
            Err(e) => {
                // Nothing stored: the parts are discarded.
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                Err(e)
            }
        }
    }

    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        first: Vec<u8>,
        content: &mut ByteStream,
        max_bytes: u64,
    ) -> Result<(Vec<CompletedPart>, u64), StorageError> {
        let mut parts = Vec::new();
        let mut written = 0u64;
        let mut buf = first;
        loop {
            if buf.is_empty() {
                break;
            }
            written += buf.len() as u64;
            if written > max_bytes {
                return Err(StorageError::TooLarge { limit: max_bytes });
            }
            let number = parts.len() as i32 + 1;
            let out = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(S3Body::from(std::mem::take(&mut buf)))
                .send()
                .await
                .map_err(sdk_io)?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .build(),
            );
            Self::fill(content, &mut buf, PART_SIZE).await?;
        }
        Ok((parts, written))
    }
}

#[async_trait]
impl FileStorage for S3FileStorage {
    async fn put(&self, uri: &str, mut content: ByteStream, max_bytes: u64) -> Result<u64, StorageError> {
        let key = Self::key_of(uri)?;
        // One byte more than a part tells whether the file needs a multipart upload.
        let mut buf = Vec::new();
        let n = Self::fill(&mut content, &mut buf, PART_SIZE + 1).await?;
        if n as u64 > max_bytes {
            return Err(StorageError::TooLarge { limit: max_bytes });
        }
        if n <= PART_SIZE {
            self.put_object(&key, buf).await?;
            return Ok(n as u64);
        }
        let rest = buf.split_off(PART_SIZE);
        // The byte read past the first part starts the second part.
        let mut chained: ByteStream = Box::pin(std::io::Cursor::new(rest).chain(content));
        self.multipart(&key, buf, &mut chained, max_bytes).await
    }

    async fn get(&self, uri: &str) -> Result<ByteStream, StorageError> {
        use aws_sdk_s3::operation::get_object::GetObjectError;
        let key = Self::key_of(uri)?;
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(out) => Ok(Box::pin(out.body.into_async_read())),
            Err(err) => match err.into_service_error() {
                GetObjectError::NoSuchKey(_) => Err(StorageError::NotFound(uri.to_string())),
                other => Err(sdk_io(other)),
            },
        }
    }

    async fn size(&self, uri: &str) -> Result<Option<u64>, StorageError> {
        use aws_sdk_s3::operation::head_object::HeadObjectError;
        let key = Self::key_of(uri)?;
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.content_length().unwrap_or(0).max(0) as u64)),
            Err(err) => match err.into_service_error() {
                HeadObjectError::NotFound(_) => Ok(None),
                other => Err(sdk_io(other)),
            },
        }
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), StorageError> {
        let (source, target) = (Self::key_of(from)?, Self::key_of(to)?);
        // CopyObject takes `bucket/key` URL-encoded; one request up to 5 GB, more than
        // anything the API receives in one request.
        let copy_source = format!("{}/{}", self.bucket, encode_key(&source));
        if let Err(err) = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(&target)
            .copy_source(copy_source)
            .send()
            .await
        {
            use aws_smithy_types::error::metadata::ProvideErrorMetadata as _;
            return Err(match err.into_service_error() {
                e if e.code() == Some("NoSuchKey") => StorageError::NotFound(from.to_string()),
                e => sdk_io(e),
            });
        }
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&source)
            .send()
            .await
            .map_err(sdk_io)?;
        Ok(())
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, StorageError> {
        let keys: Vec<String> = self
            .objects_under(prefix)
            .await?
            .into_iter()
            .map(|o| o.key.unwrap_or_default())
            .collect();
        for chunk in keys.chunks(1000) {
            let objects = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build().map_err(io))
                .collect::<Result<Vec<_>, _>>()?;
            self.client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(
                    Delete::builder()
                        .set_objects(Some(objects))
                        .quiet(true)
                        .build()
                        .map_err(io)?,
                )
                .send()
                .await
                .map_err(sdk_io)?;
        }
        Ok(keys.len() as u64)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<StoredFile>, StorageError> {
        let mut files: Vec<StoredFile> = self
            .objects_under(prefix)
            .await?
            .into_iter()
            .map(|o| {
                let last_modified = o
                    .last_modified
                    .and_then(|d| chrono::DateTime::from_timestamp(d.secs(), d.subsec_nanos()))
                    .unwrap_or_default();
                StoredFile {
                    uri: format!("{SCHEME}{}", o.key.unwrap_or_default()),
                    size: o.size.unwrap_or(0).max(0) as u64,
                    last_modified,
                    created: None,
                }
            })
            .collect();
        files.sort_by(|a, b| a.uri.cmp(&b.uri));
        Ok(files)
    }

    async fn upload_url(
        &self,
        uri: &str,
        expires_in: std::time::Duration,
    ) -> Result<Option<String>, StorageError> {
        self.presigned_put(uri, expires_in).await.map(Some)
    }

    /// Presigned like [`S3FileStorage::presigned_get`]; S3 answers it as an attachment
    /// named after the file, as the API's own download does.
    async fn download_url(
        &self,
        uri: &str,
        expires_in: std::time::Duration,
    ) -> Result<Option<String>, StorageError> {
        let name: String = uri
            .rsplit('/')
            .next()
            .unwrap_or("file")
            .chars()
            .map(|c| match c {
                ' ' => ' ',
                '"' | '\\' => '_',
                c if c.is_ascii_graphic() => c,
                _ => '_',
            })
            .collect();
        self.presign_get(uri, expires_in, Some(format!("attachment; filename=\"{name}\"")))
            .await
            .map(Some)
    }

    fn read_blocking(&self, uri: &str) -> Result<Vec<u8>, StorageError> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        let key = Self::key_of(uri)?;
        match Handle::try_current() {
            // The functions run the multi-thread runtime: park this worker thread only.
            Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| handle.block_on(self.get_object_bytes(&key, uri)))
            }
            Ok(_) => Err(StorageError::Io(
                "read() of an S3 file needs the multi-thread tokio runtime".into(),
            )),
            Err(_) => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(io)?
                .block_on(self.get_object_bytes(&key, uri)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A client that signs with fixed credentials; presigning sends nothing.
    fn storage() -> S3FileStorage {
        use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(Credentials::new("AKIDEXAMPLE", "secret", None, None, "test"))
            .build();
        S3FileStorage::new(aws_sdk_s3::Client::from_conf(config), "files".into())
    }

    #[tokio::test]
    async fn upload_and_download_urls_are_presigned_for_the_key() {
        let s = storage();
        let uri = "kestra:///dev/f/uploads/abc/big data.csv";
        let put = s
            .upload_url(uri, Duration::from_secs(900))
            .await
            .unwrap()
            .unwrap();
        assert!(
            put.starts_with("https://files.s3.eu-west-1.amazonaws.com/dev/f/uploads/abc/big%20data.csv?"),
            "{put}"
        );
        assert!(
            put.contains("X-Amz-Expires=900") && put.contains("X-Amz-Signature="),
            "{put}"
        );
        let get = s
            .download_url(uri, Duration::from_secs(900))
            .await
            .unwrap()
            .unwrap();
        assert!(
            get.contains("response-content-disposition=attachment%3B%20filename%3D%22big%20data.csv%22"),
            "{get}"
        );
        for bad in ["kestra:///_kite/body", "kestra:///dev/../x", "s3://files/x"] {
            assert!(s.upload_url(bad, Duration::from_secs(60)).await.is_err(), "{bad}");
            assert!(
                s.download_url(bad, Duration::from_secs(60)).await.is_err(),
                "{bad}"
            );
        }
    }
}
