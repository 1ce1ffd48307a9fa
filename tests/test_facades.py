"""The facades are built from their sources' ``__all__`` and agree (issue 8, item 19)."""

from __future__ import annotations

import importlib

import pytest

import concert.base
import concert.helpers
from concert import dispatcher, exceptions, futures, parameters, polling, states, timing, units, utils
from concert.networking import endpoints

legacy_async = importlib.import_module("concert.async")


def exported(module):
    return {name: getattr(module, name) for name in module.__all__}


def test_concert_async_exports_exactly_what_concert_helpers_does():
    assert legacy_async.__all__ == concert.helpers.__all__
    helpers = exported(concert.helpers)
    for name, value in exported(legacy_async).items():
        assert value is helpers[name], name


@pytest.mark.parametrize(
    "facade, sources",
    [
        (concert.helpers, (futures, dispatcher, polling, utils, units, timing, endpoints)),
        (concert.base, (parameters, states, exceptions)),
    ],
)
def test_a_facade_offers_every_name_its_sources_export(facade, sources):
    for source in sources:
        for name in source.__all__:
            assert name in facade.__all__, f"{facade.__name__} lacks {source.__name__}.{name}"
            assert getattr(facade, name) is getattr(source, name), name


def test_every_exported_name_of_a_facade_exists():
    for facade in (concert.helpers, concert.base, legacy_async):
        for name in facade.__all__:
            assert getattr(facade, name) is not None, f"{facade.__name__}.{name}"
