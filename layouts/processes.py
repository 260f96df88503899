"""Several processes as one set of devices: JAX's multi-controller runtime (`jax.distributed`).

A TPU slice of 64 v4 chips is 16 hosts; each runs the same command, and once the distributed
runtime is up, `jax.devices()` lists every host's chips in one global order, a mesh spans them all,
and every jitted step runs on all of them at once. Each process then holds only the shards that
lie on its own devices, so everything that crosses between the host and the devices goes through
this module:

- inputs every process knows in full (a prompt, the token batch) become one global array, each
  process placing only its own slices (`global_array`);
- outputs come back to every host whole (`gathered`), and only the leader, process 0, prints or
  writes them (`is_leader`).

How the runtime starts (`start`): explicit settings (`coordinator`, `num_processes`,
`process_id`, or the environment variables ZOO_COORDINATOR, ZOO_NUM_PROCESSES, ZOO_PROCESS_ID)
name the coordinator and this process's place; on a TPU VM with none of them, JAX detects the
slice's hosts itself (set ZOO_DISTRIBUTED=off to run a TPU VM's chips alone). On CPUs the
collectives between processes go over TCP (gloo), which is how `zoo launch` tests all of this on
one machine.

If a process dies, the runtime's heartbeat notices and stops the others: within
`heartbeat_timeout` seconds when a follower dies, at once when the coordinator (process 0) does.
"""

import dataclasses
import os
import re

import numpy as np

from zoo.errors import ZooError

COORDINATOR_VARIABLE = "ZOO_COORDINATOR"
NUM_PROCESSES_VARIABLE = "ZOO_NUM_PROCESSES"
PROCESS_ID_VARIABLE = "ZOO_PROCESS_ID"
SWITCH_VARIABLE = "ZOO_DISTRIBUTED"  # "off": never start the runtime, not even on a TPU VM
HEARTBEAT_VARIABLE = "ZOO_HEARTBEAT_TIMEOUT"

# JAX's default is 100 s; a dead follower should stop an interactive run sooner than that, and a
# live one on a busy host still sends a heartbeat every few seconds.
DEFAULT_HEARTBEAT_TIMEOUT_S = 20


class ProcessError(ZooError):
    """Distributed settings that are missing, malformed or contradict each other."""


@dataclasses.dataclass(frozen=True)
class ProcessSettings:
    """Where this process stands among the others: the coordinator's HOST:PORT, how many there
    are, and which one this is."""

    coordinator: str
    num_processes: int
    process_id: int
    heartbeat_timeout_s: int = DEFAULT_HEARTBEAT_TIMEOUT_S


def settings_from(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None) -> ProcessSettings | None:
    """The explicit settings, each taken from its argument or else its environment variable; None
    when none is given. Raises ProcessError when some but not all are, or one is malformed."""
    environment = os.environ
    coordinator = coordinator if coordinator is not None else environment.get(COORDINATOR_VARIABLE)
    num_processes = num_processes if num_processes is not None else _integer(NUM_PROCESSES_VARIABLE, environment.get(NUM_PROCESSES_VARIABLE))
    process_id = process_id if process_id is not None else _integer(PROCESS_ID_VARIABLE, environment.get(PROCESS_ID_VARIABLE))
    given = {"--coordinator": coordinator, "--num-processes": num_processes, "--process-id": process_id}
    if all(value is None for value in given.values()):
        return None
    if num_processes == 1 and coordinator is None:
        return ProcessSettings("", 1, process_id or 0)  # one process: nothing to coordinate
    missing = [name for name, value in given.items() if value is None]
    if missing:
        variables = {"--coordinator": COORDINATOR_VARIABLE, "--num-processes": NUM_PROCESSES_VARIABLE, "--process-id": PROCESS_ID_VARIABLE}
        raise ProcessError(
            f"several processes need all three of --coordinator, --num-processes and --process-id; missing {', '.join(missing)} "
            f"(or their variables {', '.join(variables[name] for name in missing)})"
        )
    if not re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}", coordinator) or not 0 < int(coordinator.rsplit(":", 1)[1]) < 65536:
        raise ProcessError(f"--coordinator {coordinator!r} is not HOST:PORT with a port from 1 to 65535, e.g. 10.0.0.2:8476")
    if num_processes < 1:
        raise ProcessError(f"--num-processes must be at least 1, got {num_processes}")
    if not 0 <= process_id < num_processes:
        raise ProcessError(f"--process-id {process_id} is not one of 0 to {num_processes - 1} (--num-processes {num_processes})")
    return ProcessSettings(coordinator, num_processes, process_id, _heartbeat_timeout())


def _integer(variable: str, text: str | None) -> int | None:
    if text is None or not text.strip():
        return None
    try:
        return int(text)
    except ValueError:
        raise ProcessError(f"{variable}={text!r} is not an integer") from None


def _heartbeat_timeout() -> int:
    value = _integer(HEARTBEAT_VARIABLE, os.environ.get(HEARTBEAT_VARIABLE))
    if value is None:
        return DEFAULT_HEARTBEAT_TIMEOUT_S
    if value < 2:
        raise ProcessError(f"{HEARTBEAT_VARIABLE}={value}: give at least 2 seconds")
    return value


def _on_tpu_vm() -> bool:
    from zoo.platforms import has_tpu_devices

    return has_tpu_devices()


def start(settings: ProcessSettings | None) -> bool:
    """Starts the distributed runtime (before JAX's first computation); True when it runs with
    several processes. With no settings it starts only on a TPU VM, where JAX finds the hosts
    itself. A second call does nothing."""
    import jax

    if os.environ.get(SWITCH_VARIABLE, "").lower() == "off":
        return False
    if jax.distributed.is_initialized():
        return jax.process_count() > 1
    if settings is None:
        if not _on_tpu_vm():
            return False
        jax.distributed.initialize(heartbeat_timeout_seconds=_heartbeat_timeout())
        return jax.process_count() > 1
    if settings.num_processes == 1:
        return False
    # Between CPU processes XLA has no collectives of its own: gloo carries them over TCP (the
    # setting touches only the CPU client, so a GPU or TPU run is unaffected).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            settings.coordinator,
            num_processes=settings.num_processes,
            process_id=settings.process_id,
            heartbeat_timeout_seconds=settings.heartbeat_timeout_s,
            initialization_timeout=max(60, 3 * settings.heartbeat_timeout_s),
        )
    except Exception as error:  # the runtime raises bare RuntimeErrors/XlaRuntimeErrors
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ProcessError(
            f"process {settings.process_id} of {settings.num_processes} could not join the coordinator at {settings.coordinator}: {first_line}"
        ) from None
    return True


def count() -> int:
    """How many processes run this program: 1 unless the runtime was started (asked without
    bringing up a backend, so a command that uses no device pays nothing for it)."""
    import jax

    return jax.process_count() if jax.distributed.is_initialized() else 1


def is_leader() -> bool:
    """True in the process that prints and writes results: process 0 (the only one, usually)."""
    import jax

    return count() == 1 or jax.process_index() == 0


def global_array(host_value, sharding):
    """`host_value` (the same numpy array in every process) as one global array laid out by
    `sharding`: each process places only the slices its own devices hold."""
    import jax

    value = np.asarray(host_value)
    return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])


def gathered(array) -> np.ndarray:
    """The whole of a (possibly global) array on this host, in every process: the shards other
    processes hold come over the runtime."""
    import jax

    if getattr(array, "is_fully_addressable", True) or array.is_fully_replicated:
        return np.asarray(jax.device_get(array))
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(array, tiled=True))


def leaders_choice(values) -> np.ndarray:
    """The leader's `values` (a small numpy array of the same shape everywhere) in every process:
    how processes that may see different files (a cache on each host's disk) agree on what to run."""
    if count() == 1:
        return np.asarray(values)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.broadcast_one_to_all(np.asarray(values), is_source=is_leader()))


# How a collective between processes fails when a peer has gone: gloo's TCP pairs on CPUs, and
# the runtime's own messages elsewhere.
_PEER_GONE = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "another task died", "unhealthy")


def lost_peer(error: BaseException) -> str | None:
    """One line for a runtime failure in a run of several processes, saying when it looks like
    another process died (the usual cause); None for any other error, or with one process."""
    import jax

    if count() == 1 or not isinstance(error, jax.errors.JaxRuntimeError):
        return None
    text = str(error).strip()
    first_line = text.splitlines()[0] if text else type(error).__name__
    where = f"process {jax.process_index()} of {jax.process_count()}"
    if any(sign in text for sign in _PEER_GONE):
        return f"{where} lost its peers mid-step (another process died or was killed; see its output): {first_line}"
    return f"{where} failed mid-step: {first_line}"
