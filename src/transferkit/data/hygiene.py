"""Data hygiene: exact duplicates (the same content under two names) within a set, the same content with two
labels, and test items that are copies of training items (whose accuracy says nothing about new data)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .files import ItemError


def content_keys(items: Sequence, key: Callable) -> list[str | None]:
    """Each item's content digest (``None`` where the item cannot be read: it is reported elsewhere)."""
    out: list[str | None] = []
    for item in items:
        try:
            out.append(key(item))
        except (ItemError, OSError, ValueError):  # unreadable: reported where it is read
            out.append(None)
    return out


def _name(item) -> str:
    text = str(item)
    return text if len(text) <= 60 else text[:57] + "..."


def duplicate_notes(items: Sequence, labels: Sequence | None, keys: Sequence[str | None], what: str) -> list[str]:
    """One line for exact duplicates within a set, one for the same content under different labels."""
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        if key is not None:
            groups.setdefault(key, []).append(i)
    repeated = [g for g in groups.values() if len(g) > 1]
    if not repeated:
        return []
    notes = []
    conflicts = [g for g in repeated if labels is not None and len({repr(labels[i]) for i in g}) > 1]
    same = [g for g in repeated if g not in conflicts]
    if same:
        examples = "; ".join(" = ".join(_name(items[i]) for i in g[:2]) for g in same[:3])
        notes.append(f"{sum(len(g) - 1 for g in same)} exact duplicate(s) in the {what} (the same content twice: "
                     f"{examples}); they count twice")
    if conflicts:
        examples = "; ".join(" = ".join(f"{_name(items[i])} ({labels[i]})" for i in g[:2]) for g in conflicts[:3])
        notes.append(f"{len(conflicts)} item(s) appear with two different labels in the {what} ({examples}): "
                     "fix the labels")
    return notes


def overlap(test_keys: Sequence[str | None], train_keys: set[str]) -> list[int]:
    """Indices of test items whose content is also a training item."""
    return [i for i, key in enumerate(test_keys) if key is not None and key[:16] in train_keys]
