"""The drawing process of :mod:`concert.ext.viewers`, and the messages it exchanges with its viewer.

A viewer starts ``python -m concert.ext._viewer_process``: a fresh
interpreter (nothing is forked), which is the only place matplotlib is ever
imported. The viewer writes to its standard input, the process answers on
its standard output; every message is

* 12 bytes: the length of a JSON header (uint32, little endian) and of a
  binary payload (uint64),
* the header, a JSON object whose ``"kind"`` says what it is,
* the payload (the pixels of a frame, the points of a curve), often empty.

Viewer -> process: ``start`` (once, first: what to draw and the options),
``frame`` (one thing to draw; its header may carry new ``options``) and
``close``. Process -> viewer: ``ready`` (once: the matplotlib backend, and
an error text if the options were refused), ``drawn`` and ``error`` (one
per ``frame``, in order; ``count`` says how many of the viewer's items the
frame stood for).

The process ends on ``close``, or when its standard input reaches its end:
the viewer's process ended, however it ended, so a drawing process is never
left behind. It ignores Ctrl-C and (being in a session of its own on POSIX)
never sees the terminal's signals: a Ctrl-C that stops a motor does not
close the window.

Its standard output is kept for the messages: whatever the process prints
(matplotlib's warnings, say) goes to standard error, which it shares with
the viewer's process.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import struct
import sys
import threading
import time
from typing import Any, BinaryIO, Dict, Optional, Tuple

import numpy as np

_SIZES = struct.Struct("<IQ")  # header length, payload length
_BOUND = 1e300  # the largest colour limit (in magnitude) drawn

# The figure of either kind, in inches at 100 dots per inch: what the PNG measures in pixels / 100.
FIGURE_SIZE = (6.4, 4.8)
DPI = 100


# -- messages ------------------------------------------------------------------------------------


def send(stream: BinaryIO, header: Dict[str, Any], payload: Any = b"") -> None:
    """Write one message to ``stream`` and flush it; ``payload`` is bytes or a contiguous buffer.

    :raises OSError: if the other end has gone (``BrokenPipeError``).
    """
    blob = json.dumps(header).encode("utf-8")
    view = memoryview(payload).cast("B")
    stream.write(_SIZES.pack(len(blob), view.nbytes))
    stream.write(blob)
    if view.nbytes:
        stream.write(view)
    stream.flush()


def receive(stream: BinaryIO) -> Optional[Tuple[Dict[str, Any], bytes]]:
    """Read one message from ``stream``: ``(header, payload)``, or ``None`` at the end of the stream.

    :raises ValueError: for a message that is cut short or not valid JSON.
    """
    sizes = _read(stream, _SIZES.size)
    if sizes is None:
        return None
    header_length, payload_length = _SIZES.unpack(sizes)
    blob = _read(stream, header_length)
    payload = _read(stream, payload_length) if payload_length else b""
    if blob is None or payload is None:
        raise ValueError("a viewer message was cut short")
    return json.loads(blob.decode("utf-8")), payload


def _read(stream: BinaryIO, size: int) -> Optional[bytes]:
    """Exactly ``size`` bytes, or ``None`` if the stream ends first (buffered streams return them whole)."""
    chunks = []
    while size:
        chunk = stream.read(size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


# -- matplotlib ----------------------------------------------------------------------------------


class OptionError(Exception):
    """An option matplotlib refuses (a colormap or line style it does not know)."""


def _is_interactive(backend: str) -> bool:
    """Whether ``backend`` opens windows (the inline backend of Jupyter does not, here)."""
    name = backend.lower()
    if "inline" in name:
        return False
    if name.startswith("module://"):
        return True
    try:
        from matplotlib.backends import BackendFilter, backend_registry

        interactive = backend_registry.list_builtin(BackendFilter.INTERACTIVE)
    except ImportError:  # matplotlib < 3.9
        from matplotlib import rcsetup

        interactive = rcsetup.interactive_bk
    return name in {entry.lower() for entry in interactive}


def _pyplot() -> Tuple[Any, str, bool]:
    """Import pyplot with the backend matplotlib chooses; return it, the backend, whether it opens windows.

    ``MPLBACKEND`` and the matplotlib configuration choose; with no display
    matplotlib itself falls back to Agg. A backend that does not draw on
    screen here (pdf, svg, Jupyter's inline one) is replaced by Agg, and so
    is an interactive one that cannot start (no display for it).
    """
    import matplotlib.pyplot as plt

    try:
        backend = plt.get_backend()
        interactive = _is_interactive(backend)
        if interactive:
            plt.switch_backend(backend)  # loads it now: ImportError if its toolkit cannot run here
    except ImportError as error:
        print(f"concert viewer: {error}; drawing into PNG files instead", file=sys.stderr)
        interactive = False
    if not interactive:
        plt.switch_backend("agg")
        backend = "agg"
    return plt, backend, interactive


class _Canvas:
    """The figure of one drawer: a window (interactive backend) and/or the PNG file.

    Drawing a frame redraws only what changes from frame to frame (the
    image, the title) over a copy of the rest taken after the last full draw
    ("blitting"): a quarter of the work of a full draw. A full draw happens
    when the rest changes (the colour bar's limits, a new layout, a resized
    window) or when the canvas cannot blit.
    """

    def __init__(self, plt: Any, interactive: bool, name: str) -> None:
        self.plt = plt
        self.interactive = interactive
        self.name = name
        self.figure: Any = None
        self.filename: Optional[str] = None
        self.unwritable: Optional[str] = None  # a PNG file that could not be written: not tried again
        self.blitting = False  # whether the canvas can restore a copy of itself
        self.background: Any = None  # the figure without its animated artists, after the last full draw
        self.animated: list = []  # the artists drawn over the background for each frame

    def figure_ready(self) -> bool:
        """Make sure the figure exists (a window the user closed is opened anew); return whether it is new."""
        if self.figure is not None and (not self.interactive or self.plt.fignum_exists(self.figure.number)):
            return False
        self.figure = self.plt.figure(figsize=FIGURE_SIZE, dpi=DPI)
        canvas = self.figure.canvas
        self.blitting = bool(getattr(canvas, "supports_blit", False)) and hasattr(canvas, "copy_from_bbox")
        self.background, self.animated = None, []
        canvas.mpl_connect("draw_event", self._drawn)
        if self.interactive:
            try:
                canvas.manager.set_window_title(self.name)
            except AttributeError:  # a backend without a window manager
                pass
            self.figure.show()
        return True

    def animate(self, *artists: Any) -> None:
        """Draw ``artists`` for each frame over the background (when blitting; else in full draws)."""
        self.animated = list(artists) if self.blitting else []
        for artist in self.animated:
            artist.set_animated(True)

    def _drawn(self, event: Any) -> None:
        # After every full draw (ours, or the window's: resized, zoomed), which leaves the animated
        # artists out: keep a copy to draw the next frames on, and draw them on this one.
        if self.blitting:
            self.background = self.figure.canvas.copy_from_bbox(self.figure.bbox)
            for artist in self.animated:
                self.figure.draw_artist(artist)

    def show(self, full: bool = True) -> None:
        """Put the frame on screen and into the PNG (replaced atomically); ``full``: redraw everything."""
        canvas = self.figure.canvas
        if full or self.background is None:
            canvas.draw()  # all but the animated artists; the draw event draws them over a copy
        elif self.animated:
            canvas.restore_region(self.background)
            for artist in self.animated:
                self.figure.draw_artist(artist)
            if self.interactive:
                canvas.blit(self.figure.bbox)
        if self.interactive:
            canvas.flush_events()
        if self.filename is not None and self.filename != self.unwritable:
            self._write()

    def _write(self) -> None:
        directory, base = os.path.split(self.filename)
        os.makedirs(directory or ".", exist_ok=True)
        partial = os.path.join(directory, f".{base}.{os.getpid()}.partial")
        # Written whole under another name, then renamed over the old one: a reader of the
        # PNG sees the previous picture or the new one, never half a file.
        canvas = self.figure.canvas
        if hasattr(canvas, "buffer_rgba"):  # what was just drawn, encoded as it is (no second draw)
            from matplotlib.image import imsave

            # Pillow's fastest compression: a live view is rewritten several times a second.
            imsave(partial, np.asarray(canvas.buffer_rgba()), format="png", pil_kwargs={"compress_level": 1})
        else:
            self.figure.savefig(partial, format="png", dpi=DPI)
        os.replace(partial, self.filename)

    def pump(self) -> None:
        """Let the window handle its events (resizing, closing) while nothing is drawn."""
        if self.interactive and self.figure is not None and self.plt.fignum_exists(self.figure.number):
            self.figure.canvas.flush_events()


def _check_colormap(name: str) -> None:
    import matplotlib

    try:
        matplotlib.colormaps[name]
    except KeyError:
        known = ", ".join(repr(entry) for entry in ("gray", "viridis", "magma", "inferno", "gray_r"))
        raise OptionError(f"colormap={name!r} is not a matplotlib colormap (e.g. {known})") from None


def _check_style(style: str) -> None:
    from matplotlib.figure import Figure

    try:
        Figure().add_subplot().plot([], [], style)
    except ValueError as error:
        raise OptionError(f"style={style!r} is not a matplotlib line format ({error})") from None


class _ImageDrawer:
    """Draws frames with a colour bar, the title and the frame number.

    It colours a frame itself, through the colormap's table of colours, in
    ``uint8``, and hands matplotlib the RGBA image: a tenth of the memory
    traffic of matplotlib's colouring in float64. A live view shares the
    memory bus with the acquisition it shows.
    """

    def __init__(self, canvas: _Canvas) -> None:
        self.canvas = canvas
        self.options: Dict[str, Any] = {}
        self.refused: Optional[str] = None  # why the options are refused; frames are refused meanwhile
        self.image: Any = None
        self.scale: Any = None  # what the colour bar shows: the colormap and the limits
        self.colours: Any = None  # the colormap's colours, RGBA bytes as one uint32 each
        self.bad: Any = None  # its colour for NaN and infinite pixels (a uint32)
        self.direct: Any = None  # (key, colours): the colour of each value of a uint8 or uint16 frame
        self.layout: Any = None  # (shape, rgb, full, factor) the image artist was made for
        self.look: Any = None  # (colormap, limits) of the last full draw
        self.stream_limits: Optional[Tuple[float, float]] = None

    def configure(self, options: Dict[str, Any]) -> Optional[str]:
        """Take new options; return why they are refused (``None``: taken)."""
        try:
            _check_colormap(options["colormap"])
        except OptionError as error:
            self.refused = str(error)
            return self.refused
        if options["limits"] != "stream" or options.get("epoch") != self.options.get("epoch"):
            self.stream_limits = None  # new limits, or 'stream' set again: the running range starts over
        self.options, self.refused = options, None
        self.canvas.filename = options.get("filename")
        import matplotlib

        colormap = matplotlib.colormaps[options["colormap"]]
        self.colours = np.ascontiguousarray(colormap(np.arange(colormap.N), bytes=True)).view(np.uint32)[:, 0]
        self.bad = np.array(colormap(np.nan, bytes=True), dtype=np.uint8).view(np.uint32)[0]
        self.direct = None
        if self.scale is not None:
            self.scale.set_cmap(colormap)
        return None

    def _limits(self, frame: np.ndarray) -> Tuple[float, float]:
        limits = self.options["limits"]
        if isinstance(limits, list):
            return float(limits[0]), float(limits[1])
        values = frame if frame.dtype.kind in "biu" else frame[np.isfinite(frame)]
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
        if limits == "stream":
            if self.stream_limits is not None:
                low, high = min(low, self.stream_limits[0]), max(high, self.stream_limits[1])
            self.stream_limits = (low, high)
        if high <= low:  # a flat frame: a range around its value
            low, high = low - 0.5, high + 0.5
        # Values near the ends of float64 (+-1.8e308): limits within +-1e300, a range matplotlib
        # can compute with (its colour bar and ticks overflow beyond). Such pixels get the end colours.
        bound = _BOUND
        low, high = min(max(low, -bound), bound), min(max(high, -bound), bound)
        if not high > low:  # a flat frame at one of the ends
            low, high = (bound / 2, bound) if high > 0 else (-bound, -bound / 2)
        return low, high

    def _coloured(self, frame: np.ndarray, low: float, high: float) -> np.ndarray:
        """``frame`` in RGBA, as matplotlib colours it: ``low`` the first colour, ``high`` the last.

        Colours are handled as one uint32 each. A frame of 8 or 16 bits is coloured through a table
        of a colour for each of its values (made once per colormap and limits), others through the
        colormap's index computed in float32.
        """
        rows, columns = frame.shape
        if frame.dtype in (np.uint8, np.uint16):
            key = (frame.dtype, low, high, self.options["colormap"])
            if self.direct is None or self.direct[0] != key:
                values = np.arange(np.iinfo(frame.dtype).max + 1, dtype=np.float64)
                self.direct = (key, self.colours[self._index(values, low, high)])
            coloured = self.direct[1][frame]
        else:
            # float32 suffices and is quicker, unless the limits are beyond its range (+-3.4e38)
            big = max(abs(low), abs(high)) > 1e37
            with np.errstate(invalid="ignore", over="ignore"):  # NaN pixels: coloured below
                values = frame.astype(np.float64 if big else np.float32)
                coloured = self.colours[self._index(values, low, high)]
            if frame.dtype.kind == "f":
                bad = ~np.isfinite(frame)
                if bad.any():
                    coloured[bad] = self.bad
        return coloured.view(np.uint8).reshape(rows, columns, 4)

    def _index(self, values: np.ndarray, low: float, high: float) -> np.ndarray:
        """The colormap's index of each of ``values`` (a float array, changed in place)."""
        count = len(self.colours)
        values -= low
        values *= count / (high - low)
        np.clip(values, 0, count - 1, out=values)
        return values.astype(np.uint8 if count <= 256 else np.intp)

    def draw(self, header: Dict[str, Any], payload: bytes) -> None:
        frame = np.frombuffer(payload, dtype=np.dtype(header["dtype"])).reshape(header["shape"])
        if frame.dtype.kind == "b":
            frame = frame.astype(np.uint8)
        elif not frame.dtype.isnative:
            frame = frame.astype(frame.dtype.newbyteorder("="))
        rgb = frame.ndim == 3
        look: Tuple[Any, ...] = (self.options["colormap"],)
        if rgb:
            shown = frame
        else:
            limits = self._limits(frame)
            shown = self._coloured(frame, *limits)
            look += limits
        rows, columns = header["full"]
        factor = header["factor"]
        layout = (frame.shape, rgb, tuple(header["full"]), factor)
        full = False
        if self.canvas.figure_ready() or layout != self.layout:
            import matplotlib

            figure = self.canvas.figure
            figure.clear()
            axes = figure.add_subplot()
            height, width = frame.shape[:2]
            # Each drawn pixel stands for a factor x factor block: axes count the frame's own pixels.
            extent = (-0.5, width * factor - 0.5, height * factor - 0.5, -0.5)
            self.image = axes.imshow(shown, extent=extent, interpolation="nearest")
            self.scale = None
            if not rgb:
                colormap = matplotlib.colormaps[self.options["colormap"]]
                self.scale = matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(*limits), colormap)
                figure.colorbar(self.scale, ax=axes)
            shown_at = f", drawn 1:{factor}" if factor > 1 else ""
            axes.set_xlabel(f"{columns} \N{MULTIPLICATION SIGN} {rows} pixels{shown_at}")
            self.canvas.animate(self.image, axes.title)  # what changes from frame to frame
            self.layout, self.look = layout, look
            full = True
        else:
            self.image.set_data(shown)
        if look != self.look:  # the colour bar changes: draw everything
            if self.scale is not None:
                self.scale.set_clim(*look[1:])
            self.look, full = look, True
        title = self.options.get("title") or self.canvas.name
        self.image.axes.set_title(f"{title}\nframe {header['number']}")
        self.canvas.show(full)


class _CurveDrawer:
    """Draws one line: the last curve, extended by the points that came after it, at most ``max_points``."""

    def __init__(self, canvas: _Canvas) -> None:
        self.canvas = canvas
        self.options: Dict[str, Any] = {}
        self.refused: Optional[str] = None
        self.line: Any = None
        self.style: Optional[str] = None  # the style self.line was made with
        self.xs = np.empty(0)
        self.ys = np.empty(0)

    def configure(self, options: Dict[str, Any]) -> Optional[str]:
        try:
            _check_style(options["style"])
        except OptionError as error:
            self.refused = str(error)
            return self.refused
        self.options, self.refused = options, None
        self.canvas.filename = options.get("filename")
        return None

    def draw(self, header: Dict[str, Any], payload: bytes) -> None:
        values = np.frombuffer(payload, dtype=np.float64)
        curve, points = header["curve"], header["points"]
        limit = self.options["max_points"]
        if curve is not None:
            self.xs, self.ys = values[:curve], values[curve : 2 * curve]
            values = values[2 * curve :]
        if points:
            pairs = values.reshape(points, 2)
            self.xs = np.concatenate([self.xs, pairs[:, 0]])[-limit:]
            self.ys = np.concatenate([self.ys, pairs[:, 1]])[-limit:]
        style = self.options["style"]
        if self.canvas.figure_ready() or self.line is None or style != self.style:
            figure = self.canvas.figure
            figure.clear()
            axes = figure.add_subplot()
            (self.line,) = axes.plot(self.xs, self.ys, style)
            self.style = style
        else:
            self.line.set_data(self.xs, self.ys)
        axes = self.line.axes
        axes.set_xlabel(self.options.get("xlabel") or "")
        axes.set_ylabel(self.options.get("ylabel") or "")
        title = self.options.get("title") or self.canvas.name
        axes.set_title(f"{title}\n{self.xs.size} points")
        axes.relim()
        axes.autoscale_view()
        self.canvas.show()


# -- the process ---------------------------------------------------------------------------------


def _reader(stream: BinaryIO, incoming: queue.Queue, starting: threading.Event) -> None:
    """Move the viewer's messages into ``incoming``; ``None`` at the end (the viewer's process has gone).

    While ``starting`` is set (pyplot is being imported: no frame can have
    come, the viewer waits for "ready" to send one), "close" or the end of
    the stream ends the process at once.
    """
    try:
        while True:
            message = receive(stream)
            if (message is None or message[0]["kind"] == "close") and starting.is_set():
                os._exit(0)
            incoming.put(message)
            if message is None or message[0]["kind"] == "close":
                return
    except BaseException:  # a cut message: the viewer has gone, stop as at its end
        if starting.is_set():
            os._exit(0)
        incoming.put(None)


def _die_with_parent() -> None:
    """On Linux, be killed (SIGKILL) when the viewer's thread that started us ends; best effort.

    The end of standard input covers a parent that ends while we run; this
    covers a drawing process that is stopped (SIGSTOP) or hung when its parent
    is killed. Elsewhere, or if ``prctl`` is not to be had, nothing happens.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    parent = os.environ.get("CONCERT_VIEWER_PARENT")
    if parent and parent.isdigit() and os.getppid() != int(parent):  # it ended before prctl
        os._exit(0)


def main() -> int:
    """Run the drawing process: draw what the viewer sends until it says ``close`` or goes away."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the viewer's process, not for us
    if hasattr(os, "nice"):
        # A live view comes second: when the CPUs are busy (acquiring), it draws less, not the
        # acquisition slower. On an idle machine the niceness changes nothing.
        os.nice(10)
    inbound = os.fdopen(os.dup(0), "rb")
    outbound = os.fdopen(os.dup(1), "wb")
    nothing = os.open(os.devnull, os.O_RDONLY)
    os.dup2(nothing, 0)
    os.dup2(2, 1)  # what anything prints goes to standard error, not into our messages
    os.close(nothing)

    incoming: queue.Queue = queue.Queue()
    starting = threading.Event()
    starting.set()
    threading.Thread(
        target=_reader, args=(inbound, incoming, starting), name="viewer-reader", daemon=True
    ).start()
    first = incoming.get()
    if first is None or first[0]["kind"] != "start":
        return 0
    start = first[0]
    plt, backend, interactive = _pyplot()
    canvas = _Canvas(plt, interactive, start["name"])
    drawer = _ImageDrawer(canvas) if start["viewer"] == "image" else _CurveDrawer(canvas)
    refused = drawer.configure(start["options"])
    delay = float(start.get("draw_delay", 0.0))  # a testing aid: a drawer this much slower
    starting.clear()  # from now on, "close" is taken in turn, after the frames before it
    if not incoming.empty() and incoming.queue[0] is None:
        return 0
    send(outbound, {"kind": "ready", "backend": backend, "interactive": interactive, "refused": refused})

    while True:
        try:
            message = incoming.get(timeout=0.03) if interactive else incoming.get()
        except queue.Empty:
            canvas.pump()
            continue
        if message is None or message[0]["kind"] == "close":
            break
        header, payload = message
        options = header.get("options")
        if options is not None:
            drawer.configure(options)
        answer: Dict[str, Any] = {"kind": "drawn", "count": header["count"]}
        if drawer.refused is not None:
            answer = {"kind": "error", "count": header["count"], "category": "option", "text": drawer.refused}
        else:
            try:
                drawer.draw(header, payload)
                if delay:
                    time.sleep(delay)
            except OSError as error:
                text = f"cannot write {canvas.filename!r}: {error.strerror or error}"
                canvas.unwritable = canvas.filename  # said once; the drawing goes on without the file
                answer = {"kind": "error", "count": header["count"], "category": "storage", "text": text}
            except Exception as error:  # reported to the viewer, which raises it
                text = f"{type(error).__name__}: {error}"
                answer = {"kind": "error", "count": header["count"], "category": "draw", "text": text}
        send(outbound, answer)
        canvas.pump()
    if canvas.figure is not None:
        plt.close(canvas.figure)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # the viewer went away while we answered
        sys.exit(0)
