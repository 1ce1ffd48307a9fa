"""Small general-purpose Python helpers that Concert and user scripts share.

* :class:`Bunch` -- attribute access to the items of a dictionary or a list of names;
* :func:`memoize` -- thread-safe memoization that computes each result exactly once;
* :func:`is_iterable` -- whether ``iter(item)`` works.

The helpers about units and numbers are in :mod:`concert.units`, those about
timing in :mod:`concert.timing`; :class:`~concert.pipelines.PrioItem` is
beside the pipelines and :class:`~concert.networking.endpoints.CommData` in
:mod:`concert.networking`. :mod:`concert.helpers` offers them all.
"""

from __future__ import annotations

import functools
import threading
from typing import (
    Any,
    Callable,
    Dict,
    Hashable,
    Iterable,
    Iterator,
    Mapping,
    NamedTuple,
    TypeVar,
    Union,
)

from concert.naming import name_of

__all__ = ["Bunch", "CacheInfo", "is_iterable", "memoize"]

_F = TypeVar("_F", bound=Callable[..., Any])


# -- Bunch -----------------------------------------------------------------------------------


class Bunch:
    """Attribute access to the items of a dictionary, or to a list of names.

    ``Bunch({'foo': 123}).foo == 123``; ``Bunch(['foo', 'bar']).foo == 'foo'`` (each name
    is its own value). Besides attribute access a bunch supports ``name in bunch``,
    iteration over the names (in the order given), ``len`` and a readable ``repr``.
    Attributes can be assigned and deleted like on any object, which changes the items.

    Names must be strings; a name that is not a Python identifier is reachable with
    :func:`getattr`. Dunder names cannot shadow the special methods of the class.

    :raises TypeError: for ``values`` that are neither a mapping nor an iterable of names
        (a single string is rejected, it would become a bunch of its letters), and for a
        name that is not a string.
    :raises AttributeError: naming the attribute, when an unknown one is read.
    """

    def __init__(self, values: Union[Mapping[str, Any], Iterable[str]]) -> None:
        if isinstance(values, Mapping):
            items = dict(values)
        elif isinstance(values, (str, bytes)) or not is_iterable(values):
            raise TypeError(
                f"Bunch(values={values!r}): values must be a mapping or an iterable of names, "
                f"not {type(values).__name__}"
            )
        else:
            items = {name: name for name in values}
        for name in items:
            if not isinstance(name, str):
                raise TypeError(f"Bunch(values={values!r}): name {name!r} is not a string")
        self.__dict__.update(items)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup failed, i.e. for names the bunch does not have.
        known = ", ".join(sorted(self.__dict__)) or "nothing"
        raise AttributeError(f"Bunch has no attribute {name!r} (it has {known})")

    def __contains__(self, name: object) -> bool:
        return name in self.__dict__

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.__dict__))

    def __len__(self) -> int:
        return len(self.__dict__)

    def __repr__(self) -> str:
        items = ", ".join(f"{name}={value!r}" for name, value in self.__dict__.items())
        return f"Bunch({items})"


# -- memoize ---------------------------------------------------------------------------------


class CacheInfo(NamedTuple):
    """Statistics of a :func:`memoize` d function, from its ``cache_info()``."""

    #: Calls answered from the cache (including those that waited for another thread).
    hits: int
    #: Calls that ran the function (successfully or not).
    misses: int
    #: Number of results cached.
    currsize: int
    #: Threads blocked right now, waiting for another thread computing the same arguments.
    waiting: int


_KWARGS_MARK = object()


def memoize(func: _F) -> _F:
    """Remember the results of ``func``, which must return the same value for the same arguments.

    The cache key is made of the positional arguments and the keyword arguments (in any
    order), which must be hashable; ``f(1)`` and ``f(x=1)`` are different keys, and equal
    values such as ``1`` and ``1.0`` are the same key. The cache is never emptied except by
    ``func.cache_clear()``; ``func.cache_info()`` returns a :class:`CacheInfo`. Arguments are
    kept alive by the cache (for a method, ``self`` is one of them).

    Thread-safe: when several threads call with the same arguments at once, ``func`` runs
    once and the others wait for its result. Exceptions are not cached: the calling thread
    gets the exception, and each thread that was waiting tries again (one of them runs
    ``func`` anew). Calls with different arguments run concurrently.

    :raises TypeError: naming the function, for unhashable arguments.
    :raises RecursionError: when ``func`` calls itself with the same arguments (which
        would otherwise wait for itself forever).
    """
    name = name_of(func)
    cache: Dict[Hashable, Any] = {}
    computing: Dict[Hashable, int] = {}  # key -> ident of the thread running func
    condition = threading.Condition(threading.Lock())
    stats = {"hits": 0, "misses": 0, "waiting": 0}

    @functools.wraps(func)
    def memoized(*args: Any, **kwargs: Any) -> Any:
        key: Hashable = args
        if kwargs:
            key = (*args, _KWARGS_MARK, *sorted(kwargs.items()))
        try:
            hash(key)
        except TypeError as error:
            raise TypeError(
                f"memoized {name}() needs hashable arguments, got args={args!r}, kwargs={kwargs!r}: {error}"
            ) from None
        me = threading.get_ident()
        with condition:
            while True:
                if key in cache:
                    stats["hits"] += 1
                    return cache[key]
                owner = computing.get(key)
                if owner is None:
                    computing[key] = me
                    stats["misses"] += 1
                    break
                if owner == me:
                    raise RecursionError(f"memoized {name}() called itself with the same arguments {key!r}")
                stats["waiting"] += 1
                try:
                    condition.wait()
                finally:
                    stats["waiting"] -= 1
        try:
            result = func(*args, **kwargs)
        except BaseException:
            with condition:
                del computing[key]
                condition.notify_all()
            raise
        with condition:
            cache[key] = result
            del computing[key]
            condition.notify_all()
        return result

    def cache_clear() -> None:
        """Forget every remembered result (computations under way still store theirs)."""
        with condition:
            cache.clear()

    def cache_info() -> CacheInfo:
        with condition:
            return CacheInfo(stats["hits"], stats["misses"], len(cache), stats["waiting"])

    memoized.cache_clear = cache_clear  # type: ignore[attr-defined]
    memoized.cache_info = cache_info  # type: ignore[attr-defined]
    return memoized  # type: ignore[return-value]


# -- is_iterable -----------------------------------------------------------------------------


def is_iterable(item: Any) -> bool:
    """Whether ``item`` is iterable, i.e. whether ``iter(item)`` succeeds.

    Strings and bytes *are* iterable (over their characters), so this returns True for
    them; test ``isinstance(item, (str, bytes))`` first to treat them as single values.
    Scalars, 0-d arrays and scalar quantities are not iterable. ``iter`` is called, so an
    iterator passed here is not consumed, but a class whose ``__iter__`` has side effects
    runs them.
    """
    try:
        iter(item)
    except TypeError:
        return False
    return True
