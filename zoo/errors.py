"""Exceptions the zoo raises for bad input. Each carries a one-line message saying what was wrong
and what would be valid, so the CLI can print it as is."""


class ZooError(ValueError):
    """Base class of every input error raised by the zoo."""


class UnknownPresetError(ZooError, KeyError):
    """A preset name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class ConfigError(ZooError):
    """A model configuration whose fields contradict each other."""


class PromptError(ZooError):
    """A prompt that cannot be processed: ragged, empty, or longer than the cache."""
