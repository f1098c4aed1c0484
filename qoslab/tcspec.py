"""What every qdisc and filter spec shares: ``tc`` text out and in, and checks against an era.

A *spec* is a frozen dataclass that says what one qdisc (or filter) is, with the options ``tc``
would be given. Every spec

* prints itself as ``tc`` text (:meth:`QdiscSpec.to_tc`: the kind and its options, e.g.
  ``"sfq limit 10 perturb 5"``) and the ``tc`` argument lists that build it on a device
  (:meth:`QdiscSpec.commands`, several for classful trees);
* reads itself back from that text (:meth:`QdiscSpec.from_tc`) — ``from_tc(to_tc(spec)) ==
  spec`` for every spec;
* checks itself against a :class:`~qoslab.hashing.KernelProfile` (:meth:`QdiscSpec.check`):
  an option or key the era lacks is a :class:`~qoslab.errors.ConfigError` naming the era.

The runtime behaviour of each qdisc (enqueue, dequeue, drop) lives beside its spec in
:mod:`qoslab.qdiscs`; bucket and class selection comes from :mod:`qoslab.hashing`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from .errors import ConfigError

__all__ = ["QdiscSpec", "TcLine", "parse_tc_line", "Words", "parse_handle", "format_handle",
           "SPEC_KINDS"]

#: tc kind -> spec class (filled by each spec module as it is defined).
SPEC_KINDS: dict[str, type] = {}

_OBJECTS = ("qdisc", "class", "filter")
_VERBS = ("add", "replace", "change", "del", "delete", "show", "ls", "list", "link")
_HANDLE = re.compile(r"^([0-9a-fA-F]{0,4}):([0-9a-fA-F]{0,4})$")


def parse_handle(text: str | int) -> int:
    """``"1:"`` / ``"1:10"`` (hex, as tc writes them) → 32-bit handle.

    Examples
    --------
    >>> hex(parse_handle("1:")), hex(parse_handle("1:10")), hex(parse_handle("ffff:a"))
    ('0x10000', '0x10010', '0xffff000a')
    """
    if isinstance(text, int):
        return text & 0xFFFFFFFF
    m = _HANDLE.match(str(text).strip())
    if not m:
        raise ConfigError(f"handle {text!r}: expected 'major:minor' in hex, e.g. '1:' or '1:10'")
    return (int(m[1] or "0", 16) << 16) | int(m[2] or "0", 16)


def format_handle(handle: int, *, qdisc: bool = False) -> str:
    """32-bit handle → tc spelling (``"1:"`` for a qdisc handle, ``"1:10"`` for a class).

    Examples
    --------
    >>> format_handle(0x10000, qdisc=True), format_handle(0x10010)
    ('1:', '1:10')
    """
    major, minor = (handle >> 16) & 0xFFFF, handle & 0xFFFF
    if qdisc and minor == 0:
        return f"{major:x}:"
    return f"{major:x}:{minor:x}"


@dataclass(frozen=True)
class TcLine:
    """One ``tc`` command line, split into what it says.

    ``obj`` is ``qdisc``, ``class``, ``filter`` or ``None`` for a bare ``KIND OPTIONS`` text.
    """

    obj: str | None
    verb: str | None
    dev: str | None
    parent: str | None  # "root" or a handle
    handle: str | None  # qdisc handle, class id, or filter handle
    kind: str
    options: tuple[str, ...]
    protocol: str | None = None
    prio: int | None = None


def parse_tc_line(text: str | Sequence[str]) -> TcLine:
    """Split ``tc qdisc add dev eth0 root handle 1: sfq limit 10`` (or ``sfq limit 10``).

    Examples
    --------
    >>> line = parse_tc_line("tc qdisc add dev eth0 parent 1:10 handle 10: pfifo limit 5")
    >>> line.obj, line.dev, line.parent, line.handle, line.kind, line.options
    ('qdisc', 'eth0', '1:10', '10:', 'pfifo', ('limit', '5'))
    >>> parse_tc_line("sfq perturb 10").kind
    'sfq'
    """
    if isinstance(text, str):
        try:
            words = shlex.split(text, comments=True)
        except ValueError as exc:
            raise ConfigError(f"tc line {text!r}: {exc}") from None
    else:
        words = [str(w) for w in text]
    if words and words[0] == "tc":
        words = words[1:]
    if not words:
        raise ConfigError(f"tc line {text!r}: empty")
    obj = verb = dev = parent = handle = protocol = None
    prio = None
    i = 0
    if words[0] in _OBJECTS:
        obj = words[0]
        i = 1
        if i < len(words) and words[i] in _VERBS:
            verb = words[i]
            i += 1
        while i < len(words):
            w = words[i]
            if w == "dev" and i + 1 < len(words):
                dev, i = words[i + 1], i + 2
            elif w == "root":
                parent, i = "root", i + 1
            elif w == "parent" and i + 1 < len(words):
                parent, i = words[i + 1], i + 2
            elif w in ("handle", "classid") and i + 1 < len(words):
                handle, i = words[i + 1], i + 2
            elif w == "protocol" and i + 1 < len(words) and obj == "filter":
                protocol, i = words[i + 1], i + 2
            elif w in ("prio", "pref", "priority") and i + 1 < len(words) and obj == "filter":
                try:
                    prio = int(words[i + 1], 0)
                except ValueError:
                    raise ConfigError(f"tc line {text!r}: prio {words[i + 1]!r} is not a "
                                      "number") from None
                i += 2
            elif w in ("estimator",) and i + 2 < len(words):
                i += 3
            else:
                break
    if i >= len(words):
        raise ConfigError(f"tc line {text!r}: no qdisc, class or filter kind")
    return TcLine(obj, verb, dev, parent, handle, words[i], tuple(words[i + 1:]), protocol,
                  prio)


class Words:
    """A cursor over option words, for ``from_tc`` parsers; errors name the spec and the word.

    Examples
    --------
    >>> w = Words(["limit", "10", "perturb", "5"], "sfq")
    >>> [(k, w.value(k)) for k in w]
    [('limit', '10'), ('perturb', '5')]
    """

    def __init__(self, words: Sequence[str], what: str) -> None:
        self.words = list(words)
        self.i = 0
        self.what = what

    def __iter__(self) -> Iterator[str]:
        while self.i < len(self.words):
            word = self.words[self.i]
            self.i += 1
            yield word

    def value(self, keyword: str) -> str:
        """The word after ``keyword``."""
        if self.i >= len(self.words):
            raise ConfigError(f"{self.what}: {keyword!r} needs a value")
        word = self.words[self.i]
        self.i += 1
        return word

    def number(self, keyword: str, cast=int) -> Any:
        """The number after ``keyword`` (``int`` accepts 0x…)."""
        text = self.value(keyword)
        try:
            return int(text, 0) if cast is int else cast(text)
        except ValueError:
            raise ConfigError(f"{self.what}: {keyword} {text!r} is not a number") from None

    def unknown(self, word: str) -> ConfigError:
        return ConfigError(f"{self.what}: unknown option {word!r}")


class QdiscSpec:
    """Mixin of every qdisc spec (a frozen dataclass); see the module docstring.

    Subclasses set ``kind`` and implement :meth:`options` and :meth:`parse_options`.
    """

    kind: ClassVar[str] = ""
    #: Specs that carry a kernel profile take it from ``from_tc(..., profile=…)``.
    uses_profile: ClassVar[bool] = False

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.kind:
            SPEC_KINDS.setdefault(cls.kind, cls)

    def options(self) -> list[str]:
        """The option words after the kind, as ``tc`` takes them."""
        raise NotImplementedError

    @classmethod
    def parse_options(cls, words: Sequence[str], **context: Any) -> QdiscSpec:
        """Build the spec from its option words (see :meth:`from_tc`)."""
        raise NotImplementedError

    def to_tc(self) -> str:
        """``tc`` text of this spec: ``KIND OPTIONS`` for a lone qdisc; for a tree (children
        or filters) the ``tc`` command lines that build it, on a device named ``DEV``."""
        if not self.is_tree():
            return " ".join([self.kind, *self.options()])
        return "\n".join("tc " + " ".join(argv) for argv in self.commands("DEV"))

    @classmethod
    def from_tc(cls, text: str | Sequence[str], **context: Any) -> QdiscSpec:
        """Read a spec from ``tc`` text: ``KIND OPTIONS``, a whole command line, or the lines
        of a tree (qdiscs, classes and filters; see :func:`qoslab.qdiscs.parse_tree`).

        ``context`` carries what tc text does not say (``profile=`` for specs whose behaviour
        depends on the kernel era).
        """
        if isinstance(text, str) and len([ln for ln in text.splitlines() if ln.strip()]) > 1:
            from .qdiscs.tree import parse_tree  # cycle: qoslab.qdiscs.tree imports this one

            spec = parse_tree(text, **context)
        else:
            line = parse_tc_line(text)
            target = SPEC_KINDS.get(line.kind)
            if target is None:
                raise ConfigError(f"tc text {text!r}: qoslab does not model the {line.kind!r} "
                                  f"qdisc; it models {', '.join(sorted(SPEC_KINDS))}")
            if not target.uses_profile:
                context = {k: v for k, v in context.items() if k != "profile"}
            spec = target.parse_options(line.options, **context)
        if cls.kind and spec.kind != cls.kind:
            raise ConfigError(f"tc text {text!r}: expected a {cls.kind!r} qdisc, got "
                              f"{spec.kind!r}")
        return spec

    def graft(self, children: dict[str, Any], filters: list, handle: str) -> QdiscSpec:
        """This spec with the child qdiscs (by parent class id) and filters found for it in a
        tree (see :func:`qoslab.qdiscs.parse_tree`); a classless qdisc takes none."""
        if children:
            raise ConfigError(f"{self.kind} is classless: no qdisc can hang below it "
                              f"({', '.join(children)})")
        if filters:
            raise ConfigError(f"{self.kind}: qoslab models no filter attached to it")
        return self

    def filter_specs(self) -> tuple:
        """Filters attached to this qdisc."""
        return ()

    def is_tree(self) -> bool:
        """Whether the spec needs more than one tc line (children, classes or filters)."""
        return bool(self.child_specs() or self.filter_specs())

    def check(self, profile: Any = None) -> None:
        """Raise :class:`ConfigError` if the kernel era of ``profile`` lacks something."""

    def commands(self, dev: str, parent: str = "root", handle: str | None = None
                 ) -> list[list[str]]:
        """``tc`` argument lists (without ``tc``) that build this qdisc on ``dev``."""
        where = ["root"] if parent == "root" else ["parent", parent]
        return [["qdisc", "add", "dev", dev, *where, *(["handle", handle] if handle else []),
                 self.kind, *self.options()]]

    def child_specs(self) -> tuple:
        """Child qdisc specs (classful qdiscs), for walks over a tree."""
        return ()


class FilteredQdiscSpec(QdiscSpec):
    """A classless qdisc whose flows one attached filter may choose (sfq, fq_codel): the spec
    has a ``classifier`` field (a filter spec or None) that a tree's filter line fills."""

    def graft(self, children: dict[str, Any], filters: list, handle: str) -> QdiscSpec:
        if children:
            raise ConfigError(f"{self.kind} is classless: no qdisc can hang below it "
                              f"({', '.join(children)})")
        if len(filters) > 1:
            raise ConfigError(f"{self.kind}: one attached filter is modelled, the tree "
                              f"attaches {len(filters)}")
        return replace(self, classifier=filters[0]) if filters else self

    def filter_specs(self) -> tuple:
        return (self.classifier,) if self.classifier is not None else ()

    def commands(self, dev: str, parent: str = "root", handle: str | None = None
                 ) -> list[list[str]]:
        handle = handle or ("1:" if self.classifier is not None else None)
        out = QdiscSpec.commands(self, dev, parent, handle)
        if self.classifier is not None:
            out.append(["filter", "add", "dev", dev, "parent", handle, "protocol", "all",
                        "prio", "1", *self.classifier.to_tc().split()])
        return out
