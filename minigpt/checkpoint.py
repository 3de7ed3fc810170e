"""Checkpoints: one .npz file holding named arrays plus a JSON "meta.json" entry.

An .npz is a zip archive of .npy files, one per array. We add one more entry,
"meta.json": the JSON text (config, tokenizer, training step, ...) stored as a
uint8 byte array. Everything lives in ONE file, so one atomic rename publishes a
checkpoint: a reader sees the old file or the new one, never a mix.

Saving:  write to a temp file in the same directory, flush + fsync, os.replace.
         A crash at any moment leaves the previous checkpoint untouched.
Loading: np.load(..., allow_pickle=False), so a file cannot make us run code
         (a pickled object array is refused, not unpickled). Every problem raises
         CheckpointError (a ValueError) naming the file and what is wrong.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile

import numpy as np

from .messages import few_names

META_KEY = "meta.json"   # the entry holding the JSON metadata
_ZIP_MAGIC = b"PK\x03\x04"  # a zip archive's first four bytes, when it holds a file (.npz do)
_NUMERIC_KINDS = "biuf"     # bool, signed int, unsigned int, float


class CheckpointError(ValueError):
    """A checkpoint file is missing, damaged, unsafe or does not fit the model."""


class CheckpointNotFoundError(CheckpointError):
    """No file at the path (the CLI catches this to suggest the command that trains one)."""


def _umask() -> int:
    """The process's umask (reading it means setting it, so set it straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_checkpoint(path, arrays: dict, meta: dict) -> None:
    """Atomically write `arrays` (name -> numeric np.ndarray) and `meta` (JSON-able) to path.

    Parent directories are created. Until os.replace succeeds, `path` still holds
    whatever it held before (or nothing); the temp file is removed on failure.
    """
    path = os.fspath(path)
    _check_arrays_to_save(arrays, path)
    meta_bytes = _meta_to_bytes(meta, path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # Same directory as the target: os.replace is only atomic within one filesystem.
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, {**arrays, META_KEY: meta_bytes})
            f.flush()
            os.fsync(f.fileno())    # the bytes are on disk before the rename points at them
        # mkstemp makes the file private (0600); give it the mode a plain open() would
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        # BaseException: also clean up after Ctrl-C during a long save.
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_directory(directory)     # make the rename itself durable


def load_checkpoint(path) -> tuple[dict, dict]:
    """Read a checkpoint written by save_checkpoint: returns (arrays, meta).

    arrays: name -> np.ndarray (numeric, all finite), meta: dict from meta.json.
    Raises CheckpointError for anything wrong; nothing in the file is executed.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointNotFoundError(f"checkpoint not found: {path}")
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path} is not a file")
    with open(path, "rb") as f:
        if f.read(4) != _ZIP_MAGIC:
            raise CheckpointError(f"checkpoint {path} is not an .npz (zip) archive")
    try:
        with np.load(path, allow_pickle=False) as npz:
            stored = {name: npz[name] for name in npz.files}
    except Exception as e:
        # A damaged file fails inside zipfile, zlib or numpy's .npy header parser in
        # many different ways; each one means "this file is not a usable checkpoint".
        # (Object arrays land here too: allow_pickle=False refuses to unpickle them.)
        raise CheckpointError(f"checkpoint {path} is unreadable (damaged, truncated, or "
                              f"holding pickled objects): {type(e).__name__}: {e}") from e
    if META_KEY not in stored:
        raise CheckpointError(f"checkpoint {path} has no {META_KEY} entry")
    meta = _meta_from_array(stored.pop(META_KEY), path)
    for name, arr in stored.items():
        _check_numeric_finite(name, arr, path)
    return stored, meta


def validate_arrays(arrays: dict, expected: dict, what: str = "parameters",
                    path=None) -> None:
    """Check arrays against expected: name -> (shape, dtype); dtype None accepts any.

    Raises CheckpointError listing missing and unexpected names, wrong shapes and
    wrong dtypes, e.g.
        checkpoint parameters do not match: missing 'wpe'; 'h.0.attn.c_attn.w' has
        shape (64, 192), expected (128, 384)
    """
    problems = []
    missing = [name for name in expected if name not in arrays]
    unexpected = [name for name in arrays if name not in expected]
    if missing:
        problems.append("missing " + few_names(missing))
    if unexpected:
        problems.append("unexpected " + few_names(unexpected))
    for name, (shape, dtype) in expected.items():
        if name not in arrays:
            continue
        arr = arrays[name]
        if tuple(arr.shape) != tuple(shape):
            problems.append(f"{name!r} has shape {tuple(arr.shape)}, expected {tuple(shape)}")
        if dtype is not None and arr.dtype != np.dtype(dtype):
            problems.append(f"{name!r} has dtype {arr.dtype}, expected {np.dtype(dtype)}")
    if problems:
        where = f" in {os.fspath(path)}" if path is not None else ""
        shown = problems[:10] + ([f"... and {len(problems) - 10} more"] if len(problems) > 10
                                 else [])
        raise CheckpointError(f"checkpoint {what}{where} do not match: " + "; ".join(shown))


# ---- helpers -------------------------------------------------------------------------

def _write_npz(f, arrays: dict) -> None:
    """Write an uncompressed .npz to the open binary file f: one "<name>.npy" per array.

    This is what np.savez does; writing it ourselves means an array may be named
    "file" or "allow_pickle" (np.savez's own argument names) without clashing.
    """
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            # force_zip64: an entry may exceed 2 GiB; numpy's reader handles both.
            with zf.open(name + ".npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(arr), allow_pickle=False)


def _check_arrays_to_save(arrays: dict, path: str) -> None:
    """Refuse to write what load_checkpoint would refuse to read."""
    if META_KEY in arrays:
        raise CheckpointError(f"cannot save {path}: the name {META_KEY!r} is reserved")
    for name, arr in arrays.items():
        if not isinstance(name, str) or not name:
            raise CheckpointError(f"cannot save {path}: array names must be non-empty str, "
                                  f"got {name!r}")
        if not isinstance(arr, np.ndarray):
            raise CheckpointError(f"cannot save {path}: {name!r} is a {type(arr).__name__}, "
                                  f"not an np.ndarray")
        _check_numeric_finite(name, arr, path)


def _check_numeric_finite(name: str, arr: np.ndarray, path: str) -> None:
    if arr.dtype.kind not in _NUMERIC_KINDS:
        raise CheckpointError(f"checkpoint {path}: array {name!r} has non-numeric dtype "
                              f"{arr.dtype}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise CheckpointError(f"checkpoint {path}: array {name!r} has {bad} NaN/inf "
                              f"value(s)")


def _meta_to_bytes(meta: dict, path: str) -> np.ndarray:
    """meta -> UTF-8 JSON text -> uint8 array, shape (n_bytes,)."""
    if not isinstance(meta, dict):
        raise CheckpointError(f"cannot save {path}: meta must be a dict, got "
                              f"{type(meta).__name__}")
    try:
        # allow_nan=False: NaN is not valid JSON and other readers would choke on it.
        text = json.dumps(meta, allow_nan=False, indent=1, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"cannot save {path}: meta is not JSON-able: {e}") from e
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _meta_from_array(arr: np.ndarray, path: str) -> dict:
    """uint8 array -> JSON text -> dict, refusing anything else."""
    if arr.dtype != np.uint8 or arr.ndim != 1:
        raise CheckpointError(f"checkpoint {path}: {META_KEY} must be a 1-D uint8 array, "
                              f"got dtype {arr.dtype} shape {arr.shape}")
    try:
        meta = json.loads(arr.tobytes().decode("utf-8"), parse_constant=_refuse_constant)
    except ValueError as e:   # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise CheckpointError(f"checkpoint {path}: {META_KEY} is not valid JSON: {e}") from e
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {path}: {META_KEY} must hold a JSON object, "
                              f"got {type(meta).__name__}")
    return meta


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not allowed in {META_KEY}")


def _fsync_directory(directory: str) -> None:
    """Flush the directory entry so the rename survives a power cut (POSIX only)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
