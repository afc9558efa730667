"""The accounts' world (users of every role, a real broker) for the API test of CAP alerts."""

from tests.accounts.conftest import app, broker, client, runtime, world  # noqa: F401
