"""The `bcast` command: one entry point for server, agent, simulator, demo and tools."""
