//! The HTTP tasks after Kestra's `RequestTest` and `DownloadTest`, against the local
//! server with the routes of Kestra's test controllers (`server.rs`).

use kite_core::execution::StateType::{Success, Warning};
use serde_json::{json, Value};

use super::server::{serve, CHUNK, CHUNKS, CSV, HELLO, SAMPLE_CSV_LENGTH, SAMPLE_CSV_PATH};
use super::{ensure, same, Check, Env};

/// Kestra's `application-test.yml`, which `RequestTest` posts; any text will do.
const POSTED_FILE: &str = "kestra:\n  repository:\n    type: memory\n";

/// `RequestTest`: `run`, `failed` (`allowFailed`: a 417 is an answer), `head` (against
/// the local server rather than a site on the internet), `form`, `multipart` and
/// `multipartCustomFilename`.
pub async fn request(env: &Env) -> Check {
    let server = format!("http://{}", serve().await);
    let file = [("file", "application-test.yml", POSTED_FILE.as_bytes().to_vec())];
    let done = env
        .run("http-request.yaml", &[("server", &server)], &file)
        .await?;
    done.states(
        Success,
        &[
            ("run", Success),
            ("failed", Success),
            ("form", Success),
            ("multipart", Success),
            ("multipart_custom_filename", Success),
        ],
    )?;
    same("head state", done.task_state("head")?, Success)?;
    same(
        "head uri",
        done.output("head", "uri"),
        json!(format!("{server}{SAMPLE_CSV_PATH}")),
    )?;
    same(
        "head content-length",
        done.output("head", "headers")["content-length"].clone(),
        json!([SAMPLE_CSV_LENGTH.to_string()]),
    )?;
    same("form body", done.output("form", "body"), json!("world > value"))?;
    same("form code", done.output("form", "code"), json!(200))?;
    for task in ["multipart", "multipart_custom_filename"] {
        same(
            &format!("{task} body"),
            done.output(task, "body"),
            json!(format!("world > {POSTED_FILE}")),
        )?;
        same(&format!("{task} code"), done.output(task, "code"), json!(200))?;
    }
    same("run body", done.output("run", "body"), json!(HELLO))?;
    same(
        "run encryptedBody",
        done.output("run", "encryptedBody"),
        Value::Null,
    )?;
    same("run code", done.output("run", "code"), json!(200))?;
    same("failed body", done.output("failed", "body"), json!(HELLO))?;
    same("failed code", done.output("failed", "code"), json!(417))
}

/// `DownloadTest`: a CSV file, an empty answer (refused, then allowed), a 500, a chunked
/// answer, the file name of `Content-Disposition` (without its folders) and `allowFailed`.
/// Tasks with `allowFailure` end in WARNING, as in Kestra.
pub async fn download(env: &Env) -> Check {
    let server = format!("http://{}", serve().await);
    let done = env.run("http-download.yaml", &[("server", &server)], &[]).await?;
    done.states(
        Warning,
        &[
            ("run", Success),
            ("no_response", Warning),
            ("allow_no_response", Success),
            ("error", Warning),
            ("chunked", Success),
            ("content_disposition", Success),
            ("content_disposition_path", Success),
            ("content_disposition_double_dot", Success),
            ("failed", Success),
        ],
    )?;
    let run = done.output("run", "uri");
    same("run content", env.text(&run).await?, CSV.to_string())?;
    ensure(run.as_str().is_some_and(|u| u.ends_with(".csv")), || {
        format!("run uri {run}")
    })?;
    done.logged("no_response", "No response from server")?;
    same(
        "allow_no_response length",
        done.output("allow_no_response", "length"),
        json!(0),
    )?;
    same(
        "allow_no_response content",
        env.text(&done.output("allow_no_response", "uri")).await?,
        String::new(),
    )?;
    done.logged("error", "Failed http request with response code '500'")?;
    same(
        "chunked length",
        env.text(&done.output("chunked", "uri")).await?.len(),
        CHUNK.len() * CHUNKS,
    )?;
    let named = done.output("content_disposition", "uri");
    ensure(
        named.as_str().is_some_and(|u| u.ends_with("filename.jpg")),
        || format!("content_disposition uri {named}"),
    )?;
    let path = done.output("content_disposition_path", "uri");
    ensure(
        path.as_str()
            .is_some_and(|u| u.ends_with("filename.jpg") && !u.contains("/secure-path/")),
        || format!("content_disposition_path uri {path}"),
    )?;
    let dots = done.output("content_disposition_double_dot", "uri");
    ensure(
        dots.as_str()
            .is_some_and(|u| u.ends_with("filename..jpg") && !u.contains("/secure-path/")),
        || format!("content_disposition_double_dot uri {dots}"),
    )?;
    same(
        "failed content-type",
        done.output("failed", "headers")["content-type"].clone(),
        json!(["application/json"]),
    )?;
    same("failed code", done.output("failed", "code"), json!(417))
}
