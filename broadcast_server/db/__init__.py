"""Database adapter: engine, sessions, column types and migrations."""
