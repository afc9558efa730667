"""The planner's conflict rules (English, shared with the API and logs) as the Vietnamese a broadcaster reads."""

from __future__ import annotations

RULES_VI = {
    "insert goes in at the next item boundary of the background programme, which then resumes": (
        "mục chèn phát khi mục đang phát của chương trình nền kết thúc, rồi chương trình nền phát tiếp"
    ),
    "background programme starts after the insert ends": "chương trình nền bắt đầu sau khi mục chèn kết thúc",
    "the later entry is queued and starts when the earlier one ends": (
        "chương trình sau xếp hàng, phát khi chương trình trước kết thúc"
    ),
}


def rule_in_vietnamese(rule: str) -> str:
    """The planner's rule (English, shared with the API) in Vietnamese for the person at the console."""
    return RULES_VI.get(rule, rule)
