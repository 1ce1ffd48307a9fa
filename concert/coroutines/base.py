"""The core of push-style processing: :func:`coroutine`, :func:`inject` and push-style :func:`broadcast`.

A push-style consumer is a generator that receives items with ``yield``::

    @coroutine
    def printer():
        while True:
            item = yield
            print(item)

:func:`coroutine` primes it (advances it to its first ``yield``), so that
``printer().send(item)`` works at once. :func:`inject` sends every item of an
iterable to a consumer; :func:`broadcast` (called with consumers only)
returns a consumer forwarding each item to all of them. Called with a
producer first, :func:`broadcast` is the pull-style one of
:mod:`concert.pipelines`: the two are told apart by their arguments.

Everything here runs in the calling thread: a push-style chain is as fast as
its slowest member, and an exception a consumer raises propagates to
whoever sent the item.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Generator, Iterable, List

__all__ = ["broadcast", "coroutine", "inject", "is_coroutine"]

Coroutine = Generator[Any, Any, Any]


def coroutine(func: Callable[..., Coroutine]) -> Callable[..., Coroutine]:
    """Decorate a generator function so that calling it returns a primed generator.

    :raises TypeError: from the call, if ``func`` does not return a generator.
    """

    @functools.wraps(func)
    def start(*args: Any, **kwargs: Any) -> Coroutine:
        generator = func(*args, **kwargs)
        if not inspect.isgenerator(generator):
            raise TypeError(
                f"@coroutine: {func.__qualname__}() returned {type(generator).__name__}, not a generator"
            )
        next(generator)
        return generator

    return start


def is_coroutine(value: Any) -> bool:
    """Whether ``value`` is a push-style consumer: a generator that has been started (primed)."""
    return inspect.isgenerator(value) and inspect.getgeneratorstate(value) != inspect.GEN_CREATED


def inject(generator: Iterable[Any], consumer: Coroutine) -> None:
    """Send every item of ``generator`` (any iterable) to the push-style ``consumer``, in the calling thread.

    :raises TypeError: if ``consumer`` is not a primed generator.
    :raises: whatever the consumer raises for an item (the rest is not sent).
    """
    if not is_coroutine(consumer):
        raise TypeError(
            f"inject(): consumer {consumer!r} is not a primed generator (decorate it with @coroutine)"
        )
    for item in generator:
        consumer.send(item)


def broadcast(*args: Any, **kwargs: Any) -> Any:
    """Push style: ``broadcast(*consumers)`` returns a primed consumer that sends each item to every consumer.

    Pull style (:func:`concert.pipelines.broadcast`): ``broadcast(producer,
    *consumers, queue_size=8)`` when the first argument is not a primed
    generator; it returns one future per consumer.

    :raises TypeError: push style, if any consumer is not a primed generator.
    """
    if args and all(is_coroutine(arg) for arg in args) and not kwargs:
        return _forward(list(args))
    from concert.pipelines import broadcast as pull

    return pull(*args, **kwargs)


@coroutine
def _forward(consumers: List[Coroutine]) -> Coroutine:
    while True:
        item = yield
        for consumer in consumers:
            consumer.send(item)
