"""Use cases: each runs in one transaction over the domain and the database adapter."""
