#!/bin/sh
# Run mosquitto and reload it (SIGHUP) when the server rewrites the password or ACL file.
# Mosquitto 2 does not watch its files, and the server runs in another container, so it cannot signal
# the broker itself: this loop compares the files' checksum every POLL_S seconds. Paths can be changed
# for tests.
set -eu
CONF="${MOSQUITTO_CONF:-/mosquitto/config/mosquitto.conf}"
AUTH_DIR="${MOSQUITTO_AUTH_DIR:-/mosquitto/auth}"
POLL_S="${POLL_S:-5}"

for name in passwd acl; do
    if [ ! -s "$AUTH_DIR/$name" ]; then
        echo "mosquitto-run: $AUTH_DIR/$name is missing or empty: run bcast broker write-files first" >&2
        exit 1
    fi
done

checksum() { cat "$AUTH_DIR/passwd" "$AUTH_DIR/acl" 2>/dev/null | cksum; }

seen="$(checksum)"
mosquitto -c "$CONF" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit 0' TERM INT

while kill -0 "$pid" 2>/dev/null; do
    sleep "$POLL_S" &
    wait $! || true
    now="$(checksum)"
    if [ "$now" != "$seen" ]; then
        seen="$now"
        kill -HUP "$pid"
        echo "mosquitto-run: password or ACL file changed, broker reloaded"
    fi
done
wait "$pid"
