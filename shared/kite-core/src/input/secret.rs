//! SECRET inputs: validated, then encrypted with AES-GCM as Kestra stores
//! them (and decrypted for the tasks that use them).

use serde_json::Value;

use super::text::check_validator;
use super::{InputContext, InputDefinition, InputError, InputValue};

/// SECRET: text matched against `validator`, then encrypted with the context's key.
pub(super) fn secret(
    def: &InputDefinition,
    value: InputValue,
    shown: &str,
    ctx: &InputContext,
) -> Result<Value, InputError> {
    let id = def.id.as_str();
    let parse_err = InputError::unparsable_as(def, shown);
    let s = value.text();
    let not_configured =
        || parse_err("Unable to use a `SECRET` input/output as encryption is not configured");
    let (key, ids) = ctx.secret_key.zip(ctx.ids).ok_or_else(not_configured)?;
    check_validator(def, &s, shown)?;
    encrypt_secret(&s, key, ids.nonce())
        .map(Value::String)
        .map_err(|e| InputError {
            input_id: id.to_string(),
            message: e.to_string(),
        })
}

const NONCE_LEN: usize = 12;

/// A secret that cannot be encrypted or decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the encryption key is empty")]
    EmptyKey,
    /// AES refused the key.
    #[error("{0}")]
    InvalidKey(aes_gcm::aes::cipher::InvalidLength),
    /// AES-GCM could not seal the value.
    #[error("{0}")]
    Encrypt(aes_gcm::Error),
    /// The stored value is not base64.
    #[error("{0}")]
    NotBase64(base64::DecodeError),
    /// The stored value is shorter than its nonce.
    #[error("too short")]
    TooShort,
    /// The tag does not match: another key, or an altered value.
    #[error("wrong key or corrupted value")]
    WrongKeyOrCorrupted,
    /// The decrypted bytes are not UTF-8 text.
    #[error("{0}")]
    NotUtf8(std::string::FromUtf8Error),
}

/// AES-GCM with Kestra's layout: 12-byte IV, 128-bit tag, base64(IV ‖ ciphertext ‖ tag).
enum SecretCipher {
    Aes128(aes_gcm::Aes128Gcm),
    Aes192(aes_gcm::AesGcm<aes_gcm::aes::Aes192, aes_gcm::aead::consts::U12>),
    Aes256(aes_gcm::Aes256Gcm),
}

impl SecretCipher {
    /// A 16, 24 or 32-byte key is used as is (as Kestra's `SecretKeySpec` does with
    /// its decoded key); any other length is folded into an AES-256 key so that a
    /// configured passphrase of any length still works.
    fn new(key: &[u8]) -> Result<Self, SecretError> {
        use aes_gcm::KeyInit;
        let invalid = SecretError::InvalidKey;
        Ok(match key.len() {
            16 => SecretCipher::Aes128(aes_gcm::Aes128Gcm::new_from_slice(key).map_err(invalid)?),
            24 => SecretCipher::Aes192(aes_gcm::AesGcm::new_from_slice(key).map_err(invalid)?),
            32 => SecretCipher::Aes256(aes_gcm::Aes256Gcm::new_from_slice(key).map_err(invalid)?),
            0 => return Err(SecretError::EmptyKey),
            _ => {
                let mut folded = [0u8; 32];
                for (i, b) in key.iter().enumerate() {
                    folded[i % 32] ^= *b;
                }
                SecretCipher::Aes256(aes_gcm::Aes256Gcm::new_from_slice(&folded).map_err(invalid)?)
            }
        })
    }

    fn encrypt(&self, nonce: &[u8; NONCE_LEN], plain: &[u8]) -> Result<Vec<u8>, SecretError> {
        use aes_gcm::aead::Aead;
        let nonce = aes_gcm::Nonce::from_slice(nonce);
        match self {
            SecretCipher::Aes128(c) => c.encrypt(nonce, plain),
            SecretCipher::Aes192(c) => c.encrypt(nonce, plain),
            SecretCipher::Aes256(c) => c.encrypt(nonce, plain),
        }
        .map_err(SecretError::Encrypt)
    }

    fn decrypt(&self, nonce: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
        use aes_gcm::aead::Aead;
        let nonce = aes_gcm::Nonce::from_slice(nonce);
        match self {
            SecretCipher::Aes128(c) => c.decrypt(nonce, sealed),
            SecretCipher::Aes192(c) => c.decrypt(nonce, sealed),
            SecretCipher::Aes256(c) => c.decrypt(nonce, sealed),
        }
        .map_err(|_| SecretError::WrongKeyOrCorrupted)
    }
}

/// Why a configured secret key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the secret key must be 32 bytes, written in base64 (44 characters, as Kestra's \
     `kestra.encryption.secret-key`; e.g. `openssl rand -base64 32`) or as 32 characters \
     of text; this one is {0}"
)]
pub struct SecretKeyError(String);

/// Length of Kestra's key: AES-256.
const KEY_LEN: usize = 32;

/// The AES-256 key a configured secret key stands for: base64 of 32 bytes (Kestra's form),
/// or 32 bytes of text used as they are. The two never overlap: base64 of 32 bytes is
/// always 44 characters. Any other key is refused, so that a typo cannot quietly encrypt
/// under a key Kestra would not read.
pub fn parse_secret_key(text: &str) -> Result<Vec<u8>, SecretKeyError> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    use base64::Engine;
    // Java's decoder, which Kestra uses, takes the key with or without its padding.
    let encoded = text.trim();
    let decoded = STANDARD
        .decode(encoded)
        .or_else(|_| STANDARD_NO_PAD.decode(encoded));
    match decoded {
        Ok(bytes) if bytes.len() == KEY_LEN => Ok(bytes),
        _ if text.len() == KEY_LEN => Ok(text.as_bytes().to_vec()),
        Ok(bytes) => Err(SecretKeyError(format!("base64 of {} bytes", bytes.len()))),
        Err(_) => Err(SecretKeyError(format!("{} bytes of text", text.len()))),
    }
}

/// Encrypts a SECRET value with AES-GCM under a fresh `nonce` (from the host's
/// [`IdSource`](crate::id::IdSource)); the stored form is base64(nonce ‖ ciphertext).
pub fn encrypt_secret(plain: &str, key: &[u8], nonce: [u8; NONCE_LEN]) -> Result<String, SecretError> {
    use base64::Engine;
    let cipher = SecretCipher::new(key)?;
    let sealed = cipher.encrypt(&nonce, plain.as_bytes())?;
    let mut out = nonce.to_vec();
    out.extend(sealed);
    Ok(base64::engine::general_purpose::STANDARD.encode(out))
}

/// Decrypts a value written by [`encrypt_secret`] (or by Kestra with the same key).
pub fn decrypt_secret(value: &str, key: &[u8]) -> Result<String, InputError> {
    use base64::Engine;
    let fail = |e: SecretError| InputError {
        input_id: String::new(),
        message: format!("Unable to decrypt a secret: {e}"),
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|e| fail(SecretError::NotBase64(e)))?;
    if bytes.len() < NONCE_LEN {
        return Err(fail(SecretError::TooShort));
    }
    let cipher = SecretCipher::new(key).map_err(fail)?;
    let plain = cipher
        .decrypt(&bytes[..NONCE_LEN], &bytes[NONCE_LEN..])
        .map_err(fail)?;
    String::from_utf8(plain).map_err(|e| fail(SecretError::NotUtf8(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef";

    #[test]
    fn a_secret_key_is_kestras_base64_or_32_characters() {
        use base64::Engine;
        let bytes: Vec<u8> = (0u8..32).collect();
        let kestra = base64::engine::general_purpose::STANDARD.encode(&bytes);
        assert_eq!(kestra.len(), 44);
        assert_eq!(parse_secret_key(&kestra), Ok(bytes.clone()));
        assert_eq!(parse_secret_key(&format!("{kestra}\n")), Ok(bytes.clone()));
        assert_eq!(parse_secret_key(kestra.trim_end_matches('=')), Ok(bytes));
        let raw = "kite-runner-secret-key-for-tests";
        assert_eq!(parse_secret_key(raw), Ok(raw.as_bytes().to_vec()));
        // 32 characters that also read as base64 (of 24 bytes) stay a raw key.
        let both = "abcdefghijklmnopqrstuvwxyzABCDEF";
        assert_eq!(parse_secret_key(both), Ok(both.as_bytes().to_vec()));
        for (bad, why) in [
            ("0123456789abcdef", "base64 of 12 bytes"),
            ("short!", "6 bytes of text"),
            ("", "base64 of 0 bytes"),
        ] {
            let e = parse_secret_key(bad).unwrap_err().to_string();
            assert!(e.starts_with("the secret key must be 32 bytes"), "{e}");
            assert!(e.ends_with(&format!("this one is {why}")), "{e}");
        }
    }

    #[test]
    fn errors_keep_their_messages() {
        assert_eq!(
            encrypt_secret("x", b"", [0; 12]).unwrap_err().to_string(),
            "the encryption key is empty"
        );
        let sealed = encrypt_secret("x", KEY, [1; 12]).unwrap();
        let fail = |value: &str, key: &[u8]| decrypt_secret(value, key).unwrap_err().message;
        assert_eq!(
            fail(&sealed, b"fedcba9876543210"),
            "Unable to decrypt a secret: wrong key or corrupted value"
        );
        assert_eq!(fail("AAAA", KEY), "Unable to decrypt a secret: too short");
        assert_eq!(
            fail(&sealed, b""),
            "Unable to decrypt a secret: the encryption key is empty"
        );
        use base64::Engine;
        let not_base64 = base64::engine::general_purpose::STANDARD
            .decode("not base64!")
            .unwrap_err();
        assert_eq!(
            fail("not base64!", KEY),
            format!("Unable to decrypt a secret: {not_base64}")
        );
    }
}
