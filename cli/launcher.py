"""Several processes of one command on this machine, joined into one set of devices: how the
multi-process paths are tested without a cluster (`zoo launch`).

Each process gets the distributed settings (`layouts.processes`: coordinator on loopback, the
process count, its id) and its share of forced CPU devices in its environment; its output lines
are streamed with a `[i]` prefix. When one process fails, the launcher says which, in one line,
stops the others (SIGINT, then SIGKILL after a grace period) and exits with the failed process's
status; their later output, the runtime's own reports of the lost peer, is not streamed.
"""

import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

from layouts.processes import COORDINATOR_VARIABLE, HEARTBEAT_VARIABLE, NUM_PROCESSES_VARIABLE, PROCESS_ID_VARIABLE

# gloo reports every connection it makes, from several threads at once, so a report can be cut into
# pieces on lines of their own or run together with another: each piece is removed wherever it is,
# and a line of only a number (or nothing) right after a piece is the cut-off end of a report
# ("... is : ", "3").
_NOISE = re.compile(r"\[Gloo\] Rank ?|\d* ?is connected to \d+ peer ranks\.? ?|Expected number of connected peer ranks is : ?\d*")
_POLL_S = 0.05


@dataclasses.dataclass
class Outcome:
    """How a launch ended: the exit status to pass on, and the one-line reason when it failed."""

    status: int
    failure: str | None = None


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now (the coordinator binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def command_line(arguments: list[str]) -> list[str]:
    """`zoo ...` runs as this interpreter's `-m cli` (the same installation); anything else as given."""
    if arguments and arguments[0] == "zoo":
        return [sys.executable, "-m", "cli", *arguments[1:]]
    return list(arguments)


def process_environment(base: dict, *, port: int, processes: int, process_id: int, devices: int, heartbeat_s: int | None) -> dict:
    environment = dict(base)
    flags = re.sub(r"--xla_force_host_platform_device_count=\S+", "", environment.get("XLA_FLAGS", "")).split()
    environment["XLA_FLAGS"] = " ".join([*flags, f"--xla_force_host_platform_device_count={devices}"])
    environment["JAX_PLATFORMS"] = "cpu"
    environment["PYTHONUNBUFFERED"] = "1"  # lines as they are written, not when a buffer fills
    environment[COORDINATOR_VARIABLE] = f"127.0.0.1:{port}"
    environment[NUM_PROCESSES_VARIABLE] = str(processes)
    environment[PROCESS_ID_VARIABLE] = str(process_id)
    if heartbeat_s is not None:
        environment[HEARTBEAT_VARIABLE] = str(heartbeat_s)
    return environment


def describe_exit(status: int) -> str:
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"was killed by {name}"
    return f"exited with code {status}"


class _Streams:
    """Copies each process's lines to ours, prefixed, until told to stop."""

    def __init__(self):
        self.quiet = threading.Event()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def follow(self, stream, target, prefix: str) -> None:
        def copy():
            after_piece = False  # the previous line held a piece of a gloo report
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                cleaned = _NOISE.sub("", line)
                noise = cleaned != line and not cleaned.strip() or after_piece and (line.strip().isdigit() or not line.strip())
                after_piece = cleaned != line or noise
                if self.quiet.is_set() or noise:
                    continue  # still read, so a process never blocks on a full pipe
                with self.lock:
                    target.write(f"{prefix}{cleaned}\n")
                    target.flush()
            stream.close()

        thread = threading.Thread(target=copy, daemon=True)
        thread.start()
        self.threads.append(thread)

    def drain(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def launch(arguments: list[str], *, processes: int, devices_per_process: int, grace_s: float = 3.0, heartbeat_s: int | None = None, stdout=None, stderr=None) -> Outcome:
    """Runs `arguments` as `processes` processes of `devices_per_process` CPU devices each, joined
    over loopback; returns once all have finished or, after the first failure, been stopped."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    port = free_port()
    streams = _Streams()
    children: list[subprocess.Popen] = []
    try:
        for process_id in range(processes):
            environment = process_environment(
                os.environ, port=port, processes=processes, process_id=process_id, devices=devices_per_process, heartbeat_s=heartbeat_s
            )
            child = subprocess.Popen(command_line(arguments), env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            children.append(child)
            streams.follow(child.stdout, stdout, f"[{process_id}] ")
            streams.follow(child.stderr, stderr, f"[{process_id}] ")
        outcome = _supervise(children, streams, grace_s)
    except BaseException:  # Ctrl-C or a failure to start: leave no process behind
        _stop(children, grace_s)
        raise
    streams.drain(timeout_s=2.0)
    return outcome


def _supervise(children: list[subprocess.Popen], streams: _Streams, grace_s: float) -> Outcome:
    while True:
        statuses = [child.poll() for child in children]
        failed = [(index, status) for index, status in enumerate(statuses) if status not in (None, 0)]
        if failed:
            index, status = failed[0]
            running = sum(status is None for status in statuses)
            streams.quiet.set()
            _stop(children, grace_s)
            stopped = f"; stopped the other {running} process(es)" if running else ""
            return Outcome(status if status > 0 else 128 - status, f"process {index} of {len(children)} {describe_exit(status)}{stopped}")
        if all(status == 0 for status in statuses):
            return Outcome(0)
        time.sleep(_POLL_S)


def _stop(children: list[subprocess.Popen], grace_s: float) -> None:
    # SIGINT, not SIGTERM: JAX's distributed runtime takes SIGTERM as a preemption notice and lets
    # the process run on, while SIGINT raises KeyboardInterrupt, so cleanup code (a checkpoint's
    # staging directory) runs before the process exits.
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace_s
    for child in children:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
