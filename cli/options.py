"""Options shared by every command, with the names the README fixes for scripts and experiment files, and the one-line error path.

Defaults come from the library (the Cell dataclass and the matrix defaults), never from here.
"""

import dataclasses
import inspect

import click

from layouts.bench.cell import Cell
from zoo.errors import ZooError

FORMAT = click.option(
    "--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True,
    help="table for people; json prints one object per line on stdout and nothing else there",
)

def _turn_off_compile_cache(context: click.Context, _parameter, given: bool) -> None:
    if given and not context.resilient_parsing:
        from layouts.compiled import compile_cache

        compile_cache.set_enabled(False)


NO_COMPILE_CACHE = click.option(
    "--no-compile-cache", is_flag=True, expose_value=False, callback=_turn_off_compile_cache,
    help="compile every program again, neither reading nor writing the compile cache (`zoo cache`)",
)

CELL_DEFAULTS = {field.name: field.default for field in dataclasses.fields(Cell) if field.default is not dataclasses.MISSING}


def library_default(function, parameter: str):
    """The default the library gives `parameter` of `function`: the CLI states none of its own."""
    return inspect.signature(function).parameters[parameter].default


def usage_error(error: Exception) -> click.UsageError:
    """A library input error as a one-line CLI usage error (exit code 2)."""
    text = " ".join(str(error).split())
    return click.UsageError(text or type(error).__name__)


def run_guarded(action):
    """Runs `action`, turning the library's input errors into exit-code-2 usage errors."""
    try:
        return action()
    except ZooError as error:
        raise usage_error(error) from None


def split_list(text: str | None) -> list[str]:
    """`a,b,c` into its items (empty items dropped); None stays an empty list."""
    return [] if text is None else [item.strip() for item in str(text).split(",") if item.strip()]


def positive_ints(option: str, text: str | None) -> list[int]:
    values = []
    for item in split_list(text):
        try:
            value = int(item)
        except ValueError:
            raise click.UsageError(f"{option} takes positive integers, got {item!r}") from None
        if value <= 0:
            raise click.UsageError(f"{option} takes positive integers, got {value}")
        values.append(value)
    return values


def cell_options(function):
    """The flags that describe a cell (comma-separated lists in `zoo bench`)."""
    options = [
        click.option("--model", help="model preset (zoo models)"),
        click.option("--layout", help="FFN layout name or layout file for both phases; 'auto': the estimator's best per phase"),
        click.option("--prefill-layout", help=f"FFN layout for prefill [default: {CELL_DEFAULTS['prefill_layout']}]"),
        click.option("--decode-layout", help=f"FFN layout for decode [default: {CELL_DEFAULTS['decode_layout']}]"),
        click.option("--attention", help="attention layout for both phases (heads, batch, batch-yz, batch-z, or a file); 'auto': the estimator's best for the FFN layout"),
        click.option("--prefill-attention", help=f"[default: {CELL_DEFAULTS['prefill_attention']}]"),
        click.option("--decode-attention", help=f"[default: {CELL_DEFAULTS['decode_attention']}]"),
        click.option("--chips", help=f"chip count [default: {CELL_DEFAULTS['chips']}]"),
        click.option("--mesh", help="logical mesh XxYxZ (default: the layout's preferred shape for the chip count)"),
        click.option("--target", help=f"tpu-v4, tpu-v5e, tpu-v5p, tpu-v6e (optionally :SHAPE), or local [default: {CELL_DEFAULTS['target']}]"),
        click.option("--phase", help=f"prefill, decode or both [default: {CELL_DEFAULTS['phase']}]"),
        click.option("--batch", help=f"[default: {CELL_DEFAULTS['batch']}]"),
        click.option("--input-len", help=f"prompt tokens [default: {CELL_DEFAULTS['input_len']}]"),
        click.option("--context-len", help="KV-cache length a decode step attends over [default: input length]"),
        click.option("--gen-tokens", help=f"generated tokens [default: {CELL_DEFAULTS['gen_tokens']}]"),
        click.option(
            "--prefill-chunk",
            help="prompt tokens per sequence each layer takes at a time in prefill (chunked prefill) [default: the largest that fits the target by the estimate, the whole prompt when it fits]",
        ),
        click.option("--weights", help=f"bf16 or int8 [default: {CELL_DEFAULTS['weights']}]"),
        click.option(
            "--partitioner",
            help=f"who writes compile and run's collectives: explicit (the layout's own program) or compiler (XLA's partitioner) [default: {CELL_DEFAULTS['partitioner']}]",
        ),
        click.option(
            "--collective-matmul",
            help=f"none, unidirectional or bidirectional: run the explicit partitioner's projection reduce-scatters as looped collective einsums [default: {CELL_DEFAULTS['collective_matmul']}]",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


CELL_OPTION_NAMES = (
    "model", "layout", "prefill_layout", "decode_layout", "attention", "prefill_attention", "decode_attention", "chips",
    "mesh", "target", "phase", "batch", "input_len", "context_len", "gen_tokens", "prefill_chunk", "weights", "partitioner",
    "collective_matmul",
)  # fmt: skip
