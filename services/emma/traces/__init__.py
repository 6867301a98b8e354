"""A small OTLP trace receiver keeping recent traces in memory, and a terminal waterfall."""
