"""Schedule files: the YAML a district keeps in version control, parsed and checked without I/O.

A file names programmes (ordered items: text read by TTS, an audio file, an approved bulletin by its id, or
a live stream relayed for some minutes), optional named groups of targets, and slots (a programme, a first
date and local time, an optional RFC 5545 rule, a target).
Every problem is reported with its place in the file; a file with any problem is applied not at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any

import yaml

from broadcast_server.domain.reading import MAX_RATE_WPM, MIN_RATE_WPM, rate_problem
from broadcast_server.domain.relay import MAX_RELAY_MINUTES, MIN_RELAY_MINUTES, stream_url_refusal
from broadcast_server.scheduling.problems import Problem
from broadcast_server.scheduling.recurrence import InvalidRule, check_rule

SCHEDULE_FILE_VERSION = 1
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
VOICE_PATTERN = re.compile(r"^[a-z0-9-]{1,40}$")  # as the API's `voice`
# A slot id goes into every airing's id ('<slot id>@<UTC start>'), which the contract caps at 59 characters.
SLOT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
TIME_PATTERN = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
PRIORITIES = ("normal", "priority")
LAYERS = ("background", "insert")
ON_INTERRUPT = ("resume", "restart", "drop")
DEFAULT_RELAY_TITLE = "Tiếp sóng"


class ScheduleFileError(ValueError):
    """A schedule file that cannot be applied: `problems` as 'place: message' in Vietnamese (CLI, console),
    `problems_en` the same in English (API, logs)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.found = problems
        self.problems = [str(p) for p in problems]
        self.problems_en = [p.english for p in problems]
        super().__init__("\n".join(self.problems_en))  # logs and tracebacks in English


@dataclass(frozen=True)
class ItemSpec:
    """One item: text read by TTS, an audio file beside the schedule file, an approved bulletin by id, or a live
    stream (`stream`, an http(s) address) relayed for `minutes`."""

    title: str
    text: str | None = None
    audio_file: str | None = None
    priority: str = "normal"
    category: str | None = None
    bulletin: str | None = None
    voice: str | None = None  # a text item's TTS voice (None: BCAST_TTS_VOICE)
    rate_wpm: int | None = None  # a text item's reading speed (None: the engine's own)
    stream: str | None = None  # a relay item's stream address
    minutes: int | None = None  # how long a relay item relays it

    @property
    def relay_duration_s(self) -> int | None:
        return self.minutes * 60 if self.minutes is not None else None


@dataclass(frozen=True)
class ProgrammeSpec:
    id: str
    title: str
    items: tuple[ItemSpec, ...]
    on_interrupt: str = "restart"


@dataclass(frozen=True)
class TargetSpec:
    """Units by path ('Quảng Ngãi/Bình Sơn/Xã Bình Hải'), single clusters, and named groups."""

    units: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class SlotSpec:
    id: str
    programme: str
    start_date: date
    start_time: time
    target: TargetSpec
    rule: str | None = None
    until: date | None = None
    layer: str = "background"


@dataclass(frozen=True)
class ScheduleSpec:
    programmes: tuple[ProgrammeSpec, ...]
    slots: tuple[SlotSpec, ...]
    groups: dict[str, TargetSpec] = field(default_factory=dict)


def parse_schedule_yaml(text: str) -> ScheduleSpec:
    """Parse and check a schedule file; raises ScheduleFileError listing every problem."""
    try:
        document = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001
        # Not only YAMLError: PyYAML's constructors raise ValueError ("2024-02-30", "!!float abc", 5000 digits),
        # AttributeError ("!!timestamp 25:00"), RecursionError (deep nesting)...
        raise ScheduleFileError([Problem("", f"tệp không phải YAML hợp lệ: {exc}", f"not valid YAML: {exc}")]) from None
    return parse_schedule(document)


def parse_schedule(document: Any) -> ScheduleSpec:
    problems: list[Problem] = []
    if not isinstance(document, dict):
        raise ScheduleFileError(
            [
                Problem(
                    "",
                    "tệp lịch phải là một bảng YAML có các khóa version, programmes, slots",
                    "a schedule file is a YAML mapping with the keys version, programmes, slots",
                )
            ]
        )
    if document.get("version") != SCHEDULE_FILE_VERSION:
        problems.append(Problem("version", f"phải là {SCHEDULE_FILE_VERSION}", f"must be {SCHEDULE_FILE_VERSION}"))
    unknown = set(document) - {"version", "timezone", "programmes", "groups", "slots"}
    if unknown:
        names = ", ".join(sorted(map(str, unknown)))
        problems.append(Problem("", f"khóa không được hỗ trợ: {names}", f"unsupported keys: {names}"))
    if document.get("timezone", "Asia/Ho_Chi_Minh") != "Asia/Ho_Chi_Minh":
        problems.append(
            Problem(
                "timezone",
                "lịch dùng giờ Việt Nam (Asia/Ho_Chi_Minh)",
                "schedules are in Vietnam's time (Asia/Ho_Chi_Minh)",
            )
        )

    programmes = tuple(
        _programme(p, f"programmes[{i}]", problems) for i, p in enumerate(_list(document, "programmes", problems))
    )
    _unique([p.id for p in programmes], "programmes", problems)
    groups_raw = document.get("groups") or {}
    groups: dict[str, TargetSpec] = {}
    if not isinstance(groups_raw, dict):
        problems.append(Problem("groups", "phải là bảng tên nhóm → đích phát", "must map group names to targets"))
    else:
        for name, raw in groups_raw.items():
            if not isinstance(name, str) or not ID_PATTERN.match(name):
                problems.append(
                    Problem(
                        f"groups.{name}",
                        "tên nhóm chỉ gồm chữ thường không dấu, số và '-'",
                        "a group name has lower-case ASCII letters, digits and '-' only",
                    )
                )
            groups[str(name)] = _target(raw, f"groups.{name}", problems, allow_groups=False)
    slots = tuple(_slot(s, f"slots[{i}]", problems) for i, s in enumerate(_list(document, "slots", problems)))
    _unique([s.id for s in slots], "slots", problems)
    known = {p.id for p in programmes}
    for i, slot in enumerate(slots):
        if slot.programme and slot.programme not in known:
            problems.append(
                Problem(
                    f"slots[{i}].programme",
                    f"không có chương trình {slot.programme!r}",
                    f"no programme {slot.programme!r}",
                )
            )
        for group in slot.target.groups:
            if group not in groups:
                problems.append(Problem(f"slots[{i}].target.groups", f"không có nhóm {group!r}", f"no group {group!r}"))
    if problems:
        raise ScheduleFileError(problems)
    return ScheduleSpec(programmes, slots, groups)


def _list(document: dict, key: str, problems: list[Problem]) -> list[Any]:
    value = document.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(Problem(key, "phải là một danh sách", "must be a list"))
        return []
    return value


def _unique(ids: list[str], where: str, problems: list[Problem]) -> None:
    seen: set[str] = set()
    for value in ids:
        if value in seen:
            problems.append(Problem(where, f"mã {value!r} bị lặp", f"id {value!r} appears twice"))
        seen.add(value)


def _id(raw: dict, where: str, problems: list[Problem], pattern: re.Pattern[str] = ID_PATTERN) -> str:
    value = raw.get("id")
    if not isinstance(value, str) or not pattern.match(value):
        limit = 40 if pattern is SLOT_ID_PATTERN else 64
        problems.append(
            Problem(
                f"{where}.id",
                f"cần mã gồm chữ thường không dấu, số và '-' (tối đa {limit} ký tự)",
                f"needs an id of lower-case ASCII letters, digits and '-' (at most {limit} characters)",
            )
        )
        return ""
    return value


def _text(raw: dict, key: str, where: str, problems: list[Problem], *, required: bool, limit: int = 300) -> str | None:
    value = raw.get(key)
    if value is None:
        if required:
            problems.append(Problem(f"{where}.{key}", "bắt buộc", "required"))
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        problems.append(
            Problem(
                f"{where}.{key}",
                f"cần chuỗi không rỗng, tối đa {limit} ký tự",
                f"needs a non-empty string of at most {limit} characters",
            )
        )
        return None
    return value.strip()


def _shown(value: Any, english: bool = False) -> str:
    """A short view of a wrong value: YAML aliases can nest a list a billion elements deep, never repr it whole."""
    if isinstance(value, (str, int, float, bool)):
        huge = "a number too large" if english else "một số quá lớn"
        text = repr(value) if not isinstance(value, int) or abs(value) < 10**40 else huge
        return text if len(text) <= 80 else text[:77] + "..."
    return f"a value of type {type(value).__name__}" if english else f"giá trị kiểu {type(value).__name__}"


def _choice(raw: dict, key: str, choices: tuple[str, ...], default: str, where: str, problems: list[Problem]) -> str:
    value = raw.get(key, default)
    if value not in choices:
        emergency = value == "emergency"
        extra = " (bản tin khẩn cấp không xếp lịch: phát ngay bằng lệnh khẩn cấp)" if emergency else ""
        extra_en = " (an emergency is not scheduled: send it as an emergency broadcast)" if emergency else ""
        problems.append(
            Problem(
                f"{where}.{key}",
                f"{_shown(value)} không hợp lệ, chọn một trong {', '.join(choices)}{extra}",
                f"{_shown(value, english=True)} is not valid, choose one of {', '.join(choices)}{extra_en}",
            )
        )
        return default
    return value


def _programme(raw: Any, where: str, problems: list[Problem]) -> ProgrammeSpec:
    if not isinstance(raw, dict):
        problems.append(Problem(where, "phải là một bảng", "must be a mapping"))
        return ProgrammeSpec("", "", ())
    items = []
    raw_items = raw.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        problems.append(Problem(f"{where}.items", "cần ít nhất một mục", "needs at least one item"))
        raw_items = []
    for j, item in enumerate(raw_items):
        here = f"{where}.items[{j}]"
        if not isinstance(item, dict):
            problems.append(Problem(here, "phải là một bảng", "must be a mapping"))
            continue
        text = _text(item, "text", here, problems, required=False, limit=20_000)
        audio_file = _text(item, "audio_file", here, problems, required=False, limit=500)
        bulletin = _text(item, "bulletin", here, problems, required=False, limit=64)
        stream, minutes = _relay(item, here, problems)
        # A stream given but refused counts as given: its own problem says why, not "exactly one of".
        if sum(value is not None for value in (text, audio_file, bulletin, item.get("stream"))) != 1:
            problems.append(
                Problem(
                    here,
                    "cần đúng một trong bốn: text (đọc bằng máy), audio_file (tệp âm thanh), "
                    "bulletin (mã một bản tin đã duyệt) hoặc stream (địa chỉ luồng tiếp sóng, kèm minutes)",
                    "needs exactly one of text (read by text-to-speech), audio_file, bulletin "
                    "(an approved bulletin's id) or stream (a live stream's address, with minutes)",
                )
            )
        if bulletin is not None and item.get("category") is not None:
            problems.append(
                Problem(
                    f"{here}.category",
                    "mục bulletin dùng chuyên mục của chính bản tin đó",
                    "a bulletin item has its bulletin's own category",
                )
            )
        voice, rate_wpm = _reading(item, here, problems, text is not None)
        if item.get("stream") is not None and item.get("title") is None:
            # A relay's title may be left out: it is the programme's own then (what is relayed, "Thời sự VOV1").
            title = _text(raw, "title", where, [], required=False) or DEFAULT_RELAY_TITLE
        else:
            title = _text(item, "title", here, problems, required=True) or ""
        items.append(
            ItemSpec(
                title=title,
                text=text,
                audio_file=audio_file,
                priority=_choice(item, "priority", PRIORITIES, "normal", here, problems),
                category=_text(item, "category", here, problems, required=False, limit=200),
                bulletin=bulletin,
                voice=voice,
                rate_wpm=rate_wpm,
                stream=stream,
                minutes=minutes,
            )
        )
    return ProgrammeSpec(
        id=_id(raw, where, problems),
        title=_text(raw, "title", where, problems, required=True) or "",
        items=tuple(items),
        on_interrupt=_choice(raw, "on_interrupt", ON_INTERRUPT, "restart", where, problems),
    )


def _relay(item: dict, where: str, problems: list[Problem]) -> tuple[str | None, int | None]:
    """A relay item's `stream` address and `minutes`, checked by the relay rules (domain/relay.py)."""
    raw, minutes = item.get("stream"), item.get("minutes")
    if raw is None:
        if minutes is not None:
            problems.append(
                Problem(
                    f"{where}.minutes",
                    "minutes chỉ dùng cho mục stream (tiếp sóng)",
                    "minutes only applies to a stream item (a live relay)",
                )
            )
        return None, None
    stream: str | None = str(raw).strip()
    refusal = stream_url_refusal(stream or "")
    if refusal is not None:  # the rule's own words, less its field name: the place says it is the stream
        problems.append(Problem(f"{where}.stream", refusal.vi, refusal.en.removeprefix("stream_url ")))
        stream = None
    span = f"{MIN_RELAY_MINUTES} đến {MAX_RELAY_MINUTES}"
    if minutes is None:
        problems.append(
            Problem(
                f"{where}.minutes",
                f"bắt buộc với mục stream: số phút tiếp sóng, từ {span} (tối đa 4 giờ)",
                f"required with a stream item: how many minutes to relay, "
                f"{MIN_RELAY_MINUTES} to {MAX_RELAY_MINUTES} (at most 4 hours)",
            )
        )
    elif type(minutes) is not int or not MIN_RELAY_MINUTES <= minutes <= MAX_RELAY_MINUTES:
        problems.append(
            Problem(
                f"{where}.minutes",
                f"{_shown(minutes)} không hợp lệ: cần số phút nguyên từ {span} (tối đa 4 giờ)",
                f"{_shown(minutes, english=True)} is not valid: whole minutes, "
                f"{MIN_RELAY_MINUTES} to {MAX_RELAY_MINUTES} (at most 4 hours)",
            )
        )
        minutes = None
    return stream, minutes


def _reading(item: dict, where: str, problems: list[Problem], is_text: bool) -> tuple[str | None, int | None]:
    """A text item's `voice` and `rate_wpm` (words a minute); refused on recordings and bulletins."""
    voice = _text(item, "voice", where, problems, required=False, limit=40)
    if voice is not None and not VOICE_PATTERN.match(voice):
        problems.append(Problem(f"{where}.voice", "không phải tên giọng đọc", "is not a voice name"))
        voice = None
    rate = item.get("rate_wpm")
    if rate is not None and (type(rate) is not int or rate_problem(rate) is not None):
        problems.append(
            Problem(
                f"{where}.rate_wpm",
                f"{_shown(rate)} không hợp lệ: cần số từ mỗi phút, từ {MIN_RATE_WPM} đến {MAX_RATE_WPM}",
                f"{_shown(rate, english=True)} is not valid: words a minute, {MIN_RATE_WPM} to {MAX_RATE_WPM}",
            )
        )
        rate = None
    if not is_text and (voice is not None or rate is not None):
        problems.append(
            Problem(
                where,
                "voice và rate_wpm chỉ dùng cho mục text (đọc bằng máy)",
                "voice and rate_wpm only apply to a text item (read by text-to-speech)",
            )
        )
    return voice, rate


def _target(raw: Any, where: str, problems: list[Problem], *, allow_groups: bool = True) -> TargetSpec:
    if not isinstance(raw, dict):
        problems.append(
            Problem(
                where,
                f"cần bảng với units, clusters{' hoặc groups' if allow_groups else ''}",
                f"needs a mapping of units, clusters{' or groups' if allow_groups else ''}",
            )
        )
        return TargetSpec()
    keys = {"units", "clusters"} | ({"groups"} if allow_groups else set())
    unknown = set(raw) - keys
    if unknown:
        names = ", ".join(sorted(map(str, unknown)))
        problems.append(Problem(where, f"khóa không được hỗ trợ: {names}", f"unsupported keys: {names}"))
    values: dict[str, tuple[str, ...]] = {}
    for key in keys:
        value = raw.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            problems.append(Problem(f"{where}.{key}", "cần danh sách chuỗi", "needs a list of strings"))
            value = []
        values[key] = tuple(v.strip() for v in value)
    target = TargetSpec(values["units"], values["clusters"], values.get("groups", ()))
    if not (target.units or target.clusters or target.groups):
        problems.append(Problem(where, "đích phát trống", "the target is empty"))
    return target


def _slot(raw: Any, where: str, problems: list[Problem]) -> SlotSpec:
    if not isinstance(raw, dict):
        problems.append(Problem(where, "phải là một bảng", "must be a mapping"))
        return SlotSpec("", "", date(2000, 1, 1), time(0), TargetSpec())
    start = raw.get("start")
    start_time = time(0)
    if not isinstance(start, str) or not TIME_PATTERN.match(start):
        problems.append(
            Problem(
                f"{where}.start",
                'cần giờ dạng HH:MM theo giờ Việt Nam, ví dụ "05:30"',
                'needs a time as HH:MM in Vietnam\'s time, e.g. "05:30"',
            )
        )
    else:
        hours, minutes = map(int, start.split(":"))
        start_time = time(hours, minutes)
    start_date = _date(raw.get("from"), f"{where}.from", problems, required=True) or date(2000, 1, 1)
    until = _date(raw.get("until"), f"{where}.until", problems, required=False)
    if until is not None and until < start_date:
        problems.append(Problem(f"{where}.until", "trước ngày bắt đầu", "is before the first date"))
    rule = raw.get("rule")
    if rule is not None:
        if not isinstance(rule, str):
            problems.append(
                Problem(
                    f"{where}.rule",
                    "cần chuỗi RRULE, ví dụ FREQ=WEEKLY;BYDAY=MO",
                    "needs an RRULE string, e.g. FREQ=WEEKLY;BYDAY=MO",
                )
            )
            rule = None
        else:
            try:
                check_rule(rule)
            except InvalidRule as exc:
                problems.append(
                    Problem(
                        f"{where}.rule", f"quy tắc lặp không hợp lệ ({exc})", f"not a valid recurrence rule ({exc})"
                    )
                )
                rule = None
            if rule is not None and until is not None:
                if "UNTIL=" in rule.upper() or "COUNT=" in rule.upper():
                    problems.append(
                        Problem(
                            where,
                            "dùng until hoặc UNTIL/COUNT trong rule, không dùng cả hai",
                            "use until or UNTIL/COUNT in the rule, not both",
                        )
                    )
    return SlotSpec(
        id=_id(raw, where, problems, SLOT_ID_PATTERN),
        programme=_text(raw, "programme", where, problems, required=True, limit=64) or "",
        start_date=start_date,
        start_time=start_time,
        target=_target(raw.get("target"), f"{where}.target", problems),
        rule=rule.strip() if isinstance(rule, str) else None,
        until=until,
        layer=_choice(raw, "layer", LAYERS, "background", where, problems),
    )


def _date(value: Any, where: str, problems: list[Problem], *, required: bool) -> date | None:
    if value is None:
        if required:
            problems.append(Problem(where, "bắt buộc (ngày dạng YYYY-MM-DD)", "required (a date as YYYY-MM-DD)"))
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    problems.append(Problem(where, "cần ngày dạng YYYY-MM-DD", "needs a date as YYYY-MM-DD"))
    return None
