"""Extensions of Concert that need optional packages.

* :mod:`concert.ext.viewers` -- live viewers of images and curves, drawn
  with matplotlib (the ``viewers`` extra) in a process of their own.

Nothing here is imported by ``import concert``; each module imports its
optional package only where it needs it.
"""
