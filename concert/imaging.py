"""Images that carry their metadata: :class:`ImageWithMetadata`.

A camera frame is a :class:`numpy.ndarray` with a ``metadata`` dictionary
(frame number, timestamp, exposure time, region of interest …) that travels
with it through slicing, arithmetic, copies and pickling -- so a frame sent
to another process or written to disk later still says where it came from::

    frame = ImageWithMetadata(np.zeros((480, 640), dtype=np.uint16), {"frame": 7})
    cropped = frame[100:200, 50:150]
    cropped.metadata["frame"]        # 7
    cropped.metadata["cropped"] = True
    "cropped" in frame.metadata      # False: each array has a dict of its own
"""

from __future__ import annotations

import copy
from typing import Any, Dict, Mapping, Optional

import numpy as np

__all__ = ["ImageWithMetadata"]


class ImageWithMetadata(np.ndarray):
    """A numpy array with a ``metadata`` dict.

    ``ImageWithMetadata(input_array, metadata=None)`` views ``input_array``
    (anything :func:`numpy.asarray` accepts; the data is not copied when it
    already is an array). ``metadata`` is copied into a new dict; when it is
    ``None`` the metadata of ``input_array`` is copied if it has some, else
    the dict starts empty.

    Promises:

    * Every array made from an image -- a slice or other view, ``copy()``,
      ``copy.copy``, the result of a ufunc such as ``image + 1`` -- gets its
      own copy of the metadata dict: adding, replacing or removing a key in
      one never changes the other. The copy is shallow (values are shared),
      except for :func:`copy.deepcopy`, which copies the values too. A ufunc
      of several images takes the metadata of the first image operand.
    * ``pickle.loads(pickle.dumps(image))`` (any protocol) restores data,
      dtype, shape, memory order and metadata; the metadata values must be
      picklable.
    * Reductions to a single value (``image.sum()``, ``image.max()``) return
      numpy scalars, as for plain arrays.
    * ``np.asarray(image)`` or ``image.view(np.ndarray)`` drops the metadata.
    """

    metadata: Dict[str, Any]

    def __new__(cls, input_array: Any, metadata: Optional[Mapping[str, Any]] = None) -> ImageWithMetadata:
        image = np.asarray(input_array).view(cls)
        if metadata is None:
            metadata = getattr(input_array, "metadata", None)
        image.metadata = {} if metadata is None else dict(metadata)
        return image

    def __array_finalize__(self, obj: Any) -> None:
        # Called for views, slices, copies and ufunc outputs: `obj` is the array they come from.
        parent = getattr(obj, "metadata", None)
        self.metadata = {} if parent is None else dict(parent)

    def __array_wrap__(self, array: Any, context: Any = None, return_scalar: bool = False) -> Any:
        # numpy >= 2 asks for a scalar (return_scalar) where a plain array would give one.
        if return_scalar:
            return array[()]
        return super().__array_wrap__(array, context)

    def __deepcopy__(self, memo: Dict[int, Any]) -> ImageWithMetadata:
        duplicate = super().__deepcopy__(memo)
        duplicate.metadata = copy.deepcopy(self.metadata, memo)
        return duplicate

    def __reduce__(self) -> tuple:
        # ndarray's own state, with the metadata appended as one more item.
        constructor, arguments, state = super().__reduce__()
        return constructor, arguments, (*state, self.metadata)

    def __setstate__(self, state: tuple) -> None:
        # Six items: ndarray's five plus ours. Five: pickled as a plain ndarray.
        if len(state) == 6:
            *array_state, metadata = state
        else:
            array_state, metadata = state, {}
        super().__setstate__(tuple(array_state))
        self.metadata = dict(metadata)
