"""One view of a sweep: the run report, a study's report and `imgclf results` show the same tables
(the view's), and every sweep figure of both reports has a caption."""
import re
from pathlib import Path

import pytest
import yaml

from imgclf.cli.main import main
from imgclf.reporting.report import build_report
from imgclf.reporting.sweep_view import present_sweep
from imgclf.studies import run_study
from imgclf.sweeps.analysis import load_sweep_study, pareto_front, ranked, trials_frame

BASE = {"data": {"name": "digits"}, "model": {"name": "mlp", "hidden": [16]},
        "train": {"epochs": 2, "batch_size": 128}, "schedule": {"name": "none"}}
FIGURES = {"objective_vs_params", "correlation", "best_curves", "pareto", "importance"}


def _md_tables(md: str) -> list[list[list[str]]]:
    """Every table of a Markdown page: its header, then its rows, each a list of cells."""
    tables, last = [], False
    for line in md.splitlines():
        is_row = line.startswith("|")
        if is_row and not set(line) <= set("|-"):  # the rule under a header is no row
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            (tables[-1].append(cells) if last else tables.append([cells]))
        last = is_row
    return tables


def _md_figures(md: str) -> dict[str, str]:
    """Each figure of a Markdown page by its file's stem: the caption printed under it."""
    return {Path(p).stem: cap for p, cap in re.findall(r"!\[[^\]]*\]\(([^)]+)\)\n\n\*([^\n]*)\*", md)}


def test_both_reports_and_results_show_the_one_view_of_a_multi_objective_sweep(tmp_path, capsys):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({"base": BASE, "objectives": ["val_acc max", "params min"],
                                     "space": {"model.hidden.0": [4, 16, 64], "optim.lr": [0.01, 0.05, 0.2, 0.5]}}))
    study_file = tmp_path / "mo.yaml"
    study_file.write_text("title: mo\nsweep: s.yaml\n")
    run_study(str(study_file), tmp_path / "studies", log=lambda m: None)
    folder = tmp_path / "studies" / "mo"
    run_md = build_report([folder / "sweep"], tmp_path / "run-report")["md"].read_text()
    study_md = (folder / "report.md").read_text()
    capsys.readouterr()
    assert main(["results", str(folder / "sweep")]) == 0
    printed = [re.split(r" {2,}", line.strip()) for line in capsys.readouterr().out.splitlines()]

    # the view's tables hold the store's data
    spec, study, _ = load_sweep_study(folder / "sweep")
    df = trials_frame(study, spec)
    done = ranked(df, spec)
    assert len(done) == 12
    view = present_sweep(study, spec)
    tables = {t.key: t for t in view.tables}
    assert set(tables) == {"top", "bottom", "correlation", "front", "importance"}
    top = tables["top"]
    assert [int(r[0]) for r in top.rows] == list(done["trial"].head(5))
    acc = [float(r[top.columns.index("val_acc")]) for r in top.rows]
    assert acc == pytest.approx(list(done["val_acc"].head(5)), abs=5e-5)
    assert {int(r[0]) for r in tables["front"].rows} == set(pareto_front(df, study, spec)["trial"])
    assert {r[0] for r in tables["importance"].rows} == {"model.hidden.0", "optim.lr"}

    # ... and every place shows exactly those tables
    expected = [[t.columns, *t.rows] for t in view.tables]
    assert _md_tables(run_md) == expected
    assert _md_tables(study_md) == expected
    for table in expected:
        assert all(row in printed for row in table), table[0]

    # every sweep figure of both reports has a caption
    for md in (run_md, study_md):
        figures = _md_figures(md)
        assert FIGURES <= set(figures)
        assert all(cap.strip() for cap in figures.values()), figures
    for page in (tmp_path / "run-report" / "report.html", folder / "report.html"):
        html = page.read_text()
        captions = re.findall(r"<figcaption>(.*?)</figcaption>", html)
        assert len(captions) == html.count("<img") and all(c.strip() for c in captions)
