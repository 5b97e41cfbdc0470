//! The one table from error kind to HTTP status and gRPC code; every crate's error enum maps to a kind.

/// What kind of failure an error is, independent of the crate that raised it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The client sent something malformed or over a limit that is not about size.
    BadInput,
    /// The request body is too large (after decompression).
    TooLarge,
    /// No credentials were given where they are required.
    Unauthorized,
    /// Credentials were given but do not allow this operation.
    Forbidden,
    /// The thing asked for does not exist.
    NotFound,
    /// The server is overloaded or storage pushes back; the client should retry later.
    Overloaded,
    /// A bug or an I/O failure on our side.
    Internal,
}

impl ErrorKind {
    /// The HTTP status code for this kind of error.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::BadInput => 400,
            ErrorKind::TooLarge => 413,
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Overloaded => 503,
            ErrorKind::Internal => 500,
        }
    }

    /// The gRPC status code for this kind of error (`google.rpc.Code`): INVALID_ARGUMENT, RESOURCE_EXHAUSTED,
    /// UNAUTHENTICATED, PERMISSION_DENIED, NOT_FOUND, UNAVAILABLE (retryable, as OTLP clients expect) and INTERNAL.
    pub fn grpc_code(self) -> i32 {
        match self {
            ErrorKind::BadInput => 3,
            ErrorKind::TooLarge => 8,
            ErrorKind::Unauthorized => 16,
            ErrorKind::Forbidden => 7,
            ErrorKind::NotFound => 5,
            ErrorKind::Overloaded => 14,
            ErrorKind::Internal => 13,
        }
    }

    /// Seconds a client should wait before retrying, for kinds that answer with `Retry-After`.
    pub fn retry_after_secs(self) -> Option<u32> {
        match self {
            ErrorKind::Overloaded => Some(1),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        let table = [
            (ErrorKind::BadInput, 400, 3),
            (ErrorKind::TooLarge, 413, 8),
            (ErrorKind::Unauthorized, 401, 16),
            (ErrorKind::Forbidden, 403, 7),
            (ErrorKind::NotFound, 404, 5),
            (ErrorKind::Overloaded, 503, 14),
            (ErrorKind::Internal, 500, 13),
        ];
        for (kind, status, grpc) in table {
            assert_eq!(kind.http_status(), status, "{kind:?}");
            assert_eq!(kind.grpc_code(), grpc, "{kind:?}");
        }
        assert_eq!(ErrorKind::Overloaded.retry_after_secs(), Some(1));
        assert_eq!(ErrorKind::BadInput.retry_after_secs(), None);
    }
}
