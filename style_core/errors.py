"""The one exception type a user sees.

Everything the user can fix (a bad file, a nonsense setting, missing weights) is raised as
`StyleError` with a one-line message; the CLI prints it as `error: ...` and exits 2, the app shows
it as `gr.Error`. Anything else is a bug and keeps its traceback. A message names a setting by its
field name in backquotes (`style_scale`), which each front end spells its own way (`spelled`).
"""

import re
from typing import Callable


class StyleError(ValueError):
    """A problem with the user's input or environment, explained in one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def spelled(message: str, spell: Callable[[str], str]) -> str:
    """`message` with each backquoted setting name replaced by `spell(name)` (a flag, a label)."""
    return re.sub(r"`(\w+)`", lambda m: spell(m[1]), message)


class IntegrityError(StyleError):
    """A weights file that is not the one expected: its checksum differs, or its tensors do not fit
    the network. Fatal when fetching: another source would not make this file right."""
