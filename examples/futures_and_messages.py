"""Run decorated calls in parallel, join them, and print Dispatcher messages as they arrive.

A small simulated acquisition: three motors move at once (each a blocking
function made asynchronous with ``@async_``), a detector integrates while
they move, and every device announces its state changes through the global
dispatcher. A watcher subscribed to ``ANY`` sender prints each message the
moment it is delivered. Ends with a table of what ran and how long it took.

Run:  python examples/futures_and_messages.py
"""

from __future__ import annotations

import threading
import time

from prettytable import PrettyTable

from concert.helpers import ANY, async_, dispatcher, on_cancel, resolve

START = time.monotonic()


class SimulatedMotor:
    """A motor that takes real time to move (velocity in mm/s)."""

    def __init__(self, name: str, velocity: float) -> None:
        self.name = name
        self.velocity = velocity
        self.position = 0.0
        self._stop = threading.Event()

    def __repr__(self) -> str:
        return self.name

    def stop(self) -> None:
        self._stop.set()

    @async_
    def move_to(self, target: float) -> float:
        on_cancel(self.stop)  # future.cancel() and Ctrl-C stop the motor
        self._stop.clear()  # a stop applies to the move under way, not to later ones
        dispatcher.send(self, "moving")
        duration = abs(target - self.position) / self.velocity
        if self._stop.wait(duration):  # stopped part-way: report where we are
            self.position += (target - self.position) / 2
        else:
            self.position = target
        dispatcher.send(self, "standby")
        return self.position


class SimulatedDetector:
    def __repr__(self) -> str:
        return "detector"

    @async_
    def integrate(self, seconds: float) -> int:
        dispatcher.send(self, "integrating")
        time.sleep(seconds)  # the photons take their time
        dispatcher.send(self, "idle")
        return int(seconds * 1e6)


def printer(message: str):
    """Return a handler that prints ``message`` with its sender (handlers get only the sender)."""

    def print_message(sender) -> None:
        print(f"  {time.monotonic() - START:6.3f} s  {sender!r:>9} -> {message}")

    return print_message


def main() -> None:
    motors = [SimulatedMotor("x-motor", 10.0), SimulatedMotor("y-motor", 5.0), SimulatedMotor("rot", 20.0)]
    detector = SimulatedDetector()
    for message in ("moving", "standby", "integrating", "idle"):
        dispatcher.subscribe(ANY, message, printer(message))

    print("Moving three motors and integrating in parallel:")
    moves = [motor.move_to(target) for motor, target in zip(motors, (2.0, 1.0, 4.0))]
    counts = detector.integrate(0.15)
    positions = resolve(moves, timeout=10)  # join all of them; raises if any failed
    photons = counts.join(timeout=10).result()
    dispatcher.flush(timeout=10)
    elapsed = time.monotonic() - START

    table = PrettyTable(["device", "result"])
    table.align = "l"
    for motor, position in zip(motors, positions):
        table.add_row([motor.name, f"{position:.1f} mm"])
    table.add_row(["detector", f"{photons} counts"])
    print(table)
    longest = max(abs(p) / m.velocity for p, m in zip(positions, motors))
    print(
        f"Everything ran in parallel: {elapsed:.2f} s in total, the longest move alone takes {longest:.2f} s."
    )


if __name__ == "__main__":
    main()
