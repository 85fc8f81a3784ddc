"""Ctrl-C in `keras-sugar compare`: recorded when it comes, acted on at the
next safe point (a batch, an epoch, a run, a step of the start-up).

Python turns SIGINT into a KeyboardInterrupt wherever the main thread is.
Inside a garbage-collector callback (JAX runs one) that exception is
printed as "Exception ignored" and lost, and raised in the middle of a
compilation it can leave native threads in a state the exit then crashes
in. Recording the request and raising `Interrupted` only where the harness
checks for it avoids both. A second Ctrl-C stops the process at once.
Standard library only: the command installs it before Keras is imported.
"""

import os
import signal

_state = {"requested": False, "previous": None}

_NOTICE = (b"\nCtrl-C: stopping at the next safe point (press it again to "
           b"stop at once).\n")


class Interrupted(KeyboardInterrupt):
    """Raised by `check` once a Ctrl-C was recorded.

    A KeyboardInterrupt: no library's `except Exception` stops it on its
    way out.
    """


def _record(signum, frame):
    if _state["requested"]:
        # The second Ctrl-C: what Ctrl-C does without this handler.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.raise_signal(signal.SIGINT)
        return
    _state["requested"] = True
    # os.write, not print: the main thread may be inside a print itself.
    os.write(2, _NOTICE)


def install():
    """Records SIGINT from now on (again, if a library replaced the
    handler since). Call from the main thread."""
    current = signal.getsignal(signal.SIGINT)
    if current == signal.SIG_IGN:
        return  # Started to ignore Ctrl-C (a background job): keep it so.
    if current is not _record:
        if _state["previous"] is None:
            _state["previous"] = current
        signal.signal(signal.SIGINT, _record)


def uninstall():
    """Puts back the handler `install` replaced and forgets any request."""
    if _state["previous"] is not None:
        signal.signal(signal.SIGINT, _state["previous"])
    _state.update(requested=False, previous=None)


def requested():
    """Whether a Ctrl-C was recorded."""
    return _state["requested"]


def check():
    """Raises `Interrupted` if a Ctrl-C was recorded; a safe point.

    Example:

    >>> check()  # No Ctrl-C: nothing happens.
    """
    if _state["requested"]:
        raise Interrupted()
