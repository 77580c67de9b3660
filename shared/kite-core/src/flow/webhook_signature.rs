//! The `signature` block of a Webhook trigger (a Kite extension) as a flow declares
//! it: which provider signs the requests, how, and with which secret. What a request is
//! checked against lives with the webhook rules (`trigger::webhook`).

use serde_json::Value;

/// Who signs the requests, which fixes how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Github,
    Stripe,
    Slack,
    Shopify,
    /// Microsoft Graph change notifications: no HMAC; the secret is the subscription's
    /// `clientState`, which every notification of the body must carry.
    MicrosoftGraph,
    Generic,
}

impl Preset {
    pub(crate) const NAMES: &'static [(&'static str, Preset)] = &[
        ("GITHUB", Preset::Github),
        ("STRIPE", Preset::Stripe),
        ("SLACK", Preset::Slack),
        ("SHOPIFY", Preset::Shopify),
        ("MICROSOFT_GRAPH", Preset::MicrosoftGraph),
        ("GENERIC", Preset::Generic),
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Hex,
    Base64,
}

/// A `signature` block, read once per request (flows are small; parsing is cheaper than
/// a cache keyed by revision).
#[derive(Debug, Clone, PartialEq)]
pub struct SignatureSpec {
    pub preset: Preset,
    /// The secret as written: an expression, rendered per request with `secret()`.
    pub secret: String,
    pub algorithm: Algorithm,
    /// Lower-case, as `trigger.headers` holds names.
    pub header: String,
    pub prefix: String,
    pub encoding: Encoding,
    /// When set, the signed bytes are `timestamp + separator + body`.
    pub timestamp_header: Option<String>,
    pub separator: String,
    /// How old (or how far ahead) a signed timestamp may be, in seconds.
    pub tolerance_seconds: i64,
}

/// A `signature` block that cannot be used (a flow error at deploy time).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SignatureSpecError {
    /// The property at fault, relative to the block (`preset`, `header`…).
    pub property: &'static str,
    pub message: String,
}

/// Why a request is refused (401). The caller only learns that it is; the server logs
/// this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature secret is not available: {0}")]
    SecretUnavailable(String),
    #[error("header {0} is missing")]
    MissingHeader(String),
    #[error("header {header} is malformed: {reason}")]
    Malformed { header: String, reason: String },
    #[error("the timestamp {timestamp} is outside the {tolerance_seconds} s tolerance")]
    StaleTimestamp { timestamp: i64, tolerance_seconds: i64 },
    #[error("the signature does not match the body")]
    Mismatch,
    #[error("a notification's clientState does not match the secret")]
    ClientStateMismatch,
}

pub(crate) const DEFAULT_TOLERANCE_SECONDS: i64 = 300;

impl SignatureSpec {
    /// Reads a `signature` property.
    pub fn parse(value: &Value) -> Result<SignatureSpec, SignatureSpecError> {
        let err = |property, message: String| SignatureSpecError { property, message };
        let Value::Object(obj) = value else {
            return Err(err("", "`signature` must be an object".into()));
        };
        for k in obj.keys() {
            if !FIELDS.contains(&k.as_str()) {
                return Err(err(
                    "",
                    format!("Unknown property `{k}`; properties: {}", FIELDS.join(", ")),
                ));
            }
        }
        let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
        let preset_name = text("preset").unwrap_or_else(|| "GENERIC".into());
        let Some(preset) = Preset::NAMES
            .iter()
            .find(|(n, _)| *n == preset_name)
            .map(|(_, p)| *p)
        else {
            let names: Vec<_> = Preset::NAMES.iter().map(|(n, _)| *n).collect();
            return Err(err(
                "preset",
                format!("Unknown preset `{preset_name}`: use {}", names.join(", ")),
            ));
        };
        let secret = text("secret")
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| err("secret", "`secret` is required".into()))?;
        let tolerance_seconds = match obj.get("tolerance") {
            None => DEFAULT_TOLERANCE_SECONDS,
            Some(v) => v
                .as_str()
                .and_then(crate::input::parse_iso_duration)
                .map(|d| d.num_seconds())
                .filter(|s| *s > 0)
                .ok_or_else(|| {
                    err(
                        "tolerance",
                        "`tolerance` must be a positive ISO-8601 duration such as PT5M".into(),
                    )
                })?,
        };
        let fixed =
            |header: &str, prefix: &str, encoding, timestamp_header: Option<&str>, separator: &str| {
                SignatureSpec {
                    preset,
                    secret: secret.clone(),
                    algorithm: Algorithm::Sha256,
                    header: header.into(),
                    prefix: prefix.into(),
                    encoding,
                    timestamp_header: timestamp_header.map(str::to_string),
                    separator: separator.into(),
                    tolerance_seconds,
                }
            };
        // Presets fix how the provider signs; only `secret` and `tolerance` are theirs to set.
        if preset != Preset::Generic {
            if let Some(k) = obj
                .keys()
                .find(|k| !matches!(k.as_str(), "preset" | "secret" | "tolerance"))
            {
                return Err(err(
                    "preset",
                    format!("`{k}` is fixed by the {preset_name} preset: use preset GENERIC to set it"),
                ));
            }
        }
        Ok(match preset {
            Preset::Github => fixed("x-hub-signature-256", "sha256=", Encoding::Hex, None, ""),
            // `Stripe-Signature: t=…,v1=…`: parsed apart in `verify`.
            Preset::Stripe => fixed("stripe-signature", "", Encoding::Hex, None, "."),
            Preset::Slack => fixed(
                "x-slack-signature",
                "v0=",
                Encoding::Hex,
                Some("x-slack-request-timestamp"),
                ":",
            ),
            Preset::Shopify => fixed("x-shopify-hmac-sha256", "", Encoding::Base64, None, ""),
            Preset::MicrosoftGraph => fixed("", "", Encoding::Hex, None, ""),
            Preset::Generic => {
                let header = text("header").filter(|h| valid_header_name(h)).ok_or_else(|| {
                    err(
                        "header",
                        "`header` is required: the header that carries the signature".into(),
                    )
                })?;
                let algorithm = match text("algorithm").as_deref().unwrap_or("SHA256") {
                    "SHA1" => Algorithm::Sha1,
                    "SHA256" => Algorithm::Sha256,
                    "SHA512" => Algorithm::Sha512,
                    other => {
                        return Err(err(
                            "algorithm",
                            format!("Unknown algorithm `{other}`: use SHA1, SHA256 or SHA512"),
                        ))
                    }
                };
                let encoding = match text("encoding").as_deref().unwrap_or("HEX") {
                    "HEX" => Encoding::Hex,
                    "BASE64" => Encoding::Base64,
                    other => {
                        return Err(err(
                            "encoding",
                            format!("Unknown encoding `{other}`: use HEX or BASE64"),
                        ))
                    }
                };
                SignatureSpec {
                    preset,
                    secret,
                    algorithm,
                    header: header.to_ascii_lowercase(),
                    prefix: text("prefix").unwrap_or_default(),
                    encoding,
                    timestamp_header: text("timestampHeader").map(|h| h.to_ascii_lowercase()),
                    separator: text("separator").unwrap_or_else(|| ".".into()),
                    tolerance_seconds,
                }
            }
        })
    }
}

const FIELDS: &[&str] = &[
    "preset",
    "secret",
    "algorithm",
    "header",
    "prefix",
    "encoding",
    "timestampHeader",
    "separator",
    "tolerance",
];

fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
