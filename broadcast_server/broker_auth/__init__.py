"""Broker-side security: per-cluster MQTT accounts and ACLs, one-time enrolment, revocation (issue 8)."""
