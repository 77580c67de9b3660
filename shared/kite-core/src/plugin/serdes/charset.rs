//! `charset`: the Java charset names Kestra users write, and streaming conversion between
//! them and UTF-8 (chunks may split a character; the coder keeps the partial bytes).
//!
//! ISO-8859-1, US-ASCII and the UTF-16 family are Java's own (WHATWG, and so encoding_rs,
//! reads `ISO-8859-1` and `US-ASCII` as windows-1252 and writes no UTF-16); the other
//! encodings are encoding_rs's. As Java's readers and writers do, bytes that are not
//! valid in the charset read as U+FFFD and characters it cannot encode are written `?`.

use encoding_rs::{CoderResult, Decoder, Encoder, EncoderResult, Encoding};

/// A `charset` property, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    Utf8,
    /// ISO-8859-1: each byte is the code point U+0000..U+00FF.
    Latin1,
    /// US-ASCII: seven bits.
    Ascii,
    /// Java's `UTF-16`: read by its byte order mark (big-endian without one), written
    /// big-endian after a mark.
    Utf16,
    Utf16Be,
    Utf16Le,
    /// Any other encoding encoding_rs knows.
    Other(&'static Encoding),
}

impl Charset {
    /// The charset a Java name or alias stands for (case-insensitive), `None` if unknown.
    pub fn from_java_name(name: &str) -> Option<Charset> {
        let upper = name.trim().to_ascii_uppercase();
        let key = upper.replace('_', "-");
        Some(match key.as_str() {
            "UTF-8" | "UTF8" | "UNICODE-1-1-UTF-8" => Charset::Utf8,
            "ISO-8859-1" | "ISO8859-1" | "8859-1" | "ISO-8859-1:1987" | "ISO-IR-100" | "LATIN1" | "L1"
            | "IBM819" | "IBM-819" | "CP819" | "CSISOLATIN1" | "819" => Charset::Latin1,
            "US-ASCII" | "ASCII" | "ASCII7" | "646" | "ISO646-US" | "ISO-646.IRV:1983" | "ANSI-X3.4-1968"
            | "ANSI-X3.4-1986" | "IBM367" | "CP367" | "CSASCII" | "ISO-IR-6" | "US" | "DEFAULT" => {
                Charset::Ascii
            }
            "UTF-16" | "UTF16" | "UNICODE" => Charset::Utf16,
            "UTF-16BE" | "X-UTF-16BE" | "UNICODEBIGUNMARKED" | "ISO-10646-UCS-2" => Charset::Utf16Be,
            "UTF-16LE" | "X-UTF-16LE" | "UNICODELITTLEUNMARKED" => Charset::Utf16Le,
            _ => {
                // Java's `Cp1252`, `Cp866`… are windows-1252, IBM866…
                let windows = upper
                    .strip_prefix("CP")
                    .filter(|n| n.len() == 4 && n.starts_with("125"))
                    .map(|n| format!("windows-{n}"));
                let encoding = [windows.as_deref(), Some(upper.as_str()), Some(key.as_str())]
                    .into_iter()
                    .flatten()
                    .find_map(|label| Encoding::for_label(label.as_bytes()))?;
                // Labels that WHATWG maps to an encoding that is not the one named.
                if encoding == encoding_rs::REPLACEMENT
                    || encoding == encoding_rs::X_USER_DEFINED
                    || encoding == encoding_rs::UTF_16LE
                    || encoding == encoding_rs::UTF_16BE
                {
                    return None;
                }
                Charset::Other(encoding)
            }
        })
    }

    pub fn is_utf8(self) -> bool {
        matches!(self, Charset::Utf8) || self == Charset::Other(encoding_rs::UTF_8)
    }

    /// Reads the bytes of this charset as UTF-8 text.
    pub fn decoder(self) -> TextDecoder {
        TextDecoder(match self {
            Charset::Latin1 => DecodeWith::Bytes { limit: 0xFF },
            Charset::Ascii => DecodeWith::Bytes { limit: 0x7F },
            // The BOM, if any, decides (and is left out).
            Charset::Utf16 => DecodeWith::Rs(Box::new(encoding_rs::UTF_16BE.new_decoder())),
            Charset::Utf16Be => {
                DecodeWith::Rs(Box::new(encoding_rs::UTF_16BE.new_decoder_without_bom_handling()))
            }
            Charset::Utf16Le => {
                DecodeWith::Rs(Box::new(encoding_rs::UTF_16LE.new_decoder_without_bom_handling()))
            }
            Charset::Utf8 => DecodeWith::Rs(Box::new(encoding_rs::UTF_8.new_decoder_without_bom_handling())),
            Charset::Other(e) => DecodeWith::Rs(Box::new(e.new_decoder_without_bom_handling())),
        })
    }

    /// Writes UTF-8 text as bytes of this charset.
    pub fn encoder(self) -> TextEncoder {
        TextEncoder(match self {
            Charset::Latin1 => EncodeWith::Bytes { limit: 0xFF },
            Charset::Ascii => EncodeWith::Bytes { limit: 0x7F },
            Charset::Utf16 => EncodeWith::Utf16 {
                big_endian: true,
                mark: true,
            },
            Charset::Utf16Be => EncodeWith::Utf16 {
                big_endian: true,
                mark: false,
            },
            Charset::Utf16Le => EncodeWith::Utf16 {
                big_endian: false,
                mark: false,
            },
            Charset::Utf8 => EncodeWith::Utf8,
            Charset::Other(e) if e == encoding_rs::UTF_8 => EncodeWith::Utf8,
            Charset::Other(e) => EncodeWith::Rs(Box::new(e.new_encoder())),
        })
    }
}

/// Parses the `charset` property: UTF-8 when absent.
pub fn parse(charset: Option<&str>) -> Result<Charset, String> {
    match charset {
        None => Ok(Charset::Utf8),
        Some(name) => Charset::from_java_name(name).ok_or_else(|| format!("Unsupported charset '{name}'")),
    }
}

enum DecodeWith {
    /// Single-byte charsets whose bytes are the first code points; others read as U+FFFD.
    Bytes {
        limit: u8,
    },
    Rs(Box<Decoder>),
}

/// Decodes a stream chunk by chunk.
pub struct TextDecoder(DecodeWith);

impl TextDecoder {
    /// Appends the UTF-8 text of `input` to `out`; a character cut at the end of `input` is
    /// completed by the next call. `last`: the stream ends with `input`.
    pub fn push(&mut self, input: &[u8], last: bool, out: &mut Vec<u8>) {
        match &mut self.0 {
            DecodeWith::Bytes { limit } => {
                let mut buf = [0u8; 4];
                for &b in input {
                    if b <= *limit {
                        out.extend_from_slice(char::from(b).encode_utf8(&mut buf).as_bytes());
                    } else {
                        out.extend_from_slice(char::REPLACEMENT_CHARACTER.encode_utf8(&mut buf).as_bytes());
                    }
                }
            }
            DecodeWith::Rs(decoder) => {
                let mut input = input;
                loop {
                    let room = decoder
                        .max_utf8_buffer_length(input.len())
                        .unwrap_or(input.len() * 3 + 16)
                        .max(16);
                    let start = out.len();
                    out.resize(start + room, 0);
                    let (result, read, written, _) = decoder.decode_to_utf8(input, &mut out[start..], last);
                    out.truncate(start + written);
                    input = &input[read..];
                    if result == CoderResult::InputEmpty {
                        break;
                    }
                }
            }
        }
    }
}

enum EncodeWith {
    Utf8,
    Bytes { limit: u32 },
    Utf16 { big_endian: bool, mark: bool },
    Rs(Box<Encoder>),
}

/// Encodes a stream of text piece by piece.
pub struct TextEncoder(EncodeWith);

impl TextEncoder {
    /// Whether the bytes written are the text's own (UTF-8).
    pub fn is_identity(&self) -> bool {
        matches!(self.0, EncodeWith::Utf8)
    }

    /// Appends `text` in the charset to `out`; what the charset lacks is written `?`.
    /// `last`: the stream ends with `text` (stateful encodings close their state).
    pub fn push(&mut self, text: &str, last: bool, out: &mut Vec<u8>) {
        match &mut self.0 {
            EncodeWith::Utf8 => out.extend_from_slice(text.as_bytes()),
            EncodeWith::Bytes { limit } => out.extend(text.chars().map(|c| {
                let c = u32::from(c);
                if c <= *limit {
                    c as u8
                } else {
                    b'?'
                }
            })),
            EncodeWith::Utf16 { big_endian, mark } => {
                let units = std::mem::take(mark)
                    .then_some(0xFEFF)
                    .into_iter()
                    .chain(text.encode_utf16());
                for unit in units {
                    out.extend_from_slice(&if *big_endian {
                        unit.to_be_bytes()
                    } else {
                        unit.to_le_bytes()
                    });
                }
            }
            EncodeWith::Rs(encoder) => {
                let mut text = text;
                loop {
                    let room = encoder
                        .max_buffer_length_from_utf8_without_replacement(text.len())
                        .unwrap_or(text.len() * 4 + 16)
                        .max(16);
                    let start = out.len();
                    out.resize(start + room, 0);
                    let (result, read, written) =
                        encoder.encode_from_utf8_without_replacement(text, &mut out[start..], last);
                    out.truncate(start + written);
                    text = &text[read..];
                    match result {
                        EncoderResult::InputEmpty => break,
                        EncoderResult::Unmappable(_) => out.push(b'?'),
                        EncoderResult::OutputFull => {}
                    }
                }
            }
        }
    }
}
