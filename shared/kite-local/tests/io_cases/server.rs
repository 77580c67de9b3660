//! A local HTTP/1.1 server with the routes of the test controllers Kestra's HTTP task tests
//! call (one request per connection). `/post/simple` and `/post/multipart` answer as
//! Kestra's do: the `hello` field, ` > `, then the `test` header or the `file` part.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The body of `/hello` and `/hello417`.
pub const HELLO: &str = "{ \"hello\": \"world\" }";
/// The file `RequestTest.head` asks a site on the internet about, and the length that site
/// gives; served here to HEAD requests.
pub const SAMPLE_CSV_PATH: &str = "/wp-content/uploads/2023/07/500KB-CSV.csv";
pub const SAMPLE_CSV_LENGTH: u64 = 512_789;
/// The body of `/sample.csv`.
pub const CSV: &str = "id,name,value\n1,foo,100\n2,bar,200\n3,baz,300\n";
/// `/chunked` sends this line this many times, one chunk each.
pub const CHUNK: &str = "Hello World\n";
pub const CHUNKS: usize = 10_000;

pub async fn serve() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer(stream));
        }
    });
    addr
}

async fn answer(mut stream: TcpStream) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let head_end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4;
    let head = String::from_utf8_lossy(&request[..head_end]).to_string();
    let length = header(&head, "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    while request.len() < head_end + length {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let body = String::from_utf8_lossy(&request[head_end..]).to_string();
    let path = head.split(' ').nth(1).unwrap_or_default().to_string();
    if head.starts_with("HEAD ") && path == SAMPLE_CSV_PATH {
        let response =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {SAMPLE_CSV_LENGTH}\r\nConnection: close\r\n\r\n");
        let _ = stream.write_all(response.as_bytes()).await;
        return;
    }
    let posted;
    let (status, headers, body): (&str, &str, &str) = match path.as_str() {
        // `{hello} > {the test header}`, from a url-encoded form.
        "/post/simple" => {
            let hello = form_field(&body, "hello").unwrap_or_default();
            posted = format!("{hello} > {}", header(&head, "test").unwrap_or_default());
            ("200 OK", "", posted.as_str())
        }
        // `{hello} > {the file part's content}`, from a multipart form.
        "/post/multipart" => {
            let boundary = header(&head, "content-type")
                .and_then(|t| {
                    t.split("boundary=")
                        .nth(1)
                        .map(|b| b.trim_matches('"').to_string())
                })
                .unwrap_or_default();
            let parts = multipart_parts(&body, &boundary);
            let part = |name: &str| parts.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
            posted = format!(
                "{} > {}",
                part("hello").unwrap_or_default(),
                part("file").unwrap_or_default()
            );
            ("200 OK", "", posted.as_str())
        }
        "/hello" => ("200 OK", "Content-Type: application/json\r\n", HELLO),
        "/hello417" => (
            "417 Expectation Failed",
            "Content-Type: application/json\r\n",
            HELLO,
        ),
        "/204" => ("204 No Content", "", ""),
        "/500" => ("500 Internal Server Error", "", ""),
        "/content-disposition" => (
            "200 OK",
            "Content-Disposition: attachment; filename=\"filename.jpg\"\r\n",
            "Hello World",
        ),
        "/content-disposition-path" => (
            "200 OK",
            "Content-Disposition: attachment; filename=\"/secure-path/filename.jpg\"\r\n",
            "Hello World",
        ),
        "/content-disposition-double-dot" => (
            "200 OK",
            "Content-Disposition: attachment; filename=\"/secure-path/filename..jpg\"\r\n",
            "Hello World",
        ),
        "/sample.csv" => ("200 OK", "Content-Type: text/csv\r\n", CSV),
        "/chunked" => {
            let mut response =
                String::from("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
            for _ in 0..CHUNKS {
                response.push_str(&format!("{:x}\r\n{CHUNK}\r\n", CHUNK.len()));
            }
            response.push_str("0\r\n\r\n");
            let _ = stream.write_all(response.as_bytes()).await;
            return;
        }
        _ => ("404 Not Found", "", ""),
    };
    let length = if status.starts_with("204") {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    let response = format!("HTTP/1.1 {status}\r\n{headers}{length}Connection: close\r\n\r\n{body}");
    let _ = stream.write_all(response.as_bytes()).await;
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

/// A field of a url-encoded form (values without escapes suffice here).
fn form_field(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.replace('+', " "))
    })
}

/// The (name, content) of each part of a multipart body.
fn multipart_parts(body: &str, boundary: &str) -> Vec<(String, String)> {
    body.split(&format!("--{boundary}"))
        .filter_map(|part| {
            let (head, content) = part.split_once("\r\n\r\n")?;
            let name = head.split("name=\"").nth(1)?.split('"').next()?.to_string();
            Some((name, content.strip_suffix("\r\n").unwrap_or(content).to_string()))
        })
        .collect()
}
