"""What every Emma service shares: the API types (emma.common.v1) and their domain twins."""
