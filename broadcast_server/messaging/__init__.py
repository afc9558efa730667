"""The server's side of the MQTT contract: publish commands, receive status, heartbeats and reports."""
