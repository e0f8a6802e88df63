"""Writing files so that readers never see half of one: beside the target, then renamed."""

import contextlib
import os
import secrets
import shutil


def _partial(path, suffix):
    directory, name = os.path.split(os.path.abspath(os.fspath(path)))
    os.makedirs(directory, exist_ok=True)
    return os.path.join(directory, f".{name}.{secrets.token_hex(8)}.partial{suffix}")


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yields a temporary path in ``path``'s directory; on success it is renamed to ``path``
    (replacing any old file or, for a directory, an absent target), on failure removed.

    The temporary name starts with a dot, so scanners of the directory skip it, and ends with
    ``suffix`` for writers that insist on one (Keras' ``.keras``).
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
        if os.path.isdir(partial):
            shutil.rmtree(partial, ignore_errors=True)
        elif os.path.exists(partial):
            os.remove(partial)


def write_bytes(path, data):
    """Writes ``data`` to ``path`` atomically (flushed to disk before the rename)."""
    with atomic_path(path) as partial:
        with open(partial, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    return path
