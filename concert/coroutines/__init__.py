"""Push-style data processing, the legacy API's coroutines.

A push-style consumer is a primed generator: items are *sent* to it with
``consumer.send(item)``. :mod:`concert.pipelines` is the pull-style
counterpart (consumers iterate over their input).

* :mod:`concert.coroutines.base` -- :func:`~concert.coroutines.base.coroutine`,
  :func:`~concert.coroutines.base.inject`, :func:`~concert.coroutines.base.broadcast`
  (push style with consumers only, pull style with a producer first), and
  :func:`~concert.coroutines.base.as_push_consumer` between the styles;
* :mod:`concert.coroutines.sinks` -- ``null``, ``Result``, ``Accumulate``,
  ``Average``: the sinks of :mod:`concert.pipelines`, usable in both styles;
* :mod:`concert.coroutines.filters` -- push-style filters (flat correction,
  sinograms, backprojection, a queue in a thread …).
"""
