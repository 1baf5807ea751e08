"""RESULTS.md and results/ cannot drift apart: the committed tables regenerate from the committed
per-run records, and RESULTS.md shows exactly those tables."""

import os
import shutil
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "scripts"))

import reproduce  # noqa: E402
import reproduce_tables  # noqa: E402

RESULTS = os.path.join(REPO, "results")


def _committed_table() -> str:
    with open(os.path.join(RESULTS, reproduce_tables.TABLE_FILE)) as f:
        return f.read()


def test_results_md_shows_the_committed_tables():
    with open(os.path.join(REPO, "RESULTS.md")) as f:
        doc = f.read()
    assert reproduce_tables.DOC_MARKER in doc
    shown = doc.split(reproduce_tables.DOC_MARKER, 1)[1].strip() + "\n"
    assert shown == reproduce_tables.doc_section(_committed_table())


def test_committed_tables_regenerate_from_the_committed_runs(tmp_path):
    copy = tmp_path / "results"
    shutil.copytree(RESULTS, copy)
    os.remove(copy / reproduce_tables.TABLE_FILE)
    assert reproduce.main(["--stage=tables", f"--results_dir={copy}"]) == 0
    assert (copy / reproduce_tables.TABLE_FILE).read_text() == _committed_table()


def test_doc_section_drops_the_title_and_demotes_headings(tmp_path):
    table = "# Reproduction tables\n\n### mnist: Table 2\n\n| a |\n|---|\n| 1 |\n"
    assert reproduce_tables.doc_section(table) == "#### mnist: Table 2\n\n| a |\n|---|\n| 1 |\n"
    doc = tmp_path / "doc.md"
    doc.write_text("intro\n" + reproduce_tables.DOC_MARKER + "\n\nold tables\n")
    reproduce_tables.update_doc(str(doc), table)
    assert doc.read_text() == ("intro\n" + reproduce_tables.DOC_MARKER + "\n\n#### mnist: Table 2\n\n"
                               "| a |\n|---|\n| 1 |\n")
