"""Scheduling: programmes, recurring slots (RFC 5545 rules in local time), schedule files, agent windows."""
