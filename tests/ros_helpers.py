"""The background spinner shared by the tests that run rclpy nodes in the pytest process.

A thread spinning an executor must be stopped before the interpreter finalises. While it
waits in ``spin_once`` it is inside rclpy's C++ wait (GIL released by pybind11's
``gil_scoped_release``); when the wait returns after finalisation has begun, CPython (before
3.14) ends the thread with ``pthread_exit`` as it re-takes the GIL. That forced unwind crosses
the ``noexcept`` destructor of ``gil_scoped_release``, so libstdc++ calls ``std::terminate``:
``terminate called without an active exception`` and SIGABRT (a shell reports 134) after
pytest's summary, replacing its exit code. A spinner a failing fixture or test never closes does exactly that.

So: use :class:`Spinner` as a context manager (closed whatever fails inside), and
tests/conftest.py closes any spinner still open at the end of the session
(:func:`close_all`).
"""

from __future__ import annotations

import contextlib
import threading

import rclpy
from rclpy.executors import SingleThreadedExecutor

#: Seconds ``close`` waits for the spinning thread to return from its current callback.
JOIN_TIMEOUT_S = 30.0

_open: dict[Spinner, None] = {}  # spinners created and not closed yet, oldest first
_open_lock = threading.Lock()


class Spinner:
    """An rclpy context of its own (``domain_id``) whose nodes a SingleThreadedExecutor spins
    in a background thread (50 ms waits) from :meth:`start` until :meth:`close`.

    Raises:
        RuntimeError: from ``rclpy.init`` (e.g. a negative domain id).
    """

    def __init__(self, domain_id: int):
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.executor = SingleThreadedExecutor(context=self.context)
        self._stop = threading.Event()
        # A daemon: a spinner nobody closes must not hang the interpreter's exit (close_all
        # stops it before finalisation).
        self.thread = threading.Thread(target=self._spin, name=f"spinner-domain-{domain_id}", daemon=True)
        self.nodes = []
        with _open_lock:
            _open[self] = None

    def _spin(self):
        while not self._stop.is_set() and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def add(self, node):
        """Spin ``node`` (destroyed by :meth:`close`); returns it."""
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def start(self) -> Spinner:
        self.thread.start()
        return self

    def __enter__(self) -> Spinner:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Stop and join the thread, then shut the executor down, destroy the nodes (in the
        order they were added) and shut the context down; every step runs even when an
        earlier one raises. A second call does nothing.

        Raises:
            RuntimeError: the thread is still in a callback ``JOIN_TIMEOUT_S`` after the stop
                (nothing is destroyed under it).
        """
        with _open_lock:
            if self not in _open:
                return
            del _open[self]
        # Stop spinning first: shutting the executor down while its thread runs a callback
        # destroys the guard condition under it (rclpy InvalidHandle in the spin thread).
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=JOIN_TIMEOUT_S)
            if self.thread.is_alive():
                raise RuntimeError(f"{self.thread.name}: a callback has not returned {JOIN_TIMEOUT_S:.0f} s after "
                                   f"close; its nodes and context are left alive")
        with contextlib.ExitStack() as steps:  # run in reverse order of registration
            steps.callback(self.context.try_shutdown)
            for node in reversed(self.nodes):
                steps.callback(node.destroy_node)
            steps.callback(self.executor.shutdown)


def close_all() -> None:
    """Close every spinner still open, newest first (as nested ``with`` blocks would).

    Raises:
        the last error a ``close`` raised (the earlier ones chained), after every spinner was
        tried.
    """
    with _open_lock:
        left = list(_open)
    with contextlib.ExitStack() as closing:  # reverse order of registration
        for spinner in left:
            closing.callback(spinner.close)
