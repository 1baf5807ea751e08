"""The evaluation report.

    schema.py    EvalReport: what eval.json holds, as a type, versioned to and from JSON
    sections.py  its typed sections (settings, checks, the routed model's summary, routes, ...)
    build.py     a run's outcomes -> an EvalReport
    render.py    eval.md and the table the command line prints

`write(out_dir, report)` writes eval.json and eval.md atomically.
"""

from __future__ import annotations

import os

from nfi_tf import io_utils
from nfi_tf.evaluation.report import sections
from nfi_tf.evaluation.report.render import (
    ROW_TITLES,
    column_title,
    markdown,
    md_table,
    seconds_by_family,
    text_table,
)
from nfi_tf.evaluation.report.schema import (
    EVAL_JSON,
    EVAL_MD,
    EVAL_NPZ,
    MERGED_JSON,
    MERGED_MD,
    READS,
    VERSION,
    EvalReport,
)


def write(out_dir: str, report: EvalReport) -> None:
    """eval.json and eval.md into `out_dir` (atomically)."""
    report.save(os.path.join(out_dir, EVAL_JSON))
    io_utils.atomic_write_text(os.path.join(out_dir, EVAL_MD), markdown(report))


__all__ = ["EVAL_JSON", "EVAL_MD", "EVAL_NPZ", "MERGED_JSON", "MERGED_MD", "READS", "VERSION", "EvalReport",
           "ROW_TITLES", "column_title", "markdown", "md_table", "seconds_by_family", "sections",
           "text_table", "write"]
