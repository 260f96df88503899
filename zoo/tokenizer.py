"""A byte-level tokenizer: UTF-8 bytes are the ids (vocab 256), so any text round-trips."""

import numpy as np

from zoo.errors import PromptError

VOCAB = 256


def encode(text: str) -> list[int]:
    try:
        return list(text.encode("utf-8"))
    except UnicodeEncodeError as error:
        # Only lone surrogates fail here; Python decodes bytes that are not UTF-8 (in argv, or a file
        # read with errors="surrogateescape") into them.
        raise PromptError(
            f"text is not valid UTF-8: character {error.start} is the lone surrogate U+{ord(text[error.start]):04X}; pass UTF-8 text"
        ) from None


def decode(ids) -> str:
    return bytes(int(i) for i in ids if 0 <= int(i) < VOCAB).decode("utf-8", errors="replace")


def encode_batch(texts: list[str]) -> np.ndarray:
    """A [B, T] int32 batch; prompts of different lengths are refused rather than silently padded."""
    encoded = [encode(text) for text in texts]
    lengths = sorted({len(ids) for ids in encoded})
    if not encoded or lengths[0] == 0:
        raise PromptError("every prompt needs at least one byte")
    if len(lengths) > 1:
        raise PromptError(f"ragged batch: prompts of {len(lengths)} different lengths ({lengths[0]}..{lengths[-1]} bytes); pass prompts of one length or one prompt at a time")
    return np.asarray(encoded, dtype=np.int32)
