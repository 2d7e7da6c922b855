use switchboard_domain::ErrorCode;

/// The HTTP status of an error code.
pub fn http_status(code: ErrorCode) -> http::StatusCode {
    match code {
        ErrorCode::InvalidArgument => http::StatusCode::BAD_REQUEST,
        ErrorCode::NotFound => http::StatusCode::NOT_FOUND,
        ErrorCode::AlreadyExists => http::StatusCode::CONFLICT,
        ErrorCode::FailedPrecondition => http::StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::Unauthenticated => http::StatusCode::UNAUTHORIZED,
        ErrorCode::PermissionDenied => http::StatusCode::FORBIDDEN,
        ErrorCode::RateLimited => http::StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Unavailable => http::StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Timeout => http::StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::PayloadTooLarge => http::StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::RequestTimeout => http::StatusCode::REQUEST_TIMEOUT,
        ErrorCode::MethodNotAllowed => http::StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::UnsupportedMediaType => http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::Internal => http::StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The gRPC code of an error code.
pub fn grpc_code(code: ErrorCode) -> tonic::Code {
    match code {
        ErrorCode::InvalidArgument => tonic::Code::InvalidArgument,
        ErrorCode::NotFound => tonic::Code::NotFound,
        ErrorCode::AlreadyExists => tonic::Code::AlreadyExists,
        ErrorCode::FailedPrecondition => tonic::Code::FailedPrecondition,
        ErrorCode::Unauthenticated => tonic::Code::Unauthenticated,
        ErrorCode::PermissionDenied => tonic::Code::PermissionDenied,
        ErrorCode::RateLimited => tonic::Code::ResourceExhausted,
        ErrorCode::Unavailable => tonic::Code::Unavailable,
        ErrorCode::Timeout => tonic::Code::DeadlineExceeded,
        ErrorCode::PayloadTooLarge => tonic::Code::ResourceExhausted,
        ErrorCode::RequestTimeout => tonic::Code::DeadlineExceeded,
        ErrorCode::MethodNotAllowed => tonic::Code::Unimplemented,
        ErrorCode::UnsupportedMediaType => tonic::Code::InvalidArgument,
        ErrorCode::Internal => tonic::Code::Internal,
    }
}

/// Turns a service error into a `tonic::Status`: client errors keep their message, server
/// errors are logged here (once, with the full cause chain) and answered generically.
pub fn status_from<E: std::error::Error>(code: ErrorCode, error: &E) -> tonic::Status {
    if code.is_client_error() {
        return tonic::Status::new(grpc_code(code), error.to_string());
    }
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    tracing::error!(error.code = code.as_str(), error.message = %chain, "request failed");
    let message = match code {
        ErrorCode::Unavailable => "a dependency is unavailable; retry later",
        ErrorCode::Timeout => "the operation timed out; retry later",
        _ => "internal error; the details are in the server log",
    };
    tonic::Status::new(grpc_code(code), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_never_leak_their_message() {
        let error = std::io::Error::other("password=hunter2 at 10.0.0.1");
        let status = status_from(ErrorCode::Internal, &error);
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(!status.message().contains("hunter2"));
        let status = status_from(
            ErrorCode::InvalidArgument,
            &std::io::Error::other("name is empty"),
        );
        assert_eq!(status.message(), "name is empty");
    }
}
