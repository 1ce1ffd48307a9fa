"""Sinks, the legacy module: :func:`null`, :class:`Result`, :class:`Accumulate` and :class:`Average`.

These are the sinks of :mod:`concert.pipelines` (the same objects, not
copies), which work in both styles:

* pull style, as consumers of :func:`~concert.pipelines.broadcast`: called
  with an iterable they consume it (``broadcast(producer, acc)``, ``acc(frames)``);
* push style, as the legacy coroutines: called without arguments they return
  a primed generator to ``send()`` items to::

      acc = Accumulate()
      inject(frames, acc())
      acc.items
"""

from concert.pipelines import Accumulate, Average, Result, null

__all__ = ["Accumulate", "Average", "Result", "null"]
