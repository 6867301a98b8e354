"""The profile service: a customer data platform on Redis."""
