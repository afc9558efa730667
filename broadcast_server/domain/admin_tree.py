"""The administrative hierarchy (province → district → commune → village) as a tree of any depth.

Real hierarchies are ragged: some districts have no commune level, and units get renamed or merged. A
unit is therefore identified by its path of (level, name) steps from the root, not by a fixed column
per level.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from broadcast_server.domain.fleet import FleetRow

PROVINCE = "province"
DISTRICT = "district"
COMMUNE = "commune"
VILLAGE = "village"
LEVELS: tuple[str, ...] = (PROVINCE, DISTRICT, COMMUNE, VILLAGE)

_SPACES = re.compile(r"\s+")


def normalize_name(name: str) -> str:
    """One spelling per name: Unicode NFC (editors may save Vietnamese decomposed) and single spaces."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", name)).strip()


# Vietnamese alphabet order of the letters that carry a letter-forming mark: a < ă < â, d < đ, ...
_LETTER_MARKS = {"\u0306": 1, "\u0302": 2, "\u031b": 3}  # breve, circumflex, horn
# Tone marks, in dictionary order: none, huyền, hỏi, ngã, sắc, nặng.
_TONE_MARKS = {"\u0300": 1, "\u0309": 2, "\u0303": 3, "\u0301": 4, "\u0323": 5}
_NUMBER = re.compile(r"\d+")


def name_sort_key(name: str) -> tuple:
    """Locale-independent Vietnamese sort key: letters first (đ after d, ơ after ô), tones second.

    Runs of digits compare as numbers, so "Thôn 2" sorts before "Thôn 10".
    """
    letters: list[tuple[int, int, int]] = []
    tones: list[int] = []
    text = unicodedata.normalize("NFD", normalize_name(name).casefold())
    position = 0
    while position < len(text):
        number = _NUMBER.match(text, position)
        if number:
            letters.append((0, int(number.group()), 0))
            position = number.end()
            continue
        char = text[position]
        position += 1
        if char in _TONE_MARKS and tones:
            tones[-1] = _TONE_MARKS[char]
            continue
        if char in _LETTER_MARKS and letters:
            kind, base, _ = letters[-1]
            letters[-1] = (kind, base, _LETTER_MARKS[char])
            continue
        if unicodedata.combining(char):
            continue
        if char == "đ":
            letters.append((1, ord("d"), 1))
        else:
            letters.append((1, ord(char), 0))
        tones.append(0)
    return (tuple(letters), tuple(tones), name)


class UnitStep(NamedTuple):
    """One unit on a path: its level ("province", ...) and its name."""

    level: str
    name: str


class InvalidUnitPath(ValueError):
    """A path with no steps or with an empty name."""


@dataclass(frozen=True)
class UnitPath:
    """Where a unit sits in the hierarchy: its steps from the root (the province) down to itself."""

    steps: tuple[UnitStep, ...]

    def __post_init__(self) -> None:
        if not self.steps:
            raise InvalidUnitPath("đường dẫn đơn vị hành chính trống")
        for step in self.steps:
            if not step.level or not step.name:
                raise InvalidUnitPath(f"đơn vị hành chính thiếu tên hoặc cấp: {step!r}")

    @classmethod
    def of(cls, *steps: tuple[str, str]) -> UnitPath:
        """Build from (level, name) pairs, normalising the names."""
        return cls(tuple(UnitStep(level, normalize_name(name)) for level, name in steps))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(step.name for step in self.steps)

    @property
    def levels(self) -> tuple[str, ...]:
        return tuple(step.level for step in self.steps)

    @property
    def leaf(self) -> UnitStep:
        return self.steps[-1]

    @property
    def depth(self) -> int:
        return len(self.steps)

    @property
    def parent(self) -> UnitPath | None:
        return UnitPath(self.steps[:-1]) if len(self.steps) > 1 else None

    def prefixes(self) -> Iterator[UnitPath]:
        """The root's path, then each descendant's down to this one: the order to get-or-create units."""
        for end in range(1, len(self.steps) + 1):
            yield UnitPath(self.steps[:end])

    def at_level(self, level: str) -> UnitStep | None:
        """The step at ``level``, or None where this branch skips that level."""
        return next((step for step in self.steps if step.level == level), None)

    def __str__(self) -> str:
        return " / ".join(self.names)


def path_from_fleet_row(row: FleetRow) -> UnitPath:
    """The village's path for a fleet row; an empty commune attaches the village to the district."""
    steps = [(PROVINCE, row.province), (DISTRICT, row.district)]
    if row.commune.strip():
        steps.append((COMMUNE, row.commune))
    steps.append((VILLAGE, row.village))
    return UnitPath.of(*steps)


@dataclass
class AdminNode:
    """One unit of an in-memory tree, with the clusters attached directly to it."""

    step: UnitStep
    children: dict[UnitStep, AdminNode] = field(default_factory=dict)
    cluster_ids: set[str] = field(default_factory=set)

    def sorted_children(self) -> list[AdminNode]:
        return sorted(self.children.values(), key=lambda node: name_sort_key(node.step.name))

    def all_cluster_ids(self) -> set[str]:
        """Clusters of this unit and of every unit below it."""
        found = set(self.cluster_ids)
        for child in self.children.values():
            found |= child.all_cluster_ids()
        return found


class AdminTree:
    """An in-memory hierarchy (possibly several provinces) built from unit paths."""

    def __init__(self, paths: Iterable[tuple[UnitPath, str | None]] = ()) -> None:
        self.roots: dict[UnitStep, AdminNode] = {}
        for path, cluster_id in paths:
            self.add(path, cluster_id)

    def add(self, path: UnitPath, cluster_id: str | None = None) -> AdminNode:
        """Insert the units along ``path`` (if missing) and attach ``cluster_id`` to its leaf."""
        level = self.roots
        node: AdminNode | None = None
        for step in path.steps:
            node = level.setdefault(step, AdminNode(step))
            level = node.children
        assert node is not None  # UnitPath is never empty
        if cluster_id is not None:
            node.cluster_ids.add(cluster_id)
        return node

    def find(self, path: UnitPath) -> AdminNode | None:
        level = self.roots
        node: AdminNode | None = None
        for step in path.steps:
            node = level.get(step)
            if node is None:
                return None
            level = node.children
        return node

    def walk(self) -> Iterator[tuple[UnitPath, AdminNode]]:
        """Every unit, parents before children, siblings in Vietnamese name order."""

        def visit(prefix: tuple[UnitStep, ...], node: AdminNode) -> Iterator[tuple[UnitPath, AdminNode]]:
            steps = (*prefix, node.step)
            yield UnitPath(steps), node
            for child in node.sorted_children():
                yield from visit(steps, child)

        for root in sorted(self.roots.values(), key=lambda node: name_sort_key(node.step.name)):
            yield from visit((), root)
