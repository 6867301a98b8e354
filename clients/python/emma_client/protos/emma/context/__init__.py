"""Generated gRPC and protobuf code; regenerate with scripts/gen-protos."""
