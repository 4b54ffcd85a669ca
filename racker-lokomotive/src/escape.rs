//! Escaping and validation for the target languages.
//!
//! * HCL (`.lokocfg`, `.tf`, `.tfvars`): values become complete string
//!   literals; `"`, `\`, control characters and the template introducers
//!   `${` / `%{` are escaped, so a value can never end the string or start
//!   an interpolation.
//! * YAML / systemd units / `/etc/hosts`: values are written bare (inside
//!   block scalars and unit files there is no quoting that would survive
//!   every consumer), so they must be *tokens*: only characters that carry
//!   no meaning in any of those languages. Anything else is refused.
//! * JSON (Ignition) is produced by `serde_json` from typed structs.

use std::fmt::Write as _;

/// An HCL quoted string literal (with the quotes) holding exactly `value`.
pub fn hcl_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                // `$${` and `%%{` are the literal forms of `${` and `%{`.
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => {
                // Other control characters: unicode escapes.
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// True when `value` may be written bare into YAML block scalars, systemd
/// unit files, shell command lines and `/etc/hosts`: non-empty ASCII
/// letters, digits and `. : / _ - + , = @`, not starting with a character
/// YAML treats specially.
pub fn is_token(value: &str) -> bool {
    !value.is_empty()
        && value.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'.' | b':' | b'/' | b'_' | b'-' | b'+' | b',' | b'=' | b'@'
                )
        })
        && !value.starts_with(['-', ':', ',', '@'])
}

/// A Kubernetes label value: at most 63 characters, alphanumerics with
/// `-`, `_`, `.` inside, starting and ending alphanumeric (or empty).
pub(crate) fn is_label_value(value: &str) -> bool {
    if value.is_empty() {
        return true;
    }
    value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A DNS label (`allow_dots == false`) or name: lower-case letters, digits
/// and `-`, labels of 1 to 63 characters not starting or ending with `-`.
pub(crate) fn is_dns_name(value: &str, allow_dots: bool) -> bool {
    if value.is_empty() || value.len() > 253 || (!allow_dots && value.contains('.')) {
        return false;
    }
    value.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    })
}

/// An RFC 2397 `data:` URL carrying `bytes` (percent-encoded, no media
/// type), as Ignition's `contents.source` expects.
pub fn data_url(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(6 + bytes.len() * 2);
    out.push_str("data:,");
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        }
    }
    out
}

/// Decode a `data:,` URL produced by [`data_url`] (or any percent-encoded
/// one without `;base64`). `None` when it is not such a URL.
pub fn decode_data_url(url: &str) -> Option<Vec<u8>> {
    let rest = url.strip_prefix("data:")?;
    let (meta, payload) = rest.split_once(',')?;
    if meta.ends_with(";base64") {
        return None;
    }
    let bytes = payload.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = payload.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hcl_escapes_quotes_newlines_and_templates() {
        assert_eq!(hcl_string("plain"), "\"plain\"");
        assert_eq!(hcl_string("a\"b"), "\"a\\\"b\"");
        assert_eq!(hcl_string("x${var.y}"), "\"x$${var.y}\"");
        assert_eq!(hcl_string("%{ if }"), "\"%%{ if }\"");
        assert_eq!(hcl_string("$mac $$"), "\"$mac $$\"");
        assert_eq!(hcl_string("a\nb\\"), "\"a\\nb\\\\\"");
        assert_eq!(hcl_string("\u{7}"), "\"\\u0007\"");
    }

    #[test]
    fn tokens_and_labels() {
        assert!(is_token("172.24.213.2/24"));
        assert!(is_token("00:11:22:33:44:10"));
        assert!(is_token("console=ttyS1,57600n8"));
        for bad in [
            "", "a b", "a\nb", "a\"b", "${x}", "a#b", "-x", "it's", "a|b",
        ] {
            assert!(!is_token(bad), "{bad:?}");
        }
        assert!(is_label_value("red"));
        assert!(is_label_value(""));
        assert!(is_label_value("Dell_R640.v2"));
        assert!(!is_label_value("Dell R640"));
        assert!(!is_label_value("-x"));
        assert!(!is_label_value(&"a".repeat(64)));
        assert!(is_dns_name("k8s.localdomain", true));
        assert!(!is_dns_name("k8s.localdomain", false));
        assert!(!is_dns_name("Upper", false));
        assert!(!is_dns_name("a..b", true));
    }

    #[test]
    fn data_url_encodes_everything_special() {
        assert_eq!(data_url(b"a b\n"), "data:,a%20b%0A");
        assert_eq!(decode_data_url("data:,a%20b%0A").unwrap(), b"a b\n");
        assert!(decode_data_url("data:;base64,AA==").is_none());
        assert!(decode_data_url("http://x").is_none());
    }

    proptest! {
        #[test]
        fn data_url_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(decode_data_url(&data_url(&bytes)).unwrap(), bytes);
        }

        #[test]
        fn hcl_literal_never_ends_early_or_interpolates(s in ".{0,40}") {
            let lit = hcl_string(&s);
            // Walk the literal: the only unescaped quote is the last char and
            // every `${`/`%{` is doubled.
            let inner = &lit[1..lit.len() - 1];
            let b = inner.as_bytes();
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b'\\' => i += 2,
                    b'"' | b'\n' | b'\r' => prop_assert!(false, "raw {:?} in {lit}", b[i] as char),
                    b'$' | b'%' if b.get(i + 1) == Some(&b[i]) && b.get(i + 2) == Some(&b'{') => i += 3,
                    b'$' | b'%' => { prop_assert!(b.get(i + 1) != Some(&b'{'), "{lit}"); i += 1 }
                    _ => i += 1,
                }
            }
        }
    }
}
