"""Experiments: acquisitions in order, one directory each, experiment.json and a log per run."""

from __future__ import annotations

import json
from concurrent.futures import CancelledError

import numpy as np
import pytest

from concert.exceptions import StorageError
from concert.pipelines import Average
from concert.processes.experiment import Acquisition, Experiment
from concert.storage import DirectoryWalker, DummyWalker, read_tiff
from tests.conftest import TIMEOUT


def frames(count, value):
    return lambda: (np.full((4, 6), value + i, dtype=np.uint16) for i in range(count))


def test_runs_acquisitions_in_order_into_their_directories(tmp_path):
    order = []
    average = Average()

    def recorded(name, count, value):
        produce = frames(count, value)

        def producer():
            order.append(name)
            return produce()

        return producer

    walker = DirectoryWalker(root=str(tmp_path))
    experiment = Experiment(
        [
            Acquisition("darks", recorded("darks", 2, 10)),
            Acquisition("flats", recorded("flats", 3, 1000)),
            Acquisition("projections", recorded("projections", 5, 500), consumers=[average]),
        ],
        walker,
    )
    record = experiment.run().result(TIMEOUT)
    assert order == ["darks", "flats", "projections"] and record["outcome"] == "done"
    run = tmp_path / "scan_0000"
    for name, count, value in (("darks", 2, 10), ("flats", 3, 1000), ("projections", 5, 500)):
        stored = [read_tiff(str(path)) for path in sorted((run / name).glob("*.tif"))]
        assert [int(image[0, 0]) for image in stored] == [value + i for i in range(count)]
    np.testing.assert_array_equal(average.average, np.full((4, 6), 502.0))
    saved = json.loads((run / "experiment.json").read_text())
    assert [(a["name"], a["frames"], a["outcome"]) for a in saved["acquisitions"]] == [
        ("darks", 2, "done"),
        ("flats", 3, "done"),
        ("projections", 5, "done"),
    ]
    log = (run / "experiment.log").read_text()
    assert "acquisition darks started" in log and "run scan_0000 done" in log
    assert walker.current == str(tmp_path)  # the walker is back where it started

    experiment.run().result(TIMEOUT)  # a second run never touches the first
    assert (tmp_path / "scan_0001" / "projections").is_dir()
    assert json.loads((run / "experiment.json").read_text()) == saved


def test_a_failing_acquisition_stops_the_run_and_is_recorded():
    ran = []

    def broken():
        ran.append("broken")
        raise OSError("camera unplugged")

    walker = DummyWalker()
    experiment = Experiment(
        [
            Acquisition("darks", frames(1, 0)),
            Acquisition("flats", broken),
            Acquisition("never", frames(1, 0)),
        ],
        walker,
    )
    with pytest.raises(OSError, match="camera unplugged"):
        experiment.run().result(TIMEOUT)
    record = json.loads(walker.json_files["scan_0000/experiment.json"])
    assert record["outcome"] == "failed"
    assert [a["name"] for a in record["acquisitions"]] == ["darks", "flats"]
    assert "camera unplugged" in record["acquisitions"][1]["outcome"]
    assert len(walker.data["scan_0000/darks/frames"]) == 1 and ran == ["broken"]


def test_a_failing_consumer_fails_the_acquisition_but_frames_are_written():
    def fussy(items):
        raise ValueError("cannot average")

    walker = DummyWalker()
    run = Experiment([Acquisition("projections", frames(3, 0), consumers=[fussy])], walker).run()
    with pytest.raises(ValueError, match="cannot average"):
        run.result(TIMEOUT)
    assert len(walker.data["scan_0000/projections/frames"]) == 3  # no frame lost


def test_bad_acquisitions_are_refused():
    with pytest.raises(ValueError, match="repeated: darks"):
        Experiment([Acquisition("darks", list), Acquisition("darks", list)], DummyWalker())
    with pytest.raises(ValueError, match="non-empty name"):
        Acquisition("", list)


def test_a_cancelled_run_stops_between_acquisitions_and_is_recorded(asynchronous):
    import threading

    started, gate = threading.Event(), threading.Event()

    def slow():
        started.set()
        assert gate.wait(TIMEOUT)
        return iter([np.zeros((2, 2), dtype=np.uint16)])

    walker = DummyWalker()
    run = Experiment([Acquisition("first", slow), Acquisition("second", frames(1, 0))], walker).run()
    assert started.wait(TIMEOUT)
    canceller = threading.Thread(target=run.cancel)
    canceller.start()
    gate.set()
    canceller.join(TIMEOUT)
    assert run.cancelled()
    record = json.loads(walker.json_files["scan_0000/experiment.json"])
    assert record["outcome"] == "cancelled" and [a["name"] for a in record["acquisitions"]] == ["first"]
    assert record["reason"] == "Experiment(first, second).run() was stopped by cancel()"


@pytest.mark.parametrize("name", ["flats/raw", "..", "."])
def test_acquisition_names_are_plain_directory_names(name):
    with pytest.raises(ValueError, match="plain directory name"):
        Acquisition(name, list)


@pytest.mark.parametrize("name_fmt", ["tomo", "runs/scan_{:>04}"])
def test_run_names_need_a_number_field_and_one_level(name_fmt):
    with pytest.raises(ValueError, match="name_fmt"):
        Experiment([Acquisition("darks", frames(1, 0))], DummyWalker(), name_fmt=name_fmt)


def test_the_walker_ends_where_it_started_even_after_a_failure(tmp_path):
    walker = DirectoryWalker(root=str(tmp_path))
    walker.descend("beamtime")
    start = walker.current

    def broken():
        raise OSError("shutter stuck")

    with pytest.raises(OSError):
        Experiment([Acquisition("flats", broken)], walker).run().result(TIMEOUT)
    assert walker.current == start
    Experiment([Acquisition("flats", frames(2, 0))], walker).run().result(TIMEOUT)
    assert sorted(p.name for p in (tmp_path / "beamtime").iterdir()) == ["scan_0000", "scan_0001"]


def test_cancelling_a_run_stops_the_acquisition_being_recorded(tmp_path, asynchronous):
    import itertools
    import threading

    from concert.polling import busy_wait

    closed = threading.Event()
    walker = DirectoryWalker(root=str(tmp_path))
    directory = tmp_path / "scan_0000" / "projections"

    def endless():
        try:
            for i in itertools.count():
                yield np.full((4, 6), i, dtype=np.uint16)
        finally:
            closed.set()

    average = Average()
    experiment = Experiment(
        [Acquisition("projections", endless, consumers=[average]), Acquisition("never", frames(1, 0))], walker
    )
    run = experiment.run()
    busy_wait(lambda: len(list(directory.glob("*.tif"))) >= 3, sleep_time=0.001, timeout=TIMEOUT)
    assert run.cancel(timeout=TIMEOUT) is True
    with pytest.raises(
        CancelledError, match=r"^Experiment\(projections, never\)\.run\(\) was stopped by cancel\(\)$"
    ):
        run.result(TIMEOUT)
    assert closed.wait(TIMEOUT), "the producer was not closed once every consumer had stopped"
    record = json.loads((tmp_path / "scan_0000" / "experiment.json").read_text())
    assert record["outcome"] == "cancelled"
    [entry] = record["acquisitions"]
    assert entry["name"] == "projections" and entry["outcome"] == "cancelled"
    assert entry["reason"] == record["reason"]
    assert record["reason"] == "Experiment(projections, never).run() was stopped by cancel()"
    files = sorted(directory.glob("*.tif"))
    assert entry["frames"] == len(files) >= 3  # what the record says was written is there
    for number, path in enumerate(files):  # every file complete, in order, none half-written
        np.testing.assert_array_equal(read_tiff(str(path)), np.full((4, 6), number, dtype=np.uint16))
    assert average.average is None  # the other consumer was stopped too: it never returned
    assert walker.current == str(tmp_path)
    log = (tmp_path / "scan_0000" / "experiment.log").read_text()
    assert (
        "acquisition projections cancelled: Experiment(projections, never).run() was stopped by cancel()"
        in log
    )


def test_a_run_asked_to_stop_from_inside_ends_cancelled_in_both_modes():
    from concert.futures import current_future

    def stopping():
        current_future().request_cancel("abort()")  # the producer factory runs in the run itself
        return iter([np.zeros((2, 2), dtype=np.uint16)])

    walker = DummyWalker()
    run = Experiment([Acquisition("darks", frames(2, 0)), Acquisition("flats", stopping)], walker).run()
    with pytest.raises(CancelledError, match=r"Experiment\(darks, flats\)\.run\(\) was stopped by abort\(\)"):
        run.result(TIMEOUT)
    record = json.loads(walker.json_files["scan_0000/experiment.json"])
    assert record["outcome"] == "cancelled"
    assert [(a["name"], a["frames"], a["outcome"]) for a in record["acquisitions"]] == [
        ("darks", 2, "done"),
        ("flats", 0, "cancelled"),
    ]
    assert "scan_0000/flats/frames" not in walker.data  # nothing started after the request


def test_a_consumer_that_stops_itself_ends_the_run_cancelled():
    from concert.futures import check_cancelled, current_future

    def quitter(items):
        for number, _ in enumerate(items):
            if number == 1:
                current_future().request_cancel("the consumer")
            check_cancelled()

    walker = DummyWalker()
    run = Experiment([Acquisition("flats", frames(5, 0), consumers=[quitter])], walker).run()
    with pytest.raises(CancelledError, match="quitter was stopped by the consumer"):
        run.result(TIMEOUT)
    record = json.loads(walker.json_files["scan_0000/experiment.json"])
    assert record["outcome"] == "cancelled" and record["acquisitions"][0]["outcome"] == "cancelled"
    assert len(walker.data["scan_0000/flats/frames"]) == 5  # the writer was not affected


def test_the_frames_written_are_recorded_when_the_producer_fails(tmp_path):
    def camera_that_fails():
        yield np.zeros((4, 6), dtype=np.uint16)
        yield np.ones((4, 6), dtype=np.uint16)
        raise OSError("camera lost")

    walker = DirectoryWalker(root=str(tmp_path))
    with pytest.raises(OSError, match="camera lost"):
        Experiment([Acquisition("darks", camera_that_fails)], walker).run().result(TIMEOUT)
    record = json.loads((tmp_path / "scan_0000" / "experiment.json").read_text())
    [entry] = record["acquisitions"]
    assert entry["frames"] == len(list((tmp_path / "scan_0000" / "darks").glob("*.tif"))) == 2
    assert entry["outcome"] == "failed: OSError: camera lost"
    assert record["outcome"] == "failed" and record["reason"] == "OSError: camera lost"


def test_the_frames_written_are_recorded_when_writing_fails(tmp_path):
    def with_a_bad_frame():
        for value in range(3):
            yield np.full((4, 6), value, dtype=np.uint16)
        yield np.zeros(6, dtype=np.uint16)  # not an image: the writer refuses it
        yield np.zeros((4, 6), dtype=np.uint16)

    walker = DirectoryWalker(root=str(tmp_path))
    with pytest.raises(StorageError):
        Experiment([Acquisition("flats", with_a_bad_frame)], walker).run().result(TIMEOUT)
    record = json.loads((tmp_path / "scan_0000" / "experiment.json").read_text())
    [entry] = record["acquisitions"]
    assert entry["outcome"].startswith("failed: StorageError: ")
    stored = sorted((tmp_path / "scan_0000" / "flats").glob("*.tif"))
    assert entry["frames"] == len(stored) == 3
    assert [int(read_tiff(str(path))[0, 0]) for path in stored] == [0, 1, 2]


def test_ctrl_c_in_the_run_is_recorded_as_a_cancellation_in_both_modes():
    from concert import config

    def interrupted():
        raise KeyboardInterrupt  # what Ctrl-C raises in the thread making the run (DISABLE_ASYNC)

    walker = DummyWalker()
    experiment = Experiment(
        [Acquisition("darks", frames(2, 0)), Acquisition("flats", interrupted), Acquisition("never", list)],
        walker,
    )
    if config.DISABLE_ASYNC:
        with pytest.raises(KeyboardInterrupt):
            experiment.run()
    else:
        with pytest.raises(CancelledError, match=r"run\(\) was stopped by Ctrl-C$"):
            experiment.run().result(TIMEOUT)
    record = json.loads(walker.json_files["scan_0000/experiment.json"])
    assert record["outcome"] == "cancelled"
    assert record["reason"] == "Experiment(darks, flats, never).run() was stopped by Ctrl-C"
    assert [(a["name"], a["frames"], a["outcome"], a.get("reason")) for a in record["acquisitions"]] == [
        ("darks", 2, "done", None),
        ("flats", 0, "cancelled", record["reason"]),
    ]
    assert "run scan_0000 cancelled" in walker.logs["scan_0000/experiment.log"][-1]
    assert walker.current == walker.root


def test_wrong_use_raises_experiment_error_a_concert_error_and_a_value_error():
    from concert.exceptions import ConcertError
    from concert.experiments.base import ExperimentError

    with pytest.raises(ExperimentError, match=r"^Experiment\(darks, darks\): .*repeated: darks$") as refused:
        Experiment([Acquisition("darks", list), Acquisition("darks", list)], DummyWalker())
    assert isinstance(refused.value, ConcertError) and isinstance(refused.value, ValueError)
    with pytest.raises(ExperimentError, match="name_fmt='tomo' has no"):
        Experiment([], DummyWalker(), name_fmt="tomo")


def test_both_experiment_faces_make_their_runs_with_one_engine():
    from concert.experiments import base as legacy

    assert issubclass(Experiment, legacy.RunEngine) and issubclass(legacy.Experiment, legacy.RunEngine)
    assert Experiment._execute is legacy.Experiment._execute  # one implementation, not a copy
    walker = DummyWalker()
    new = Experiment([Acquisition("darks", frames(2, 0))], walker).run().result(TIMEOUT)
    old = legacy.Experiment([legacy.Acquisition("darks", frames(2, 0))], walker).run().result(TIMEOUT)
    assert sorted(new) == sorted(old) and sorted(new["acquisitions"][0]) == sorted(old["acquisitions"][0])
    assert (new["run"], old["run"]) == ("scan_0000", "scan_0001")  # each counts from where it always did
