"""Writing files so that readers never see half of one: beside the target, then renamed."""

import contextlib
import os
import re
import secrets
import shutil
import socket


def _partial(path, suffix):
    # ".<target>.<host>.<pid>.<random>.partial<suffix>": the writer's host and process id tell
    # a later writer the partials of a killed process from those of one still writing.
    directory, name = os.path.split(os.path.abspath(os.fspath(path)))
    os.makedirs(directory, exist_ok=True)
    _remove_stale_partials(directory)
    return os.path.join(directory, f".{name}.{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(8)}.partial{suffix}")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    return True


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):  # never written, or a sweep got there first
            os.remove(path)


def _remove_stale_partials(directory):
    """Removes the partial files and folders in ``directory`` that ``atomic_path`` writers on
    this host left when they were killed (their process is gone). Partials of live processes,
    of other hosts (a shared file system) and anything not named by ``atomic_path`` stay."""
    ours = re.compile(rf"^\..+\.{re.escape(socket.gethostname())}\.(?P<pid>\d+)\.[0-9a-f]{{16}}\.partial")
    for name in os.listdir(directory):
        match = ours.match(name)
        if match and not _alive(int(match["pid"])):
            _remove(os.path.join(directory, name))


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yields a temporary path in ``path``'s directory; on success it is renamed to ``path``
    (replacing any old file or, for a directory, an absent target), on failure removed.

    The temporary name starts with a dot, so scanners of the directory skip it, and ends with
    ``suffix`` for writers that insist on one (Keras' ``.keras``). A process killed while
    writing (SIGKILL, the OOM killer) cannot remove its partial: the next ``atomic_path`` in
    that directory does.
    """
    partial = _partial(path, suffix)
    try:
        yield partial
        if os.path.isfile(partial):
            # Readable as open() would create it (tempfile's 0600 would hide it from other users).
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(partial, 0o666 & ~umask)
        os.replace(partial, os.fspath(path))
    finally:
        _remove(partial)


def write_bytes(path, data):
    """Writes ``data`` to ``path`` atomically (flushed to disk before the rename)."""
    with atomic_path(path) as partial:
        with open(partial, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    return path
