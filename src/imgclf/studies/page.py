"""docs/studies.md, generated: every measured study's results (its summary.json, committed as
docs/studies/results/NAME.json) as one page: the command, the machine, the scale, each arm's figure
beside the report's, each claim's verdict, and the assumptions. `imgclf studies --markdown DIR`
prints it; nothing on the page is typed by hand, so no row can say more than its verdicts."""
from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

from ..core.errors import ConfigError
from .spec import load_study, ready_studies

INTRO = """\
Each study of the course reports (`../shared/seeds/`, in French) is one command, `imgclf study NAME`,
listed by `imgclf studies`. This page is generated from the committed results of each measured study
(`docs/studies/results/NAME.json`, a copy of the study's `summary.json`) by
`imgclf studies --markdown docs/studies/results > docs/studies.md`; a test checks that it is.

How to read it. An arm's figure is its test accuracy read at the study's protocol epoch: the mean
over seeds with its 95% interval (Student t), and n, the number of seeds. A claim of the report is
judged on the paired differences between two arms (seed k against seed k): **holds** when the
interval lies on the report's side, **reversed** when it lies on the other, **undecided** when it
covers the line (for "equal within d", holds means the interval lies inside ±d). One seed decides
nothing. A study run below the report's scale says so in its scale, and its verdicts are at that
scale only. The assumptions are the values the report does not state, with the evidence for each.
"""


def _load(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not a study's summary.json ({e}); copy it from studies/NAME/summary.json") from None
    needed = ("name", "title", "command")
    if not isinstance(data, dict) or not isinstance(data.get("study"), dict) or not isinstance(data.get("arms"), dict) \
            or "protocol" not in data or any(k not in data["study"] for k in needed):
        raise ConfigError(f"{path}: not a study's summary.json (it needs arms, protocol and a study with "
                          f"{', '.join(needed)}); copy it from studies/NAME/summary.json of a study run with this version")
    return data


def _cell(text) -> str:
    """Text for a table cell: a '|' would end the cell."""
    return str(text).replace("|", "\\|")


def _pm(mean: float, half) -> str:
    return f"{mean:.2f}" + (f" ± {half:.2f}" if half is not None else "")


def _inside(arm: dict) -> str:
    """Whether the report's figure for an arm lies inside our 95% interval: yes, no (above or below), or -."""
    rep, half = arm.get("reported"), arm.get("ci95")
    if rep is None or half is None:
        return "-"
    gap = rep - arm["mean"]
    return "yes" if abs(gap) <= half else f"no: {abs(gap):.2f} points {'above' if gap > 0 else 'below'}"


def _counts(claims: list[dict]) -> str:
    if not claims:
        return "no claim"
    words = [c.get("verdict") or "not judged" for c in claims]
    return ", ".join(f"{words.count(w)} {w}" for w in ("holds", "reversed", "undecided", "not judged") if w in words)


def _scale(meta: dict) -> str:
    return meta.get("scale") or "the report's"


def _section(data: dict, figure: bool) -> list[str]:
    meta = data["study"]
    lines = [f"## {meta['name']}: {meta['title']}" + (f" (report {meta['report']})" if meta.get("report") else ""), ""]
    seconds = meta.get("train_seconds") or 0
    took = f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"
    for text in (meta.get("about"), meta.get("note")):
        lines += [text, ""] if text else []
    lines += [f"- command: `{meta['command']}`",
              f"- machine: {'; '.join(meta.get('machines') or ['not recorded'])}",
              f"- scale: {_scale(meta)}; protocol: test accuracy at the {data['protocol']} epoch; its runs "
              f"trained for {took}" + (" (the sweep not counted)" if data.get("sweep_best") else ""), ""]
    if data.get("claims"):
        lines += ["| the report's claim | section | report: difference | ours: difference (n) | verdict |",
                  "| --- | --- | --- | --- | --- |"]
        for c in data["claims"]:
            rep = "-" if c.get("reported") is None else f"{c['reported']:+.2f}"
            ours = "-" if c.get("difference") is None else f"{c['difference']:+.2f}" + (
                f" ± {c['ci95']:.2f}" if c.get("ci95") is not None else "") + f" ({c['n']})"
            lines.append(f"| {_cell(c['says'])} | {_cell(c.get('section') or '-')} | {rep} | {ours} | "
                         f"**{c.get('verdict') or 'not judged'}** |")
        lines.append("")
    if data["arms"]:
        lines += ["| arm | report: test acc, % | ours: test acc, % (n) | the report's figure in our interval | per seed |",
                  "| --- | --- | --- | --- | --- |"]
        settings = {r["run"]: r.get("settings") for r in data.get("runs", [])}
        for arm, a in data["arms"].items():
            label = _cell(f"{arm} ({settings[arm]})" if settings.get(arm) else arm)
            rep = "-" if a.get("reported") is None else f"{a['reported']:.2f}"
            lines.append(f"| {label} | {rep} | {_pm(a['mean'], a.get('ci95'))} ({a['n']}) | {_inside(a)} | "
                         f"{', '.join(f'{v:.2f}' for v in a['values'])} |")
        lines.append("")
    if data.get("sweep_best"):
        lines += ["The sweep's best configurations by its objective:", "",
                  "| configuration | objective |", "| --- | --- |"]
        lines += [f"| {_cell(s['settings'])} | {s['value']:.4f} |" for s in data["sweep_best"]]
        lines.append("")
    if meta.get("assumptions"):
        lines += ["Assumptions:", ""] + [f"- {a['choice']}: {a['evidence']}" for a in meta["assumptions"]] + [""]
    if figure:
        lines += [f"![{meta['name']}: learning curves](studies/{meta['name']}.png)", ""]
    return lines


def studies_markdown(results_dir: str | Path) -> str:
    """The page of every study whose summary is in `results_dir` (NAME.json), in name order, then the
    ready studies not measured yet."""
    folder = Path(results_dir)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such folder of study results (docs/studies/results holds the committed ones)")
    results = [_load(p) for p in sorted(folder.glob("*.json"))]
    lines = ["# The course's studies: their answers and ours", "", INTRO,
             "| study | scale | verdicts | command |", "| --- | --- | --- | --- |"]
    for d in results:
        m = d["study"]
        lines.append(f"| [{m['name']}](#{_anchor(m)}) | {_cell(_scale(m))} | {_counts(d.get('claims') or [])} | "
                     f"`{_cell(m['command'])}` |")
    lines.append("")
    for d in results:
        lines += _section(d, (folder.parent / f"{d['study']['name']}.png").is_file())
    measured = {d["study"]["name"] for d in results}
    missing = [load_study(f) for f in ready_studies() if f.stem not in measured]
    if missing:
        lines += ["## Not measured yet at the report's recipe", "",
                  "| study | report | command |", "| --- | --- | --- |"]
        lines += [f"| {_cell(s.name + ': ' + s.title)} | {s.report} | `imgclf study {s.name}` |" for s in missing]
        lines.append("")
    return "\n".join(lines)


def _anchor(meta: dict) -> str:
    """The heading's anchor as MkDocs writes it: lower case, punctuation dropped, spaces as '-'."""
    head = f"{meta['name']}: {meta['title']}" + (f" (report {meta['report']})" if meta.get("report") else "")
    ascii_head = unicodedata.normalize("NFKD", head).encode("ascii", "ignore").decode()  # as MkDocs' slugify
    return re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", ascii_head).strip().lower())
