//! A local HTTP/1.1 server with the routes of the test controllers Kestra's HTTP task tests
//! call (one request per connection).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The body of `/hello` and `/hello417`.
pub const HELLO: &str = "{ \"hello\": \"world\" }";
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
    let head = String::from_utf8_lossy(&request).to_string();
    let path = head.split(' ').nth(1).unwrap_or_default().to_string();
    let (status, headers, body): (&str, &str, &str) = match path.as_str() {
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
