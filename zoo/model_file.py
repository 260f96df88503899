"""Models described in TOML files, for configurations the presets do not have: the same fields as
`zoo.config.ModelConfig` (the file's name stands for `name` when it has none), the same checks, and
one-line errors. Every command that takes a preset name takes such a file (`--model PATH.toml`).

    # examples/models/llama-3-8b.toml
    n_layers = 32
    d_model = 4096
    ...
"""

import dataclasses
import functools
import pathlib
import tomllib

from zoo.config import ModelConfig
from zoo.errors import ConfigError

MODEL_FILE_SUFFIX = ".toml"
_FIELDS = {field.name: field for field in dataclasses.fields(ModelConfig)}
_REQUIRED = [name for name, field in _FIELDS.items() if field.default is dataclasses.MISSING and name != "name"]


def is_model_file(name: str) -> bool:
    return name.endswith(MODEL_FILE_SUFFIX)


def read_model_file(path: str | pathlib.Path) -> ModelConfig:
    """The model `path` describes; ConfigError saying what is wrong with the file otherwise."""
    return _read(str(pathlib.Path(path).resolve()), str(path))


@functools.lru_cache(maxsize=64)  # a sweep asks for the same file once per cell
def _read(resolved: str, shown: str) -> ModelConfig:
    path = pathlib.Path(resolved)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"model file {shown} does not exist; pass a preset name (zoo models) or a .toml file describing a model") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"model file {shown} cannot be read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"model file {shown} is not valid TOML: {error}") from None
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"model file {shown}: unknown key {unknown[0]!r}; valid keys: {', '.join(_FIELDS)}")
    missing = [name for name in _REQUIRED if name not in data]
    if missing:
        raise ConfigError(f"model file {shown}: missing {', '.join(missing)} (required: {', '.join(_REQUIRED)})")
    values = {"name": path.stem} | data
    for name, value in values.items():
        values[name] = _typed(shown, name, value)
    return ModelConfig(**values)


def _typed(shown: str, name: str, value):
    """`value` as field `name` takes it: TOML's integers stand for floats, nothing else converts."""
    default = _FIELDS[name].default
    if isinstance(default, bool):
        wanted = (bool,)
    elif isinstance(default, float) or name == "nominal_params":
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        wanted = (float,)
    elif isinstance(default, str) or name == "name":
        wanted = (str,)
    else:
        return value  # integers and literals: ModelConfig checks them
    if not isinstance(value, wanted):
        raise ConfigError(f"model file {shown}: {name} must be a {wanted[0].__name__}, got {value!r}")
    return value
