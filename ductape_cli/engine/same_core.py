"""Keep a step's hand-off to its thread on one core (Linux).

A plain `def` step runs on a thread, so the event loop stays free: the loop's
thread wakes the step's thread and sleeps, and the step's thread wakes it back.
On a virtual machine, waking a thread on another, idle vCPU costs 50-100 µs
(the hypervisor has to schedule that vCPU), more than the rest of a step: 10
no-op steps ran at 457 workflows/s with the scheduler choosing, 720-746 with
both wake-ups kept on one core. So while a blocking call is the only one in
flight on a loop, the loop's thread is held to the core it is on (it sleeps
there until the call lands, then gets its own CPU set back), and the call's
thread sleeps on that core between calls — a thread is woken where it may run —
but runs each call on its whole CPU set, so a long step never keeps a core to
itself while another process's step waits for the same one. With two or more
calls in flight (a parallel group) the loop's thread is let go at once.

Nothing is pinned where the platform has no `sched_setaffinity`, where setting
it is refused, or with `DUCTAPE_SAME_CORE=0`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger("ductape.steps")

_getcpu: Callable[[], int] | None = None  # libc's sched_getcpu, once a process makes many calls
_reads = 0  # calls answered from /proc so far
READS_BEFORE_CTYPES = 32  # a `ductape run` of a few steps never pays ctypes' import (~2 ms)
_enabled: bool | None = None  # decided at first use
_held: dict[int, set[int]] = {}  # loop thread id -> the CPU set it had before it was held


def enabled() -> bool:
    global _enabled
    if _enabled is None:
        _enabled = (
            os.environ.get("DUCTAPE_SAME_CORE", "1") != "0"
            and hasattr(os, "sched_setaffinity")
            and _current_cpu() >= 0
        )
    return _enabled


def _current_cpu() -> int:
    """The core this thread is on: from /proc for the first calls (8 µs each), then from
    libc's `sched_getcpu` (a vDSO call, no syscall); -1 where neither answers."""
    global _getcpu, _reads
    if _getcpu is not None:
        return _getcpu()
    _reads += 1
    if _reads > READS_BEFORE_CTYPES:
        try:
            import ctypes

            getcpu = ctypes.CDLL(None, use_errno=True).sched_getcpu
            getcpu.restype = ctypes.c_int
            _getcpu = getcpu
            return _getcpu()
        except (OSError, AttributeError):
            _reads = -(10**9)  # no libc function: /proc for good
    try:
        with open("/proc/thread-self/stat", "rb") as stat:
            return int(stat.read().rsplit(b")", 1)[1].split()[36])  # field 39, "processor"
    except (OSError, ValueError, IndexError):
        return -1


def _refused(exc: OSError) -> None:
    global _enabled
    _enabled = False
    log.debug("cannot set thread CPU affinity (%s); steps run where the scheduler puts them", exc)


class Hold:
    """Where one blocking call's thread waits and runs. It is woken on `cpu` (where the
    loop's thread is held while the call is in flight), so it must sleep there; once
    awake it runs on its whole CPU set (a long step never keeps a core to itself), and
    it goes back to sleep on `cpu`, where the loop will most likely hand over next.
    `mask` None: nothing is ever pinned."""

    def __init__(self, cpu: int | None, mask: set[int] | None) -> None:
        self.cpu, self.mask = cpu, mask

    def place(self) -> None:
        """On the call's thread, before the call: free to run anywhere in `mask`."""
        if self.mask is None or not _enabled:
            return
        try:
            if os.sched_getaffinity(0) != self.mask:
                os.sched_setaffinity(0, self.mask)
        except OSError as exc:
            _refused(exc)

    def done(self) -> None:
        """On the call's thread, after the call: sleep on the loop's core until the next one."""
        if self.cpu is None or not _enabled:
            return
        try:
            os.sched_setaffinity(0, {self.cpu})
        except OSError as exc:
            _refused(exc)


def hold() -> Hold:
    """On the loop's thread, as it hands over the only call in flight: hold it to its core."""
    if not enabled():
        return Hold(None, None)
    me = threading.get_ident()
    try:
        mask = _held.get(me) or os.sched_getaffinity(0)
        cpu = _current_cpu()
        if cpu < 0 or cpu not in mask:
            return Hold(None, mask)
        os.sched_setaffinity(0, {cpu})
    except OSError as exc:
        _refused(exc)
        return Hold(None, None)
    _held.setdefault(me, mask)
    return Hold(cpu, mask)


def let_go() -> set[int] | None:
    """On the loop's thread: give it back its own CPU set, if it was held. Returns that set
    (the one a call's thread should have), or None when nothing is ever pinned."""
    if not _enabled:
        return None
    mask = _held.pop(threading.get_ident(), None)
    try:
        if mask is None:
            return os.sched_getaffinity(0)
        os.sched_setaffinity(0, mask)
    except OSError as exc:
        _refused(exc)
        return None
    return mask
