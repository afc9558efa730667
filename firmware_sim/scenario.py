"""Which clusters a run simulates, and the faults it injects, read from a scenario file (YAML or TOML).

Every choice of clusters is made from the seed alone, so one seed and one fleet give the same faults on
the same clusters every run. An example scenario (YAML; the same keys work in TOML):

    seed: 7
    seconds: 40            # how long `bcast sim run` runs
    speed: 20              # playback speed of the simulated speakers
    offline: {fraction: 0.1}                   # never connect
    cutoffs:                                   # cut off for a period, then back
      - {communes: ["Xã Tân Hưng"], at_s: 2, for_s: 10, mode: network}   # or mode: power (memory lost)
    corrupt_downloads: {fraction: 0.05, responses: 2}    # first 2 HTTP responses get a flipped byte
    truncated_downloads: {count: 3, responses: 1}        # first response ends half way
    slow_link: {fraction: 0.1, bytes_per_s: 20000}
    clock_skew: {fraction: 0.05, offset_s: 600}
    amplifier_failure: {clusters: ["hon-quan-tan-khai-001"], at_s: 0}
    broker_restarts: [{at_s: 20, down_s: 3}]             # needs the simulator's own broker
    dispatch:                                            # play commands the simulator publishes itself
      - {at_s: 3, expires_in_s: 30, priority: normal, duration_s: 10, size_bytes: 20000}
      - {at_s: 5, stream: "https://radio.example.vn/vov1.mp3", duration_s: 60}   # a live relay (tiếp sóng)
    stream_faults:                                       # what the chosen clusters' links do to a relayed stream
      - {stream: "https://radio.example.vn/vov1.mp3", fraction: 0.1}                   # never reachable
      - {stream: "https://radio.example.vn/vov1.mp3", count: 2, drops_after_s: 20}     # drops once, 20 s in

A selection (`fraction`, `count`, `communes`, `clusters`; several are united) says which clusters a
fault hits; a dispatch without one goes to every cluster.
"""

from __future__ import annotations

import json
import random
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CUT_MODES = ("network", "power")
PRIORITIES = ("normal", "priority", "emergency")


class ScenarioError(ValueError):
    """A scenario file or flag that cannot be used; the message says which key and why."""


@dataclass(frozen=True)
class FleetMember:
    cluster_id: str
    commune: str


def load_fleet(path: Path) -> list[FleetMember]:
    """Clusters of a fleet CSV in the shared format, parsed as the demo does (repeated ids renamed)."""
    from broadcast_server.domain.fleet import decode_fleet_bytes, parse_fleet

    fleet = parse_fleet(decode_fleet_bytes(Path(path).read_bytes()), rename_duplicates=True)
    return [FleetMember(row.cluster_id, row.commune or "") for row in fleet.rows]


def load_fleet_ids(path: Path) -> list[str]:
    """Cluster ids of a fleet CSV in the shared format."""
    return [member.cluster_id for member in load_fleet(path)]


def pick_offline(cluster_ids: list[str], fraction: float, seed: int) -> set[str]:
    """A reproducible random subset of round(fraction × N) clusters."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("offline fraction must be within 0..1")
    count = round(fraction * len(cluster_ids))
    return set(random.Random(seed).sample(sorted(cluster_ids), count))


@dataclass
class Selection:
    """Which clusters a fault hits: a fraction and/or a count drawn from the seed, communes, clusters."""

    fraction: float = 0.0
    count: int = 0
    communes: list[str] = field(default_factory=list)
    clusters: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.fraction or self.count or self.communes or self.clusters)

    def pick(self, members: list[FleetMember], rng: random.Random) -> set[str]:
        ids = sorted(m.cluster_id for m in members)
        chosen = set(self.clusters) & set(ids)
        unknown = set(self.clusters) - set(ids)
        if unknown:
            raise ScenarioError(f"unknown cluster ids: {', '.join(sorted(unknown))}")
        if self.communes:
            known = {m.commune for m in members}
            missing = [c for c in self.communes if c not in known]
            if missing:
                raise ScenarioError(f"no cluster in commune(s): {', '.join(missing)}")
            chosen |= {m.cluster_id for m in members if m.commune in self.communes}
        drawn = min(len(ids), max(self.count, round(self.fraction * len(ids))))
        if drawn:
            chosen |= set(rng.sample(ids, drawn))
        return chosen


@dataclass
class Cutoff:
    select: Selection
    at_s: float
    for_s: float
    mode: str = "network"


@dataclass
class DownloadFault:
    """Corrupt or truncate the first `responses` HTTP responses each chosen cluster gets (None: all)."""

    select: Selection
    responses: int | None = None


@dataclass
class SlowLink:
    select: Selection
    bytes_per_s: float


@dataclass
class ClockSkew:
    select: Selection
    offset_s: float


@dataclass
class AmplifierFailure:
    select: Selection
    at_s: float = 0.0


@dataclass
class BrokerRestart:
    at_s: float
    down_s: float = 2.0


@dataclass
class Dispatch:
    """A play command the simulator publishes itself (it needs no server), with audio it serves."""

    at_s: float
    select: Selection
    expires_in_s: float = 60.0
    start_in_s: float = 0.0
    duration_s: float = 10.0
    size_bytes: int = 20_000
    priority: str = "normal"
    stream: str | None = None  # a live relay of this address for duration_s (no audio served)


@dataclass
class StreamFault:
    """The chosen clusters cannot reach `stream` at all, or (with `drops_after_s`) lose it once that far in."""

    select: Selection
    stream: str
    drops_after_s: float | None = None


@dataclass
class Scenario:
    seed: int = 0
    seconds: float | None = None
    speed: float | None = None
    offline: Selection = field(default_factory=Selection)
    cutoffs: list[Cutoff] = field(default_factory=list)
    corrupt: DownloadFault | None = None
    truncate: DownloadFault | None = None
    slow: SlowLink | None = None
    skew: ClockSkew | None = None
    amplifier: AmplifierFailure | None = None
    broker_restarts: list[BrokerRestart] = field(default_factory=list)
    dispatches: list[Dispatch] = field(default_factory=list)
    stream_faults: list[StreamFault] = field(default_factory=list)

    def rng(self, purpose: str) -> random.Random:
        """A random source of its own per fault, so adding one fault does not move the others."""
        return random.Random(f"{self.seed}:{purpose}")

    def as_json(self) -> dict[str, Any]:
        """The scenario as plain data, for the summary (what was asked, next to what happened)."""
        from dataclasses import asdict

        return json.loads(json.dumps(asdict(self), default=str))


# ------------------------------------------------------------------------------------------- parsing

_SELECTION_KEYS = ("fraction", "count", "communes", "clusters")


def load_scenario(path: Path) -> Scenario:
    """Read a scenario from a .yaml/.yml or .toml file."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        document = tomllib.loads(text) if str(path).endswith(".toml") else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ScenarioError(f"cannot read {path}: {exc}") from None
    return parse_scenario(document or {})


def parse_scenario(document: Any) -> Scenario:
    """Build a Scenario from parsed YAML/TOML; unknown keys and wrong values raise ScenarioError."""
    doc = _mapping(document, "scenario")
    known = {
        "seed", "seconds", "speed", "offline", "cutoffs", "corrupt_downloads", "truncated_downloads",
        "slow_link", "clock_skew", "amplifier_failure", "broker_restarts", "dispatch", "stream_faults",
    }  # fmt: skip
    _no_unknown(doc, known, "scenario")
    scenario = Scenario(
        seed=int(doc.get("seed", 0)),
        seconds=_opt_float(doc.get("seconds"), "seconds"),
        speed=_opt_float(doc.get("speed"), "speed"),
    )
    if "offline" in doc:
        scenario.offline = _selection(_mapping(doc["offline"], "offline"), "offline", ())
    for i, item in enumerate(_list(doc.get("cutoffs", []), "cutoffs")):
        where = f"cutoffs[{i}]"
        entry = _mapping(item, where)
        mode = str(entry.get("mode", "network"))
        if mode not in CUT_MODES:
            raise ScenarioError(f"{where}.mode must be one of {', '.join(CUT_MODES)}")
        scenario.cutoffs.append(
            Cutoff(
                _selection(entry, where, ("at_s", "for_s", "mode")),
                at_s=_float(entry, "at_s", where),
                for_s=_float(entry, "for_s", where),
                mode=mode,
            )
        )
    for key, attr in (("corrupt_downloads", "corrupt"), ("truncated_downloads", "truncate")):
        if key in doc:
            entry = _mapping(doc[key], key)
            responses = entry.get("responses")
            if responses is not None and (not isinstance(responses, int) or responses < 1):
                raise ScenarioError(f"{key}.responses must be a positive integer or absent (all responses)")
            setattr(scenario, attr, DownloadFault(_selection(entry, key, ("responses",)), responses))
    if "slow_link" in doc:
        entry = _mapping(doc["slow_link"], "slow_link")
        rate = _float(entry, "bytes_per_s", "slow_link")
        if rate <= 0:
            raise ScenarioError("slow_link.bytes_per_s must be positive")
        scenario.slow = SlowLink(_selection(entry, "slow_link", ("bytes_per_s",)), rate)
    if "clock_skew" in doc:
        entry = _mapping(doc["clock_skew"], "clock_skew")
        scenario.skew = ClockSkew(
            _selection(entry, "clock_skew", ("offset_s",)), _float(entry, "offset_s", "clock_skew")
        )
    if "amplifier_failure" in doc:
        entry = _mapping(doc["amplifier_failure"], "amplifier_failure")
        scenario.amplifier = AmplifierFailure(
            _selection(entry, "amplifier_failure", ("at_s",)), float(entry.get("at_s", 0.0))
        )
    for i, item in enumerate(_list(doc.get("broker_restarts", []), "broker_restarts")):
        where = f"broker_restarts[{i}]"
        entry = _mapping(item, where)
        _no_unknown(entry, {"at_s", "down_s"}, where)
        scenario.broker_restarts.append(BrokerRestart(_float(entry, "at_s", where), float(entry.get("down_s", 2.0))))
    for i, item in enumerate(_list(doc.get("dispatch", []), "dispatch")):
        where = f"dispatch[{i}]"
        entry = _mapping(item, where)
        params = ("at_s", "expires_in_s", "start_in_s", "duration_s", "size_bytes", "priority", "stream")
        priority = str(entry.get("priority", "normal"))
        if priority not in PRIORITIES:
            raise ScenarioError(f"{where}.priority must be one of {', '.join(PRIORITIES)}")
        stream = _stream(entry, where, required=False)
        if stream is not None and not float(entry.get("duration_s", 10.0)).is_integer():
            raise ScenarioError(f"{where}.duration_s of a stream must be whole seconds")
        scenario.dispatches.append(
            Dispatch(
                at_s=_float(entry, "at_s", where),
                select=_selection(entry, where, params),
                expires_in_s=float(entry.get("expires_in_s", 60.0)),
                start_in_s=float(entry.get("start_in_s", 0.0)),
                duration_s=float(entry.get("duration_s", 10.0)),
                size_bytes=int(entry.get("size_bytes", 20_000)),
                priority=priority,
                stream=stream,
            )
        )
    for i, item in enumerate(_list(doc.get("stream_faults", []), "stream_faults")):
        where = f"stream_faults[{i}]"
        entry = _mapping(item, where)
        drops = _opt_float(entry.get("drops_after_s"), f"{where}.drops_after_s")
        if drops is not None and drops <= 0:
            raise ScenarioError(f"{where}.drops_after_s must be more than 0")
        scenario.stream_faults.append(
            StreamFault(_selection(entry, where, ("stream", "drops_after_s")), _stream(entry, where) or "", drops)
        )
    return scenario


def _stream(entry: dict[str, Any], where: str, *, required: bool = True) -> str | None:
    """An entry's `stream`: an address the contract accepts (`play.stream.url`), or ScenarioError."""
    from mqtt_contract.codec import schema_document
    from mqtt_contract.topics import Channel

    value = entry.get("stream")
    if value is None:
        if required:
            raise ScenarioError(f"{where}.stream is required (the relayed stream's address)")
        return None
    pattern = schema_document(Channel.COMMAND)["definitions"]["stream"]["properties"]["url"]["pattern"]
    if not isinstance(value, str) or not re.match(pattern, value):
        raise ScenarioError(f"{where}.stream must be an http(s) address without spaces, got {value!r}")
    return value


def _selection(entry: dict[str, Any], where: str, params: tuple[str, ...]) -> Selection:
    _no_unknown(entry, set(_SELECTION_KEYS) | set(params), where)
    try:
        selection = Selection(
            fraction=float(entry.get("fraction", 0.0)),
            count=int(entry.get("count", 0)),
            communes=[str(c) for c in _list(entry.get("communes", []), f"{where}.communes")],
            clusters=[str(c) for c in _list(entry.get("clusters", []), f"{where}.clusters")],
        )
    except (TypeError, ValueError):
        raise ScenarioError(f"{where}: fraction must be a number and count an integer") from None
    if not 0.0 <= selection.fraction <= 1.0 or selection.count < 0:
        raise ScenarioError(f"{where}: fraction must be within 0..1 and count not negative")
    return selection


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScenarioError(f"{where} must be a mapping")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ScenarioError(f"{where} must be a list")
    return value


def _no_unknown(entry: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(unknown)}")


def _float(entry: dict[str, Any], key: str, where: str) -> float:
    if key not in entry:
        raise ScenarioError(f"{where}.{key} is required")
    try:
        return float(entry[key])
    except (TypeError, ValueError):
        raise ScenarioError(f"{where}.{key} must be a number") from None


def _opt_float(value: Any, where: str) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ScenarioError(f"{where} must be a number") from None
