"""Checks shared by every metric: one length for all columns, and who received what."""


def check_lengths(fn, allow_empty=True, **columns):
    """Raises ``ValueError`` unless the given 1-D ``columns`` (``None`` ones are skipped) have
    one length, and, when ``allow_empty`` is false, at least one row.

    ``fn`` names the metric in the message, e.g. ``"gauc"``.
    """
    sizes = {name: len(values) for name, values in columns.items() if values is not None}
    received = ", ".join(f"{name}={size}" for name, size in sizes.items())
    if len(set(sizes.values())) > 1:
        names = ", ".join(f"`{name}`" for name in sizes)
        raise ValueError(f"{fn}: {names} must have the same length. Received lengths: {received}.")
    if not allow_empty and not any(sizes.values()):
        raise ValueError(f"{fn}: needs at least one row. Received lengths: {received}.")
