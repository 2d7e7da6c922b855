use std::fmt;

/// The error classes every Switchboard service maps its errors onto.
///
/// `switchboard-server` maps each code exhaustively to an HTTP status and a gRPC code, so a
/// service only decides *what kind* of failure it has, never how the transport spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed or a value is out of range.
    InvalidArgument,
    /// The addressed entity does not exist (or is not visible to the caller).
    NotFound,
    /// An entity with the same identity exists already.
    AlreadyExists,
    /// The system is not in a state that allows the operation.
    FailedPrecondition,
    /// The caller did not prove who it is.
    Unauthenticated,
    /// The caller is known but may not do this.
    PermissionDenied,
    /// The caller sends too much; retry later.
    RateLimited,
    /// A dependency is down; retrying later may succeed.
    Unavailable,
    /// The operation did not finish in time.
    Timeout,
    /// The request body is larger than the endpoint accepts.
    PayloadTooLarge,
    /// The caller did not send its whole request in time.
    RequestTimeout,
    /// The endpoint exists but does not answer this method.
    MethodNotAllowed,
    /// The content's type is refused (an executable upload).
    UnsupportedMediaType,
    /// A bug or an unexpected state; details are logged, not returned.
    Internal,
}

impl ErrorCode {
    /// Returns the stable snake_case name used in logs, metrics and error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArgument => "invalid_argument",
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::FailedPrecondition => "failed_precondition",
            Self::Unauthenticated => "unauthenticated",
            Self::PermissionDenied => "permission_denied",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RequestTimeout => "request_timeout",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Internal => "internal",
        }
    }

    /// Returns true when the caller's message may be shown as is (client errors).
    ///
    /// Server-side failures (`Unavailable`, `Timeout`, `Internal`) carry internals, so the edge
    /// replaces their message with a generic one and logs the details instead.
    pub fn is_client_error(self) -> bool {
        match self {
            Self::InvalidArgument
            | Self::NotFound
            | Self::AlreadyExists
            | Self::FailedPrecondition
            | Self::Unauthenticated
            | Self::PermissionDenied
            | Self::RateLimited
            | Self::PayloadTooLarge
            | Self::RequestTimeout
            | Self::MethodNotAllowed
            | Self::UnsupportedMediaType => true,
            Self::Unavailable | Self::Timeout | Self::Internal => false,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
