"""Which CPU a benchmark ran on, so that a table from one machine is not
read as another's: speed ratios of fused and unfused elementwise code
depend on the vector instructions and the number of cores."""

import os
import platform

# Vector instruction sets that change how fast elementwise loops and
# convolutions run, widest first (as /proc/cpuinfo names them).
VECTOR_SETS = ("amx_tile", "avx512_fp16", "avx512_bf16", "avx512f",
               "avx_vnni", "avx2", "avx", "sse4_2", "asimd", "sve")


def _cpuinfo(path="/proc/cpuinfo"):
    """`(model name, flags)` from Linux's cpuinfo; `(None, set())`
    elsewhere."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:  # Not Linux: no such file.
        return None, set()
    model, flags = None, set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return model, flags


def describe(cpuinfo_path="/proc/cpuinfo"):
    """The CPU this process runs on.

    Returns:
        A dict: `model` (the CPU's name), `vector_sets` (those of
        `VECTOR_SETS` it has, widest first), `cores` (logical CPUs this
        process may use) and `machine` (the architecture).

    Example:

    >>> cpu = describe()
    >>> sorted(cpu)
    ['cores', 'machine', 'model', 'vector_sets']
    """
    model, flags = _cpuinfo(cpuinfo_path)
    usable = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
              else os.cpu_count())
    return {"model": model or platform.processor() or "unknown",
            "vector_sets": [name for name in VECTOR_SETS if name in flags],
            "cores": usable, "machine": platform.machine()}


def one_line(cpu):
    """`describe()`'s dict as one line for a table's header.

    Example:

    >>> one_line({"model": "Xeon", "vector_sets": ["avx512f", "avx2"],
    ...           "cores": 2, "machine": "x86_64"})
    'cpu: Xeon (x86_64; avx512f, avx2), 2 cores'
    """
    sets = ", ".join(cpu["vector_sets"]) or "no vector set listed"
    return (f"cpu: {cpu['model']} ({cpu['machine']}; {sets}), "
            f"{cpu['cores']} cores")
