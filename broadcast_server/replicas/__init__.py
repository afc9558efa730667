"""Several server replicas on one database and one broker: who leads, and what only the leader does."""
