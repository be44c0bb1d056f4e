"""Placeholders: the values a recording hands the handler instead of real input and step results.

A placeholder prints as `$Input{path}` or `$Step{tag}{path}`, can be formatted
into strings and drilled into (``result["id"]``), but using it as a real value
(a truth test, a comparison, arithmetic) raises `PlaceholderUsed`, so a
recording never silently follows a made-up branch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ductape_cli.engine.context import MAPPING_METHODS, called_by_library

if TYPE_CHECKING:
    from ductape_cli.recording import Recorder


class PlaceholderUsed(TypeError):
    """A placeholder was used as a real value while recording."""

    def __init__(self, placeholder: Placeholder, how: str) -> None:
        self.placeholder = placeholder
        self.how = how
        super().__init__(f"{placeholder} has no value while recording ({how})")


# -- placeholders --------------------------------------------------------------------------


class Placeholder:
    """Stands for a value known only at run time: ``$Input{a.b}``, ``$Step{tag}{a}``, ``$Signal{x}``."""

    __slots__ = ("_path", "_recorder", "_root", "_tag")
    _root: str
    _tag: str | None
    _path: tuple[str, ...]
    _recorder: Recorder | None

    def __init__(
        self, root: str, tag: str | None, path: tuple[str, ...], recorder: Recorder | None = None
    ) -> None:
        object.__setattr__(self, "_root", root)
        object.__setattr__(self, "_tag", tag)
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_recorder", recorder)

    # What it is
    @property
    def root(self) -> str:
        return self._root

    @property
    def tag(self) -> str | None:
        return self._tag

    @property
    def path(self) -> tuple[str, ...]:
        return self._path

    def text(self) -> str:
        if self._root == "Input":
            return "$Input{" + ".".join(self._path) + "}"
        head = f"${self._root}" + ("{" + self._tag + "}" if self._tag is not None else "")
        return head + ("{" + ".".join(self._path) + "}" if self._path else "")

    def child(self, key: Any) -> Placeholder:
        if isinstance(key, slice):
            raise PlaceholderUsed(self, "sliced")
        return Placeholder(self._root, self._tag, (*self._path, str(key)), self._recorder)

    # Printing and drilling in are fine
    def __str__(self) -> str:
        return self.text()

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return format(self.text(), spec)

    def __getattr__(self, name: str) -> Placeholder:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.child(name)

    def __getitem__(self, key: Any) -> Placeholder:
        return self.child(key)

    def __setattr__(self, name: str, value: Any) -> None:
        pass  # the handler may decorate a result it got; nothing to remember

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # ``result.get("x")`` / ``result.get("x", default)`` read like ``result["x"]``.
        if self._path and self._path[-1] == "get" and args:
            parent = Placeholder(self._root, self._tag, self._path[:-1], self._recorder)
            return parent.child(args[0])
        method = self._path[-1] if self._path else "value"
        raise PlaceholderUsed(
            Placeholder(self._root, self._tag, self._path[:-1], self._recorder),
            f"called .{method}()",
        )

    def __iter__(self) -> Iterator[Any]:
        if self._recorder is not None:
            self._recorder.warn_once(
                f"iterated over {self.text()}, which has no value while recording, so the loop recorded "
                "nothing; give it sample data with record_input"
            )
        return iter(())

    def __hash__(self) -> int:
        return hash(self.text())

    def __add__(self, other: Any) -> str:
        if isinstance(other, str):
            return self.text() + other
        raise PlaceholderUsed(self, "arithmetic")

    def __radd__(self, other: Any) -> str:
        if isinstance(other, str):
            return other + self.text()
        raise PlaceholderUsed(self, "arithmetic")

    def __copy__(self) -> Placeholder:
        return self

    def __deepcopy__(self, memo: Any) -> Placeholder:
        return self

    def __reduce__(self) -> Any:
        return (str, (self.text(),))


def _refuse(how: str) -> Callable[..., Any]:
    def method(self: Placeholder, *args: Any) -> Any:
        raise PlaceholderUsed(self, how)

    return method


for _name in (
    "__bool__",
    "__len__",
    "__contains__",
    "__int__",
    "__float__",
    "__index__",
    "__complex__",
):
    setattr(
        Placeholder,
        _name,
        _refuse("truth test" if _name == "__bool__" else f"{_name.strip('_')}()"),
    )
for _name in ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"):
    setattr(Placeholder, _name, _refuse("comparison"))
for _name in (
    "sub",
    "mul",
    "truediv",
    "floordiv",
    "mod",
    "pow",
    "and",
    "or",
    "xor",
    "lshift",
    "rshift",
    "matmul",
):
    setattr(Placeholder, f"__{_name}__", _refuse("arithmetic"))
    setattr(Placeholder, f"__r{_name}__", _refuse("arithmetic"))
for _name in ("__neg__", "__pos__", "__abs__", "__invert__", "__round__"):
    setattr(Placeholder, _name, _refuse("arithmetic"))


class RecordedMapping(dict):
    """Real recording data (record_input, a scenario, an override) with attribute access.

    Keys it lacks read as deeper placeholders, since the real value will have them.
    """

    def __init__(self, data: Mapping[str, Any], origin: Placeholder) -> None:
        super().__init__(data)
        self._origin = origin

    def __getattribute__(self, name: str) -> Any:
        # The run's InputView rule: a present field is the field, an absent one a placeholder (the
        # real input may have it), also for items/get/keys/values/copy; library code (json) sees methods.
        if name[:1] == "_" or name == "to_dict":
            return object.__getattribute__(self, name)
        if name in MAPPING_METHODS and called_by_library():
            return object.__getattribute__(self, name)
        if dict.__contains__(self, name) or name in MAPPING_METHODS:
            return self[name]
        return object.__getattribute__(self, name)

    def to_dict(self) -> dict[str, Any]:
        return dict(self)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_origin":
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, key: Any) -> Any:
        if dict.__contains__(self, key):
            return _wrap(dict.__getitem__(self, key), self._origin.child(key))
        return self._origin.child(key)

    def get(self, key: Any, default: Any = None) -> Any:
        return self[key]

    def __copy__(self) -> RecordedMapping:
        return RecordedMapping(dict(self), self._origin)

    def __deepcopy__(self, memo: Any) -> RecordedMapping:
        import copy

        return RecordedMapping(copy.deepcopy(dict(self), memo), self._origin)


class RecordedList(list):
    """A list from recording data; steps made while iterating it have data-derived (dynamic) tags."""

    def __init__(self, data: Iterable[Any], origin: Placeholder) -> None:
        super().__init__(data)
        self._origin = origin

    def __getitem__(self, index: Any) -> Any:
        value = list.__getitem__(self, index)
        if isinstance(index, slice):
            return RecordedList(value, self._origin)
        return _wrap(value, self._origin.child(index % len(self) if index < 0 else index))

    def __iter__(self) -> Iterator[Any]:
        recorder = self._origin._recorder
        if recorder is not None:
            recorder.iterating += 1
        try:
            for index, value in enumerate(list.__iter__(self)):
                yield _wrap(value, self._origin.child(index))
        finally:
            if recorder is not None:
                recorder.iterating -= 1


def _wrap(value: Any, origin: Placeholder) -> Any:
    if isinstance(value, Mapping) and not isinstance(value, RecordedMapping):
        return RecordedMapping(value, origin)
    if isinstance(value, (list, tuple)) and not isinstance(value, RecordedList):
        return RecordedList(value, origin)
    return value


def to_json(value: Any) -> Any:
    """Recording values as JSON: placeholders become their text, unknown objects their repr."""
    if isinstance(value, Placeholder):
        return value.text()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return (
            value if value == value and value not in (float("inf"), float("-inf")) else str(value)
        )
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json(v) for v in value]
    if callable(value):
        return f"<function {getattr(value, '__qualname__', type(value).__name__)}>"
    return repr(value)
