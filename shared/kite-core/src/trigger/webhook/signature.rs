//! The `signature` block of a Webhook trigger (a Kite extension): HMAC verification of
//! the raw request bytes, as SaaS providers sign their deliveries, before anything is
//! parsed or stored; which delivery a request is (so a retry opens no second execution);
//! and the URL handshakes some providers send before their first delivery.
//!
//! ```yaml
//! signature:
//!   preset: GITHUB            # GITHUB, STRIPE, SLACK, SHOPIFY, MICROSOFT_GRAPH or GENERIC
//!   secret: "{{ secret('GITHUB_WEBHOOK_SECRET') }}"
//! ```
//!
//! `GENERIC` reads `algorithm` (SHA1, SHA256, SHA512), `header`, `prefix`, `encoding`
//! (HEX, BASE64) and, to sign `timestamp + separator + body`, `timestampHeader` and
//! `separator`; `tolerance` (an ISO duration, default PT5M) bounds the timestamp's age.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value;

pub use crate::flow::webhook_signature::{
    Algorithm, Encoding, Preset, SignatureError, SignatureSpec, SignatureSpecError,
};

impl SignatureSpec {
    /// Checks a request signed with `secret` (rendered) at `now`.
    pub fn verify(
        &self,
        secret: &str,
        headers: &Value,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), SignatureError> {
        match self.preset {
            Preset::MicrosoftGraph => return client_state_matches(secret, body),
            Preset::Stripe => return self.verify_stripe(secret, headers, body, now),
            _ => {}
        }
        let received = header(headers, &self.header)
            .ok_or_else(|| SignatureError::MissingHeader(self.header.clone()))?;
        let timestamp = match &self.timestamp_header {
            Some(name) => {
                let raw = header(headers, name).ok_or_else(|| SignatureError::MissingHeader(name.clone()))?;
                self.check_timestamp(name, raw, now)?;
                Some(raw)
            }
            None => None,
        };
        let Some(received) = received.trim().strip_prefix(self.prefix.as_str()) else {
            return Err(SignatureError::Malformed {
                header: self.header.clone(),
                reason: format!("it does not start with `{}`", self.prefix),
            });
        };
        let mut parts: Vec<&[u8]> = Vec::with_capacity(4);
        if let Some(ts) = timestamp {
            // Slack signs `v0:{timestamp}:{body}`: its version leads.
            if self.preset == Preset::Slack {
                parts.extend([b"v0".as_slice(), b":"]);
            }
            parts.extend([ts.as_bytes(), self.separator.as_bytes()]);
        }
        parts.push(body);
        let expected = encode(self.encoding, &hmac(self.algorithm, secret.as_bytes(), &parts));
        if signatures_equal(self.encoding, &expected, received) {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    /// `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`, HMAC-SHA256 over
    /// `{t}.{body}`; any `v1` may match (Stripe sends several while a secret rolls).
    fn verify_stripe(
        &self,
        secret: &str,
        headers: &Value,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), SignatureError> {
        let raw = header(headers, &self.header)
            .ok_or_else(|| SignatureError::MissingHeader(self.header.clone()))?;
        let mut timestamp = None;
        let mut candidates = Vec::new();
        for item in raw.split(',') {
            match item.trim().split_once('=') {
                Some(("t", t)) => timestamp = Some(t),
                Some(("v1", s)) => candidates.push(s),
                _ => {}
            }
        }
        let malformed = |reason: &str| SignatureError::Malformed {
            header: self.header.clone(),
            reason: reason.into(),
        };
        let timestamp = timestamp.ok_or_else(|| malformed("no `t=` timestamp"))?;
        if candidates.is_empty() {
            return Err(malformed("no `v1=` signature"));
        }
        self.check_timestamp(&self.header, timestamp, now)?;
        let expected = encode(
            Encoding::Hex,
            &hmac(
                Algorithm::Sha256,
                secret.as_bytes(),
                &[timestamp.as_bytes(), b".", body],
            ),
        );
        // Every candidate is compared, so the time taken does not tell which one failed.
        let matched = candidates.iter().fold(false, |acc, c| {
            signatures_equal(Encoding::Hex, &expected, c) | acc
        });
        if matched {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    fn check_timestamp(&self, header: &str, raw: &str, now: DateTime<Utc>) -> Result<(), SignatureError> {
        let timestamp: i64 = raw.trim().parse().map_err(|_| SignatureError::Malformed {
            header: header.to_string(),
            reason: "the timestamp is not a number of seconds".into(),
        })?;
        if (now.timestamp() - timestamp).abs() > self.tolerance_seconds {
            return Err(SignatureError::StaleTimestamp {
                timestamp,
                tolerance_seconds: self.tolerance_seconds,
            });
        }
        Ok(())
    }

    /// The provider's own id of a delivery, which it keeps when it retries: GitHub's
    /// `X-GitHub-Delivery`, Shopify's `X-Shopify-Webhook-Id`, a Stripe event's `id`, a
    /// Slack event's `event_id`.
    pub fn delivery_id(&self, headers: &Value, body: Option<&Value>) -> Option<String> {
        let field = |k: &str| {
            body.and_then(|b| b.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        match self.preset {
            Preset::Github => header(headers, "x-github-delivery").map(str::to_string),
            Preset::Shopify => header(headers, "x-shopify-webhook-id").map(str::to_string),
            Preset::Stripe => field("id"),
            Preset::Slack => field("event_id"),
            Preset::MicrosoftGraph | Preset::Generic => None,
        }
        .filter(|id| !id.is_empty())
    }

    /// What a provider's URL handshake expects back, if the request is one: Slack's
    /// `url_verification` (after its signature was checked, Slack signs it) and
    /// Microsoft Graph's `validationToken` (unsigned, checked before anything else).
    pub fn handshake(&self, parameters: &[(String, String)], body: Option<&Value>) -> Option<String> {
        match self.preset {
            Preset::Slack => body
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("url_verification"))
                .and_then(|b| b.get("challenge"))
                .and_then(Value::as_str)
                .map(str::to_string),
            Preset::MicrosoftGraph => parameters
                .iter()
                .find(|(k, _)| k == "validationToken")
                .map(|(_, v)| v.clone()),
            _ => None,
        }
    }

    /// Whether the handshake is answered before the signature is checked.
    pub fn handshake_before_verification(&self) -> bool {
        self.preset == Preset::MicrosoftGraph
    }
}

/// The first value of a header in `trigger.headers` (lower-case name → list of values).
fn header<'h>(headers: &'h Value, name: &str) -> Option<&'h str> {
    headers.get(name)?.as_array()?.first()?.as_str()
}

/// Graph posts `{"value": [{…, "clientState": "…"}]}`; every notification must carry
/// the subscription's clientState.
fn client_state_matches(secret: &str, body: &[u8]) -> Result<(), SignatureError> {
    let parsed: Value = serde_json::from_slice(body).map_err(|_| SignatureError::ClientStateMismatch)?;
    let notifications = parsed
        .get("value")
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty())
        .ok_or(SignatureError::ClientStateMismatch)?;
    let all = notifications.iter().fold(true, |acc, n| {
        let state = n.get("clientState").and_then(Value::as_str).unwrap_or("");
        super::constant_time_eq(state, secret) & acc
    });
    if all {
        Ok(())
    } else {
        Err(SignatureError::ClientStateMismatch)
    }
}

pub(crate) fn hmac(algorithm: Algorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        // HMAC takes keys of any length, so this never fails; an empty MAC would only
        // ever fail to match.
        let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(key) else {
            return Vec::new();
        };
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }
    match algorithm {
        Algorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, parts),
        Algorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, parts),
        Algorithm::Sha512 => run::<Hmac<sha2::Sha512>>(key, parts),
    }
}

pub(crate) fn encode(encoding: Encoding, bytes: &[u8]) -> String {
    match encoding {
        Encoding::Hex => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(bytes),
    }
}

/// Hex is compared case-insensitively (providers differ); base64 exactly.
fn signatures_equal(encoding: Encoding, expected: &str, received: &str) -> bool {
    match encoding {
        Encoding::Hex => super::constant_time_eq(expected, &received.to_ascii_lowercase()),
        Encoding::Base64 => super::constant_time_eq(expected, received),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: Value) -> SignatureSpec {
        SignatureSpec::parse(&value).unwrap_or_else(|e| panic!("{e}"))
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap_or_default()
    }

    const SLACK_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";

    #[test]
    fn github_documented_test_vector() {
        let github = spec(json!({"preset": "GITHUB", "secret": "x"}));
        let secret = "It's a Secret to Everybody";
        let good = json!({"x-hub-signature-256": ["sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"]});
        assert_eq!(github.verify(secret, &good, b"Hello, World!", at(0)), Ok(()));
        assert_eq!(
            github.verify(secret, &good, b"Hello, World?", at(0)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            github.verify("wrong", &good, b"Hello, World!", at(0)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            github.verify(secret, &json!({}), b"Hello, World!", at(0)),
            Err(SignatureError::MissingHeader("x-hub-signature-256".into()))
        );
        let unprefixed = json!({"x-hub-signature-256": ["757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"]});
        assert!(matches!(
            github.verify(secret, &unprefixed, b"Hello, World!", at(0)),
            Err(SignatureError::Malformed { .. })
        ));
    }

    #[test]
    fn slack_documented_test_vector_and_its_timestamp_window() {
        let slack = spec(json!({"preset": "SLACK", "secret": "x"}));
        let secret = "8f742231b10e8888abcd99yyyzzz85a5";
        let headers = json!({
            "x-slack-request-timestamp": ["1531420618"],
            "x-slack-signature": ["v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"],
        });
        let body = SLACK_BODY.as_bytes();
        assert_eq!(slack.verify(secret, &headers, body, at(1531420618 + 299)), Ok(()));
        assert_eq!(
            slack.verify(secret, &headers, body, at(1531420618 + 301)),
            Err(SignatureError::StaleTimestamp {
                timestamp: 1531420618,
                tolerance_seconds: 300
            })
        );
        let mut tampered = SLACK_BODY.to_string();
        tampered.push('x');
        assert_eq!(
            slack.verify(secret, &headers, tampered.as_bytes(), at(1531420618)),
            Err(SignatureError::Mismatch)
        );
        let no_timestamp = json!({"x-slack-signature": headers["x-slack-signature"].clone()});
        assert_eq!(
            slack.verify(secret, &no_timestamp, body, at(1531420618)),
            Err(SignatureError::MissingHeader("x-slack-request-timestamp".into()))
        );
    }

    #[test]
    fn stripe_signed_as_documented() {
        // t=1700000000, HMAC-SHA256("whsec_test", "1700000000." + body), computed with openssl.
        let stripe = spec(json!({"preset": "STRIPE", "secret": "x"}));
        let body = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;
        let good = "001ce3ef73e456cedaab328328720d3ad59defb8bbd0f1518f46c04ad4ac0bb7";
        let headers = |v: String| json!({"stripe-signature": [v]});
        let signed = headers(format!("t=1700000000,v1={good},v0=ignored"));
        assert_eq!(stripe.verify("whsec_test", &signed, body, at(1700000100)), Ok(()));
        // A rolled secret: Stripe sends one v1 per secret; any may match.
        let rolled = headers(format!("t=1700000000,v1={},v1={good}", "0".repeat(64)));
        assert_eq!(stripe.verify("whsec_test", &rolled, body, at(1700000000)), Ok(()));
        assert_eq!(
            stripe.verify("whsec_test", &signed, body, at(1700000301)),
            Err(SignatureError::StaleTimestamp {
                timestamp: 1700000000,
                tolerance_seconds: 300
            })
        );
        assert_eq!(
            stripe.verify("other", &signed, body, at(1700000000)),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            stripe.verify("whsec_test", &headers(format!("v1={good}")), body, at(1700000000)),
            Err(SignatureError::Malformed { .. })
        ));
        let longer = spec(json!({"preset": "STRIPE", "secret": "x", "tolerance": "PT10M"}));
        assert_eq!(longer.verify("whsec_test", &signed, body, at(1700000301)), Ok(()));
        assert_eq!(
            stripe.delivery_id(&json!({}), Some(&json!({"id": "evt_1"}))),
            Some("evt_1".into())
        );
    }

    #[test]
    fn shopify_base64_signed_as_documented() {
        // base64(HMAC-SHA256("shpss_test", body)), computed with openssl.
        let shopify = spec(json!({"preset": "SHOPIFY", "secret": "x"}));
        let body = br#"{"id":820982911946154500}"#;
        let headers = json!({"x-shopify-hmac-sha256": ["vRSdXjXJV7B05JijVC88t1r8qnGWjEthBj2mCZ02BfM="], "x-shopify-webhook-id": ["b54557e4"]});
        assert_eq!(shopify.verify("shpss_test", &headers, body, at(0)), Ok(()));
        assert_eq!(
            shopify.verify("shpss_test", &headers, b"{}", at(0)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(shopify.delivery_id(&headers, None), Some("b54557e4".into()));
    }

    #[test]
    fn generic_algorithms_encodings_and_signed_timestamps() {
        let sha1 = spec(json!({"secret": "x", "algorithm": "SHA1", "header": "X-Sig", "prefix": "sha1="}));
        let headers = json!({"x-sig": ["sha1=26131D5E8AE38DB0BE7252D237DD198C53876DBD"]});
        assert_eq!(sha1.verify("generic", &headers, b"hello", at(0)), Ok(()));
        let sha512 = spec(json!({
            "preset": "GENERIC", "secret": "x", "algorithm": "SHA512", "encoding": "BASE64",
            "header": "X-Sig", "timestampHeader": "X-Ts", "separator": ":", "tolerance": "PT1M",
        }));
        let headers = json!({
            "x-sig": ["zIUVylve9udylalaFIv+lpjMcdhm6StUJCQoiHKx6gOnsb1DjNrHVELNQAPMqKU0V+z3u1kvYAld4YtQ4L7gvg=="],
            "x-ts": ["1700000000"],
        });
        assert_eq!(
            sha512.verify("generic", &headers, b"hello", at(1700000060)),
            Ok(())
        );
        assert!(matches!(
            sha512.verify("generic", &headers, b"hello", at(1700000061)),
            Err(SignatureError::StaleTimestamp { .. })
        ));
    }

    #[test]
    fn handshakes_and_delivery_ids() {
        let slack = spec(json!({"preset": "SLACK", "secret": "x"}));
        let challenge = json!({"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"});
        assert_eq!(
            slack.handshake(&[], Some(&challenge)).as_deref(),
            Some("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
        );
        assert!(!slack.handshake_before_verification());
        assert_eq!(
            slack.handshake(&[], Some(&json!({"type": "event_callback"}))),
            None
        );
        assert_eq!(
            slack.delivery_id(&json!({}), Some(&json!({"event_id": "Ev1"}))),
            Some("Ev1".into())
        );
        let graph = spec(json!({"preset": "MICROSOFT_GRAPH", "secret": "state"}));
        assert!(graph.handshake_before_verification());
        assert_eq!(
            graph.handshake(&[("validationToken".into(), "Validation: Token".into())], None),
            Some("Validation: Token".into())
        );
        let body = br#"{"value":[{"clientState":"state","resource":"users"}]}"#;
        assert_eq!(graph.verify("state", &json!({}), body, at(0)), Ok(()));
        assert_eq!(
            graph.verify("other", &json!({}), body, at(0)),
            Err(SignatureError::ClientStateMismatch)
        );
        let github = spec(json!({"preset": "GITHUB", "secret": "x"}));
        assert_eq!(
            github.delivery_id(&json!({"x-github-delivery": ["72d3162e"]}), None),
            Some("72d3162e".into())
        );
    }

    #[test]
    fn unusable_blocks_name_the_property() {
        let property = |v: Value| SignatureSpec::parse(&v).err().map(|e| e.property);
        assert_eq!(
            property(json!({"preset": "GITLAB", "secret": "x"})),
            Some("preset")
        );
        assert_eq!(property(json!({"preset": "GITHUB"})), Some("secret"));
        assert_eq!(property(json!({"secret": "x"})), Some("header"));
        assert_eq!(
            property(json!({"secret": "x", "header": "h", "algorithm": "MD5"})),
            Some("algorithm")
        );
        assert_eq!(
            property(json!({"secret": "x", "header": "h", "encoding": "B32"})),
            Some("encoding")
        );
        assert_eq!(
            property(json!({"preset": "GITHUB", "secret": "x", "header": "h"})),
            Some("preset")
        );
        assert_eq!(
            property(json!({"preset": "GITHUB", "secret": "x", "tolerance": "soon"})),
            Some("tolerance")
        );
        assert_eq!(
            property(json!({"secret": "x", "header": "h", "sneaky": 1})),
            Some("")
        );
    }
}
