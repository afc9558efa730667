"""The bulletin forms' "Giọng đọc" and "Tốc độ đọc": what is offered, and what a submitted form chose."""

from __future__ import annotations

from dataclasses import dataclass

from broadcast_server.console.access import FormProblem
from broadcast_server.domain.reading import READING_SPEEDS, rate_problem
from broadcast_server.services.bulletins import tts_voices

SPEED_WORDS_VI = {"slow": "đọc chậm", "normal": "đọc vừa", "fast": "đọc nhanh"}
SPEED_LABELS_VI = {
    "slow": "Chậm ({wpm} từ/phút): dễ nghe qua loa ngoài trời",
    "normal": "Vừa (tốc độ sẵn có của giọng đọc)",
    "fast": "Nhanh ({wpm} từ/phút)",
}


@dataclass(frozen=True)
class Reading:
    """A form's choice: the engine's voice id and the words a minute (None: the engine's own speed)."""

    voice: str
    rate_wpm: int | None


def speed_key(rate_wpm: int | None) -> str:
    """The form's value for a reading speed: a named one, or the number itself (set through the API)."""
    for key, wpm in READING_SPEEDS.items():
        if wpm == rate_wpm:
            return key
    return str(rate_wpm)


def stored_reading(voice: str | None, rate_wpm: int | None, default_voice: str) -> Reading:
    """How a bulletin is read: its own voice, or the server's default for one made before voices were kept."""
    return Reading(voice or default_voice, rate_wpm)


def _voice_options(chosen: Reading) -> list[tuple[str, str]]:
    _, voices = tts_voices()
    options = [(v, label[:1].upper() + label[1:]) for v, label in voices.items()]
    if chosen.voice not in voices:  # a voice this engine does not have (the engine was changed): keep it shown
        options.append((chosen.voice, chosen.voice))
    return options


def reading_choices(default_voice: str, chosen: Reading | None = None) -> dict[str, object]:
    """Template values: the voices and speeds to offer, and which are selected."""
    chosen = chosen or Reading(default_voice, None)
    speed_options = [(key, SPEED_LABELS_VI[key].format(wpm=wpm)) for key, wpm in READING_SPEEDS.items()]
    key = speed_key(chosen.rate_wpm)
    if key not in READING_SPEEDS:
        speed_options.append((key, f"{chosen.rate_wpm} từ/phút"))
    return {
        "voice_options": _voice_options(chosen),
        "speed_options": speed_options,
        "voice_value": chosen.voice,
        "speed_value": key,
    }


def reading_label(reading: Reading) -> str:
    """The reading in words, e.g. "Giọng nam miền Nam, đọc chậm"."""
    key = speed_key(reading.rate_wpm)
    voice = dict(_voice_options(reading))[reading.voice]
    return f"{voice}, {SPEED_WORDS_VI.get(key, f'đọc {reading.rate_wpm} từ/phút')}"


def chosen_reading(voice: str, speed: str, default_voice: str, kept_voice: str | None = None) -> Reading:
    """What the form chose; FormProblem (in Vietnamese) for a voice the engine lacks or an unknown speed.

    `kept_voice`, the bulletin's own, is accepted even if the engine no longer has it (it was changed since):
    a title can still be edited; new speech in that voice would fail and say so."""
    voice = voice.strip() or default_voice
    _, voices = tts_voices()
    if voices and voice not in voices and voice != kept_voice:
        raise FormProblem("Giọng đọc đã chọn không có trên máy chủ này. Hãy chọn giọng khác.")
    speed = speed.strip() or "normal"
    if speed in READING_SPEEDS:
        return Reading(voice, READING_SPEEDS[speed])
    if not speed.isdigit() or rate_problem(int(speed)) is not None:
        raise FormProblem("Tốc độ đọc không hợp lệ. Hãy chọn Chậm, Vừa hoặc Nhanh.")
    return Reading(voice, int(speed))
