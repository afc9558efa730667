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


# Live relays go out as broadcasts ("Phát ngay"); the schedule window sent to clusters carries files only.
RELAY_NOT_SCHEDULED = (
    "bản tin tiếp sóng chưa xếp được vào lịch phát: hãy dùng “Phát ngay” lúc cần tiếp sóng",
    "a live relay bulletin cannot be scheduled yet: send it as a broadcast when the relay should start",
)
