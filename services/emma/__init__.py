"""Emma: a real-time decisioning mesh of gRPC services."""
