"""Pure domain logic: no I/O, no database, no framework imports, so it is cheap to test exhaustively."""
