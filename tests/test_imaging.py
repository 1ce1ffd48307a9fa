"""ImageWithMetadata: metadata survives views, arithmetic, copies and pickling, and is never shared."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from concert.imaging import ImageWithMetadata


def image(metadata=None):
    return ImageWithMetadata(np.arange(12, dtype=np.uint16).reshape(3, 4), metadata)


def assert_same_image(restored, original, pickled=False):
    assert type(restored) is ImageWithMetadata
    assert restored.shape == original.shape
    if pickled:  # numpy pickles a non-native byte order as native (same values), arrays as images
        assert restored.dtype.newbyteorder("=") == original.dtype.newbyteorder("=")
        restored = restored.astype(original.dtype)
    assert restored.dtype == original.dtype
    assert restored.tobytes() == original.tobytes()  # bitwise: also NaN, NaT, -0.0
    assert restored.metadata == original.metadata
    assert restored.metadata is not original.metadata


# -- construction -------------------------------------------------------------------


def test_metadata_defaults_to_an_empty_dict_of_its_own():
    first, second = ImageWithMetadata([1, 2]), ImageWithMetadata([1, 2])
    assert first.metadata == {} and first.metadata is not second.metadata
    assert isinstance(first, np.ndarray) and first.tolist() == [1, 2]


def test_given_metadata_is_copied():
    given_dict = {"frame": 1}
    img = image(given_dict)
    given_dict["frame"] = 2
    assert img.metadata == {"frame": 1}


def test_input_image_passes_its_metadata_on_unless_metadata_is_given():
    original = image({"frame": 1})
    assert ImageWithMetadata(original).metadata == {"frame": 1}
    assert ImageWithMetadata(original, {"frame": 2}).metadata == {"frame": 2}
    assert ImageWithMetadata(original, {}).metadata == {}
    assert original.metadata == {"frame": 1}


def test_an_array_is_viewed_not_copied():
    data = np.zeros(4)
    img = ImageWithMetadata(data, {"frame": 0})
    data[0] = 5
    assert img[0] == 5


# -- views and arithmetic -------------------------------------------------------------


@pytest.mark.parametrize(
    "derive",
    [
        lambda img: img[1:],
        lambda img: img[:, ::2],
        lambda img: img.T,
        lambda img: img.reshape(12),
        lambda img: img.view(),
        lambda img: img + 1,
        lambda img: np.sqrt(img),
        lambda img: img.astype(np.float32),
        lambda img: img.sum(axis=0),
        lambda img: img.copy(),
        lambda img: copy.copy(img),
    ],
    ids=[
        "slice",
        "strided",
        "transpose",
        "reshape",
        "view",
        "add",
        "sqrt",
        "astype",
        "sum0",
        "copy",
        "copy.copy",
    ],
)
def test_derived_arrays_keep_an_independent_copy_of_the_metadata(derive):
    original = image({"frame": 7, "roi": (0, 0, 4, 3)})
    derived = derive(original)
    assert type(derived) is ImageWithMetadata
    assert derived.metadata == {"frame": 7, "roi": (0, 0, 4, 3)}
    derived.metadata["frame"] = 8
    derived.metadata["new"] = True
    assert original.metadata == {"frame": 7, "roi": (0, 0, 4, 3)}
    original.metadata.clear()
    assert derived.metadata == {"frame": 8, "roi": (0, 0, 4, 3), "new": True}


def test_a_view_still_shares_the_data():
    original = image({"frame": 1})
    row = original[1]
    row[0] = 99
    assert original[1, 0] == 99


def test_ufunc_of_two_images_takes_the_first_images_metadata():
    first, second = image({"who": "first"}), image({"who": "second"})
    assert (first + second).metadata == {"who": "first"}
    assert (second * first).metadata == {"who": "second"}
    assert (np.ones((3, 4)) - second).metadata == {"who": "second"}


def test_reductions_to_one_value_are_plain_scalars():
    img = image({"frame": 1})
    for value in (img.sum(), img.max(), img.mean(), img[0, 0]):
        assert not isinstance(value, np.ndarray)
    assert img.sum() == 66 and img.mean() == 5.5


def test_asarray_drops_the_metadata():
    plain = np.asarray(image({"frame": 1}))
    assert type(plain) is np.ndarray and not hasattr(plain, "metadata")


# -- copies and pickling ----------------------------------------------------------------


def test_copy_is_shallow_and_deepcopy_is_deep():
    original = image({"frame": 1, "history": ["dark"]})
    shallow, deep = copy.copy(original), copy.deepcopy(original)
    deep.metadata["history"].append("flat")
    assert original.metadata["history"] == ["dark"]
    shallow.metadata["history"].append("flat")  # values are shared by a shallow copy, as documented
    assert original.metadata["history"] == ["dark", "flat"]
    deep[0, 0] = 1000
    assert original[0, 0] == 0
    assert_same_image(copy.deepcopy(original), original)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_round_trip_every_protocol(protocol):
    original = image({"frame": 3, "timestamp": 1.5, "roi": (0, 0, 4, 3)})
    assert_same_image(pickle.loads(pickle.dumps(original, protocol=protocol)), original, pickled=True)


@pytest.mark.parametrize(
    "make",
    [lambda img: img.copy(order="F"), lambda img: img[:, ::2], lambda img: img.T, lambda img: img[0, 0:0]],
    ids=["fortran", "strided", "transposed", "empty"],
)
def test_pickle_round_trip_of_unusual_layouts(make):
    original = make(image({"frame": 3}))
    restored = pickle.loads(pickle.dumps(original, protocol=pickle.HIGHEST_PROTOCOL))
    assert_same_image(restored, original, pickled=True)
    np.testing.assert_array_equal(restored, original)


def test_unpickling_keeps_metadata_independent():
    original = image({"frame": 3})
    restored = pickle.loads(pickle.dumps(original))
    restored.metadata["frame"] = 4
    assert original.metadata == {"frame": 3}


def test_state_of_a_plain_ndarray_gives_empty_metadata():
    img = ImageWithMetadata(np.zeros(1), {"frame": 1})
    img.__setstate__(np.arange(3).__reduce__()[2])
    assert img.tolist() == [0, 1, 2] and img.metadata == {}


metadata_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=10),
    st.tuples(st.integers(), st.integers()),
)


@settings(max_examples=150, deadline=None)
@given(
    array=hnp.arrays(
        dtype=hnp.scalar_dtypes(),
        shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6),
    ),
    metadata=st.dictionaries(st.text(max_size=8), metadata_values, max_size=5),
    protocol=st.integers(0, pickle.HIGHEST_PROTOCOL),
)
def test_round_trips_of_random_images(array, metadata, protocol):
    original = ImageWithMetadata(array, metadata)
    assert_same_image(pickle.loads(pickle.dumps(original, protocol=protocol)), original, pickled=True)
    assert_same_image(copy.deepcopy(original), original)
    assert_same_image(original.copy(), original)
    if original.ndim:
        part = original[: original.shape[0] // 2]
        assert part.metadata == metadata and part.metadata is not original.metadata
