"""Every command the documentation shows runs as written: README.md, checkpoints/README.md, the
usage lines at the top of examples/*.toml, and the README's library snippets.

Each document's commands run in order (later ones read what earlier ones wrote) in a fresh folder
that holds the repository's `examples/` and `.venv/`, with the virtual environment first on PATH
and none of the test suite's forced devices: a command that needs 8 devices must say so itself. A
command whose shown output is an error line must exit with 2 and print exactly that line; every
other one must exit with 0. Commands that compile full-size models or run matrices are slow and
run with `pytest -m slow`, as do `zoo launch` runs (tests/test_processes.py covers the launcher in the default suite); the rest run in the default suite.
"""

import dataclasses
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

# Shown but not run here, each for a reason: the installs and the test suite are what CI itself runs
# from a clean clone; retraining the shipped model takes 16-29 minutes and rewrites it.
NOT_RUN = {
    "python3 -m venv .venv": "the install: CI runs it from a clean clone",
    ".venv/bin/pip install": "the install: CI runs it from a clean clone",
    ".venv/bin/python -m pytest": "the test suite itself",
    "python -m checkpoints.shipped.train_small_model": "retrains the shipped model (16-29 minutes) over checkpoints/palm-4m",
    "benchmarks/run_speed.py": "needs the bench extra (torch, transformers) and 20 minutes; tests/test_run_speed.py runs it without the peer",
}
_SLOW = re.compile(r"zoo (compile|bench|launch)\b|^\.venv/bin/zoo bench|checkpoints\.evaluate")


@dataclasses.dataclass(frozen=True)
class Documented:
    document: str
    line: int
    command: str
    shown_error: str | None  # the error line the document shows the command printing, if any

    @property
    def slow(self) -> bool:
        return bool(_SLOW.search(self.command))


def _runnable_parts(line: str) -> list[str]:
    """The parts of an `a && b && c` line that are not in NOT_RUN."""
    return [part.strip() for part in line.split(" && ") if not any(prefix in part for prefix in NOT_RUN)]


def markdown_commands(path: Path) -> list[Documented]:
    """Commands in the document's code blocks: in a block that shows output, the lines after `$ `;
    in a plain shell block, every line that starts a command."""
    found = []
    lines = path.read_text().splitlines()
    fences = [number for number, line in enumerate(lines) if line.startswith("```")]
    for opening, closing in zip(fences[::2], fences[1::2]):
        if lines[opening][3:].strip() == "python":
            continue
        block = list(enumerate(lines[opening + 1 : closing], opening + 2))
        shows_output = any(line.startswith("$ ") for _, line in block)
        for index, (number, line) in enumerate(block):
            if shows_output and line.startswith("$ "):
                following = block[index + 1][1] if index + 1 < len(block) else ""
                shown_error = following if ": error: " in following else None
                found += [Documented(path.name, number, part, shown_error) for part in _runnable_parts(line[2:])]
            elif not shows_output and re.match(r"(zoo |\.venv/bin/|python3? |JAX_PLATFORMS=|XLA_FLAGS=)", line):
                found += [Documented(path.name, number, part, None) for part in _runnable_parts(line)]
    return found


def example_commands(path: Path) -> list[Documented]:
    """The usage lines (`#   zoo ...`) at the top of an example file."""
    return [
        Documented(path.name, number, line.lstrip("# ").strip(), None)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.match(r"#\s+(XLA_FLAGS=\S+ )?zoo ", line)
    ]


def python_snippets(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


DOCUMENTS = {
    "README.md": markdown_commands(ROOT / "README.md"),
    "checkpoints/README.md": markdown_commands(ROOT / "checkpoints" / "README.md"),
    **{f"examples/{path.name}": example_commands(path) for path in sorted((ROOT / "examples").glob("*.toml"))},
}


def _environment() -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key not in ("XLA_FLAGS", "JAX_PLATFORMS", "COLUMNS")}
    environment["PATH"] = f"{VENV_BIN}{os.pathsep}{environment.get('PATH', '')}"
    return environment


@pytest.fixture
def workspace(tmp_path):
    """A fresh folder in which the documented relative paths (`examples/`, `.venv/`) exist."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / ".venv").symlink_to(VENV_BIN.parent)
    return tmp_path


def _run(documented: Documented, folder: Path) -> None:
    result = subprocess.run(["bash", "-c", documented.command], cwd=folder, env=_environment(), capture_output=True, text=True, timeout=900)
    where = f"{documented.document}:{documented.line}: {documented.command}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, where
    if documented.shown_error is None:
        assert result.returncode == 0, where
    else:
        assert result.returncode == 2, where
        assert result.stderr.strip() == documented.shown_error, where


def test_the_documents_show_commands_to_check():
    assert len(DOCUMENTS["README.md"]) >= 8 and len(DOCUMENTS["checkpoints/README.md"]) >= 7
    assert all(DOCUMENTS[f"examples/{path.name}"] for path in (ROOT / "examples").glob("*.toml"))
    assert any(documented.shown_error for documented in DOCUMENTS["README.md"])


@pytest.mark.parametrize("document", sorted(DOCUMENTS))
def test_documented_commands_run_as_written(document, workspace):
    for documented in DOCUMENTS[document]:
        if not documented.slow:
            _run(documented, workspace)


@pytest.mark.slow
@pytest.mark.parametrize("document", sorted(DOCUMENTS))
def test_documented_slow_commands_run_as_written(document, workspace):
    for documented in DOCUMENTS[document]:
        if documented.slow:
            _run(documented, workspace)


def test_the_readme_library_snippets_run_as_written(workspace):
    snippets = python_snippets(ROOT / "README.md")
    assert len(snippets) >= 2
    for snippet in snippets:
        result = subprocess.run([sys.executable, "-c", snippet], cwd=workspace, env=_environment(), capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]


def test_commands_are_split_and_skipped_as_documented():
    quickstart = "python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && .venv/bin/zoo bench"
    assert _runnable_parts(quickstart) == [".venv/bin/zoo bench"]
    assert Documented("d", 1, ".venv/bin/zoo bench", None).slow and not Documented("d", 1, "zoo estimate --model palm-8b", None).slow
    assert shlex.split(example_commands(ROOT / "examples" / "my-2d-ws.toml")[0].command)[:2] == ["zoo", "layouts"]
