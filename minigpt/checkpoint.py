"""Checkpoints: one .npz file holding named arrays plus a JSON "meta.json" entry.

An .npz is a zip archive of .npy files, one per array. We add one more entry,
"meta.json": the JSON text (config, tokenizer, training step, ...) stored as a
uint8 byte array. Everything lives in ONE file, so one atomic rename publishes a
checkpoint: a reader sees the old file or the new one, never a mix.

Saving:  write to a temp file in the same directory, flush + fsync, os.replace.
         A crash at any moment leaves the previous checkpoint untouched.
Loading: entry by entry, with numpy's reader and allow_pickle=False (an object
         array is refused, never unpickled), and in bounded time and memory
         whatever the file says: sizes are checked from the zip directory and each
         .npy header before anything is decompressed or allocated. Every problem
         raises CheckpointError (a ValueError) naming the file and what is wrong.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile

import numpy as np

from .messages import few_names, shorten

META_KEY = "meta.json"   # the entry holding the JSON metadata
_ZIP_MAGIC = b"PK\x03\x04"  # a zip archive's first four bytes, when it holds a file (.npz do)
_NUMERIC_KINDS = "biuf"     # bool, signed int, unsigned int, float


class CheckpointError(ValueError):
    """A checkpoint file is missing, damaged, unsafe or does not fit the model."""


class CheckpointNotFoundError(CheckpointError):
    """No file at the path (the CLI catches this to suggest the command that trains one)."""


def _current_umask() -> int:
    """The process's umask (reading it means setting it, so set it straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(path, write, suffix=".tmp") -> None:
    """Call write(f) on a temp file beside path, then rename it over path.

    Parent directories are created. Until os.replace succeeds, `path` still holds
    whatever it held before (or nothing); the temp file (".<name>.<random><suffix>",
    unique to this call) is removed on any failure, Ctrl-C included.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # Same directory as the target: os.replace is only atomic within one filesystem.
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                               suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())    # the bytes are on disk before the rename points at them
        # mkstemp makes the file private (0600); give it the mode a plain open() would
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    except BaseException:
        # BaseException: also clean up after Ctrl-C during a long save.
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_directory(directory)     # make the rename itself durable


def save_checkpoint(path, arrays: dict, meta: dict) -> None:
    """Atomically write `arrays` (name -> numeric np.ndarray) and `meta` (JSON-able) to path
    (write_atomically: parent directories are created, the old file survives a failure)."""
    path = os.fspath(path)
    _check_arrays_to_save(arrays, path)
    meta_bytes = _meta_to_bytes(meta, path)
    write_atomically(path, lambda f: _write_npz(f, {**arrays, META_KEY: meta_bytes}))


def load_checkpoint(path, expect=None) -> tuple[dict, dict]:
    """Read a checkpoint written by save_checkpoint: returns (arrays, meta).

    arrays: name -> np.ndarray (numeric, all finite), meta: dict from meta.json.
    Raises CheckpointError for anything wrong; nothing in the file is executed.

    Time and memory stay bounded whatever the file holds. Before anything is
    decompressed, the archive's directory is checked: entry names, compression
    method, and the sizes the entries declare (together at most twice the file's own
    size, so a small file cannot inflate into gigabytes). meta.json is read first.
    expect, if given, is a function (meta, sizes) -> {name: (shape, dtype)}, sizes
    being each array's declared size in bytes; it says which arrays the file must
    hold (raising CheckpointError if meta is unusable), and each is checked by name
    and declared size before any array is read.
    """
    arrays, meta = read_npz(path, expect, what="checkpoint")
    if meta is None:
        raise CheckpointError(f"checkpoint {os.fspath(path)} has no {META_KEY} entry")
    for name, arr in arrays.items():
        _check_numeric_finite(name, arr, path)
    return arrays, meta


def read_npz(path, expect=None, what="file") -> tuple[dict, dict | None]:
    """Any .npz read the way load_checkpoint reads one (bounded, nothing unpickled):
    (arrays, meta), meta None when the file has no meta.json. Arrays may hold NaN or
    inf (a reference trace's masked attention scores are -inf); load_checkpoint
    refuses those. `what` names the file in error messages."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointNotFoundError(f"{what} not found: {path}")
    if not os.path.isfile(path):
        raise CheckpointError(f"{what} {path} is not a file")
    with open(path, "rb") as f:
        if f.read(4) != _ZIP_MAGIC:
            raise CheckpointError(f"{what} {path} is not an .npz (zip) archive")
    try:
        with zipfile.ZipFile(path) as zf:
            entries = _entries(zf, path)
            meta = None
            if META_KEY in entries:
                meta = _meta_from_array(_read_entry(zf, entries.pop(META_KEY), path), path)
            elif expect is not None:
                raise CheckpointError(f"{what} {path} has no {META_KEY} entry")
            if expect is not None:
                _check_declared(entries, expect(meta, {name: info.file_size
                                                       for name, info in entries.items()}),
                                path)
            arrays = {name: _read_entry(zf, info, path) for name, info in entries.items()}
    except CheckpointError:
        raise
    except Exception as e:
        # A damaged file fails inside zipfile, zlib or numpy's .npy header parser in
        # many different ways; each one means "this file is not a usable checkpoint".
        raise CheckpointError(f"{what} {path} is unreadable (damaged, truncated, or "
                              f"holding pickled objects): {type(e).__name__}: {e}") from e
    for name, arr in arrays.items():
        if arr.dtype.kind not in _NUMERIC_KINDS:
            raise CheckpointError(f"{what} {path}: array {name!r} has non-numeric dtype "
                                  f"{arr.dtype}")
    return arrays, meta


def validate_arrays(arrays: dict, expected: dict, what: str = "parameters",
                    path=None) -> None:
    """Check arrays against expected: name -> (shape, dtype); dtype None accepts any.

    Raises CheckpointError listing missing and unexpected names, wrong shapes and
    wrong dtypes, e.g.
        checkpoint parameters do not match: missing 'wpe'; 'h.0.attn.c_attn.w' has
        shape (64, 192), expected (128, 384)
    """
    problems = _name_problems(arrays, expected)
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

MAX_META_BYTES = 16 * 2**20    # meta.json: configs, tokenizer, a loss per step (~1 MB / 50k steps)
_NPY_HEADER_BYTES = 2**16      # the most an .npy header may add to its array's bytes


def _entries(zf, path) -> dict:
    """The archive's entries by array name, checked before any is decompressed."""
    entries, declared = {}, 0
    for info in zf.infolist():
        name = info.filename
        if not name.endswith(".npy") or len(name) == 4:
            raise CheckpointError(f"checkpoint {path}: unexpected entry {shorten(repr(name))} "
                                  f"(every entry of an .npz is an .npy array)")
        if name[:-4] in entries:
            raise CheckpointError(f"checkpoint {path}: entry {shorten(repr(name))} appears twice")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise CheckpointError(f"checkpoint {path}: entry {shorten(repr(name))} uses compression "
                                  f"method {info.compress_type}; only stored and deflated "
                                  f"entries are read")
        if info.flag_bits & 0x1:
            raise CheckpointError(f"checkpoint {path}: entry {shorten(repr(name))} is encrypted")
        entries[name[:-4]] = info
        declared += info.file_size
    limit = 2 * os.path.getsize(path) + 2**20
    if declared > limit:
        raise CheckpointError(f"checkpoint {path}: its entries declare {declared:,} bytes "
                              f"uncompressed, more than twice the file's size "
                              f"({os.path.getsize(path):,} bytes): refused unread")
    if META_KEY in entries and entries[META_KEY].file_size > MAX_META_BYTES + _NPY_HEADER_BYTES:
        raise CheckpointError(f"checkpoint {path}: {META_KEY} declares "
                              f"{entries[META_KEY].file_size:,} bytes, more than the "
                              f"{MAX_META_BYTES:,} allowed")
    return entries


_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0}


def _read_entry(zf, info, path) -> np.ndarray:
    """One .npy entry -> array, read by numpy with allow_pickle=False. Its header is
    read first, on its own: numpy's reader allocates whatever a header claims before
    it reads any data, so the claim must fit within the entry's declared size."""
    name = f"checkpoint {path}: entry {shorten(repr(info.filename))}"
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version not in _NPY_HEADERS:
            raise CheckpointError(f"{name} is an .npy of format version "
                                  f"{version}, not 1.0 or 2.0")
        shape, _, dtype = _NPY_HEADERS[version](f)
    if dtype.hasobject:
        raise CheckpointError(f"{name} holds Python objects (pickled data), "
                              f"which a checkpoint never needs and which is not unpickled")
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if nbytes > info.file_size:
        raise CheckpointError(f"{name} claims a {shape} {dtype} array "
                              f"({nbytes:,} bytes) but holds only {info.file_size:,}")
    with zf.open(info) as f:
        arr = np.lib.format.read_array(f, allow_pickle=False)
        if f.read(1):                        # (this read also makes zipfile check the CRC)
            raise CheckpointError(f"{name} has data after its array")
    return arr


def _name_problems(have, expected) -> list:
    """["missing 'a', 'b'", "unexpected 'c'"]: the names in one and not the other."""
    missing = [name for name in expected if name not in have]
    unexpected = [name for name in have if name not in expected]
    return ([f"missing {few_names(missing)}"] if missing else []) + \
        ([f"unexpected {few_names(unexpected)}"] if unexpected else [])


def _check_declared(entries: dict, expected: dict, path) -> None:
    """The expected arrays are there, nothing else is, and none declares more bytes
    than its shape and dtype need (plus an .npy header)."""
    problems = _name_problems(entries, expected)
    if problems:
        raise CheckpointError(f"checkpoint {path} does not hold the arrays its config needs: "
                              + "; ".join(problems))
    for name, (shape, dtype) in expected.items():
        need = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
        if entries[name].file_size > need + _NPY_HEADER_BYTES:
            raise CheckpointError(f"checkpoint {path}: entry {name!r} declares "
                                  f"{entries[name].file_size:,} bytes, but a {tuple(shape)} "
                                  f"{np.dtype(dtype)} array needs {need:,}")

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
    except RecursionError:    # json's parser recurses once per level of [ or {
        raise CheckpointError(f"checkpoint {path}: {META_KEY} is nested too deeply to be "
                              f"a minigpt checkpoint's metadata") from None
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
