"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


class NaiveDatetimeError(ValueError):
    """A datetime without a time zone reached the database: its instant is ambiguous."""


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so the value is stored as naive UTC and
    marked UTC again when read. Naive datetimes are refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise NaiveDatetimeError(f"naive datetime {value!r}: use an aware one, e.g. datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect):
        """On SQLite, one step from an aware datetime to the stored text instead of two.

        The text is what SQLAlchemy's SQLite DATETIME writes ("2026-11-22 07:42:50.123456", naive UTC);
        ingest binds several datetimes per heartbeat, and the two generic steps were a fifth of its time.
        """
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if not isinstance(value, datetime):
                raise TypeError(f"expected a datetime, got {type(value).__name__}")
            if value.tzinfo is None or value.utcoffset() is None:
                raise NaiveDatetimeError(f"naive datetime {value!r}: use an aware one, e.g. datetime.now(UTC)")
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")

        return process

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """The current instant, aware, in UTC: the default for every timestamp column."""
    return datetime.now(UTC)
