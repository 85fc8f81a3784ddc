"""A file a command will write (`bench --json`, `plot --out`), checked
before any work: a benchmark that ends in a traceback because its output
cannot be written has wasted its minutes. Standard library only.
"""

import os
import tempfile


def check(option, path, example, make_folders=False):
    """Refuses a path that cannot be written, naming the option and why: an
    empty name, a folder, a folder that is missing (unless `make_folders`,
    where the nearest existing one must take files), a read-only file, or
    a place the system refuses files in (`/proc`). Leaves nothing behind.

    Args:
        option: The option, as the user typed it (`"--json"`).
        path: The file it names.
        example: A file name to suggest when `path` is empty.
        make_folders: Whether the command makes missing folders.

    Raises:
        ValueError: one line, naming the option and the path.
    """
    if not path:
        raise ValueError(f"{option} '': give the file to write, e.g. "
                         f"{example}.")
    if os.path.isdir(path):
        raise ValueError(f"{option} {path} is a folder; give the path of "
                         f"the file to write.")
    folder = os.path.dirname(os.path.abspath(path))
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f"{option} {path}: {existing} is a file, not a "
                         f"folder.")
    if existing != folder and not make_folders:
        raise ValueError(f"{option} {path}: no folder {folder}.")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise ValueError(f"{option} {path} is read-only.")
    try:
        if existing == folder:
            # Opened to append: an existing file is left as it is.
            created = not os.path.exists(path)
            with open(path, "ab"):
                pass
            if created:
                os.remove(path)
        else:
            with tempfile.TemporaryFile(dir=existing):
                pass
    except OSError as error:
        raise ValueError(f"{option} {path} cannot be written: "
                         f"{error}.") from None
