"""The explicit partitioner's moves on 8 forced CPU devices (mesh 2×2×2): each redistributes a
shard as the derivation says, with the collectives the derivation names, and nothing else."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from layouts.compiled.hlo_analysis import collectives
from layouts.collective_moves import ExplicitProgramError, move
from layouts.transitions import Distribution, derive, waypoint

SIZES = {"x": 2, "y": 2, "z": 2}


def _spec(axes_per_dim):
    return PartitionSpec(*[None if not axes else axes[0] if len(axes) == 1 else axes for axes in axes_per_dim])


def _moved(devices, shape, source: Distribution, destination, via_gather: bool = False):
    mesh = Mesh(np.array(devices).reshape(2, 2, 2), ("x", "y", "z"))
    whole = jnp.arange(math.prod(shape), dtype=jnp.float32).reshape(shape)
    partial_ways = math.prod(SIZES[axis] for axis in source.partial)

    def body(shard):
        # Every chip holds an equal part of a partial sum: summed over the partial axes, the whole.
        return move(shard / partial_ways, source, destination, SIZES, via_gather=via_gather)

    run = jax.jit(jax.shard_map(body, mesh=mesh, in_specs=_spec(source.axes), out_specs=_spec(destination), check_vma=False))
    placed = jax.device_put(whole, NamedSharding(mesh, _spec(source.axes)))
    return whole, run, placed


# (shape, source, destination): the paper's moves, and orders that need blocks reordered on chip.
CASES = {
    "1d block in (all-gather xyz)": ((4, 8), Distribution(((), ("x", "y", "z"))), ((), ())),
    "1d block out (reduce-scatter xyz)": ((4, 8), Distribution(((), ()), ("x", "y", "z")), ((), ("x", "y", "z"))),
    "2d block in (all-gather yz)": ((4, 8), Distribution(((), ("x", "y", "z"))), ((), ("x",))),
    "2d hidden (reduce-scatter x onto F_zy)": ((4, 8), Distribution(((), ("z", "y")), ("x",)), ((), ("z", "y", "x"))),
    "2d block out (reduce-scatter yz onto E_x)": ((4, 8), Distribution(((), ("x",)), ("y", "z")), ((), ("x", "y", "z"))),
    "2d multiquery kv (all-reduce x)": ((4, 8), Distribution(((), ()), ("x",)), ((), ())),
    "attention in (all-to-all, orders differ)": ((8, 8), Distribution(((), ("z", "y", "x"))), (("x", "y", "z"), ())),
    "attention out (all-to-all back)": ((8, 8), Distribution((("x", "y", "z"), ())), ((), ("z", "y", "x"))),
    "wg-xy weight gather (two dimensions, a gather each)": ((4, 8), Distribution((("x",), ("z", "y"))), ((), ("z",))),
    "batch-sharded cache write (slice)": ((8, 4), Distribution(((), ())), (("x", "y", "z"), ())),
    "bias into the residual (gather x, then slice z and y)": ((8,), Distribution((("x",),)), (("z", "y"),)),
    "heads kept on x under batch-z (all-to-all z, gather y and x, slice y and x)": ((8, 8), Distribution(((), ("z", "y", "x"))), (("z",), ("y", "x"))),
    "embedding rows (reduce-scatter yz after slicing nothing)": ((2, 8), Distribution(((), ("x",)), ("y", "z")), ((), ("x", "y", "z"))),
}


@pytest.mark.parametrize("case", CASES)
def test_a_move_redistributes_the_whole_tensor(devices, case):
    shape, source, destination = CASES[case]
    whole, run, placed = _moved(devices, shape, source, destination)
    np.testing.assert_array_equal(np.asarray(run(placed)), np.asarray(whole))
    # One collective per step of the derivation, of the kind it names, and no other (a
    # reduce-scatter over all three axes runs as two, a gather of several dimensions that only
    # lose axes as one per dimension: see layouts.collective_moves.move).
    found = collectives(run.lower(placed).compile())
    expected = [step.kind.replace("_", "-") for step in derive(source, destination) for _ in range(_runs(step, source, destination))]
    assert sorted(collective.kind for collective in found) == sorted(kind for kind in expected if kind != "slice")
    # However many stages a gather takes, they count the bytes of one gather of the result.
    if [step.kind for step in derive(source, destination)] == ["all_gather"]:
        result_bytes = 4 * math.prod(size // math.prod(SIZES[axis] for axis in axes) for size, axes in zip(shape, destination))
        assert sum(collective.link_bytes for collective in found) == result_bytes


def _runs(step, source: Distribution, destination) -> int:
    if step.kind == "reduce_scatter" and step.axes == ("x", "y", "z"):
        return 2
    if step.kind == "all_gather":
        losing = [index for index, (before, after) in enumerate(zip(source.axes, destination)) if set(before) - set(after)]
        only_losing = all(set(destination[index]) <= set(source.axes[index]) for index in losing)
        return len(losing) if len(losing) > 1 and only_losing else 1
    return 1


def test_a_move_that_needs_a_permutation_is_refused_with_its_reason(devices):
    # Heads split over (y, x) cannot take z in front of them by an all-to-all: chip (x, y, z)
    # would receive blocks it does not hold.
    source, destination = Distribution((("z",), ("y", "x"))), ((), ("z", "y", "x"))
    with pytest.raises(ExplicitProgramError, match="permutation among chips.*--partitioner compiler"):
        _moved(devices, (8, 8), source, destination)[1].lower(jax.ShapeDtypeStruct((8, 8), jnp.float32))


def test_a_permutation_runs_by_way_of_its_waypoint(devices):
    # The embedding's rows under wg-x: E split over x, partial over (z, y), into the residual
    # stream's batch over x and E over (z, y). x leaves E for the batch first (all-to-all, the
    # partial sums carried along), then the sums are reduce-scattered onto E: no chip holds the
    # rows whole over E, which gathering E before the reduction did.
    source, destination = Distribution(((), ("x",)), ("z", "y")), (("x",), ("z", "y"))
    assert waypoint(source, destination) == (("x",), ())
    whole, run, placed = _moved(devices, (4, 16), source, destination, via_gather=True)
    np.testing.assert_array_equal(np.asarray(run(placed)), np.asarray(whole))
    found = collectives(run.lower(placed).compile())
    assert sorted(collective.kind for collective in found) == ["all-to-all", "reduce-scatter"]
    # The move refused above: heads gathered whole on y and x first, then z moved in front of them.
    source, destination = Distribution((("z",), ("y", "x"))), ((), ("z", "y", "x"))
    assert waypoint(source, destination) == (("z",), ())
    whole, run, placed = _moved(devices, (8, 8), source, destination, via_gather=True)
    np.testing.assert_array_equal(np.asarray(run(placed)), np.asarray(whole))
