use switchboard_domain::ErrorCode;

/// A request body whose provider signature has been checked. Only the channel verifiers in
/// this crate construct it, and the parsers accept nothing else, so unverified bytes can never
/// reach a parser.
#[derive(Debug, Clone, Copy)]
pub struct Verified<'a> {
    body: &'a [u8],
}

impl<'a> Verified<'a> {
    pub(crate) fn new(body: &'a [u8]) -> Self {
        Self { body }
    }

    /// The verified raw body.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
}

/// Why a webhook's signature was not accepted. Every variant answers 401 without detail to
/// the sender; the variant is for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The signature header is absent.
    #[error("missing signature header {header}")]
    Missing {
        /// The header that should carry it.
        header: &'static str,
    },
    /// The header appears more than once: which one counts would be ambiguous.
    #[error("signature header {header} appears more than once")]
    Ambiguous {
        /// The repeated header.
        header: &'static str,
    },
    /// The header does not have the provider's format.
    #[error("malformed signature header {header}")]
    Malformed {
        /// The malformed header.
        header: &'static str,
    },
    /// The signature does not match the body and the account's secret.
    #[error("signature does not match")]
    Mismatch,
}

impl VerifyError {
    /// Every verification failure is an authentication failure.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::Unauthenticated
    }

    /// A short, stable reason for metrics labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing { .. } => "missing_signature",
            Self::Ambiguous { .. } => "ambiguous_signature",
            Self::Malformed { .. } => "malformed_signature",
            Self::Mismatch => "bad_signature",
        }
    }
}

/// Returns the single value of `name`, refusing absent, repeated or non-text headers.
pub(crate) fn single_header<'h>(
    headers: &'h http::HeaderMap,
    name: &'static str,
) -> Result<&'h str, VerifyError> {
    let mut values = headers.get_all(name).iter();
    let value = values.next().ok_or(VerifyError::Missing { header: name })?;
    if values.next().is_some() {
        return Err(VerifyError::Ambiguous { header: name });
    }
    value
        .to_str()
        .map_err(|_| VerifyError::Malformed { header: name })
}
