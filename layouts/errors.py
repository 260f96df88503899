"""Exceptions for layouts: each message is one line naming what was wrong and what would be valid."""

from zoo.errors import ZooError


class LayoutError(ZooError):
    """A layout that is malformed, unknown, or names a mesh axis that does not exist."""


class UnknownLayoutError(LayoutError, KeyError):
    def __str__(self) -> str:
        return self.args[0]


class LayoutFileError(LayoutError):
    """A user-written layout file that does not match the schema; names the file and the key."""


class IndivisibleDimensionError(LayoutError):
    """A tensor dimension that the mesh axes a layout assigns to it do not divide."""


class MeshError(LayoutError):
    """A mesh shape that is malformed or cannot be built from the devices or chips at hand."""


class TargetError(ZooError):
    """A compile target that is unknown, malformed, or cannot hold the cell's chip count."""
