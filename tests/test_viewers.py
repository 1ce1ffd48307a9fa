"""Live viewers: real drawing processes (MPLBACKEND=Agg) whose PNGs are read back; ``concert demo --view``."""

from __future__ import annotations

import itertools
import math
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from concert.exceptions import ConfigurationError, DataError, StateError, StorageError, UnitError
from concert.ext._viewer_process import DPI, FIGURE_SIZE
from concert.ext.viewers import PyplotImageViewer, PyplotViewer
from concert.futures import resolve
from concert.pipelines import Result, broadcast, null
from concert.quantities import q
from tests.conftest import TIMEOUT, run_python

matplotlib = pytest.importorskip("matplotlib")
from matplotlib import colormaps  # noqa: E402
from matplotlib.image import imread  # noqa: E402

PNG_SHAPE = (round(FIGURE_SIZE[1] * DPI), round(FIGURE_SIZE[0] * DPI), 4)


@pytest.fixture(autouse=True)
def headless(monkeypatch):
    """Every drawing process (they inherit the environment) draws with Agg, into PNG files."""
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture
def viewers():
    """Makes viewers and closes them at the end of the test, whatever happened."""
    made = []

    def make(cls=PyplotImageViewer, **options):
        viewer = cls(**options)
        made.append(viewer)
        return viewer

    yield make
    for viewer in made:
        viewer.close(timeout=TIMEOUT)


def halves(rows, columns, left, right, dtype=np.uint16):
    frame = np.full((rows, columns), left, dtype=dtype)
    frame[:, columns // 2 :] = right
    return frame


def pixels_of(png, colour, tolerance=2.5 / 255):
    """The (rows, columns) of the pixels of ``png`` (an RGBA array) within ``tolerance`` of ``colour``."""
    close = np.all(np.abs(png[..., :3] - np.asarray(colour)[:3]) <= tolerance, axis=-1)
    return np.nonzero(close)


def colour(name, fraction):
    return colormaps[name](fraction)


def only_the_png(directory: Path, png: str):
    """Nothing but the PNG in its directory: no partial file was left behind."""
    assert sorted(os.listdir(directory)) == [os.path.basename(png)]


# -- drawing -----------------------------------------------------------------------------------


def test_the_png_shows_the_frame_downsampled(viewers, tmp_path):
    viewer = viewers(colormap="viridis", directory=tmp_path)
    assert viewer.filename == str(tmp_path / f"{repr(viewer).replace('#', '-')}.png")
    assert viewer.factor((2048, 2048)) == 4  # the default max_size draws a 2048² frame at 512²
    frame = halves(2048, 2048, 100, 60000)  # dark on the left, bright on the right
    viewer.show(frame)
    viewer.flush(TIMEOUT)
    assert (viewer.received, viewer.handed, viewer.drawn, viewer.dropped) == (1, 1, 1, 0)
    assert viewer.backend == "agg"

    png = imread(viewer.filename)
    assert png.shape == PNG_SHAPE
    dark_rows, dark_columns = pixels_of(png, colour("viridis", 0.0))
    bright_rows, bright_columns = pixels_of(png, colour("viridis", 1.0))
    # The two halves of the image, side by side, of one size (the colour bar adds a few pixels).
    assert dark_columns.size > 20000 and bright_columns.size > 20000
    assert 0.8 < dark_columns.size / bright_columns.size < 1.25
    assert np.median(dark_columns) < np.median(bright_columns)
    assert abs(np.median(dark_rows) - np.median(bright_rows)) < 20
    only_the_png(tmp_path, viewer.filename)


def test_without_a_display_or_a_file_it_draws_into_a_fresh_directory_it_names(viewers, log_of):
    log = log_of("concert.ext.viewers")
    viewer = viewers()
    assert viewer.filename is None  # not known before the drawing process has looked for a display
    viewer.show(np.eye(16))
    viewer.flush(TIMEOUT)
    png = Path(viewer.filename)
    try:
        assert png.parent.parent == Path(tempfile.gettempdir())
        assert png.parent.name.startswith("concert-viewers-")
        assert png.name == f"{repr(viewer).replace('#', '-')}.png" and imread(png).shape == PNG_SHAPE
        said = [record for record in log.records if str(png) in record.getMessage()]
        assert said and said[0].levelname == "WARNING"
        assert said[0].getMessage() == f"{viewer!r}: no display (matplotlib backend agg): drawing into {png}"
    finally:
        viewer.close(timeout=TIMEOUT)
        shutil.rmtree(png.parent, ignore_errors=True)  # made again, should another viewer need it


WINDOW_BACKEND = '''
"""A matplotlib backend with windows that only count how often they were shown (and an Agg canvas)."""
from matplotlib.backend_bases import FigureManagerBase
from matplotlib.backends.backend_agg import FigureCanvasAgg


class FigureManager(FigureManagerBase):
    def show(self):
        print("window shown:", self.get_window_title(), flush=True)  # goes to the viewer's stderr


class FigureCanvas(FigureCanvasAgg):
    manager_class = FigureManager
'''


def test_with_an_interactive_backend_it_draws_in_a_window_and_into_the_file_asked_for(
    viewers, tmp_path, monkeypatch, capfd
):
    (tmp_path / "window_backend.py").write_text(WINDOW_BACKEND)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "module://window_backend")
    viewer = viewers(colormap="viridis", filename=tmp_path / "view.png", rate=None)
    for value in (100, 200):
        viewer.show(halves(64, 128, 0, value))
        viewer.flush(TIMEOUT)
    assert viewer.backend == "module://window_backend" and viewer.drawn == 2
    png = imread(viewer.filename)
    assert pixels_of(png, colour("viridis", 0.0))[0].size > 10000
    assert pixels_of(png, colour("viridis", 1.0))[0].size > 10000
    viewer.close(timeout=TIMEOUT)
    assert f"window shown: {viewer!r}" in capfd.readouterr().err  # its window, titled with its name


def test_colour_limits_fixed_auto_and_stream(viewers, tmp_path):
    viewer = viewers(colormap="viridis", limits=(0, 1000), directory=tmp_path, rate=None)
    frame = halves(64, 128, 100, 200)

    def colours_drawn(low_fraction, high_fraction):
        viewer.show(frame)
        viewer.flush(TIMEOUT)
        png = imread(viewer.filename)
        low = pixels_of(png, colour("viridis", low_fraction))[1]
        high = pixels_of(png, colour("viridis", high_fraction))[1]
        return low.size > 10000 and high.size > 10000 and np.median(low) < np.median(high)

    assert colours_drawn(0.1, 0.2)  # fixed: 100 and 200 of 0 ... 1000
    viewer.limits = "auto"
    assert colours_drawn(0.0, 1.0)  # this frame's own minimum and maximum
    viewer.limits = "stream"
    viewer.show(halves(64, 128, 0, 1000))  # drawn, it widens the range of the frames drawn to 0 ... 1000
    viewer.flush(TIMEOUT)
    assert colours_drawn(0.1, 0.2)
    viewer.limits = "stream"  # starts over
    assert colours_drawn(0.0, 1.0)
    assert viewer.drawn + viewer.dropped == viewer.received == 5


def test_rgb_images_are_drawn_as_they_are(viewers, tmp_path):
    viewer = viewers(directory=tmp_path)
    image = np.zeros((40, 60, 3), dtype=np.uint8)
    image[..., 0] = 255  # red
    viewer.show(image)
    viewer.flush(TIMEOUT)
    assert viewer.drawn == 1
    assert pixels_of(imread(viewer.filename), (1.0, 0.0, 0.0))[0].size > 20000


def test_counts_are_exact_after_close_and_a_closed_viewer_refuses_frames(viewers, tmp_path):
    viewer = viewers(directory=tmp_path)
    frames = [np.full((256, 256), value, dtype=np.uint16) for value in range(200)]
    for frame in frames:
        viewer.show(frame)  # far faster than it draws: most are dropped
    viewer.close(timeout=TIMEOUT)
    assert viewer.received == 200
    assert viewer.drawn + viewer.dropped == 200 and viewer.drawn == viewer.handed >= 1
    assert viewer.dropped > 0
    assert not _running(viewer.pid)  # ended (and reaped)
    with pytest.raises(StateError, match=re.escape(f"{viewer!r} is closed")):
        viewer.show(frames[0])
    with pytest.raises(StateError, match="closed"):
        viewer.start()
    viewer.close()  # twice: nothing more
    viewer.flush(TIMEOUT)  # nothing pending
    only_the_png(tmp_path, viewer.filename)


def test_waiting_for_the_end_hands_the_last_frame_over_whatever_the_rate(viewers, tmp_path):
    with PyplotImageViewer(directory=tmp_path, rate=0.001) as viewer:  # one draw in 1000 s at most
        viewer.show(np.zeros((8, 8)))
        viewer.flush(TIMEOUT)
        viewer.show(np.ones((8, 8)))
        viewer.flush(TIMEOUT)  # not 1000 s
        assert (viewer.received, viewer.drawn, viewer.dropped) == (2, 2, 0)
    with pytest.raises(StateError, match="closed"):  # the end of the with block closed it
        viewer.show(np.zeros((8, 8)))


def test_a_slow_drawer_drops_frames_and_never_holds_the_producer_up(viewers, tmp_path):
    viewer = viewers(directory=tmp_path, rate=None, _draw_delay=0.5)  # every draw takes 0.5 s more
    viewer.show(np.zeros((32, 32)))
    viewer.flush(TIMEOUT)  # the drawing process is up and idle
    handed, drawn = viewer.handed, viewer.drawn
    frames = [np.full((32, 32), value, dtype=np.uint16) for value in range(100)]
    seen = {}

    def producer():
        yield from frames
        seen.update(handed=viewer.handed - handed, drawn=viewer.drawn - drawn)

    futures = broadcast(producer(), viewer, null)
    assert resolve(futures, TIMEOUT) == [100, 100]
    # All 100 frames were produced while the drawer was still on the first one of them: the
    # producer never waited for it (waiting, it would have seen 100 frames handed and drawn).
    assert seen["drawn"] == 0 and seen["handed"] <= 2
    viewer.flush(TIMEOUT)  # consuming does not wait for the drawing: flush does
    assert viewer.received == 101 and viewer.drawn + viewer.dropped == 101
    assert viewer.dropped >= 97 and viewer.drawn <= 4


def test_a_killed_drawing_process_makes_the_next_call_raise(viewers, tmp_path):
    viewer = viewers(directory=tmp_path)
    frame = np.zeros((16, 16))
    viewer.show(frame)
    viewer.flush(TIMEOUT)
    pid = viewer.pid
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(StateError) as error:
        viewer.show(frame)  # the death may be noticed here already, or while waiting for the draw
        viewer.flush(TIMEOUT)
    assert str(error.value).startswith(f"{viewer!r}: its drawing process (pid {pid}) was killed by signal 9")
    with pytest.raises(StateError, match="killed"):
        viewer([frame])  # consuming a stream too
    with pytest.raises(StateError, match="killed"):
        viewer.flush(TIMEOUT)
    viewer.close(timeout=TIMEOUT)
    assert viewer.drawn == 1 and viewer.drawn + viewer.dropped == viewer.received


def test_an_unknown_colormap_is_raised_once_and_can_be_fixed(viewers, tmp_path):
    viewer = viewers(directory=tmp_path, colormap="no-such-map")
    frame = np.zeros((16, 16))
    viewer.show(frame)
    with pytest.raises(ConfigurationError, match=re.escape(f"{viewer!r}: colormap='no-such-map'")):
        viewer.flush(TIMEOUT)
    viewer.flush(TIMEOUT)  # raised once: the frame it refused is dropped
    assert (viewer.drawn, viewer.dropped) == (0, 1)
    viewer.colormap = "magma"
    viewer.show(frame)
    viewer.flush(TIMEOUT)
    assert (viewer.received, viewer.drawn, viewer.dropped) == (2, 1, 1)


# -- wrong use ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, shown",
    [
        ({"limits": (5, 5)}, "limits=(5, 5)"),
        ({"limits": (5, 1)}, "limits=(5, 1)"),
        ({"limits": (math.nan, 1)}, "limits=(nan, 1)"),
        ({"limits": (0, math.inf)}, "limits=(0, inf)"),
        ({"limits": "fixed"}, "limits='fixed'"),
        ({"limits": (1, 2, 3)}, "limits=(1, 2, 3)"),
        ({"limits": ("0", 1)}, "limits=('0', 1)"),
        ({"downsampling": 0}, "downsampling=0"),
        ({"downsampling": -2}, "downsampling=-2"),
        ({"downsampling": 2.5}, "downsampling=2.5"),
        ({"downsampling": "2"}, "downsampling='2'"),
        ({"downsampling": True}, "downsampling=True"),
        ({"max_size": 0}, "max_size=0"),
        ({"rate": 0}, "rate=0"),
        ({"rate": -1.0}, "rate=-1.0"),
        ({"rate": "fast"}, "rate='fast'"),
        ({"title": 5}, "title=5"),
        ({"colormap": ""}, "colormap=''"),
        ({"colormap": 3}, "colormap=3"),
        ({"filename": 42}, "filename=42"),
    ],
)
def test_bad_options_are_refused_naming_the_viewer_and_the_value(options, shown):
    with pytest.raises(ConfigurationError, match=r"PyplotImageViewer#\d+: " + re.escape(shown)):
        PyplotImageViewer(**options)


def test_bad_places_for_the_png_and_bad_timeouts_are_refused(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ConfigurationError, match="would replace a directory"):
        PyplotImageViewer(filename=tmp_path)
    with pytest.raises(ConfigurationError, match="is not a directory"):
        PyplotImageViewer(directory=tmp_path / "a-file" / "below")
    with pytest.raises(UnitError, match="timeout"):
        PyplotImageViewer(timeout="long")
    with pytest.raises(UnitError, match="timeout"):
        PyplotImageViewer(timeout=3 * q.mm)
    for options, shown in (({"max_points": 1}, "max_points=1"), ({"style": None}, "style=None")):
        with pytest.raises(ConfigurationError, match=r"PyplotViewer#\d+: " + re.escape(shown)):
            PyplotViewer(**options)


def test_a_refused_option_leaves_the_viewer_as_it_was():
    viewer = PyplotImageViewer(limits=(0, 10), downsampling=2)
    for name, value in (("limits", (2, 1)), ("downsampling", 0), ("max_size", -1), ("colormap", None)):
        with pytest.raises(ConfigurationError, match=f"{viewer!r}: {name}="):
            setattr(viewer, name, value)
    assert (viewer.limits, viewer.downsampling, viewer.max_size, viewer.colormap) == ((0, 10), 2, 512, "gray")
    viewer.max_size = None
    assert viewer.factor((2048, 2048)) == 2
    viewer.close()  # never started: nothing to end
    assert viewer.pid is None


@pytest.mark.parametrize(
    "frame, shown",
    [
        (np.zeros((4, 4), dtype=complex), "is complex128"),
        (np.array([[object()]]), "is object"),
        (
            np.zeros((4, 4, 2), dtype=np.uint8),
            "is 3-D (shape 4\N{MULTIPLICATION SIGN}4\N{MULTIPLICATION SIGN}2",
        ),
        (
            np.zeros((4, 4, 3), dtype=np.uint16),
            "is 3-D (shape 4\N{MULTIPLICATION SIGN}4\N{MULTIPLICATION SIGN}3, uint16)",
        ),
        (np.zeros(5), "is 1-D"),
        (np.float64(3.0), "is 0-D"),
        (np.zeros((0, 5)), "is empty"),
        ("image.tif", "is <U9"),
        ([[1, 2], [3]], "is not an array"),
    ],
)
def test_frames_it_cannot_draw_are_refused(frame, shown):
    viewer = PyplotImageViewer()
    with pytest.raises(DataError, match=re.escape(f"{viewer!r}: frame 0") + ".*" + re.escape(shown)):
        viewer.show(frame)
    assert viewer.received == 0 and viewer.pid is None  # nothing accepted, nothing started


def test_after_a_refused_frame_the_viewer_goes_on(viewers, tmp_path):
    viewer = viewers(directory=tmp_path)
    viewer.show(np.zeros((8, 8)))
    with pytest.raises(DataError, match="complex"):
        viewer.show(np.zeros((8, 8), dtype=complex))
    with pytest.raises(DataError, match="complex"):
        viewer([np.ones((8, 8)), np.zeros((8, 8), dtype=complex)])  # in a stream too
    viewer.show(np.ones((8, 8), dtype=bool))
    viewer.flush(TIMEOUT)
    assert viewer.received == 3 and viewer.drawn + viewer.dropped == 3 and viewer.drawn >= 1


# -- the two faces -----------------------------------------------------------------------------


def test_a_viewer_consumes_camera_frames_in_a_broadcast_and_as_a_push_consumer(viewers, tmp_path):
    from concert.devices.cameras.dummy import Camera

    camera = Camera(sensor_width=64 * q.pixel, sensor_height=48 * q.pixel)
    camera.frame_rate = 1000 / q.s
    viewer = viewers(directory=tmp_path)
    with camera.recording():
        stream = camera.stream()
        futures = broadcast(itertools.islice(stream, 20), viewer, Result())
        count, last = resolve(futures, TIMEOUT)
        assert count == 20 and last.metadata["frame"] == 19
        assert viewer.received == 20  # consuming returned at the stream's end, not waiting for drawing
        viewer.flush(TIMEOUT)
        assert viewer.drawn + viewer.dropped == 20
        push = viewer()
        for frame in itertools.islice(stream, 5):
            push.send(frame)
    viewer.flush(TIMEOUT)
    assert viewer.received == 25 and viewer.drawn + viewer.dropped == 25
    assert imread(viewer.filename).shape == PNG_SHAPE

    with pytest.raises(DataError, match=re.escape(f"call {viewer!r}.show(...)")):
        viewer(last)  # one frame is not a stream of rows
    with pytest.raises(DataError, match="is not a stream"):
        viewer(5)


# -- curves ------------------------------------------------------------------------------------


def test_the_curve_viewer_appends_points_and_keeps_the_newest(viewers, tmp_path):
    viewer = viewers(PyplotViewer, directory=tmp_path, max_points=5)
    for value in range(20):
        viewer.show(float(value))  # before the drawing process is up: only the newest 5 are kept
    viewer.flush(TIMEOUT)
    assert (viewer.received, viewer.drawn, viewer.dropped) == (20, 5, 15)
    viewer.show(np.arange(100.0) ** 2)  # a whole curve, thinned to 5 points, replaces them
    viewer.show((200, 5.0))  # and a point extends it
    viewer.show((np.arange(3), np.ones(3)))  # a pair of arrays: a curve
    viewer((x, -x) for x in range(3))  # points from a stream
    viewer.flush(TIMEOUT)
    assert viewer.received == 26 and viewer.drawn + viewer.dropped == 26
    png = imread(viewer.filename)
    assert png.shape == PNG_SHAPE
    assert pixels_of(png, matplotlib.colors.to_rgb("C0"))[0].size > 200  # the line and its dots


def test_the_curve_viewer_keeps_one_unit_per_axis_and_refuses_what_it_cannot_draw(viewers, tmp_path):
    viewer = viewers(PyplotViewer, directory=tmp_path)
    viewer.show((1 * q.mm, 2 * q.s))
    viewer.show((0.5 * q.cm, 3 * q.s))  # converted to mm
    refused = f"{viewer!r}: item 2: x=1 s cannot be shown on an axis in mm"
    with pytest.raises(UnitError, match=re.escape(refused)):
        viewer.show((1 * q.s, 1 * q.s))
    with pytest.raises(UnitError, match=re.escape("x=1.0 has no unit, the axis is in mm")):
        viewer.show((1.0, 2.0))
    for item, shown in (
        (1j, "is complex128"),
        ("abc", "is <U3"),
        (np.zeros((3, 3)), "has shape (3, 3)"),
        (([1, 2], [1, 2, 3]), "has 2 x values and 3 y values"),
        ([], "is an empty curve"),
    ):
        with pytest.raises(DataError, match=re.escape(shown)):
            viewer.show(item)
    viewer.show((np.array([1.0, 2.0]) * q.mm, np.array([1.0, 4.0]) * q.s))
    viewer.flush(TIMEOUT)
    assert viewer.received == 3 and viewer.drawn + viewer.dropped == 3


# -- the process's life ------------------------------------------------------------------------


def _running(pid) -> bool:
    """Whether process ``pid`` runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _wait_for_end(pid, timeout) -> bool:
    """Wait until process ``pid`` (not a child of ours) has ended, at most ``timeout`` s."""
    if not hasattr(os, "pidfd_open"):
        pytest.skip("needs os.pidfd_open (Linux) to wait for a process that is not our child")
    try:
        descriptor = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([descriptor], [], [], timeout)  # readable once it has ended
        return bool(readable) or not _running(pid)
    finally:
        os.close(descriptor)


def test_importing_concert_or_the_viewers_does_not_import_matplotlib(tmp_path):
    code = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import concert, concert.ext, concert.ext.viewers
        assert "matplotlib" not in sys.modules
        viewer = concert.ext.viewers.PyplotImageViewer(directory={str(tmp_path)!r})
        viewer.show(np.eye(8))
        viewer.close(timeout={TIMEOUT})
        assert viewer.drawn == 1, viewer.drawn
        print("matplotlib" in sys.modules)
        """
    )
    result = run_python(code, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"  # only the drawing process imported it


def test_a_viewer_left_open_neither_hangs_the_exit_nor_stays_behind(tmp_path):
    code = textwrap.dedent(
        f"""
        import numpy as np
        from concert.exceptions import WaitError
        from concert.ext.viewers import PyplotImageViewer
        viewer = PyplotImageViewer(directory={str(tmp_path)!r}, timeout=1, _draw_delay=600)
        viewer.show(np.eye(8))
        try:
            viewer.flush(0.5)
        except WaitError:
            pass
        print(viewer.pid, flush=True)
        """
    )  # the script ends with a drawer that would take 10 minutes for its frame
    began = time.monotonic()
    result = run_python(code, timeout=TIMEOUT)
    took = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    pid = int(result.stdout)
    assert not _running(pid)  # ended, and reaped by its viewer's process
    assert took < TIMEOUT / 2  # loosely: at most the viewer's timeout and the 2 s grace, not 10 minutes


def test_the_drawing_process_ends_when_its_viewer_s_process_is_killed(tmp_path):
    code = textwrap.dedent(
        f"""
        import os, signal
        import numpy as np
        from concert.ext.viewers import PyplotImageViewer
        viewer = PyplotImageViewer(directory={str(tmp_path)!r})
        viewer.show(np.eye(8))
        viewer.flush({TIMEOUT})
        print(viewer.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = run_python(code, timeout=TIMEOUT)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert _wait_for_end(int(result.stdout), TIMEOUT), "the drawing process was left behind"


# -- regressions of the attack on the viewers ----------------------------------------------------


def _keep_showing(viewer, frame, limit=200000):
    """Show ``frame`` in another thread until the viewer refuses it (bounded); return the thread, a box."""
    box = {"shown": 0, "error": None}

    def run():
        for _ in range(limit):
            try:
                viewer.show(frame)
            except Exception as error:  # the StateError of a closed viewer is what ends it
                box["error"] = error
                return
            box["shown"] += 1
            time.sleep(0.001)  # a camera at about 1 kHz: the producer's pace, not a synchronisation

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def test_flush_and_close_wait_only_for_what_was_pending_while_another_thread_shows(viewers, tmp_path, log_of):
    log = log_of("concert.ext.viewers")
    viewer = viewers(directory=tmp_path, rate=2, timeout=TIMEOUT)
    viewer.show(np.eye(64))
    viewer.flush(TIMEOUT)
    thread, box = _keep_showing(viewer, np.eye(64))
    viewer.flush(5)  # frames shown meanwhile are not waited for: no WaitError
    drawn_after_flush = viewer.drawn
    viewer.close(timeout=5)  # refuses new frames at once, waits for the one pending only
    thread.join(TIMEOUT)
    assert not thread.is_alive() and isinstance(box["error"], StateError)
    assert "is closed" in str(box["error"])
    assert not [record for record in log.records if "not drawn within" in record.getMessage()]
    assert viewer.received == viewer.drawn + viewer.dropped
    # The rate held while the others were shown: the flush and the close drew one frame each.
    assert viewer.drawn <= drawn_after_flush + 1 <= 4 and box["shown"] > viewer.drawn


def test_viewers_left_open_with_stopped_drawers_are_closed_together_at_exit(tmp_path):
    code = textwrap.dedent(
        f"""
        import os, signal, sys, time
        import numpy as np
        import concert.ext.viewers as viewers
        viewers.EXIT_TIMEOUT = 1.0
        made = [viewers.PyplotImageViewer(directory={str(tmp_path)!r}, rate=None) for _ in range(3)]
        for viewer in made:
            viewer.show(np.eye(8))
        for viewer in made:
            viewer.flush({TIMEOUT})
            os.kill(viewer.pid, signal.SIGSTOP)
            viewer.show(np.eye(8) * 2)
            viewer.show(np.eye(8) * 3)
        print(" ".join(str(viewer.pid) for viewer in made), time.monotonic(), flush=True)
        """
    )
    result = run_python(code, timeout=TIMEOUT)
    ended = time.monotonic()
    assert result.returncode == 0, result.stderr
    *pids, began = result.stdout.split()
    # One deadline for all three: about EXIT_TIMEOUT (1 s) and a kill margin, not 3 x (1 + 2 + 2) s.
    assert ended - float(began) < 6
    assert result.stderr.count("did not end: killed") == 3
    for pid in pids:
        assert not _running(int(pid))


def test_consuming_a_stream_returns_at_its_end_without_waiting_for_the_drawing_process(viewers, tmp_path):
    viewer = viewers(directory=tmp_path)
    frames = [np.full((16, 16), value, dtype=np.uint16) for value in range(100)]
    assert resolve(broadcast(iter(frames), viewer, null), TIMEOUT) == [100, 100]
    # Returned before the drawing process was even up: nothing handed over, the last frame in the slot.
    assert viewer.received == 100 and viewer.handed == 0 and viewer.drawn == 0
    viewer.flush(TIMEOUT)  # waits for the drawing: the counts are final
    assert viewer.drawn == 1 and viewer.dropped == 99


def test_numbers_beyond_float_are_refused_before_anything_is_counted(viewers, tmp_path):
    viewer = viewers(PyplotViewer, directory=tmp_path, rate=None)
    viewer.show(1.0)
    for item in (10**400, (10**400, 1), (1, -(10**400))):
        with pytest.raises(DataError, match=re.escape(f"{viewer!r}: item 1, ") + ".*too large"):
            viewer.show(item)
    viewer.show(True)  # a boolean is a number, as in arrays: (1, 1.0)
    viewer.show(np.bool_(False))
    viewer.close(timeout=TIMEOUT)
    assert viewer.received == 3 and viewer.received == viewer.drawn + viewer.dropped


SLOW_BACKEND = '''
"""A matplotlib backend that takes a minute to import: a drawing process still starting."""
import time

time.sleep(60)
from matplotlib.backends.backend_agg import FigureCanvasAgg as FigureCanvas  # noqa: E402,F401
'''


def test_closing_right_after_start_ends_a_process_still_importing_pyplot(tmp_path, monkeypatch, log_of):
    log = log_of("concert.ext.viewers")
    (tmp_path / "slow_backend.py").write_text(SLOW_BACKEND)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "module://slow_backend")
    viewer = PyplotImageViewer(directory=tmp_path).start()
    viewer.show(np.eye(8))  # pending: never handed over, the process never gets ready
    viewer.close(timeout=0.5)
    assert not [record for record in log.records if "killed" in record.getMessage()]
    assert viewer.received == 1 and viewer.dropped == 1 and not _running(viewer.pid)


def test_a_stopped_drawing_process_ends_when_its_viewer_s_process_is_killed(tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux only")
    code = textwrap.dedent(
        f"""
        import os, signal
        import numpy as np
        from concert.ext.viewers import PyplotImageViewer
        viewer = PyplotImageViewer(directory={str(tmp_path)!r})
        viewer.show(np.eye(8))
        viewer.flush({TIMEOUT})
        print(viewer.pid, flush=True)
        os.kill(viewer.pid, signal.SIGSTOP)  # it cannot see its standard input end
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = run_python(code, timeout=TIMEOUT)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert _wait_for_end(int(result.stdout), TIMEOUT), "the stopped drawing process was left behind"


def test_frames_with_values_near_the_ends_of_float64_are_drawn(viewers, tmp_path):
    viewer = viewers(directory=tmp_path, rate=None)
    for frame in (
        np.array([[-1.7e308, 1.7e308], [0.0, 1.0]]),
        np.full((4, 4), 1.7e308),
        np.array([[-np.inf, np.finfo(np.float64).max], [np.nan, 0.0]]),
    ):
        viewer.show(frame)
        viewer.flush(TIMEOUT)  # raises what the drawing process could not draw
    assert viewer.drawn == 3 and imread(viewer.filename).shape == PNG_SHAPE


def test_an_unwritable_png_is_raised_once_and_the_viewer_goes_on_without_it(viewers, tmp_path, log_of):
    log = log_of("concert.ext.viewers")
    png = tmp_path / "view.png"
    viewer = viewers(filename=png, rate=None)
    (png / "in-the-way").mkdir(parents=True)  # a directory where the file goes: not replaceable
    viewer.show(np.eye(8))
    with pytest.raises(StorageError, match=re.escape(f"{viewer!r}: cannot write {str(png)!r}")):
        viewer.flush(TIMEOUT)
    for value in range(3):
        viewer.show(np.eye(8) * value)
        viewer.flush(TIMEOUT)  # said once: no StorageError any more
    assert viewer.drawn == 3 and viewer.dropped == 1
    said = [record for record in log.records if "cannot write" in record.getMessage()]
    assert len(said) == 1 and said[0].levelname == "ERROR"


# -- concert demo --view -----------------------------------------------------------------------


def _demo(args, cwd, env=None):
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CONCERT_")}
    environment.update({"CONCERT_PROGRESS_BAR": "0", "MPLBACKEND": "Agg", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "concert", "demo", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
    )


def test_concert_demo_view_draws_into_a_png_in_its_run_directory(tmp_path):
    result = _demo(["--view", "--projections", "8"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    where = re.search(r"drawn into (\S+\.png)", result.stdout)
    counts = re.search(r"Live view: (\d+) of (\d+) frames drawn \((\d+) dropped", result.stdout)
    assert where and counts, result.stdout
    drawn, received, dropped = (int(value) for value in counts.groups())
    assert received == 4 + 4 + 8 and drawn + dropped == received and drawn >= 1

    png = Path(where.group(1))
    run_directory = Path(re.search(r"Wrote \d+ frames \(.*\) to (\S+) in", result.stdout).group(1))
    assert png.parent == run_directory and (run_directory / "experiment.json").is_file()
    assert tmp_path in png.parents and f"the last one drawn is in {png}" in result.stdout
    picture = imread(png)
    assert picture.shape == PNG_SHAPE
    assert picture[..., :3].std() > 0.1  # not blank
    assert len(np.unique(picture[..., :3].reshape(-1, 3), axis=0)) > 50  # the camera's pattern, in greys
    assert not [name for name in os.listdir(run_directory) if name.endswith(".partial")]


def test_concert_demo_view_without_matplotlib_says_so_in_one_line(tmp_path):
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"  # as if it were not installed
        "from concert.cli import main\n"
        "sys.exit(main(['demo', '--view']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "concert demo: --view needs matplotlib: pip install concert[viewers]"
    ], result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written
