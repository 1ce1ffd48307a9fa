"""The legacy processes (issue 9, SPEC §14): ``scan`` over regions, ``ascan``/``dscan``, ``focus``."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError

import numpy as np
import pytest

from concert.devices.base import Device
from concert.devices.cameras.dummy import Camera
from concert.devices.motors.dummy import LinearMotor
from concert.exceptions import ConcertError, StateError
from concert.helpers import Region
from concert.parameters import Parameter
from concert.processes.common import ProcessError, ascan, dscan, focus, scan, scan_param_feedback
from concert.quantities import q
from tests.conftest import TIMEOUT

pytestmark = pytest.mark.usefixtures("no_progress_bar")  # see tests/conftest.py


def fast_motor(**kwargs):
    return LinearMotor(motion_velocity=10 * q.m / q.s, **kwargs)


class Knob(Device):
    """A device with a plain ``value`` that remembers every value written to it."""

    value = Parameter(help="a plain number")

    def __init__(self, value=0):
        super().__init__()
        self._value = value
        self.written = []

    def _get_value(self):
        return self._value

    def _set_value(self, value):
        self._value = value
        self.written.append(value)


# -- Region -------------------------------------------------------------------------------------


def test_region_is_a_helper_holding_a_parameter_and_values():
    import concert.helpers

    assert "Region" in concert.helpers.__all__
    knob = Knob()
    values = np.linspace(0, 1, 3) * q.mm  # an array: no hash of its own
    region = Region(knob["value"], values)
    assert region.parameter is knob["value"] and region.values is values
    assert {region: 1}[region] == 1  # usable as a callbacks key
    assert list(Region(knob["value"], [1, 2])) == [1, 2]
    assert repr(Region(knob["value"], [1, 2])) == f"Region({knob!r}['value'], [1, 2])"


# -- scan ---------------------------------------------------------------------------------------


def test_scan_nests_regions_the_last_fastest_and_returns_tuples():
    outer, inner = Knob(), Knob()
    regions = [Region(outer["value"], [0, 1]), Region(inner["value"], [10, 20, 30])]
    results = [future.result(TIMEOUT) for future in scan(lambda: outer.value + inner.value, regions)]
    assert results == [
        (0, 10, 10),
        (0, 20, 20),
        (0, 30, 30),
        (1, 10, 11),
        (1, 20, 21),
        (1, 30, 31),
    ]
    # only what changes is set: the outer parameter twice, the inner one at every point
    assert outer.written == [0, 1] and inner.written == [10, 20, 30] * 2


def test_scan_of_one_region_moves_a_motor_through_quantities():
    motor = fast_motor()
    positions = np.linspace(0, 2, 3) * q.mm
    results = [f.result(TIMEOUT) for f in scan(lambda: motor.position, Region(motor["position"], positions))]
    assert [x.m_as(q.mm) for x, _ in results] == [0, 1, 2]
    assert [y.m_as(q.mm) for _, y in results] == pytest.approx([0, 1, 2])
    assert motor.position == 2 * q.mm


def test_callbacks_are_called_when_their_region_changes():
    outer, inner = Knob(), Knob()
    r_outer, r_inner = Region(outer["value"], [0, 1]), Region(inner["value"], [5, 6])
    calls = []
    callbacks = {
        r_outer: lambda: calls.append(("outer", outer.value)),
        r_inner: lambda: calls.append(("inner", inner.value)),
    }
    for future in scan(lambda: None, [r_outer, r_inner], callbacks):
        future.result(TIMEOUT)
    assert calls == [
        ("outer", 0),  # the first point changes both, outer first
        ("inner", 5),
        ("inner", 6),
        ("outer", 1),
        ("inner", 5),
        ("inner", 6),
    ]


def test_scan_is_lazy_and_runs_one_point_after_the_other(asynchronous):
    knob = Knob()
    gate, entered = threading.Event(), threading.Event()

    def feedback():
        entered.set()
        assert gate.wait(TIMEOUT)
        return knob.value

    points = scan(feedback, Region(knob["value"], [1, 2]))
    assert knob.written == []  # nothing before the first point is asked for
    first = next(points)
    assert entered.wait(TIMEOUT)
    assert not first.done()
    asking = threading.Thread(target=lambda: box.append(next(points)))
    box = []
    asking.start()
    asking.join(0.05)
    assert knob.written == [1]  # the second point waits for the first
    gate.set()
    asking.join(TIMEOUT)
    assert first.result(TIMEOUT) == (1, 1) and box[0].result(TIMEOUT) == (2, 2)
    assert list(points) == []


def test_a_failing_point_ends_the_scan_and_keeps_its_error():
    knob = Knob()

    def feedback():
        if knob.value == 2:
            raise OSError("detector saturated")
        return knob.value

    futures = list(scan(feedback, Region(knob["value"], [1, 2, 3, 4])))
    assert len(futures) == 2 and futures[0].result(TIMEOUT) == (1, 1)
    with pytest.raises(OSError, match="saturated"):
        futures[1].result(TIMEOUT)
    assert knob.written == [1, 2]  # no later point was started


def test_cancelling_a_point_ends_the_scan(asynchronous):
    from concert.futures import on_cancel

    knob = Knob()
    dwelling = threading.Event()

    def dwell():
        go_on = threading.Event()
        with on_cancel(go_on.set):
            dwelling.set()
            go_on.wait(TIMEOUT)
        return 0

    points = scan(dwell, Region(knob["value"], [1, 2, 3]))
    first = next(points)
    assert dwelling.wait(TIMEOUT)
    assert first.cancel(timeout=TIMEOUT)
    with pytest.raises(
        CancelledError, match=r"^scan point 1/3 \(Knob#\d+\['value'\] = 1\)\.measure\(\) was stopped"
    ):
        first.result(TIMEOUT)
    assert list(points) == [] and knob.written == [1]


def test_a_refused_value_fails_its_point():
    motor = fast_motor()
    motor["position"].upper = 1 * q.mm
    futures = list(scan(lambda: 0, Region(motor["position"], [0, 2, 3] * q.mm)))
    assert len(futures) == 2
    with pytest.raises(ConcertError, match="above the soft limit"):
        futures[1].result(TIMEOUT)


@pytest.mark.parametrize(
    "regions, message",
    [
        ([], r"scan\(\): no regions to scan"),
        ("motor", r"regions must be a Region or a list of them, not 'motor'"),
        ([5], r"regions\[0\] = 5 is not a Region"),
    ],
)
def test_scan_refuses_what_is_not_regions(regions, message):
    with pytest.raises(ProcessError, match=message):
        scan(lambda: 0, regions)


def test_scan_refuses_an_empty_region_at_the_call():
    knob, other = Knob(), Knob()
    with pytest.raises(ProcessError, match=r"scan\(\): the region of Knob#\d+\['value'\] has no values"):
        scan(lambda: 0, [Region(other["value"], [1]), Region(knob["value"], [])])
    assert knob.written == other.written == []
    with pytest.raises(ProcessError) as refused:
        scan(lambda: 0, Region(knob["value"], np.array([])))
    assert isinstance(refused.value, ConcertError) and isinstance(refused.value, ValueError)


def test_scan_refuses_bad_parameters_feedback_and_callbacks():
    knob = Knob()
    region = Region(knob["value"], [1])
    with pytest.raises(ProcessError, match=r"the parameter of Region\(5, \[1\]\) must be a parameter value"):
        scan(lambda: 0, Region(5, [1]))
    with pytest.raises(ProcessError, match=r"Knob#\d+\['value'\] is the parameter of more than one region"):
        scan(lambda: 0, [region, Region(knob["value"], [2])])
    with pytest.raises(ProcessError, match=r"values of the region of .* are not iterable: 3"):
        scan(lambda: 0, Region(knob["value"], 3))
    with pytest.raises(ProcessError, match="feedback must be a callable, not 5"):
        scan(5, region)
    with pytest.raises(ProcessError, match="which is not one of the regions"):
        scan(lambda: 0, region, {Region(knob["value"], [1]): print})
    with pytest.raises(ProcessError, match="is 'later', not a callable"):
        scan(lambda: 0, region, {region: "later"})
    with pytest.raises(ProcessError, match="callbacks must be a dict"):
        scan(lambda: 0, region, [print])
    assert knob.written == []


def test_scan_param_feedback_reads_a_parameter_at_each_point():
    knob, echo = Knob(), Knob()

    def follow():
        echo.value = knob.value * 10

    region = Region(knob["value"], [1, 2])
    futures = scan_param_feedback([region], echo["value"], {region: follow})
    assert [f.result(TIMEOUT) for f in futures] == [(1, 10), (2, 20)]
    with pytest.raises(ProcessError, match="feedback_param must be a parameter value"):
        scan_param_feedback(region, lambda: 0)


# -- ascan, dscan ---------------------------------------------------------------------------------


def test_ascan_calls_the_handler_with_the_parameters_at_each_step():
    x, y = Knob(), Knob()
    seen = []

    def handler(parameters):
        seen.append([p.read() for p in parameters])
        return sum(p.read() for p in parameters)

    positions, results = ascan([(x["value"], 0, 2), (y["value"], 10, 6)], 2, handler).result(TIMEOUT)
    assert seen == [[0, 10], [1, 8], [2, 6]]
    assert [list(p) for p in positions] == [[0, 1, 2], [10, 8, 6]] and list(results) == [10, 9, 8]


def test_ascan_first_goes_to_the_initial_values():
    knob = Knob()
    ascan([(knob["value"], 0, 2)], 2, lambda params: None, initial_values=[-5]).result(TIMEOUT)
    assert knob.written == [-5, 0, 1, 2]


def test_dscan_is_relative_and_puts_the_parameters_back():
    knob = Knob(value=5)
    seen = []
    dscan([(knob["value"], -1, 1)], 2, lambda params: seen.append(params[0].read())).result(TIMEOUT)
    assert seen == [4, 5, 6] and knob.value == 5


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda k: ascan([], 2, print), r"ascan\(\): param_list must be a non-empty list"),
        (
            lambda k: ascan([(k["value"], 0)], 2, print),
            r"param_list\[0\] = .* is not \(parameter, start, stop\)",
        ),
        (lambda k: ascan([(k["value"], 0, 1)], 0, print), r"n_intervals=0 must be a whole number >= 1"),
        (lambda k: ascan([(k["value"], 0, 1)], 1.5, print), r"n_intervals=1.5 must be a whole number >= 1"),
        (lambda k: ascan([(k["value"], 0, 1)], 2, None), r"handler must be a callable, not None"),
        (lambda k: ascan([(k["value"], 0, 1)], 2, print, [1, 2]), r"2 initial_values for 1 parameters"),
        (lambda k: dscan([(5, 0, 1)], 2, print), r"dscan\(\): param_list\[0\] = "),
    ],
)
def test_ascan_and_dscan_refuse_wrong_arguments(call, message):
    knob = Knob()
    with pytest.raises(ProcessError, match=message):
        call(knob).result(TIMEOUT)
    assert knob.written == []


# -- focus --------------------------------------------------------------------------------------


class BlurryCamera(Camera):
    """A simulated camera whose frames have the most contrast (std) with the lens motor at 3 mm."""

    def __init__(self, lens):
        self.lens = lens
        super().__init__(sensor_width=16 * q.pixel, sensor_height=16 * q.pixel)

    def _grab_real(self, timeout):
        frame = super()._grab_real(timeout)
        if frame is None:
            return None
        defocus = (self.lens.position - 3 * q.mm).m_as(q.mm)
        checkerboard = np.indices(frame.shape).sum(axis=0) % 2
        frame[:] = 100 + 1000 * checkerboard / (1 + defocus**2)
        return frame


def test_focus_moves_the_motor_to_the_sharpest_position_and_plots():
    lens = fast_motor()
    camera = BlurryCamera(lens)
    points = []
    future = focus(
        camera,
        lens,
        opt_kwargs={"initial_step": 1 * q.mm, "epsilon": 5 * q.um},
        plot_callback=lambda x, y: points.append((x, y)),
    )
    position, sharpness = future.result(TIMEOUT)
    assert abs(position - 3 * q.mm) < 0.02 * q.mm and lens.position == position
    assert sharpness == pytest.approx(500, rel=0.01)
    assert len(points) > 5 and max(y for _, y in points) == pytest.approx(sharpness)
    assert camera.state == "standby" and camera.trigger_source == camera.trigger_sources.AUTO


def test_focus_measures_with_the_measure_given():
    lens = fast_motor()
    camera = BlurryCamera(lens)
    position, _ = focus(
        camera, lens, measure=lambda frame: -abs(float(frame.mean()) - 300), opt_kwargs={"epsilon": 10 * q.um}
    ).result(TIMEOUT)
    # the mean is 100 + 500 / (1 + d²): 300 where d² = 1.5, the side nearest the start (0 mm)
    assert abs(position - (3 - 1.5**0.5) * q.mm) < 0.05 * q.mm


def test_focus_refuses_unknown_options_and_a_recording_camera():
    lens = fast_motor()
    camera = BlurryCamera(lens)
    with pytest.raises(ProcessError, match=r"unknown options 'step' \(it takes 'initial_step', 'epsilon'"):
        focus(camera, lens, opt_kwargs={"step": 1 * q.mm}).result(TIMEOUT)
    with pytest.raises(ProcessError, match="plot_callback must be a callable or None"):
        focus(camera, lens, plot_callback="plot").result(TIMEOUT)
    with camera.recording():
        with pytest.raises(StateError, match="focus needs BlurryCamera#"):
            focus(camera, lens).result(TIMEOUT)
    assert lens.position == 0 * q.mm
