//! The artifacts bucket: pending uploads, import records, sweep manifests and
//! once-markers. Create-once writes use `If-None-Match: *`.

use crate::error::{aws, Error};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use retrain_core::pending::PAGE;
use serde::{de::DeserializeOwned, Serialize};
use tracing::instrument;

/// How often a create-once write that met a concurrent write (409) is tried again.
const MAX_CONFLICT_RETRIES: u32 = 4;

#[derive(Clone, Debug)]
pub struct Store {
    client: aws_sdk_s3::Client,
    bucket: String,
}

/// Whether a create-once write created the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Now,
    AlreadyThere,
}

impl Store {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Store {
        Store {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn resource(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// Writes `value` as JSON unless the key exists.
    ///
    /// 412 means the object exists. 409 (`ConditionalRequestConflict`) only
    /// means another write or delete of the key was in flight: it proves
    /// nothing, so the key is read back and the write tried again.
    #[instrument(skip(self, value), fields(bucket = %self.bucket))]
    pub async fn put_once<T: Serialize>(&self, key: &str, value: &T) -> Result<Created, Error> {
        let body = serde_json::to_vec_pretty(value).map_err(|e| Error::Setup(format!("cannot encode {key}: {e}")))?;
        let mut conflicts = 0;
        loop {
            let result = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .if_none_match("*")
                .content_type("application/json")
                .body(ByteStream::from(body.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(Created::Now),
                Err(e) => e,
            };
            match err.raw_response().map(|r| r.status().as_u16()) {
                Some(412) => return Ok(Created::AlreadyThere),
                Some(409) if conflicts < MAX_CONFLICT_RETRIES => {
                    conflicts += 1;
                    if self.exists(key).await? {
                        return Ok(Created::AlreadyThere);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20 << conflicts)).await;
                }
                _ => return Err(aws("s3:PutObject", self.resource(key), err)),
            }
        }
    }

    /// Whether the key exists (`HeadObject`).
    #[instrument(skip(self), fields(bucket = %self.bucket))]
    pub async fn exists(&self, key: &str) -> Result<bool, Error> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(false),
            Err(e) => Err(aws("s3:HeadObject", self.resource(key), e)),
        }
    }

    /// Writes `value` as JSON, replacing any previous object.
    #[instrument(skip(self, value), fields(bucket = %self.bucket))]
    pub async fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<(), Error> {
        let body = serde_json::to_vec_pretty(value).map_err(|e| Error::Setup(format!("cannot encode {key}: {e}")))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| aws("s3:PutObject", self.resource(key), e))?;
        Ok(())
    }

    /// Reads a JSON object; `None` when the key does not exist.
    #[instrument(skip(self), fields(bucket = %self.bucket))]
    pub async fn get<T: DeserializeOwned>(&self, what: &'static str, key: &str) -> Result<Option<T>, Error> {
        let out = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(aws("s3:GetObject", self.resource(key), e)),
        };
        let bytes = out.body.collect().await.map_err(|e| Error::Aws {
            operation: "s3:GetObject",
            resource: self.resource(key),
            code: "ReadError".to_owned(),
            message: e.to_string(),
            fix: "transient: it is retried".to_owned(),
            retryable: true,
        })?;
        serde_json::from_slice(&bytes.into_bytes()).map(Some).map_err(|e| Error::Corrupt {
            what,
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            cause: e.to_string(),
        })
    }

    /// Every key under `prefix`, in lexicographic order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        Ok(self.list_with_times(prefix).await?.into_iter().map(|(k, _)| k).collect())
    }

    /// Every key under `prefix` with its `LastModified` (epoch seconds), in lexicographic order.
    #[instrument(skip(self), fields(bucket = %self.bucket))]
    pub async fn list_with_times(&self, prefix: &str) -> Result<Vec<(String, u64)>, Error> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws("s3:ListObjectsV2", self.resource(prefix), e))?;
            keys.extend(page.contents().iter().filter_map(|o| {
                let modified = o.last_modified().map(|t| t.secs().max(0) as u64).unwrap_or(0);
                o.key().map(|k| (k.to_owned(), modified))
            }));
        }
        Ok(keys)
    }

    /// One page of at most `max_keys` keys under `prefix` after `start_after`,
    /// and whether more follow.
    #[instrument(skip(self), fields(bucket = %self.bucket))]
    pub async fn list_page(&self, prefix: &str, start_after: Option<&str>, max_keys: i32) -> Result<(Vec<String>, bool), Error> {
        let page = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_start_after(start_after.map(str::to_owned))
            .max_keys(max_keys)
            .send()
            .await
            .map_err(|e| aws("s3:ListObjectsV2", self.resource(prefix), e))?;
        let keys = page.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
        Ok((keys, page.is_truncated().unwrap_or(false)))
    }

    /// Every key under `prefix` that sorts after `start_after`, in lexicographic order.
    #[instrument(skip(self), fields(bucket = %self.bucket))]
    pub async fn list_after(&self, prefix: &str, start_after: &str) -> Result<Vec<String>, Error> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .start_after(start_after)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws("s3:ListObjectsV2", self.resource(prefix), e))?;
            keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
        }
        Ok(keys)
    }

    /// Whether any key exists under `prefix` (one `ListObjectsV2` of one key).
    #[instrument(skip(self), fields(bucket = %self.bucket))]
    pub async fn any_under(&self, prefix: &str) -> Result<bool, Error> {
        let page = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| aws("s3:ListObjectsV2", self.resource(prefix), e))?;
        Ok(!page.contents().is_empty())
    }

    /// Deletes keys with `DeleteObjects`, 1,000 per call (S3's limit);
    /// deleting a missing key is fine. Any key S3 could not delete is an error.
    #[instrument(skip(self, keys), fields(bucket = %self.bucket, keys = keys.len()))]
    pub async fn delete_many(&self, keys: &[String]) -> Result<(), Error> {
        for chunk in keys.chunks(PAGE) {
            let objects = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::Setup(format!("cannot build a DeleteObjects request: {e}")))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| Error::Setup(format!("cannot build a DeleteObjects request: {e}")))?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| aws("s3:DeleteObjects", self.resource(&chunk[0]), e))?;
            if let Some(failed) = out.errors().first() {
                let code = failed.code().unwrap_or("Unknown");
                let retryable = matches!(code, "InternalError" | "SlowDown" | "ServiceUnavailable");
                return Err(Error::Aws {
                    operation: "s3:DeleteObjects",
                    resource: self.resource(failed.key().unwrap_or_default()),
                    code: code.to_owned(),
                    message: format!(
                        "{} of {} key(s) not deleted: {}",
                        out.errors().len(),
                        chunk.len(),
                        failed.message().unwrap_or_default()
                    ),
                    fix: if retryable {
                        "transient: it is retried".to_owned()
                    } else {
                        format!("allow s3:DeleteObject on s3://{}/pending/*", self.bucket)
                    },
                    retryable,
                });
            }
        }
        Ok(())
    }

    /// Deletes a key (deleting a missing key is fine).
    #[instrument(skip(self), fields(bucket = %self.bucket))]
    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| aws("s3:DeleteObject", self.resource(key), e))?;
        Ok(())
    }
}

/// Reads `RETRAIN_CONFIG` text from a local path or an `s3://bucket/key` URI.
pub async fn read_config_text(client: &aws_sdk_s3::Client, location: &str) -> Result<String, Error> {
    let Some(uri) = retrain_core::s3_uri::S3Uri::parse(location) else {
        return std::fs::read_to_string(location).map_err(|e| {
            Error::Setup(format!(
                "RETRAIN_CONFIG={location}: cannot read it ({e}); give a readable file path or an s3://bucket/key URI"
            ))
        });
    };
    let out = client
        .get_object()
        .bucket(&uri.bucket)
        .key(&uri.key)
        .send()
        .await
        .map_err(|e| aws("s3:GetObject", location.to_owned(), e))?;
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|e| Error::Setup(format!("RETRAIN_CONFIG={location}: read failed: {e}")))?;
    String::from_utf8(bytes.into_bytes().to_vec()).map_err(|_| Error::Setup(format!("RETRAIN_CONFIG={location} is not UTF-8 text")))
}
