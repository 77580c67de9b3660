//! A small SMTP receiver on 127.0.0.1 for the mail tests: offers `AUTH PLAIN LOGIN` (no
//! TLS), accepts the one user it is given, and records every message it receives.
#![allow(dead_code)] // each test file uses its share

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One message the server accepted.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// The `user` that authenticated, if any.
    pub user: Option<String>,
    pub from: String,
    pub recipients: Vec<String>,
    /// The message as sent after DATA (headers and body, dot-unstuffed).
    pub data: String,
}

#[derive(Clone)]
pub struct SmtpServer {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl SmtpServer {
    /// Listens on a free port; `user:password` is the one login it accepts.
    pub async fn start(user: &str, password: &str) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server = SmtpServer {
            addr: listener.local_addr().expect("addr"),
            received: Arc::default(),
        };
        let received = server.received.clone();
        let login = (user.to_string(), password.to_string());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(converse(stream, login.clone(), received.clone()));
            }
        });
        server
    }

    pub fn messages(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }
}

fn decode(text: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

async fn converse(stream: TcpStream, login: (String, String), received: Arc<Mutex<Vec<Received>>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let _ = write.write_all(b"220 127.0.0.1 ESMTP test\r\n").await;
    let mut current = Received::default();
    let mut user = None;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_string();
        let upper = command.to_ascii_uppercase();
        let answer = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            "250-127.0.0.1\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME".to_string()
        } else if let Some(rest) = upper.strip_prefix("AUTH ") {
            let (name, password) = if rest.starts_with("PLAIN") {
                let given = command[10..].trim().to_string();
                let given = if given.is_empty() {
                    let _ = write.write_all(b"334 \r\n").await;
                    line.clear();
                    let _ = lines.read_line(&mut line).await;
                    line.trim().to_string()
                } else {
                    given
                };
                let decoded = decode(&given);
                let mut parts = decoded.split('\0').skip(1);
                (
                    parts.next().unwrap_or_default().to_string(),
                    parts.next().unwrap_or_default().to_string(),
                )
            } else {
                let _ = write.write_all(b"334 VXNlcm5hbWU6\r\n").await;
                line.clear();
                let _ = lines.read_line(&mut line).await;
                let name = decode(&line);
                let _ = write.write_all(b"334 UGFzc3dvcmQ6\r\n").await;
                line.clear();
                let _ = lines.read_line(&mut line).await;
                (name, decode(&line))
            };
            if (name.as_str(), password.as_str()) == (login.0.as_str(), login.1.as_str()) {
                user = Some(name);
                "235 2.7.0 Authentication successful".to_string()
            } else {
                "535 5.7.8 Authentication credentials invalid".to_string()
            }
        } else if upper.starts_with("MAIL FROM:") {
            current = Received {
                user: user.clone(),
                from: address(&command),
                ..Received::default()
            };
            "250 2.1.0 OK".to_string()
        } else if upper.starts_with("RCPT TO:") {
            current.recipients.push(address(&command));
            "250 2.1.5 OK".to_string()
        } else if upper == "DATA" {
            let _ = write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(
                    line.strip_prefix('.')
                        .filter(|_| line.starts_with(".."))
                        .unwrap_or(&line),
                );
            }
            current.data = data;
            received.lock().expect("lock").push(std::mem::take(&mut current));
            "250 2.0.0 OK: queued".to_string()
        } else if upper == "QUIT" {
            let _ = write.write_all(b"221 2.0.0 Bye\r\n").await;
            return;
        } else if upper == "RSET" || upper == "NOOP" {
            "250 2.0.0 OK".to_string()
        } else {
            "502 5.5.2 Command not recognized".to_string()
        };
        if write.write_all(format!("{answer}\r\n").as_bytes()).await.is_err() {
            return;
        }
    }
}

/// The address of `MAIL FROM:<a@b>` or `RCPT TO:<a@b>`.
fn address(command: &str) -> String {
    let start = command.find('<').map_or(0, |i| i + 1);
    let end = command[start..].find('>').map_or(command.len(), |i| start + i);
    command[start..end].to_string()
}
