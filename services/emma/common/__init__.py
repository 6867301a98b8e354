"""Emma's shared API types (emma.common.v1)."""
