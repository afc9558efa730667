"""A schema with its `if` on one field decided ahead, for one value of that field.

The command schema says "the member named like the type is required, every other one forbidden" with one
if/then/else per type. fastjsonschema checks an `if` by raising and catching an exception, and `not` the
same way: a command cost about 20 µs to check, of which 17 went on those (a 10,000-cluster "play now"
checks each command on the server and again on the box). Knowing the command's type, each `if` is true
or false before the message is seen; the schema that remains checks the same rules without exceptions.
"""

from __future__ import annotations

from typing import Any

_BRANCH_KEYS = ("if", "then", "else")


def _decided(condition: Any, field: str, value: Any) -> bool | None:
    """The `if` as a constant when it is exactly ``{"properties": {field: {"const": X}}}``, else None."""
    if not (isinstance(condition, dict) and set(condition) == {"properties"}):
        return None
    properties = condition["properties"]
    if not (isinstance(properties, dict) and set(properties) == {field}):
        return None
    rule = properties[field]
    if not (isinstance(rule, dict) and set(rule) == {"const"}):
        return None
    return rule["const"] == value


def _without_exceptions(branch: Any) -> Any:
    """``{"not": {"required": [k]}}`` (k absent) as ``{"properties": {k: false}}``: the same rule, no raise."""
    if isinstance(branch, dict) and set(branch) == {"not"}:
        inner = branch["not"]
        if isinstance(inner, dict) and set(inner) == {"required"} and len(inner["required"]) == 1:
            return {"properties": {inner["required"][0]: False}}
    return branch


def specialise(schema: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    """The schema for messages whose `field` equals `value`: top-level and `allOf` `if`s on that field
    replaced by the branch they take. Any other `if` is kept as it is. The result accepts exactly what the
    schema accepts among messages that have ``field == value``."""
    out = {k: v for k, v in schema.items() if k not in (*_BRANCH_KEYS, "allOf")}
    parts: list[Any] = []
    for node in (schema, *schema.get("allOf", ())):
        top = node is schema
        if not isinstance(node, dict) or "if" not in node:
            if not top:
                parts.append(node)
            continue
        verdict = _decided(node["if"], field, value)
        branches = {k: node[k] for k in _BRANCH_KEYS if k in node}
        rest = {} if top else {k: v for k, v in node.items() if k not in _BRANCH_KEYS}
        if verdict is None:
            parts.append(branches)
        else:
            branch = branches.get("then" if verdict else "else")
            if branch is not None:
                parts.append(_without_exceptions(branch))
        if rest:
            parts.append(rest)
    # A member the type forbids needs no schema of its own: `false` in place of it says the same, and the
    # validator then holds no code for it (a play command's checker no longer carries the whole schedule
    # schema: 1.5 MB less in the agent, bench/agent_footprint.py).
    forbidden = [p for p in parts if _forbids_one(p)]
    if forbidden:
        properties = dict(out.get("properties", {}))
        for part in forbidden:
            properties.update(part["properties"])
        out["properties"] = properties
        parts = [p for p in parts if not _forbids_one(p)]
    if parts:
        out["allOf"] = parts
    return out


def _forbids_one(part: Any) -> bool:
    """Whether a part is exactly ``{"properties": {k: false}}``: member k must be absent."""
    if not (isinstance(part, dict) and set(part) == {"properties"}):
        return False
    properties = part["properties"]
    return isinstance(properties, dict) and len(properties) == 1 and next(iter(properties.values())) is False
