use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::verify::single_header;
use crate::{Verified, VerifyError};

/// The header carrying `base64(HMAC-SHA1(auth token, url + sorted params))`.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// Computes Twilio's signature of a request to `url` with form `params`.
pub fn signature(auth_token: &[u8], url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // Names in byte order; a repeated name contributes each of its values, sorted.
    sorted.sort();
    let mut signed = url.to_owned();
    for (name, value) in sorted {
        signed.push_str(name);
        signed.push_str(value);
    }
    let mut mac = match <Hmac<Sha1> as KeyInit>::new_from_slice(auth_token) {
        Ok(mac) => mac,
        // HMAC accepts keys of any length; this branch cannot be taken.
        Err(_) => return String::new(),
    };
    mac.update(signed.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// `url` with and without the scheme's default port, since Twilio may sign either form.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return variants;
    };
    let default_port = match scheme {
        "https" => ":443",
        "http" => ":80",
        _ => return variants,
    };
    let (authority, path) = rest.find('/').map_or((rest, ""), |index| rest.split_at(index));
    if let Some(host) = authority.strip_suffix(default_port) {
        variants.push(format!("{scheme}://{host}{path}"));
    } else if !authority.contains(':') {
        variants.push(format!("{scheme}://{authority}{default_port}{path}"));
    }
    variants
}

/// Verifies a Twilio webhook. `public_url` is the URL Twilio requested (configured public
/// base URL + path + query, since Switchboard sits behind proxies). Form bodies are signed
/// with their sorted parameters; JSON bodies carry `bodySHA256` in the URL instead.
pub fn verify_signature<'a>(
    headers: &http::HeaderMap,
    public_url: &str,
    body: &'a [u8],
    auth_token: &[u8],
) -> Result<Verified<'a>, VerifyError> {
    let provided = single_header(headers, SIGNATURE_HEADER)?;
    let provided = STANDARD
        .decode(provided.trim())
        .map_err(|_| VerifyError::Malformed {
            header: SIGNATURE_HEADER,
        })?;
    let is_json = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    let params = if is_json {
        let query = public_url.split_once('?').map_or("", |(_, query)| query);
        let claimed = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("bodySHA256="))
            .ok_or(VerifyError::Mismatch)?;
        let actual = hex::encode(Sha256::digest(body));
        if !bool::from(actual.as_bytes().ct_eq(claimed.to_ascii_lowercase().as_bytes())) {
            return Err(VerifyError::Mismatch);
        }
        Vec::new()
    } else {
        super::parse_form(body).ok_or(VerifyError::Mismatch)?
    };
    for url in url_variants(public_url) {
        let expected = STANDARD
            .decode(signature(auth_token, &url, &params))
            .map_err(|_| VerifyError::Mismatch)?;
        if bool::from(expected.as_slice().ct_eq(provided.as_slice())) {
            return Ok(Verified::new(body));
        }
    }
    Err(VerifyError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn signed(signature: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, signature.parse().unwrap());
        headers
    }

    /// CHANNELS.md E9: the exact form body of vector V5.
    pub(crate) const E9: &str = "ToCountry=US&ToState=CA&SmsMessageSid=SM11111111111111111111111111111111&NumMedia=0&ToCity=SAN+FRANCISCO&FromZip=94105&SmsSid=SM11111111111111111111111111111111&FromState=CA&SmsStatus=received&FromCity=SAN+FRANCISCO&Body=Hello+from+SMS&FromCountry=US&To=%2B14155550100&MessagingServiceSid=MG22222222222222222222222222222222&ToZip=94105&NumSegments=1&MessageSid=SM11111111111111111111111111111111&AccountSid=AC33333333333333333333333333333333&From=%2B14155550123&ApiVersion=2010-04-01";

    #[test]
    fn vector_v4_official_library_vector() {
        let params = pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]);
        assert_eq!(
            signature(b"12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
    }

    #[test]
    fn vector_v5_the_e9_sms_body_verifies() {
        let url = "https://gw.example.com/ingress/twilio/sms";
        let headers = signed("90zvHFx2zlwK4kE7ZFY9v5VIMjQ=");
        assert!(verify_signature(&headers, url, E9.as_bytes(), b"my_twilio_auth_token").is_ok());
        // With an explicit default port, as some proxies report it.
        assert!(
            verify_signature(
                &headers,
                "https://gw.example.com:443/ingress/twilio/sms",
                E9.as_bytes(),
                b"my_twilio_auth_token"
            )
            .is_ok()
        );
        // Another tenant's token, another URL, a changed parameter.
        assert_eq!(
            verify_signature(&headers, url, E9.as_bytes(), b"other").unwrap_err(),
            VerifyError::Mismatch
        );
        assert_eq!(
            verify_signature(
                &headers,
                "https://gw.example.com/ingress/twilio/other",
                E9.as_bytes(),
                b"my_twilio_auth_token"
            )
            .unwrap_err(),
            VerifyError::Mismatch
        );
        let changed = E9.replace("Hello+from+SMS", "Hello+from+SMT");
        assert_eq!(
            verify_signature(&headers, url, changed.as_bytes(), b"my_twilio_auth_token").unwrap_err(),
            VerifyError::Mismatch
        );
    }

    #[test]
    fn vector_v6_json_bodies_are_signed_through_body_sha256() {
        let body = br#"{"property": "value", "boolean": true}"#;
        assert_eq!(
            hex::encode(Sha256::digest(body)),
            "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
        );
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        let mut headers = signed("a9nBmqA0ju/hNViExpshrM61xv4=");
        headers.insert(http::header::CONTENT_TYPE, "application/json".parse().unwrap());
        assert!(verify_signature(&headers, url, body, b"12345").is_ok());
        let tampered = br#"{"property": "value", "boolean": false}"#;
        assert_eq!(
            verify_signature(&headers, url, tampered, b"12345").unwrap_err(),
            VerifyError::Mismatch
        );
    }

    #[test]
    fn missing_duplicate_and_malformed_headers_are_refused() {
        let url = "https://gw.example.com/ingress/twilio/sms";
        assert!(matches!(
            verify_signature(&http::HeaderMap::new(), url, E9.as_bytes(), b"t"),
            Err(VerifyError::Missing { .. })
        ));
        assert!(matches!(
            verify_signature(&signed("not base64 !"), url, E9.as_bytes(), b"t"),
            Err(VerifyError::Malformed { .. })
        ));
        let mut duplicated = signed("90zvHFx2zlwK4kE7ZFY9v5VIMjQ=");
        duplicated.append(SIGNATURE_HEADER, "90zvHFx2zlwK4kE7ZFY9v5VIMjQ=".parse().unwrap());
        assert!(matches!(
            verify_signature(&duplicated, url, E9.as_bytes(), b"my_twilio_auth_token"),
            Err(VerifyError::Ambiguous { .. })
        ));
    }
}
