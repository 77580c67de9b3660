//! TLS to PostgreSQL by `sslMode`, as libpq reads it: `PREFER` and `REQUIRE` encrypt
//! without checking the server's certificate (unless `sslRootCert` is given, as libpq
//! then checks it), `VERIFY_CA` checks the certificate chains to a trusted root,
//! `VERIFY_FULL` also checks the host name. Roots: Mozilla's, and `sslRootCert`.

use std::sync::Arc;

use kite_core::plugin::jdbc::{SqlError, SslMode};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The connector for `mode`, `None` without TLS.
pub fn connector(mode: SslMode, root_cert: Option<&str>) -> Result<Option<MakeRustlsConnect>, SqlError> {
    if mode == SslMode::Disable {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = root_cert {
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SqlError::Task(format!("Invalid sslRootCert: {e}")))?;
        if certs.is_empty() {
            return Err(SqlError::Task(
                "Invalid sslRootCert: no PEM certificate in it".into(),
            ));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| SqlError::Task(format!("Invalid sslRootCert: {e}")))?;
        }
    }
    let verify_chain = matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) || root_cert.is_some();
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| SqlError::Task(format!("TLS setup failed: {e}")))?;
    let verifier = Arc::new(Verifier {
        webpki,
        provider: provider.clone(),
        verify_chain,
        verify_name: mode == SslMode::VerifyFull,
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SqlError::Task(format!("TLS setup failed: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Some(MakeRustlsConnect::new(config)))
}

/// Checks as much of the server's certificate as the mode asks; signatures of the
/// handshake are always checked.
#[derive(Debug)]
struct Verifier {
    webpki: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
    verify_chain: bool,
    verify_name: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !self.verify_chain {
            return Ok(ServerCertVerified::assertion());
        }
        match self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext {
                ..
            })) if !self.verify_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
