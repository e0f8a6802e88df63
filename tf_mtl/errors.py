"""How errors about a misspelled name end: a suggestion, or the names that are known."""

import difflib


def did_you_mean(name, known, what="Known"):
    """``"; did you mean 'dims'?"`` when ``name`` is close to one of ``known``, else
    ``". Known: [...]"`` (``what`` names the list, e.g. ``"Known keys"``)."""
    known = list(known)
    hint = difflib.get_close_matches(str(name), [str(k) for k in known], n=1)
    return f"; did you mean {hint[0]!r}?" if hint else f". {what}: {known}"
