"""Accounts, roles, sessions and API tokens: who may do what, where in the tree."""
