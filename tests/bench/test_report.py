"""bench/report.py: RESULTS.md's generated top and its hand-written rest."""

from bench import procs, report

META = {
    "command": "python -m bench --runs 3",
    "date": "2026-12-06 21:20 UTC",
    "cores": 2,
    "commit": "2a7b66f",
    "load_average_start": 0.5,
    "load_average_end": 1.5,
    "runs": 3,
}


def test_a_full_run_rewrites_the_top_and_keeps_the_hand_written_rest(tmp_path):
    path = tmp_path / "RESULTS.md"
    hand = "\n## Findings\n\nWritten by hand.\n"
    path.write_text(f"# old top\n{report.HAND_WRITTEN}{hand}")
    result = {"meta": META, "table": [], "runs": [], "notes": ["a note"]}
    report.write_markdown(path, result)
    report.write_markdown(path, result)  # twice: nothing accumulates
    text = path.read_text()
    top, marker, rest = text.partition(report.HAND_WRITTEN)
    assert marker and rest == hand
    assert "# old top" not in top and "- a note" in top
    assert "on 2026-12-06 21:20 UTC at commit 2a7b66f (2 cores;" in top


def test_the_commit_is_this_checkouts():
    commit = procs.commit()
    assert commit.rstrip("+")
    assert len(commit.rstrip("+")) >= 7
