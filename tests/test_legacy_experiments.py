"""The legacy experiments (issue 9, SPEC §14): acquisitions, experiments, addons, imaging, closed loops."""

from __future__ import annotations

import itertools
import json
import threading
from concurrent.futures import CancelledError

import numpy as np
import pytest

from concert.coroutines.base import coroutine
from concert.devices.cameras.dummy import Camera
from concert.exceptions import ConcertError, LimitError, StateError, StorageError, UnitError
from concert.experiments.addons import Accumulator, Addon, AddonError, Consumer, ImageWriter
from concert.experiments.base import Acquisition, Experiment, ExperimentError
from concert.experiments.control import ClosedLoop, DummyLoop
from concert.experiments.imaging import frames, tomo_angular_step, tomo_max_speed, tomo_projections_number
from concert.polling import busy_wait
from concert.quantities import q
from concert.storage import DirectoryWalker, DummyWalker, read_tiff
from tests.conftest import TIMEOUT


def produce(count, value=0, shape=(4, 6)):
    """A producer factory: ``count`` frames ``value``, ``value + 1`` ..."""
    return lambda: (np.full(shape, value + i, dtype=np.uint16) for i in range(count))


@coroutine
def collect(into):
    while True:
        into.append((yield))


def collector(into):
    """A consumer factory (what acquisitions' consumers hold) appending what it is sent to ``into``."""
    return lambda: collect(into)


def small_camera():
    return Camera(sensor_width=8 * q.pixel, sensor_height=4 * q.pixel)


# -- Acquisition ---------------------------------------------------------------------------------


def test_an_acquisition_acquires_first_then_sends_its_frames_to_every_consumer():
    order, first, second = [], [], []
    primed = collect(second)  # a primed coroutine, used as it is
    acquisition = Acquisition(
        "darks",
        lambda: (order.append("producer"), *produce(3)())[1:],
        consumers=[collector(first), primed],
        acquire=lambda: order.append("acquire"),
    )
    assert acquisition() == 3
    assert order == ["acquire", "producer"]
    assert [int(frame[0, 0]) for frame in first] == [0, 1, 2] and len(second) == 3
    assert acquisition.connect() == 3 and order == ["acquire", "producer", "producer"]  # connect: no acquire
    assert len(first) == 6 and len(second) == 6  # the primed one stays open and goes on


def test_connect_closes_the_consumers_it_made_and_the_producer():
    closed = []

    @coroutine
    def closing():
        try:
            while True:
                yield
        finally:
            closed.append("consumer")

    def producer():
        try:
            yield from produce(2)()
        finally:
            closed.append("producer")

    Acquisition("flats", producer, consumers=[closing]).connect()
    assert closed == ["producer", "consumer"]


def test_a_failing_consumer_stops_the_acquisition_push_style():
    got = []

    @coroutine
    def fussy():
        while True:
            frame = yield
            if frame[0, 0] == 1:
                raise OSError("disk full")

    acquisition = Acquisition("flats", produce(4), consumers=[fussy, collector(got)])
    with pytest.raises(OSError, match="disk full"):
        acquisition()
    assert len(got) == 1  # the consumers after the failing one did not get that frame


@pytest.mark.parametrize("name", ["", "a/b", "..", ".", 5])
def test_acquisition_names_are_plain_directory_names(name):
    with pytest.raises(ExperimentError, match="plain directory name"):
        Acquisition(name, list)


def test_acquisitions_refuse_what_cannot_produce_or_consume():
    with pytest.raises(ExperimentError, match=r"Acquisition\('darks'\): producer must be a callable"):
        Acquisition("darks", [np.zeros((2, 2))])
    with pytest.raises(ExperimentError, match="acquire must be a callable or None"):
        Acquisition("darks", list, acquire=5)
    with pytest.raises(ExperimentError, match=r"consumers\[0\] = 5 is neither a primed coroutine"):
        Acquisition("darks", produce(1), consumers=[5]).connect()
    with pytest.raises(
        ExperimentError, match=r"consumers\[0\] \(list\) returned \[\], not a primed coroutine"
    ):
        Acquisition("darks", produce(1), consumers=[list]).connect()
    with pytest.raises(ExperimentError, match=r"producer\(\) returned 5, not an iterable"):
        Acquisition("darks", lambda: 5).connect()

    @coroutine
    def takes_one():
        yield

    finished = takes_one()
    with pytest.raises(
        ExperimentError, match=r"consumer 0 \(takes_one\) has finished and takes no more frames"
    ):
        Acquisition("darks", produce(2), consumers=[finished]).connect()


# -- Experiment: the run ------------------------------------------------------------------------


def test_a_run_gets_a_directory_a_log_and_a_record(tmp_path):
    walker = DirectoryWalker(root=str(tmp_path))
    darks, flats = Acquisition("darks", produce(2)), Acquisition("flats", produce(3, 100))
    experiment = Experiment([darks, flats], walker)
    writer = ImageWriter(experiment.acquisitions, walker)
    assert experiment.iteration == 1 and experiment.state == "standby"
    record = experiment.run().result(TIMEOUT)
    run = tmp_path / "scan_0001"
    assert record["run"] == "scan_0001" and record["outcome"] == "done"
    assert [(a["name"], a["frames"], a["outcome"]) for a in record["acquisitions"]] == [
        ("darks", 2, "done"),
        ("flats", 3, "done"),
    ]
    assert json.loads((run / "experiment.json").read_text()) == record
    log = (run / "experiment.log").read_text()
    assert "run scan_0001: darks, flats" in log and "acquisition flats: 3 frames" in log
    stored = [int(read_tiff(str(path))[0, 0]) for path in sorted((run / "flats").glob("*.tif"))]
    assert stored == [100, 101, 102]
    assert walker.current == str(tmp_path) and experiment.iteration == 2 and experiment.state == "standby"
    writer.detach()
    experiment.run().result(TIMEOUT)  # a second run, without the writer: a directory, no frames
    assert sorted(p.name for p in (tmp_path / "scan_0002").iterdir()) == ["experiment.json", "experiment.log"]


def test_runs_never_write_into_an_earlier_one():
    walker = DummyWalker()
    walker.descend("scan_0001").ascend().descend("scan_0002").ascend()
    experiment = Experiment([Acquisition("darks", produce(1))], walker)
    assert experiment.iteration == 3
    experiment.iteration = 1  # a taken number: the run takes the next free one
    assert experiment.run().result(TIMEOUT)["run"] == "scan_0003"
    assert experiment.iteration == 4
    other = Experiment([Acquisition("darks", produce(1))], walker, name_fmt="tomo-{}")
    assert other.run().result(TIMEOUT)["run"] == "tomo-1"


def test_without_separate_scans_everything_goes_where_the_walker_is():
    walker = DummyWalker()
    walker.descend("beamtime")
    acquisition = Acquisition("darks", produce(1))
    experiment = Experiment([acquisition], walker, separate_scans=False)
    experiment.run().result(TIMEOUT)
    experiment.run().result(TIMEOUT)
    assert (
        "beamtime/experiment.json" in walker.json_files and "beamtime/experiment-1.json" in walker.json_files
    )
    assert "scan_0001" not in " ".join(walker.paths)
    assert walker.current == "beamtime"


def test_without_a_walker_a_run_writes_nothing_and_returns_its_record():
    got = []
    experiment = Experiment([Acquisition("darks", produce(2), consumers=[collector(got)])])
    record = experiment.run().result(TIMEOUT)
    assert record["outcome"] == "done" and record["acquisitions"][0]["frames"] == 2 and len(got) == 2


def test_prepare_acquire_finish_and_a_custom_acquire():
    calls = []

    class Tomography(Experiment):
        def prepare(self):
            calls.append("prepare")

        def acquire(self):
            for _ in range(2):
                self.flats()  # acquisitions are attributes by name
            self.darks()

        def finish(self):
            calls.append("finish")

    experiment = Tomography(
        [
            Acquisition("darks", produce(1), acquire=lambda: calls.append("darks")),
            Acquisition("flats", produce(1)),
        ]
    )
    record = experiment.run().result(TIMEOUT)
    assert calls == ["prepare", "darks", "finish"]
    assert [a["name"] for a in record["acquisitions"]] == ["flats", "flats", "darks"]  # each call recorded


def test_a_failing_acquisition_fails_the_run_finish_runs_and_the_state_is_error():
    finished = []

    class Finishing(Experiment):
        def finish(self):
            finished.append(True)
            if len(finished) == 1:
                raise RuntimeError("finish failed too")  # logged; the acquisition's error is the one raised

    def broken():
        raise OSError("camera unplugged")

    walker = DummyWalker()
    experiment = Finishing(
        [Acquisition("darks", produce(1)), Acquisition("flats", broken), Acquisition("never", produce(1))],
        walker,
    )
    with pytest.raises(OSError, match="camera unplugged"):
        experiment.run().result(TIMEOUT)
    assert finished == [True] and experiment.state == "error"
    record = json.loads(walker.json_files["scan_0001/experiment.json"])
    assert record["outcome"] == "failed" and record["reason"] == "OSError: camera unplugged"
    assert [(a["name"], a["outcome"]) for a in record["acquisitions"]] == [
        ("darks", "done"),
        ("flats", "failed: OSError: camera unplugged"),
    ]
    assert "finish failed too" in "\n".join(walker.logs["scan_0001/experiment.log"])
    experiment.remove(experiment.flats)
    assert experiment.run().result(TIMEOUT)["outcome"] == "done"  # from 'error' it runs again
    assert experiment.state == "standby" and experiment.iteration == 3


def test_a_second_run_and_parameter_writes_are_refused_while_running(asynchronous):
    started, gate = threading.Event(), threading.Event()

    def slow():
        started.set()
        assert gate.wait(TIMEOUT)
        return iter([np.zeros((2, 2))])

    experiment = Experiment([Acquisition("darks", slow)], DummyWalker())
    run = experiment.run()
    assert started.wait(TIMEOUT)
    try:
        assert experiment.state == "running"
        with pytest.raises(StateError, match=r"Experiment#\d+\.run\(\) is not allowed in state 'running'"):
            experiment.run().result(TIMEOUT)
        with pytest.raises(
            StateError, match=r"Experiment#\d+\.iteration = 7 is not allowed in state 'running'"
        ):
            experiment.iteration = 7
    finally:
        gate.set()
    run.result(TIMEOUT)
    experiment.iteration = 7
    assert experiment.iteration == 7


def test_abort_stops_the_run_after_the_frame_in_hand_and_is_recorded(tmp_path, asynchronous):
    walker = DirectoryWalker(root=str(tmp_path))
    closed = threading.Event()

    def endless():
        try:
            for i in itertools.count():
                yield np.full((4, 6), i, dtype=np.uint16)
        finally:
            closed.set()

    experiment = Experiment([Acquisition("projections", endless), Acquisition("never", produce(1))], walker)
    ImageWriter(experiment.acquisitions, walker, async_=False)
    run = experiment.run()
    directory = tmp_path / "scan_0001" / "projections"
    busy_wait(lambda: len(list(directory.glob("*.tif"))) >= 3, sleep_time=0.001, timeout=TIMEOUT)
    assert experiment.abort().result(TIMEOUT) is True
    with pytest.raises(
        CancelledError, match=r"^Experiment#\d+\.run\(\) was stopped by abort\(\)$"
    ) as stopped:
        run.result(TIMEOUT)
    assert closed.is_set() and experiment.state == "standby"
    record = json.loads((tmp_path / "scan_0001" / "experiment.json").read_text())
    [entry] = record["acquisitions"]
    files = sorted(directory.glob("*.tif"))
    assert record["outcome"] == entry["outcome"] == "cancelled" and entry["frames"] == len(files)
    assert record["reason"] == entry["reason"] == str(stopped.value)
    for number, path in enumerate(files):  # every frame taken was written, complete, in order
        np.testing.assert_array_equal(read_tiff(str(path)), np.full((4, 6), number, dtype=np.uint16))
    assert experiment.abort().result(TIMEOUT) is False  # nothing runs


def test_a_run_stopped_from_inside_ends_cancelled_in_both_modes():
    walker = DummyWalker()
    experiment = Experiment([Acquisition("darks", produce(2)), Acquisition("flats", produce(2))], walker)
    experiment.darks.acquire = experiment.abort  # asks the run to stop from inside it
    with pytest.raises(CancelledError, match=r"run\(\) was stopped by abort\(\)"):
        experiment.run().result(TIMEOUT)
    record = json.loads(walker.json_files["scan_0001/experiment.json"])
    assert [(a["name"], a["frames"], a["outcome"]) for a in record["acquisitions"]] == [
        ("darks", 0, "cancelled")
    ]


def test_ctrl_c_in_a_run_is_recorded_as_a_cancellation():
    from concert import config

    def interrupted():
        raise KeyboardInterrupt

    walker = DummyWalker()
    experiment = Experiment([Acquisition("darks", produce(1)), Acquisition("flats", interrupted)], walker)
    if config.DISABLE_ASYNC:
        with pytest.raises(KeyboardInterrupt):
            experiment.run()
    else:
        with pytest.raises(CancelledError, match=r"run\(\) was stopped by Ctrl-C$"):
            experiment.run().result(TIMEOUT)
    record = json.loads(walker.json_files["scan_0001/experiment.json"])
    assert record["outcome"] == "cancelled" and record["reason"].endswith("was stopped by Ctrl-C")
    assert experiment.state == "standby" and walker.current == walker.root


# -- Experiment: its acquisitions and parameters ----------------------------------------------------


def test_add_remove_swap_and_get_acquisition():
    darks, flats, radios = Acquisition("darks", list), Acquisition("flats", list), Acquisition("radios", list)
    experiment = Experiment([darks, flats])
    experiment.add(radios)
    assert experiment.acquisitions == (darks, flats, radios) and experiment.radios is radios
    experiment.swap(darks, radios)
    assert [a.name for a in experiment.acquisitions] == ["radios", "flats", "darks"]
    experiment.remove(flats)
    assert experiment.get_acquisition("darks") is darks and experiment.acquisitions == (radios, darks)
    with pytest.raises(AttributeError):
        experiment.flats  # noqa: B018 - gone with it


def test_wrong_use_of_the_acquisitions_raises_experiment_errors():
    darks = Acquisition("darks", list)
    with pytest.raises(
        ExperimentError, match=r"Experiment#\d+: acquisition names must differ; repeated: darks"
    ):
        Experiment([darks, Acquisition("darks", list)])
    experiment = Experiment([darks])
    with pytest.raises(ExperimentError, match=r"has no acquisition 'missing' \(it has: 'darks'\)"):
        experiment.get_acquisition("missing")
    stranger = Acquisition("flats", list)
    with pytest.raises(ExperimentError, match=r"\.remove\(\): Acquisition\('flats'\) is not one of its"):
        experiment.remove(stranger)
    with pytest.raises(ExperimentError, match=r"\.swap\(\): Acquisition\('flats'\) is not one of its"):
        experiment.swap(darks, stranger)
    with pytest.raises(ExperimentError, match="repeated: darks"):
        experiment.add(Acquisition("darks", list))
    with pytest.raises(ExperimentError, match="'run' is taken by an attribute"):
        experiment.add(Acquisition("run", list))
    with pytest.raises(ExperimentError, match=r"is not an Acquisition of concert\.experiments\.base"):
        experiment.add("flats")
    assert experiment.acquisitions == (darks,)
    assert issubclass(ExperimentError, ConcertError)


def test_parameters_are_checked():
    experiment = Experiment([], DummyWalker())
    experiment.log_level = "DEBUG"
    assert experiment.log_level == "debug"
    experiment.log_level = 30
    assert experiment.log_level == "warning"
    with pytest.raises(ExperimentError, match=r"\['log_level'\]: 'loud' is not a log level"):
        experiment.log_level = "loud"
    with pytest.raises(ExperimentError, match=r"name_fmt='scan' has no \{\} field"):
        experiment.name_fmt = "scan"
    with pytest.raises(ExperimentError, match="does not make one plain directory name"):
        Experiment([], name_fmt="runs/{}")
    with pytest.raises(ExperimentError, match=r"\['separate_scans'\]: 'yes' is not True or False"):
        experiment.separate_scans = "yes"
    with pytest.raises(ExperimentError, match=r"\['iteration'\]: -1 is not a whole number >= 0"):
        experiment.iteration = -1
    with pytest.raises(ExperimentError, match="walker must be a Walker or None"):
        Experiment([], walker="/data")
    assert (experiment.name_fmt, experiment.separate_scans, experiment.log_level) == (
        "scan_{:>04}",
        True,
        "warning",
    )


def test_the_log_level_decides_what_goes_to_experiment_log():
    import logging

    walker = DummyWalker()
    experiment = Experiment([Acquisition("darks", produce(1))], walker)
    experiment.log_level = "warning"
    experiment.run().result(TIMEOUT)
    logging.getLogger("concert.experiment").info("not wanted")
    assert walker.logs["scan_0001/experiment.log"] == []


# -- addons -----------------------------------------------------------------------------------------


def test_an_addon_attaches_once_and_detaches():
    got = []
    darks = Acquisition("darks", produce(2))
    addon = Consumer([darks], collector(got))
    assert addon.attached and len(darks.consumers) == 1
    with pytest.raises(AddonError, match=r"Consumer\(darks\) is attached already"):
        addon.attach()
    darks()
    addon.detach()
    with pytest.raises(AddonError, match="is not attached"):
        addon.detach()
    darks()
    assert len(got) == 2 and darks.consumers == []
    addon.attach()
    assert len(darks.consumers) == 1
    with pytest.raises(AddonError, match="neither a primed coroutine nor a callable"):
        Consumer([darks], 5)
    with pytest.raises(AddonError, match="is not an Acquisition"):
        Addon(["darks"])


def test_the_accumulator_keeps_the_frames_of_the_last_run():
    darks, flats = Acquisition("darks", produce(2)), Acquisition("flats", produce(3, 10))
    experiment = Experiment([darks, flats])
    accumulator = Accumulator(experiment.acquisitions)
    experiment.run().result(TIMEOUT)
    experiment.run().result(TIMEOUT)
    assert [len(accumulator.items[a]) for a in (darks, flats)] == [2, 3]  # the last run's, not both
    assert int(accumulator.items[flats][2][0, 0]) == 12


def test_the_accumulator_fills_preallocated_arrays_and_refuses_wrong_shapes():
    darks, flats = Acquisition("darks", produce(2)), Acquisition("flats", produce(2, shape=(3, 3)))
    accumulator = Accumulator([darks, flats], shapes=[(3, 4, 6), (2, 4, 6)], dtype=np.uint16)
    darks()
    items = accumulator.items[darks]
    assert items.shape == (3, 4, 6) and items.dtype == np.uint16
    assert [int(items[i, 0, 0]) for i in range(3)] == [0, 1, 0]  # zero past the frames received
    with pytest.raises(
        AddonError, match=r"Accumulator\(darks, flats\) for Acquisition\('flats'\): .*\(3, 3\)"
    ):
        flats()
    with pytest.raises(AddonError, match="1 shapes for 2 acquisitions"):
        Accumulator([darks, flats], shapes=[(2, 4, 6)])
    with pytest.raises(AddonError, match=r"the shape for Acquisition\('darks'\)"):
        Accumulator([darks], shapes=[(-1, 4)])


def test_too_many_frames_for_the_array_fail_the_acquisition_in_the_record():
    walker = DummyWalker()
    darks = Acquisition("darks", produce(3))
    experiment = Experiment([darks], walker)
    Accumulator([darks], shapes=[(2, 4, 6)])
    with pytest.raises(AddonError, match="does not fit"):
        experiment.run().result(TIMEOUT)
    record = json.loads(walker.json_files["scan_0001/experiment.json"])
    assert record["acquisitions"][0]["outcome"].startswith("failed: AddonError: ")
    assert record["acquisitions"][0]["frames"] == 2


@pytest.mark.parametrize("async_", [True, False])
def test_the_image_writer_writes_each_acquisition_into_its_directory(tmp_path, async_):
    walker = DirectoryWalker(root=str(tmp_path))
    darks, flats = Acquisition("darks", produce(2)), Acquisition("flats", produce(3, 7))
    experiment = Experiment([darks, flats], walker)
    ImageWriter(experiment.acquisitions, walker, async_=async_)
    experiment.run().result(TIMEOUT)
    for name, values in (("darks", [0, 1]), ("flats", [7, 8, 9])):
        stored = sorted((tmp_path / "scan_0001" / name).glob("*.tif"))
        assert [int(read_tiff(str(path))[0, 0]) for path in stored] == values


def test_the_image_writer_never_overwrites_and_reports_writing_errors(tmp_path):
    walker = DummyWalker()
    darks = Acquisition("darks", produce(1))
    ImageWriter([darks], walker)
    darks()
    with pytest.raises(StorageError, match="refusing to overwrite"):
        darks()  # the same place again
    walker.descend("elsewhere")
    bad = Acquisition("bad", lambda: iter([np.zeros((2, 2)), np.zeros(3)]))
    ImageWriter([bad], DirectoryWalker(root=str(tmp_path)), async_=False)
    with pytest.raises(StorageError):
        bad()
    with pytest.raises(AddonError, match="walker must be a Walker"):
        ImageWriter([darks], "/data")


# -- imaging --------------------------------------------------------------------------------------


def test_frames_takes_triggered_frames_and_leaves_the_camera_as_it_was():
    camera = small_camera()
    calls = []
    taken = list(frames(3, camera, callback=lambda: calls.append(camera.state)))
    assert len(taken) == 3 and [frame.metadata["trigger_source"] for frame in taken] == ["SOFTWARE"] * 3
    assert calls == ["recording"] * 3
    assert camera.state == "standby" and camera.trigger_source == camera.trigger_sources.AUTO
    camera.start_recording().join(TIMEOUT)
    assert len(list(frames(1, camera))) == 1
    assert camera.state == "recording" and camera.trigger_source == camera.trigger_sources.AUTO
    camera.stop_recording().join(TIMEOUT)


def test_frames_is_a_producer_for_acquisitions_and_checks_its_arguments():
    camera = small_camera()
    got = []
    acquisition = Acquisition("projections", lambda: frames(2, camera), consumers=[collector(got)])
    Experiment([acquisition]).run().result(TIMEOUT)
    assert len(got) == 2 and got[0].shape == (4, 8)
    with pytest.raises(ExperimentError, match="num_frames=-1 is not a whole number"):
        frames(-1, camera)
    with pytest.raises(ExperimentError, match="callback=5 cannot be called"):
        frames(1, camera, 5)
    unused = frames(5, camera)
    unused.close()  # never started: the camera was not touched
    assert camera.state == "standby"


def test_the_tomography_sampling_formulas():
    step = tomo_angular_step(1024 * q.pixel)
    assert step.units == q.rad and step.magnitude == pytest.approx(np.arctan(2 / 1024))
    assert tomo_angular_step(1024) == step  # a plain number of pixels works too
    assert tomo_projections_number(1024) == int(np.ceil(np.pi / np.arctan(2 / 1024))) == 1609
    assert tomo_projections_number(1024 * q.pixel) == 1609
    speed = tomo_max_speed(1024 * q.pixel, 100 / q.s)
    assert speed.to(q.rad / q.s).magnitude == pytest.approx(100 * np.arctan(2 / 1024))
    assert tomo_max_speed(1024, 100 * q.Hz) == speed
    # every pixel moves by at most one: the outermost one, 512 pixels from the axis
    assert 512 * np.tan(step.magnitude) == pytest.approx(1)


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda: tomo_angular_step(10 * q.mm), UnitError),
        (lambda: tomo_angular_step("wide"), UnitError),
        (lambda: tomo_angular_step(0), LimitError),
        (lambda: tomo_projections_number(-5 * q.pixel), LimitError),
        (lambda: tomo_max_speed(1024, 100 * q.mm), UnitError),
        (lambda: tomo_max_speed(1024, 0 / q.s), LimitError),
    ],
)
def test_the_tomography_formulas_refuse_bad_values(call, error):
    with pytest.raises(error):
        call()


# -- control --------------------------------------------------------------------------------------


class Counting(ClosedLoop):
    def __init__(self, converge_at):
        self.converge_at = converge_at
        self.calls = []

    def initialize(self):
        self.calls.append("initialize")
        self.value = 0

    def measure(self):
        self.calls.append("measure")

    def compare(self):
        return self.value >= self.converge_at

    def control(self):
        self.calls.append("control")
        self.value += 1


def test_a_closed_loop_runs_until_it_converges():
    loop = Counting(converge_at=2)
    assert loop.run().result(TIMEOUT) is True
    assert loop.calls == ["initialize", "measure", "control", "measure", "control", "measure"]
    assert DummyLoop().run(max_iterations=1).result(TIMEOUT) is True


def test_a_closed_loop_gives_up_after_max_iterations():
    loop = Counting(converge_at=10)
    assert loop.run(max_iterations=3).result(TIMEOUT) is False
    assert loop.calls.count("measure") == 3 and loop.calls.count("control") == 2
    with pytest.raises(
        ExperimentError, match=r"Counting\(\)\.run\(\): max_iterations=0 is not a whole number"
    ):
        loop.run(max_iterations=0).result(TIMEOUT)
    with pytest.raises(NotImplementedError, match="must implement compare"):
        ClosedLoop().run().result(TIMEOUT)


def test_a_failing_finish_fails_a_run_that_went_well():
    class Broken(Experiment):
        def finish(self):
            raise RuntimeError("could not close the shutter")

    walker = DummyWalker()
    experiment = Broken([Acquisition("darks", produce(1))], walker)
    with pytest.raises(RuntimeError, match="could not close the shutter"):
        experiment.run().result(TIMEOUT)
    record = json.loads(walker.json_files["scan_0001/experiment.json"])
    assert record["outcome"] == "failed" and record["acquisitions"][0]["outcome"] == "done"
    assert experiment.state == "error"


def test_a_failing_producer_closes_the_consumers_and_counts_what_was_sent():
    got = []

    def camera_that_fails():
        yield np.zeros((2, 2))
        raise OSError("camera lost")

    walker = DummyWalker()
    experiment = Experiment([Acquisition("darks", camera_that_fails, consumers=[collector(got)])], walker)
    writer = ImageWriter(experiment.acquisitions, walker)
    with pytest.raises(OSError, match="camera lost"):
        experiment.run().result(TIMEOUT)
    record = json.loads(walker.json_files["scan_0001/experiment.json"])
    assert record["acquisitions"][0]["frames"] == 1 and len(got) == 1
    assert len(walker.data["scan_0001/darks/frames"]) == 1  # the writer was closed: its frame is written
    assert writer.attached


def test_abort_right_after_run_stops_it_whether_it_has_started_or_not(asynchronous):
    def endless():
        for i in itertools.count():
            yield np.full((2, 2), i)

    walker = DummyWalker()
    experiment = Experiment([Acquisition("projections", endless)], walker)
    run = experiment.run()
    assert experiment.abort().result(TIMEOUT) is True
    with pytest.raises(
        CancelledError, match=r"^Experiment#\d+\.run\(\) was (stopped|cancelled) by abort\(\)"
    ):
        run.result(TIMEOUT)
    assert experiment.state == "standby"
    assert experiment.run().cancel(timeout=TIMEOUT) is True  # cancel() works as for any future
