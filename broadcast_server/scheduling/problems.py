"""A problem found in a schedule request or file, said in Vietnamese (console, CLI) and English (API, logs)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """`place` is where in the file ('slots[2].start'), empty for a request as a whole; both texts follow it."""

    place: str
    vi: str
    en: str

    def __str__(self) -> str:
        return f"{self.place}: {self.vi}" if self.place else self.vi

    @property
    def english(self) -> str:
        return f"{self.place}: {self.en}" if self.place else self.en
