"""RESULTS.md and results/ cannot drift apart: the committed tables regenerate from the committed
per-run records, and RESULTS.md shows exactly those tables."""

import os
import shutil
import subprocess
import sys

from helpers import REPO

from nfi_tf.experiments import tables

RESULTS = os.path.join(REPO, "results")


def _committed_table() -> str:
    with open(os.path.join(RESULTS, tables.TABLE_FILE)) as f:
        return f.read()


def test_results_md_shows_the_committed_tables():
    with open(os.path.join(REPO, "RESULTS.md")) as f:
        doc = f.read()
    assert tables.DOC_MARKER in doc
    shown = doc.split(tables.DOC_MARKER, 1)[1].strip() + "\n"
    assert shown == tables.doc_section(_committed_table())


def test_committed_tables_regenerate_from_the_committed_runs(tmp_path):
    copy = tmp_path / "results"
    shutil.copytree(RESULTS, copy)
    os.remove(copy / tables.TABLE_FILE)
    os.remove(copy / tables.VERDICTS_FILE)
    # The command a user runs (it finds every committed run finished under today's plan).
    out = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "reproduce.py"),
                          "--stage=tables", f"--results_dir={copy}"], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (copy / tables.TABLE_FILE).read_text() == _committed_table()
    with open(os.path.join(RESULTS, tables.VERDICTS_FILE)) as f:
        assert (copy / tables.VERDICTS_FILE).read_text() == f.read()


def test_doc_section_drops_the_title_and_demotes_headings(tmp_path):
    table = "# Reproduction tables\n\n### mnist: Table 2\n\n| a |\n|---|\n| 1 |\n"
    assert tables.doc_section(table) == "#### mnist: Table 2\n\n| a |\n|---|\n| 1 |\n"
    doc = tmp_path / "doc.md"
    doc.write_text("intro\n" + tables.DOC_MARKER + "\n\nold tables\n")
    tables.update_doc(str(doc), table)
    assert doc.read_text() == ("intro\n" + tables.DOC_MARKER + "\n\n#### mnist: Table 2\n\n"
                               "| a |\n|---|\n| 1 |\n")
