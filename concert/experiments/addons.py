"""Addons: consumers attached to legacy acquisitions, and detached again, in one call.

An :class:`Addon` is made for some acquisitions of a
:class:`~concert.experiments.base.Experiment` and attaches itself at once:
it appends a consumer factory to each acquisition's ``consumers``;
:meth:`Addon.detach` takes them out again, :meth:`Addon.attach` puts them
back. Attaching an attached addon, or detaching a detached one, raises
:class:`AddonError`.

* :class:`Consumer` attaches a consumer of your own;
* :class:`Accumulator` keeps each acquisition's frames of the last run in
  :attr:`Accumulator.items` (a list, or a preallocated array);
* :class:`ImageWriter` writes each acquisition's frames through a walker,
  into a directory named after the acquisition.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence

from concert.coroutines.base import Inbox, coroutine, is_coroutine
from concert.coroutines.sinks import Accumulate
from concert.exceptions import AddonError as AddonError  # re-exported: where the legacy API has it
from concert.experiments.base import Acquisition
from concert.naming import describe_value

__all__ = ["Accumulator", "Addon", "Consumer", "ImageWriter"]


class Addon:
    """Something attached to ``acquisitions`` (legacy :class:`~concert.experiments.base.Acquisition` objects).

    Attaches itself when made. Subclasses implement :meth:`_attach_to` and
    :meth:`_detach_from` (one acquisition each).

    :raises AddonError: if an acquisition is not a legacy Acquisition.
    """

    def __init__(self, acquisitions: Sequence[Acquisition]) -> None:
        acquisitions = list(acquisitions)
        for acquisition in acquisitions:
            if not isinstance(acquisition, Acquisition):
                raise AddonError(
                    f"{type(self).__name__}: {describe_value(acquisition)} is not an Acquisition of "
                    "concert.experiments.base"
                )
        self.acquisitions = acquisitions
        self._attached = False
        self.attach()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(a.name for a in self.acquisitions)})"

    @property
    def attached(self) -> bool:
        """Whether the addon is attached to its acquisitions now."""
        return self._attached

    def attach(self) -> None:
        """Attach to every acquisition.

        :raises AddonError: it is attached already.
        """
        if self._attached:
            raise AddonError(f"{self!r} is attached already (detach() it first)")
        for acquisition in self.acquisitions:
            self._attach_to(acquisition)
        self._attached = True

    def detach(self) -> None:
        """Detach from every acquisition.

        :raises AddonError: it is not attached.
        """
        if not self._attached:
            raise AddonError(f"{self!r} is not attached")
        for acquisition in self.acquisitions:
            self._detach_from(acquisition)
        self._attached = False

    def _attach_to(self, acquisition: Acquisition) -> None:
        """Attach to one acquisition (the base class attaches nothing)."""

    def _detach_from(self, acquisition: Acquisition) -> None:
        """Detach from one acquisition (the base class has nothing to detach)."""


class _FactoryAddon(Addon):
    """An addon that attaches one consumer factory per acquisition, made by :meth:`_factory`."""

    def __init__(self, acquisitions: Sequence[Acquisition]) -> None:
        self._factories: Dict[int, Any] = {}  # id(acquisition) -> the factory attached to it
        super().__init__(acquisitions)

    def _factory(self, acquisition: Acquisition) -> Any:
        raise NotImplementedError

    def _attach_to(self, acquisition: Acquisition) -> None:
        factory = self._factory(acquisition)
        self._factories[id(acquisition)] = factory
        acquisition.consumers.append(factory)

    def _detach_from(self, acquisition: Acquisition) -> None:
        factory = self._factories.pop(id(acquisition), None)
        for index, consumer in enumerate(acquisition.consumers):
            if consumer is factory:  # (taken out by hand meanwhile: nothing left to do)
                del acquisition.consumers[index]
                break


class Consumer(_FactoryAddon):
    """Attach ``consumer`` to every acquisition of ``acquisitions``.

    ``consumer`` is what an acquisition's ``consumers`` hold: a callable
    returning a primed coroutine (called anew at every run), or a primed
    coroutine.

    :raises AddonError: ``consumer`` is neither.
    """

    def __init__(self, acquisitions: Sequence[Acquisition], consumer: Any) -> None:
        if not (callable(consumer) or is_coroutine(consumer)):
            raise AddonError(
                f"Consumer: {describe_value(consumer)} is neither a primed coroutine "
                "nor a callable returning one"
            )
        self.consumer = consumer
        super().__init__(acquisitions)

    def _factory(self, acquisition: Acquisition) -> Any:
        return self.consumer


class Accumulator(_FactoryAddon):
    """Keep the frames of each acquisition's last run: ``items[acquisition]``.

    Each acquisition gets a :class:`concert.coroutines.sinks.Accumulate`
    (the sink itself, in :attr:`accumulates`). Without ``shapes`` its items
    are a list of the frames. With ``shapes`` -- one per acquisition, in the
    order of ``acquisitions``, each the shape of the whole stack, ``(frames,
    height, width)`` -- they are a preallocated array of that shape and
    ``dtype`` (float64 when ``None``), filled frame by frame, zero past the
    frames received. ``dtype`` applies to those arrays only. The items start
    over at every run of the acquisition, so read :attr:`items` after it.

    :raises AddonError: here, if ``shapes`` does not have one valid shape per
        acquisition; from the run, for a frame of another shape than
        ``shape[1:]``, of a dtype that does not fit ``dtype``, or one frame
        more than the array holds (that frame is not stored, and the
        acquisition fails).
    """

    def __init__(
        self,
        acquisitions: Sequence[Acquisition],
        shapes: Optional[Sequence[Any]] = None,
        dtype: Any = None,
    ) -> None:
        acquisitions = list(acquisitions)
        if shapes is not None:
            shapes = list(shapes)
            if len(shapes) != len(acquisitions):
                raise AddonError(
                    f"Accumulator: {len(shapes)} shapes for {len(acquisitions)} acquisitions "
                    "(give one shape per acquisition)"
                )
        self.dtype = dtype
        #: acquisition -> its :class:`~concert.coroutines.sinks.Accumulate`.
        self.accumulates: Dict[Acquisition, Accumulate] = {}
        for index, acquisition in enumerate(acquisitions):
            shape = None if shapes is None else shapes[index]
            try:
                sink = Accumulate() if shape is None else Accumulate(shape, dtype)
            except (TypeError, ValueError) as error:
                raise AddonError(f"Accumulator: the shape for {acquisition!r}: {error}") from None
            self.accumulates[acquisition] = sink
        super().__init__(acquisitions)

    @property
    def items(self) -> Dict[Acquisition, Any]:
        """acquisition -> its frames of the last run (a list, or an array with ``shapes``)."""
        return {acquisition: sink.items for acquisition, sink in self.accumulates.items()}

    def _factory(self, acquisition: Acquisition) -> Callable[[], Any]:
        sink = self.accumulates[acquisition]
        owner = f"{self!r} for {acquisition!r}"

        def accumulate() -> Any:
            return _refusing(sink(), owner)

        return accumulate


@coroutine
def _refusing(sink: Any, owner: str) -> Any:
    """Forward to ``sink``; what it refuses (shape, dtype, one too many) is an AddonError naming ``owner``."""
    while True:
        frame = yield
        try:
            sink.send(frame)
        except (ValueError, TypeError) as error:  # LimitError is a ValueError
            raise AddonError(f"{owner}: {error}") from error


class ImageWriter(_FactoryAddon):
    """Write the frames of each acquisition through ``walker``, into a directory named after the acquisition.

    The directory is made below the walker's position when the acquisition
    starts -- inside the run's directory when ``walker`` is the
    experiment's own -- and the walker does not move. The frames are
    written by a thread of the writer's own (a
    :class:`~concert.coroutines.base.Inbox` running the walker's writer):
    with ``async_=True`` (the default) sending a frame queues it and the
    acquisition goes on meanwhile (the queue is not bounded: a disk slower
    than the camera costs memory); with ``async_=False`` sending a frame
    returns once it is written. At the end of the acquisition every frame
    sent has been written.

    A data set that exists is never overwritten: the acquisition then fails
    at its start with :class:`~concert.exceptions.StorageError`, before any
    frame. A writing error fails the acquisition, at the next frame sent or
    at its end; the frames written before stay, in complete files.

    :raises AddonError: ``walker`` is not a walker.
    """

    def __init__(self, acquisitions: Sequence[Acquisition], walker: Any, async_: bool = True) -> None:
        if not callable(getattr(walker, "create_writer", None)):
            raise AddonError(f"ImageWriter: walker must be a Walker, not {describe_value(walker)}")
        self.walker = walker
        self.async_ = bool(async_)
        super().__init__(acquisitions)

    def _factory(self, acquisition: Acquisition) -> Callable[[], Any]:
        def write() -> Any:
            inbox = Inbox(wait=not self.async_)
            job = self.walker.create_writer(inbox, name=acquisition.name)  # StorageError now, if it exists
            return inbox.start(job, f"{self!r} of {acquisition.name}")

        return write
