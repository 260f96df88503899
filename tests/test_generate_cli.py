"""`zoo generate` through click's CliRunner: bad input exits 2 with one line before any allocation,
--chips picks the devices, and the table output escapes control characters."""

import json

import pytest
from click.testing import CliRunner

import layouts
import layouts.compiled.local_memory
import zoo
from cli.commands_generate import printable
from cli.main import main

GIB = 2**30


def invoke(*args: str):
    return CliRunner().invoke(main, ["generate", *args], catch_exceptions=False)


def assert_one_line_error(result, *parts: str) -> None:
    assert result.exit_code == 2, result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for part in parts:
        assert part in lines[0], lines[0]


def with_free_memory(monkeypatch, free_bytes: int) -> None:
    monkeypatch.setattr(layouts.compiled.local_memory, "_host_available_bytes", lambda: free_bytes)


@pytest.mark.parametrize("value", ["nan", "inf", "1e30", "-1", "1e-30"])
def test_temperature_outside_its_range_exits_2(value, nothing_allocated):
    assert_one_line_error(invoke("--temperature", value), "temperature must be 0 (greedy) or in [0.001, 100]", f"got {float(value)!r}")


@pytest.mark.parametrize("option,value,part", [("--top-p", "nan", "top_p must be in (0, 1]"), ("--top-k", "0", "top_k must be a positive integer")])
def test_top_p_and_top_k_outside_their_ranges_exit_2(option, value, part, nothing_allocated):
    assert_one_line_error(invoke(option, value), part)


def test_prompt_bytes_that_are_not_utf8_exit_2(nothing_allocated):
    # What Python makes of argv b"ab\xff": the undecodable byte becomes the lone surrogate U+DCFF.
    assert_one_line_error(invoke("--prompt", "ab\udcff"), "--prompt is not valid UTF-8", "byte 2 is 0xff")


def test_gen_tokens_beyond_int32_positions_exit_2(nothing_allocated):
    assert_one_line_error(invoke("--gen-tokens", "3000000000"), "3000000004", "int32", "at most 2147483643 new tokens")


def test_gen_tokens_whose_cache_cannot_fit_exit_2(monkeypatch, nothing_allocated):
    with_free_memory(monkeypatch, 16 * GIB)
    result = invoke("--gen-tokens", "1000000000")
    assert_one_line_error(result, "generating 1000000000 tokens with palm-4m needs about", "available memory is 16.00 GiB")
    needed = float(result.stderr.split("needs about ")[1].split(" GiB")[0])
    # The KV cache alone: 512 bytes a token for palm-4m, held once (the layer loop writes it in place).
    assert needed > 512 * 1e9 / GIB


def test_a_model_that_cannot_fit_is_refused_before_initialising(monkeypatch, nothing_allocated):
    with_free_memory(monkeypatch, 1 * GIB)
    result = invoke("--model", "palm-8b", "--gen-tokens", "2")
    assert_one_line_error(result, "palm-8b needs about", "available memory is 1.00 GiB")
    needed = float(result.stderr.split("needs about ")[1].split(" GiB")[0])
    assert needed > zoo.get_preset("palm-8b").param_count * 2 / GIB


def test_more_chips_than_local_devices_exit_2(nothing_allocated):
    assert_one_line_error(invoke("--chips", "9"), "--chips 9 is more than the 8 local cpu device(s)", "valid: 1 to 8")


def test_chips_that_contradict_the_mesh_exit_2(nothing_allocated):
    assert_one_line_error(invoke("--chips", "2", "--mesh", "2x2"), "--mesh 2x2 has 4 chips but --chips is 2")


def test_chips_choose_the_devices_the_generation_is_split_over(monkeypatch):
    meshes = []
    real = layouts.sharded_generate

    def recording(*args, mesh, **kwargs):
        meshes.append(dict(mesh.shape))
        return real(*args, mesh=mesh, **kwargs)

    monkeypatch.setattr(layouts, "sharded_generate", recording)
    result = invoke("--chips", "2", "--layout", "2d-ws", "--prompt", "def main(", "--gen-tokens", "4", "--format", "json")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["layout"] == "2d-ws+heads" and len(record["tokens"]) == 4
    assert len(meshes) == 1 and sorted(meshes[0].values()) == [1, 1, 2]


def test_chips_without_a_layout_split_under_the_default_layouts(monkeypatch):
    result = invoke("--chips", "4", "--model", "palm-tiny", "--prompt", "hi", "--gen-tokens", "2", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["layout"] == "2d-ws+heads"


def test_printable_escapes_control_characters_but_newline_and_tab():
    assert printable("a\x00b\x1b[31m\tc\nd\x7f\x9b\r") == "a\\x00b\\x1b[31m\tc\nd\\x7f\\x9b\\x0d"
    assert printable("naïve — 日本 ~") == "naïve — 日本 ~"


def test_table_output_escapes_what_json_keeps_exact():
    args = ("--model", "palm-tiny", "--temperature", "1", "--seed", "3", "--gen-tokens", "40", "--prompt", "The ")
    record = json.loads(invoke(*args, "--format", "json").stdout)
    assert any(ord(character) < 0x20 and character not in "\n\t" for character in record["text"])
    table = invoke(*args).stdout
    assert table == printable("The " + record["text"]) + "\n"
    assert not any(ord(character) < 0x20 and character not in "\n\t" for character in table)


def test_the_cell_flags_split_one_prompt_as_they_split_a_cell():
    # One prompt under wg-xyz with attention over the batch (both split over no axes), the
    # compiler's partitioner and a chunked prefill: the tokens of the unsplit generation.
    common = ("--model", "palm-tiny", "--prompt", "def main(", "--gen-tokens", "4", "--format", "json")
    whole = json.loads(invoke(*common).stdout)
    split = invoke(*common, "--chips", "8", "--layout", "wg-xyz", "--decode-attention", "batch", "--partitioner", "compiler", "--prefill-chunk", "4")
    assert split.exit_code == 0, split.stderr
    record = json.loads(split.stdout)
    assert record["tokens"] == whole["tokens"] and record["layout"] == "wg-xyz+heads"


def test_an_unknown_partitioner_exits_2(nothing_allocated):
    assert_one_line_error(invoke("--partitioner", "magic"), "partitioner", "explicit")
