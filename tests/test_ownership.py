"""Ownership follows every thread Concert starts for the owner (SPEC §4, issue 8 item 2).

Inside ``with motor:`` the producer and consumers of a broadcast, the func of
a feed_queue, an experiment's acquisitions and a ``threaded`` function all act
as the block's owner: they write to the motor without waiting for the block's
own lock. Anyone else still waits. ``LOCK_TIMEOUT`` is short here, so that a
regression fails with ``LockError`` instead of hanging.
"""

from __future__ import annotations

import threading

import pytest

from concert import config
from concert.devices.cameras.dummy import Camera
from concert.devices.motors.dummy import LinearMotor, RotationMotor
from concert.exceptions import LockError
from concert.futures import resolve, threaded
from concert.pipelines import Accumulate, broadcast, feed_queue, null
from concert.processes.experiment import Acquisition, Experiment
from concert.quantities import q
from concert.storage.walkers import DirectoryWalker
from tests.conftest import TIMEOUT


@pytest.fixture(autouse=True)
def short_lock_timeout(monkeypatch):
    monkeypatch.setattr(config, "LOCK_TIMEOUT", 5 * q.s)


@pytest.fixture
def stage():
    return LinearMotor(position=0 * q.mm, motion_velocity=1000 * q.mm / q.s)


def moving(stage, count):
    for index in range(count):
        stage.position = index * q.mm
        yield stage.position


def test_a_broadcast_producer_acts_for_the_block(stage):
    with stage:
        assert resolve(broadcast(moving(stage, 3), null), timeout=TIMEOUT) == [3]
    assert stage.position == 2 * q.mm


def test_broadcast_consumers_act_for_the_block(stage):
    def park(frames):
        for _ in frames:
            stage.position = -1 * q.mm
        return stage.position

    with stage:
        (parked, collected) = broadcast(range(3), park, Accumulate())
        assert parked.result(TIMEOUT) == -1 * q.mm
        assert collected.result(TIMEOUT) == [0, 1, 2]


def test_a_feed_queue_function_acts_for_the_block(stage):
    def follow(items):
        while True:
            item = items.get(timeout=TIMEOUT)
            if item.data is None:
                return stage.position
            stage.position = item.data * q.mm

    with stage:
        assert feed_queue(range(3), follow).result(TIMEOUT) == 2 * q.mm


def test_a_threaded_function_acts_for_the_block(stage):
    errors = []

    @threaded
    def move():
        try:
            stage.position = 4 * q.mm
        except BaseException as error:  # reported to the test thread below
            errors.append(error)

    with stage:
        thread = move()
        thread.join(TIMEOUT)
        assert not thread.is_alive() and errors == []
    assert stage.position == 4 * q.mm


def test_an_experiment_runs_inside_with_motor_and_recording(tmp_path):
    motor = RotationMotor(motion_velocity=10000 * q.deg / q.s)
    camera = Camera(sensor_width=16 * q.pixel, sensor_height=8 * q.pixel)
    walker = DirectoryWalker(root=str(tmp_path))

    def projections():
        for index in range(4):
            motor.position = index * 10 * q.deg
            yield camera.grab_async().result(TIMEOUT)

    experiment = Experiment([Acquisition("projections", projections)], walker)
    with motor, camera.recording():
        experiment.run().result(TIMEOUT)
    assert motor.position == 30 * q.deg
    written = list(tmp_path.rglob("*.tif"))
    assert written, "the experiment wrote nothing"


@pytest.mark.usefixtures("asynchronous")
def test_others_still_wait_for_the_block(stage, monkeypatch):
    monkeypatch.setattr(config, "LOCK_TIMEOUT", 0.2 * q.s)
    outcome = {}

    def intruder():
        try:
            stage.position = 9 * q.mm
        except LockError as error:
            outcome["error"] = error

    with stage:
        resolve(broadcast(moving(stage, 2), null), timeout=TIMEOUT)
        thread = threading.Thread(target=intruder)
        thread.start()
        thread.join(TIMEOUT)
    assert "LOCK_TIMEOUT" in str(outcome["error"])
    assert stage.position == 1 * q.mm
