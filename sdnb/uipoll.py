"""Let widgets talk to the kernel while a plain cell runs, so a form's Stop works during *Run all*.

While a cell executes, the kernel does not read the frontend's messages: a widget click waits until the
cell ends. :func:`process_ui_events`, called now and then from the running cell (the apps call it from
their progress updates), reads the messages waiting on the kernel's shell channel, handles the widget
(comm) messages at once, and leaves every other message (the next cells' ``execute_request``) queued in
its original order. The same idea as the ``jupyter-ui-poll`` package, for ipykernel 6 (Colab) and
ipykernel 7 (current JupyterLab), where that package's ``do_one_iteration`` no longer exists.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

__all__ = ["process_ui_events"]

_COMM_TYPES = frozenset({"comm_open", "comm_msg", "comm_close"})


def _kernel() -> Any:
    """The running ipykernel, or None outside a kernel (plain Python, tests, the command line)."""
    if "ipykernel" not in sys.modules:
        return None
    from ipykernel.kernelbase import Kernel

    return Kernel.instance() if Kernel.initialized() else None


def _header(kernel: Any, frames: list) -> dict:
    _, msg = kernel.session.feed_identities(frames, copy=False)
    return kernel.session.deserialize(msg, content=False, copy=False)["header"]


def _handle_comm(kernel: Any, frames: list, stream: Any) -> None:
    """Run the comm handler for one raw message, then give the cell its own output parent back."""
    ident, parent = kernel._parent_ident["shell"], kernel.get_parent("shell")
    try:
        idents, msg = kernel.session.feed_identities(frames, copy=False)
        msg = kernel.session.deserialize(msg, content=True, copy=False)
        kernel.set_parent(idents, msg, "shell")
        handler = kernel.shell_handlers.get(msg["header"]["msg_type"])
        if handler is not None:
            handler(stream, idents, msg)
    except Exception:  # noqa: BLE001 - a bad widget message must not end the user's run
        kernel.log.error("sdnb: could not handle a widget message during a run", exc_info=True)
    finally:
        kernel.set_parent(ident, parent, "shell")


def _pump_queue(kernel: Any) -> int:
    """ipykernel 6: shell messages go through ``msg_queue``; take the comm ones out, put the rest back."""
    import zmq

    kernel.shell_stream.flush(zmq.POLLIN)
    items = []
    while True:
        try:
            items.append(kernel.msg_queue.get_nowait())
        except Exception:  # noqa: BLE001 - asyncio's or tornado's QueueEmpty
            break
    handled = 0
    for item in items:
        frames = item[-1][0]
        if _header(kernel, frames)["msg_type"] in _COMM_TYPES:
            _handle_comm(kernel, frames, kernel.shell_stream)
            handled += 1
        else:
            kernel.msg_queue.put_nowait(item)  # same (counter, dispatch, args) tuple: order is kept
    return handled


def _pump_stream(kernel: Any) -> int:
    """ipykernel 7: read the main shell's socket ourselves; re-deliver what is not a comm message."""
    import zmq

    thread = getattr(kernel, "shell_channel_thread", None)
    if thread is not None:
        stream = thread.manager.get_shell_channel_to_subshell_pair(None).to_stream
        reply = thread.manager.get_subshell_to_shell_channel_socket(None)
    else:
        stream = reply = kernel.shell_stream
    if stream is None:
        return 0
    handled = 0
    while True:
        try:
            frames = stream.socket.recv_multipart(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return handled
        if _header(kernel, frames)["msg_type"] in _COMM_TYPES:
            _handle_comm(kernel, frames, reply)
            handled += 1
        else:  # queued behind the running cell, ahead of anything that arrives later
            stream._run_callback(stream._recv_callback, frames)


def process_ui_events() -> int:
    """Handle the widget messages waiting for this kernel (clicks, edits); returns how many.

    Does nothing outside a kernel, or when called from another thread than the kernel's main thread
    (a background task's widgets are served by the kernel as usual).
    """
    kernel = _kernel()
    if kernel is None or threading.current_thread() is not threading.main_thread():
        return 0
    if hasattr(kernel, "msg_queue") and hasattr(kernel, "do_one_iteration"):
        return _pump_queue(kernel)
    return _pump_stream(kernel)
