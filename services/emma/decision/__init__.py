"""The decision service: a contextual bandit over offer x channel."""
