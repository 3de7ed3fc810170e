"""The output folder of a training run: checked before the first step, held by one run.

A run writes two files into its --out-dir: ckpt.npz (minigpt.run_state) and
loss.png (minigpt.plots), each through a temp file in the same folder, renamed
over the old one when complete. Three things can go wrong there, and each is
caught before any training is spent:

  check_out_dir(path)   the folder exists or can be made, is a folder, is writable,
                        and ckpt.npz / loss.png in it are not folders. Otherwise an
                        OutDirError (a ValueError; the CLI exits 2) naming the path.
  RunLock(path)         held for the whole run: a second run into the same folder is
                        refused at once (RunLockedError names the process holding it).
                        The lock is the operating system's (fcntl.flock on Linux and
                        macOS, msvcrt.locking on Windows), so it dies with its process:
                        a lock file left by a killed run is simply taken over.
  remove_stale_temps()  temp files a killed run left behind (their names are unique
                        per process) are removed by the next run, which holds the lock.
"""
from __future__ import annotations

import json
import os
import socket
import tempfile
import time

LOCK_NAME = "run.lock"
TEMP_SUFFIXES = (".tmp", ".tmp.png")   # checkpoint.save_checkpoint, plots.save_loss_plot


class OutDirError(ValueError):
    """The output folder cannot be used (the CLI exits 2: a bad command line)."""


class RunLockedError(RuntimeError):
    """Another run holds the output folder."""


def check_out_dir(out_dir, file_names=()) -> None:
    """Make sure a run can write into out_dir (creating it if need be), or raise
    OutDirError naming the path and the problem. file_names: the files the run will
    write there, which must not be folders."""
    path = os.fspath(out_dir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutDirError(f"--out-dir {path} is a file, not a folder: choose another "
                          f"--out-dir or move the file")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise OutDirError(f"--out-dir {path} cannot be created: {e.strerror or e}") from None
    for name in file_names:
        target = os.path.join(path, name)
        if os.path.isdir(target):
            raise OutDirError(f"{target} is a folder, but the run writes its {name} file "
                              f"there: remove or rename that folder, or choose another "
                              f"--out-dir")
    try:                              # the only sure test of "writable": write something
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-test.", suffix=".tmp")
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise OutDirError(f"--out-dir {path} is not writable: {e.strerror or e}") from None


def remove_stale_temps(out_dir, file_names) -> list:
    """Remove the temp files of saves that never finished (a run killed mid-save):
    ".<file>.<random>.tmp[.png]" for each of file_names, and check_out_dir's probe.
    Call only while holding the RunLock. -> the names removed."""
    prefixes = tuple(f".{name}." for name in file_names) + (".write-test.",)
    removed = []
    for name in os.listdir(out_dir):
        if name.startswith(prefixes) and name.endswith(TEMP_SUFFIXES):
            try:
                os.remove(os.path.join(out_dir, name))
                removed.append(name)
            except OSError:
                pass                  # not ours to fight over; the next run tries again
    return removed


class RunLock:
    """with RunLock(out_dir) as lock: ...  -- out_dir/run.lock, held by this process.

    The file records who holds it (process id, host, start time) for the message
    a second run prints; lock.took_over says whether a killed run's file was there.
    """

    def __init__(self, out_dir):
        self.path = os.path.join(os.fspath(out_dir), LOCK_NAME)
        self._fd = None
        self.took_over = None          # the previous holder's record, if it left one

    def __enter__(self):
        for _ in range(10):           # retried only if the file is replaced under us
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                _lock(fd)
            except OSError:
                holder = _read_record(fd)
                os.close(fd)
                raise RunLockedError(_locked_message(self.path, holder)) from None
            if _same_file(fd, self.path):
                break
            os.close(fd)               # the holder removed it as we opened it: again
        else:
            raise RunLockedError(f"could not lock {self.path}: it keeps being replaced")
        self.took_over = _read_record(fd)
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(record).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc):
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if os.name == "posix":         # remove while still holding it, then let go
            _remove(self.path)
            os.close(fd)
        else:                          # Windows cannot remove an open file
            _unlock(fd)
            os.close(fd)
            _remove(self.path)


def _locked_message(path, holder):
    out_dir = os.path.dirname(path)
    who = "another run"
    if holder:
        who = f"another run (process {holder.get('pid')}"
        if holder.get("host") and holder.get("host") != socket.gethostname():
            who += f" on {holder['host']}"
        who += f", started {holder.get('started', '?')})"
    return (f"{out_dir} is in use by {who}: wait for it to finish, stop it, or choose "
            f"another --out-dir")


def _read_record(fd):
    """The JSON record in the lock file, or None if it holds none (or garbage)."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = os.read(fd, 4096)
        record = json.loads(data.decode("utf-8")) if data else None
        return record if isinstance(record, dict) else None
    except (OSError, ValueError):
        return None


def _same_file(fd, path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


if os.name == "posix":
    import fcntl

    def _lock(fd):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)      # OSError if held elsewhere

    def _unlock(fd):
        fcntl.flock(fd, fcntl.LOCK_UN)
else:
    import msvcrt

    _LOCK_OFFSET = 1 << 20    # lock a byte past the record, so others can still read it

    def _lock(fd):
        os.lseek(fd, _LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)              # OSError if held elsewhere

    def _unlock(fd):
        os.lseek(fd, _LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
