"""The rows `sugarify` and `strip_sugar` report: one per site.

Both reports are made from the site map's records (`keras_sugar.site_map`)
at the end of the planning, with the same columns: the site's path, its
form, what it computes, and a note.
"""

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Change:
    """One row of a report: a site and what happens to it.

    Attributes:
        site: The `site_records.Site`.
        form: The site's form as the report shows it (on the rebuild route
            it says so).
        note: Why it is left as it is, or what it held; may be empty.
        sugar: For a site to replace, the `SugarReLU` to put there (with
            the site's cap for capped ones); else None.
    """

    site: Any
    form: str
    note: str = ""
    sugar: Any = None

    @property
    def path(self):
        return self.site.path

    @property
    def activation(self):
        return self.site.activation

    def __repr__(self):
        return f"Site({self.path!r}, {self.form}, {self.activation})"


def format_rows(changes, width=48):
    """The report lines of `changes`: path, form, what the site computes,
    and the note."""
    lines = []
    for change in changes:
        note = f"  ({change.note})" if change.note else ""
        lines.append(f"    {change.path:<{width}} {change.form:<18} "
                     f"{change.activation}{note}")
    return lines
