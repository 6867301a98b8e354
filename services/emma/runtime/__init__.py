"""The runtime every Emma service shares: config, server, tracing, logs, privacy."""
