//! `MailSend`'s email: the message built with its alternative bodies, embedded images
//! and attachments (read from the internal storage), sent over SMTP with lettre (TLS by
//! rustls). Every failure becomes the task run's message, naming the server.

use std::time::Duration;

use kite_core::plugin::mail::{MailCall, MailError, MailFile, TransportStrategy};
use kite_engine::ports::FileStorage;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, MultiPartBuilder, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::io::AsyncReadExt;

/// The largest file an email carries (most servers refuse far less).
const MAX_FILE: u64 = 25 * 1024 * 1024;

/// Builds and sends `call`'s email.
pub async fn send(call: &MailCall, files: &dyn FileStorage) -> Result<(), MailError> {
    let message = message(call, files).await?;
    let transport = transport(call)?;
    transport.send(message).await.map(|_| ()).map_err(|e| {
        MailError(format!(
            "Could not send the email through {}:{}: {e}",
            call.host, call.port
        ))
    })
}

fn transport(call: &MailCall) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let trusted = call
        .trusted_hosts
        .iter()
        .any(|h| h.eq_ignore_ascii_case(&call.host));
    let params = TlsParameters::builder(call.host.clone())
        .dangerous_accept_invalid_hostnames(!call.verify_server_identity)
        .dangerous_accept_invalid_certs(trusted)
        .build_rustls()
        .map_err(|e| MailError(format!("Could not set up TLS for {}: {e}", call.host)))?;
    let tls = match call.transport {
        TransportStrategy::Smtp => Tls::Opportunistic(params),
        TransportStrategy::Smtps => Tls::Wrapper(params),
        TransportStrategy::SmtpTls => Tls::Required(params),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(call.host.as_str())
        .port(call.port)
        .tls(tls)
        .timeout(Some(call.session_timeout.max(Duration::from_millis(1))));
    if let Some(username) = &call.username {
        let password = call.password.clone().unwrap_or_default();
        builder = builder.credentials(Credentials::new(username.clone(), password));
    }
    Ok(builder.build())
}

fn mailbox(address: &str) -> Result<Mailbox, MailError> {
    address
        .parse()
        .map_err(|e| MailError(format!("Invalid email address '{address}': {e}")))
}

async fn message(call: &MailCall, files: &dyn FileStorage) -> Result<Message, MailError> {
    let mut builder = Message::builder().from(mailbox(&call.from)?);
    for to in &call.to {
        builder = builder.to(mailbox(to)?);
    }
    for cc in &call.cc {
        builder = builder.cc(mailbox(cc)?);
    }
    if let Some(subject) = &call.subject {
        builder = builder.subject(subject);
    }
    let text = SinglePart::plain(call.text.clone());
    let mut body = match &call.html {
        Some(html) => Body::Multi(
            MultiPart::alternative()
                .singlepart(text)
                .singlepart(SinglePart::html(html.clone())),
        ),
        None => Body::Single(text),
    };
    if !call.embedded_images.is_empty() {
        let mut related = body.inside(MultiPart::related());
        for image in &call.embedded_images {
            let (bytes, kind) = file(image, files).await?;
            related = related.singlepart(Attachment::new_inline(image.name.clone()).body(bytes, kind));
        }
        body = Body::Multi(related);
    }
    if !call.attachments.is_empty() {
        let mut mixed = body.inside(MultiPart::mixed());
        for attachment in &call.attachments {
            let (bytes, kind) = file(attachment, files).await?;
            mixed = mixed.singlepart(Attachment::new(attachment.name.clone()).body(bytes, kind));
        }
        body = Body::Multi(mixed);
    }
    let built = match body {
        Body::Single(part) => builder.singlepart(part),
        Body::Multi(parts) => builder.multipart(parts),
    };
    built.map_err(|e| MailError(format!("Could not build the email: {e}")))
}

/// The message's body so far: its text alone, or parts.
enum Body {
    Single(SinglePart),
    Multi(MultiPart),
}

impl Body {
    /// The body as the first part of a new multipart of `kind`.
    fn inside(self, kind: MultiPartBuilder) -> MultiPart {
        match self {
            Body::Single(part) => kind.singlepart(part),
            Body::Multi(parts) => kind.multipart(parts),
        }
    }
}

/// A file's bytes and content type.
async fn file(file: &MailFile, files: &dyn FileStorage) -> Result<(Vec<u8>, ContentType), MailError> {
    let kind = ContentType::parse(&file.content_type).map_err(|e| {
        MailError(format!(
            "Invalid contentType '{}' of '{}': {e}",
            file.content_type, file.name
        ))
    })?;
    let unreadable = |e: &dyn std::fmt::Display| MailError(format!("Could not read '{}': {e}", file.uri));
    let stream = files.get(&file.uri).await.map_err(|e| unreadable(&e))?;
    let mut bytes = Vec::new();
    stream
        .take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| unreadable(&e))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(MailError(format!(
            "'{}' is larger than the {} MiB an email may carry",
            file.uri,
            MAX_FILE / (1024 * 1024)
        )));
    }
    Ok((bytes, kind))
}
