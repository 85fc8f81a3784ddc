"""Ctrl-C and SIGTERM in `keras-sugar compare`: recorded when they come,
acted on at the next safe point (a batch, an epoch, a run, a step of the
start-up).

SIGTERM is what `timeout`, SLURM at the end of a job's time, and most
process managers send before they kill: it stops the command as Ctrl-C
does, keeping every finished run, and the exit status says which signal
it was (130 for Ctrl-C, 143 for SIGTERM: 128 + the signal's number).

Python turns SIGINT into a KeyboardInterrupt wherever the main thread is.
Inside a garbage-collector callback (JAX runs one) that exception is
printed as "Exception ignored" and lost, and raised in the middle of a
compilation it can leave native threads in a state the exit then crashes
in. Recording the request and raising `Interrupted` only where the harness
checks for it avoids both. A second signal stops the process at once.
Standard library only: the command installs it before Keras is imported.
"""

import os
import signal

# The signals that stop a comparison at its next safe point.
SIGNALS = (signal.SIGINT, signal.SIGTERM)

_state = {"signal": None, "previous": {}, "second_stops": True}


class Interrupted(KeyboardInterrupt):
    """Raised by `check` once a stop was requested (Ctrl-C or SIGTERM).

    A KeyboardInterrupt: no library's `except Exception` stops it on its
    way out.
    """


def _name(signum):
    return "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"


def _record(signum, frame):
    if _state["signal"] is not None:
        if not _state["second_stops"]:
            return  # Already stopping at the next safe point.
        # The second: what the signal does without this handler.
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)
        return
    _state["signal"] = signum
    again = ""
    if _state["second_stops"]:
        again = (" (press it again" if signum == signal.SIGINT
                 else " (send it again") + " to stop at once)"
    # os.write, not print: the main thread may be inside a print itself.
    os.write(2, f"\n{_name(signum)}: stopping at the next safe "
                f"point{again}.\n".encode())


def install(second_stops=True):
    """Records SIGINT and SIGTERM from now on (again, if a library replaced
    the handlers since). Call from the main thread.

    Args:
        second_stops: Whether a second signal stops the process at once.
            A `--jobs` worker passes False: its parent passes the stop on,
            and a batch system may have sent it the same signal already.
    """
    _state["second_stops"] = second_stops
    for signum in SIGNALS:
        current = signal.getsignal(signum)
        if current == signal.SIG_IGN:
            continue  # Started to ignore it (a background job): kept so.
        if current is not _record:
            _state["previous"].setdefault(signum, current)
            signal.signal(signum, _record)


def uninstall():
    """Puts back the handlers `install` replaced and forgets any request."""
    for signum, previous in _state["previous"].items():
        signal.signal(signum, previous)
    _state.update(signal=None, previous={}, second_stops=True)


def requested():
    """Whether a stop was recorded."""
    return _state["signal"] is not None


def signal_number():
    """The signal that asked to stop (SIGINT when none was recorded: a
    KeyboardInterrupt Python raised itself)."""
    return _state["signal"] or signal.SIGINT


def exit_status():
    """The conventional exit status of a process the signal stopped: 128 +
    its number (130 for Ctrl-C, 143 for SIGTERM)."""
    return 128 + signal_number()


def check():
    """Raises `Interrupted` if a stop was recorded; a safe point.

    Example:

    >>> check()  # No Ctrl-C: nothing happens.
    """
    if _state["signal"] is not None:
        raise Interrupted()
