"""The one exception the SDK raises for a failed call, carrying the gRPC status."""

from __future__ import annotations

import grpc


class EmmaError(RuntimeError):
    """A call to Emma failed; `code` is the gRPC status code, `details` the server's message."""

    def __init__(self, method: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{method} failed: {code.name}: {details}")
        self.method = method
        self.code = code
        self.details = details

    @classmethod
    def from_rpc_error(cls, method: str, error: grpc.RpcError) -> EmmaError:
        # Sync errors are grpc.Call and aio errors are AioRpcError: both have code()/details().
        code_of = getattr(error, "code", None)
        details_of = getattr(error, "details", None)
        code = code_of() if callable(code_of) else grpc.StatusCode.UNKNOWN
        details = details_of() if callable(details_of) else str(error)
        return cls(method, code, details or "")
