"""What a label is: one class per item (``class``), several labels per item (``labels``), or a number (``number``).

The readers hand labels over as the user wrote them (names, whole numbers, fractions, lists); :func:`resolve` decides
which of the three they are, once, for images and texts alike, and says how it decided:

- ``labels``: a list per item (JSON lines, Python lists), a table cell split at a separator (``|`` or ``;``,
  detected and reported, or the one given), or an item listed once per label (``task="labels"``);
- ``number``: every label a number and some a fraction, or whole numbers with more distinct values than a class list
  has (``WHOLE_NUMBER_CLASSES``); ``task="number"`` for fewer;
- ``class``: anything else, as before.

A column that mixes numbers and words, an empty label between two separators, or a separator that is itself a label
is refused with the row that shows it; nothing is dropped quietly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data.labeled import Labeled
from .errors import BadInputError

KINDS = ("class", "labels", "number")
TASKS = ("auto", *KINDS)
SEPARATORS = ("|", ";")  # what auto looks for in a table's label cells, in this order
WHOLE_NUMBER_CLASSES = 20  # auto: whole-number labels with more distinct values than this are numbers


@dataclass(frozen=True)
class Resolved:
    """The labeled items with their labels in the form of ``kind``: class names; sorted tuples of label names;
    floats. ``names``: the classes, or the label names; () for numbers."""

    data: Labeled
    kind: str
    names: tuple
    separator: str | None = None
    notes: tuple[str, ...] = ()

    def indicator(self) -> np.ndarray:
        """``labels``: one row per item, one 0/1 column per label name."""
        index = {n: j for j, n in enumerate(self.names)}
        y = np.zeros((len(self.data), len(self.names)), dtype=int)
        for i, labels in enumerate(self.data.labels or ()):
            y[i, [index[n] for n in labels]] = 1
        return y

    def values(self) -> np.ndarray:
        """``number``: the targets as floats."""
        return np.asarray(self.data.labels, dtype=np.float64)


def check_task(task: str, separator: str | None = None) -> None:
    if task not in TASKS:
        raise BadInputError(f"task must be one of {', '.join(TASKS)}, got {task!r}.")
    if separator is not None and (not isinstance(separator, str) or not 0 < len(separator) <= 3
                                  or separator.strip() != separator):
        raise BadInputError(f"separator must be one to three characters without spaces around them (such as | or ;), "
                            f"got {separator!r}.")


def resolve(data: Labeled, task: str = "auto", separator: str | None = None, *, training: bool = True) -> Resolved:
    """Which kind of label ``data`` holds (``task``: ``auto`` decides), its labels in that kind's form, and notes
    that say how it was read. ``training``: also check there is something to learn (each label on two items and not
    on all, numbers that vary); test data need not."""
    check_task(task, separator)
    labels = list(data.labels or ())
    where = data.origin
    kind, sep = task, separator
    notes: list[str] = []
    if task == "auto":
        kind, sep, why = _detect(labels, separator)
        if why:
            notes.append(why)
    if kind == "labels":
        items, sets, more = _label_sets(data.items, labels, sep, where)
        names = tuple(sorted({n for s in sets for n in s}, key=_order))
        if training:
            _check_label_sets(sets, names, where)
        out = Labeled(items, tuple(sets), data.origin, (*data.notes, *more, *notes))
        return Resolved(out, "labels", names, sep, tuple(notes + more))
    if kind == "number":
        values = tuple(_number(v, i, where) for i, v in enumerate(labels))
        if training and len(set(values)) < 2:
            raise BadInputError(f"{where}: every item has the same number ({values[0]:g} if any); a model of numbers "
                                "needs targets that vary.")
        return Resolved(Labeled(data.items, values, data.origin, (*data.notes, *notes)), "number", (), None,
                        tuple(notes))
    for i, v in enumerate(labels):
        if isinstance(v, tuple):
            raise BadInputError(f"{where}: item {i} has several labels {list(v)!r}. Fit with task='labels' "
                                "(--task labels) to learn several labels per item.")
        if isinstance(v, float):
            if not v.is_integer():
                raise BadInputError(f"{where}: label {v!r} (item {i}) is a fraction. Fit with task='number' "
                                    "(--task number) to predict numbers, or use class names.")
            labels[i] = int(v)
    _check_one_label_per_file(data.items, labels, where)
    out = Labeled(data.items, tuple(labels), data.origin, (*data.notes, *notes))
    return Resolved(out, "class", tuple(out.classes), None, tuple(notes))


def _check_one_label_per_file(items: Sequence, labels: list, where: str) -> None:
    """An image file listed with two classes is an error that names both (texts: a duplicate note, ``hygiene``)."""
    first: dict = {}
    for i, (item, label) in enumerate(zip(items, labels)):
        if not isinstance(item, Path):
            continue
        j = first.setdefault(item, i)
        if labels[j] != label:
            raise BadInputError(f"{where}: {item} is labeled {labels[j]!r} (item {j}) and {label!r} (item {i}). Keep "
                                "one label per image, or fit with task='labels' (--task labels) when an image may "
                                "carry several.")


def _order(name):
    return (isinstance(name, str), name)


def _detect(labels: list, separator: str | None) -> tuple[str, str | None, str]:
    """(kind, separator, a note) for ``task="auto"``."""
    if any(isinstance(v, tuple) for v in labels):
        return "labels", separator, "several labels per item (lists): one yes/no answer per label"
    strings = [v for v in labels if isinstance(v, str)]
    for sep in ((separator,) if separator else SEPARATORS):
        hits = [v for v in strings if sep in v]
        if hits:
            return "labels", sep, (f"several labels per item: label cells split at {sep!r} (e.g. {hits[0]!r}); pass "
                                   "task='class' (--task class) to keep each cell whole, or another separator")
    parsed = [_as_number(v) for v in labels]
    numbers = [p for p in parsed if p is not None]
    if not numbers:
        return "class", None, ""
    fractional = [v for v, p in zip(labels, parsed) if p is not None and not float(p).is_integer()]
    words = [(i, v) for i, (v, p) in enumerate(zip(labels, parsed)) if p is None]
    if fractional and words:
        i, word = words[0]
        raise BadInputError(f"The label column mixes numbers ({fractional[0]!r}) and words ({word!r}, item {i}). Fix "
                            "or remove the words to predict numbers (task='number'); for classes, use names throughout.")
    if words:
        return "class", None, ""
    if fractional:
        return "number", None, f"the labels are numbers (e.g. {fractional[0]!r}): the model predicts a number"
    distinct = len(set(numbers))
    if distinct > WHOLE_NUMBER_CLASSES:
        return "number", None, (f"the labels are {distinct} different whole numbers: the model predicts a number "
                                "(task='class', --task class, makes each one a class)")
    return "class", None, (f"the labels are {distinct} whole numbers: each is a class (task='number', --task number, "
                           "predicts a number instead)")


def _as_number(value) -> float | None:
    if isinstance(value, bool) or isinstance(value, tuple):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip().replace("_", "x"))  # "1_000" is a word here, not a number
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _number(value, i: int, where: str) -> float:
    number = _as_number(value)
    if number is None:
        raise BadInputError(f"{where}: label {value!r} (item {i}) is not a number. A model of numbers needs a number "
                            "in every row: fix or remove that row.")
    return number


def _label_sets(items: Sequence, labels: list, separator: str | None, where: str):
    """Each item once with the set of its labels (cells split at ``separator``; an item listed once per label is
    merged into one), and a note when rows were merged."""
    sets: dict = {}
    order: list = []
    for i, value in enumerate(labels):
        if isinstance(value, tuple):
            parts = [_part(p, separator, i, where) for p in value]
        elif isinstance(value, str) and separator:
            parts = [_part(p, None, i, where, cell=value) for p in value.split(separator)]
        else:
            parts = [_part(value, separator, i, where)]
        if not parts:
            raise BadInputError(f"{where}: item {i} has an empty set of labels. Give every item at least one label "
                                "(a name such as 'none' for items with none of the others), or remove it.")
        key = _item_key(items[i])
        if key not in sets:
            sets[key] = set()
            order.append((key, items[i]))
        sets[key].update(parts)
    merged = len(labels) - len(order)
    notes = [f"{merged} row(s) repeat an item with more labels: each item is kept once with all its labels"] if merged \
        else []
    return (tuple(item for _, item in order), [tuple(sorted(sets[k], key=_order)) for k, _ in order], notes)


def _item_key(item):
    try:
        hash(item)
        return item
    except TypeError:  # an in-memory image: never merged
        return id(item)


def _part(value, separator: str | None, i: int, where: str, cell: str | None = None):
    if isinstance(value, str):
        value = value.strip()
        if not value:
            shown = cell if cell is not None else value
            raise BadInputError(f"{where}: item {i}'s labels {shown!r} hold an empty label (a separator at an end, or "
                                "two in a row). Remove the extra separator.")
        if separator and separator in value:
            raise BadInputError(f"{where}: item {i}'s label {value!r} contains the separator {separator!r}; a label "
                                "cannot be both. Pick another separator (separator=, --separator).")
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    raise BadInputError(f"{where}: item {i} has label {value!r}; labels are names or whole numbers.")


def _check_label_sets(sets: list[tuple], names: tuple, where: str) -> None:
    if len({type(n).__name__ for n in names}) > 1:
        raise BadInputError(f"{where}: the labels mix names and numbers ({names[0]!r}, {names[-1]!r}); 1 and '1' "
                            "would be different labels. Use one kind throughout.")
    if len(names) < 2:
        raise BadInputError(f"{where}: only one label ({names[0]!r}) occurs; several labels per item need at least "
                            "two label names.")
    counts = {n: 0 for n in names}
    for s in sets:
        for n in s:
            counts[n] += 1
    everywhere = [n for n, c in counts.items() if c == len(sets)]
    rare = [n for n, c in counts.items() if c < 2]
    if rare:
        raise BadInputError(f"{where}: label {', '.join(repr(n) for n in rare[:5])} occurs on a single item; each "
                            "label needs at least two (one to learn from, one to check). Add items or remove it.")
    if everywhere:
        raise BadInputError(f"{where}: label {', '.join(repr(n) for n in everywhere[:5])} is on every item, so there "
                            "is nothing to learn about it. Remove it, or add items without it.")
