"""Push-style data processing, the legacy API's coroutines (see :mod:`concert.coroutines.base`).

A push-style consumer is a primed generator: items are *sent* to it with
``consumer.send(item)``. :mod:`concert.pipelines` is the pull-style
counterpart (consumers iterate over their input); :func:`concert.pipelines.broadcast`
accepts both.
"""
