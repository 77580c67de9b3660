//! Following redirects as Kestra's client does: 303 (and 301/302 after a POST) turn
//! into a GET without a body, 307/308 repeat the request. Credentials are not sent
//! to another origin.

use hyper::body::{Bytes, Incoming};
use kite_core::plugin::http::{HttpCall, HttpError};
use url::Url;

/// One request of a task run: the first, or one a redirect leads to.
pub struct Hop {
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Hop {
    /// The task's request, with its body (and the `Content-Type` a multipart form needs
    /// unless the task's headers give one).
    pub fn first(call: &HttpCall, (body, content_type): (Bytes, Option<String>)) -> Hop {
        let mut headers = call.headers.clone();
        if let Some(content_type) = content_type {
            if !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            {
                headers.push(("Content-Type".into(), content_type));
            }
        }
        Hop {
            method: call.method.clone(),
            uri: call.uri.clone(),
            headers,
            body,
        }
    }

    /// The request a `status` redirect to `to` leads to.
    pub fn follow(self, status: u16, to: Url) -> Hop {
        let Hop {
            mut method,
            uri,
            mut headers,
            mut body,
        } = self;
        let to_get = (status == 303 && method != "HEAD") || (matches!(status, 301 | 302) && method == "POST");
        if to_get {
            method = "GET".into();
            body = Bytes::new();
            headers.retain(|(n, _)| {
                !n.eq_ignore_ascii_case("content-type") && !n.eq_ignore_ascii_case("content-length")
            });
        }
        let same_origin = Url::parse(&uri).is_ok_and(|from| from.origin() == to.origin());
        if !same_origin {
            headers.retain(|(n, _)| {
                !n.eq_ignore_ascii_case("authorization") && !n.eq_ignore_ascii_case("cookie")
            });
        }
        Hop {
            method,
            uri: to.into(),
            headers,
            body,
        }
    }
}

/// Where a redirect answer leads, or `None` when the answer is no redirect.
pub fn location(from: &str, response: &hyper::Response<Incoming>) -> Result<Option<Url>, HttpError> {
    if !matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
        return Ok(None);
    }
    let Some(location) = response.headers().get(hyper::header::LOCATION) else {
        return Ok(None);
    };
    let invalid = |reason: String| HttpError::Failed {
        uri: from.to_string(),
        reason,
    };
    let location = location
        .to_str()
        .map_err(|_| invalid("the redirect's Location is not text".into()))?;
    let base = Url::parse(from).map_err(|e| invalid(e.to_string()))?;
    let to = base
        .join(location)
        .map_err(|e| invalid(format!("the redirect's Location '{location}' is invalid: {e}")))?;
    if !matches!(to.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "the redirect leads to '{to}', which is not http(s)"
        )));
    }
    Ok(Some(to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(method: &str) -> Hop {
        Hop {
            method: method.into(),
            uri: "http://127.0.0.1:8080/a".into(),
            headers: vec![
                ("Authorization".into(), "Basic x".into()),
                ("Content-Type".into(), "text/plain".into()),
                ("X-Keep".into(), "1".into()),
            ],
            body: Bytes::from_static(b"payload"),
        }
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_post_redirected_by_303_or_302_becomes_a_get_without_body() {
        for status in [302, 303] {
            let next = hop("POST").follow(status, url("http://127.0.0.1:8080/b"));
            assert_eq!((next.method.as_str(), next.body.len()), ("GET", 0));
            assert_eq!(next.uri, "http://127.0.0.1:8080/b");
            let names: Vec<&str> = next.headers.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, ["Authorization", "X-Keep"]);
        }
    }

    #[test]
    fn a_307_repeats_the_request_and_credentials_stay_on_their_origin() {
        let next = hop("PUT").follow(307, url("http://127.0.0.1:8080/b"));
        assert_eq!((next.method.as_str(), &next.body[..]), ("PUT", &b"payload"[..]));
        assert_eq!(next.headers.len(), 3);
        let elsewhere = hop("GET").follow(308, url("http://127.0.0.1:9090/b"));
        assert!(elsewhere
            .headers
            .iter()
            .all(|(n, _)| !n.eq_ignore_ascii_case("authorization")));
    }
}
