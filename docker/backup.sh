#!/bin/sh
# Back up bcast: a pg_dump of the database (custom format, for pg_restore) and a copy of the audio folder.
# In docker/compose.yaml it runs in the `backup` service every BACKUP_INTERVAL_S seconds; `--once` runs
# one backup and exits (cron on a host, or a test). libpq reads PGHOST, PGUSER, PGDATABASE, PGPASSWORD.
set -eu
BACKUP_DIR="${BACKUP_DIR:-/backups}"
AUDIO_DIR="${AUDIO_DIR:-/data/audio}"
BACKUP_INTERVAL_S="${BACKUP_INTERVAL_S:-86400}"
BACKUP_KEEP_DAYS="${BACKUP_KEEP_DAYS:-14}"

backup_once() {
    stamp="$(date -u +%Y%m%dT%H%M%SZ)"
    mkdir -p "$BACKUP_DIR/db" "$BACKUP_DIR/audio"
    # Written under a temporary name, renamed when complete: a dump that is there is a whole dump.
    pg_dump --format=custom --file="$BACKUP_DIR/db/.bcast-$stamp.dump.partial"
    mv "$BACKUP_DIR/db/.bcast-$stamp.dump.partial" "$BACKUP_DIR/db/bcast-$stamp.dump"
    # Audio files are written once under their content hash: copying the new ones is enough, and a file
    # the server deleted stays in the backup.
    if [ -d "$AUDIO_DIR" ]; then
        cp -R -p -n "$AUDIO_DIR/." "$BACKUP_DIR/audio/"
    fi
    find "$BACKUP_DIR/db" -name 'bcast-*.dump' -mtime +"$BACKUP_KEEP_DAYS" -delete
    date -u +%Y-%m-%dT%H:%M:%SZ > "$BACKUP_DIR/last-success"
    echo "backup: bcast-$stamp.dump and the audio folder saved in $BACKUP_DIR"
}

if [ "${1:-}" = "--once" ]; then
    backup_once
    exit 0
fi
trap 'exit 0' TERM INT
while true; do
    backup_once || echo "backup: FAILED, trying again in $BACKUP_INTERVAL_S s" >&2
    sleep "$BACKUP_INTERVAL_S" &
    wait $!
done
