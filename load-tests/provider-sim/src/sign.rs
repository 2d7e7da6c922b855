//! Webhook signatures as the providers compute them (CHANNELS.md §1 and §6.2).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;

/// Meta's signature header.
pub const META_SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// Twilio's signature header.
pub const TWILIO_SIGNATURE_HEADER: &str = "x-twilio-signature";

/// Meta's `X-Hub-Signature-256` value: `sha256=<lowercase hex HMAC-SHA256(app secret, body)>`.
pub fn meta_signature(app_secret: &[u8], body: &[u8]) -> String {
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(app_secret) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this branch is never taken.
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Twilio's `X-Twilio-Signature` value for a form POST to `url`: base64 HMAC-SHA1 under the
/// auth token of the URL followed by every `name + value`, sorted by name (then value).
pub fn twilio_signature(auth_token: &[u8], url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut signed = url.to_owned();
    for (name, value) in sorted {
        signed.push_str(name);
        signed.push_str(value);
    }
    let mut mac = match <Hmac<Sha1> as KeyInit>::new_from_slice(auth_token) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this branch is never taken.
        Err(_) => return String::new(),
    };
    mac.update(signed.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
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

    /// CHANNELS.md §0.1 V2b: the escaped and the raw UTF-8 text sign differently.
    #[test]
    fn meta_vector_v2b_escaped_and_raw_bodies() {
        assert_eq!(
            meta_signature(b"my_app_secret", br#"{"text":"\u00e4\u00f6\u00e5"}"#),
            "sha256=40a2372464abcac593143f74d555a83a49487161a1d2cfed901440188982234d"
        );
        assert_eq!(
            meta_signature(b"my_app_secret", r#"{"text":"äöå"}"#.as_bytes()),
            "sha256=5cfa0161b2efef34151567dec4654407199be2534e647c220f2809f55b0accd4"
        );
    }

    /// CHANNELS.md §0.1 V2: the exact 428-byte E1 body.
    #[test]
    fn meta_vector_v2_e1_body() {
        let e1 = r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234"}],"messages":[{"from":"16505551234","id":"wamid.TEST123","timestamp":"1749416383","type":"text","text":{"body":"Hi there"}}]},"field":"messages"}]}]}"#;
        assert_eq!(e1.len(), 428);
        assert_eq!(
            meta_signature(b"my_app_secret", e1.as_bytes()),
            "sha256=5728f1d12d6815799e52d75c6d704128177a2653870317578c743fbc7fd06ccb"
        );
    }

    /// CHANNELS.md §0.1 V4: the official twilio-python vector (params given unsorted).
    #[test]
    fn twilio_vector_v4_official_library_vector() {
        let params = pairs(&[
            ("To", "+18005551212"),
            ("From", "+14158675309"),
            ("Digits", "1234"),
            ("Caller", "+14158675309"),
            ("CallSid", "CA1234567890ABCDE"),
        ]);
        assert_eq!(
            twilio_signature(b"12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
    }

    /// CHANNELS.md §0.1 V5: the E9 SMS form body.
    #[test]
    fn twilio_vector_v5_e9_sms_body() {
        let body = "ToCountry=US&ToState=CA&SmsMessageSid=SM11111111111111111111111111111111&NumMedia=0&ToCity=SAN+FRANCISCO&FromZip=94105&SmsSid=SM11111111111111111111111111111111&FromState=CA&SmsStatus=received&FromCity=SAN+FRANCISCO&Body=Hello+from+SMS&FromCountry=US&To=%2B14155550100&MessagingServiceSid=MG22222222222222222222222222222222&ToZip=94105&NumSegments=1&MessageSid=SM11111111111111111111111111111111&AccountSid=AC33333333333333333333333333333333&From=%2B14155550123&ApiVersion=2010-04-01";
        let params: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        assert_eq!(
            twilio_signature(
                b"my_twilio_auth_token",
                "https://gw.example.com/ingress/twilio/sms",
                &params
            ),
            "90zvHFx2zlwK4kE7ZFY9v5VIMjQ="
        );
    }
}
