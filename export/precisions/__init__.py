"""Export precisions: one module each, registered here with one line (`registry.py` says what a
precision declares). Adding one is its module (a `PrecisionSpec` with convert, check and report),
one `register` line, and its test; `--precision` then accepts its name.

Registration order is the order an export converts, prints and reports them: fp32 (the
reference, always first), then int8 before fp16, as exports did before the registry.
"""

from export.precisions import fp16, fp32, int8
from export.precisions.registry import (
    Precision,
    PrecisionReport,
    PrecisionSpec,
    get,
    names,
    reference,
    register,
    resolve,
    specs,
    unregister,
)

register(fp32.SPEC)
register(int8.SPEC)
register(fp16.SPEC)

__all__ = ["Precision", "PrecisionReport", "PrecisionSpec", "get", "names", "reference",
           "register", "resolve", "specs", "unregister"]
