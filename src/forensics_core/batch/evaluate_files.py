"""The files an evaluation writes: report.json, report.md (plots embedded, misclassified files listed), roc.svg, pr.svg.

Why SVG: the plots are a few lines, and SVG needs no plotting library (evaluate works
after a plain ``pip install``), stays sharp when printed, and a Markdown viewer shows it
through a relative image link.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .evaluate import EvaluationReport

_MD_ROWS = [("n", "videos/windows"), ("n_real", "real"), ("n_fake", "fake"), ("acc", "accuracy"),
            ("balanced_acc", "balanced accuracy"), ("ap", "average precision (from scores)"),
            ("roc_auc", "ROC AUC"), ("fpr", "FPR: reals called fake"), ("fnr", "FNR: fakes missed"),
            ("tp", "TP"), ("fp", "FP"), ("tn", "TN"), ("fn", "FN"), ("eer", "EER"),
            ("eer_threshold", "EER threshold"), ("fpr_at_eer_threshold", "FPR at EER threshold"),
            ("fnr_at_eer_threshold", "FNR at EER threshold")]
_MD_LIST_LIMIT = 50


def _fmt(v: Any) -> str:
    return "n/a" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)


def _md_path(path: str) -> str:
    """A path inside Markdown inline code; backticks in a file name must not end the span."""
    return "`` " + path.replace("\n", " ") + " ``" if "`" in path else f"`{path}`"


def misclassified(r: EvaluationReport) -> list[Any]:
    """Scored videos on the wrong side of the threshold, the most confidently wrong first."""
    wrong = [v for v in r.videos if v.predicted != v.label]
    return sorted(wrong, key=lambda v: (-abs(v.score - r.threshold), v.media_path))


def markdown(r: EvaluationReport, plots: dict[str, str] | None = None) -> str:
    """The report as Markdown; ``plots`` maps "roc"/"pr" to image links relative to the report."""
    levels = [("video", r.video)] + ([("window", r.window)] if r.window else [])
    out = ["# Evaluation report", "",
           f"Threshold: {r.threshold} (a score >= threshold is called fake). "
           f"Rows: {r.n_rows}. Labels: {r.n_labels}. Coverage: {_fmt(r.coverage)}.", "",
           "| rows | " + " | ".join(r.counts.model_dump()) + " |",
           "|---" * (len(r.counts.model_dump()) + 1) + "|",
           "| count | " + " | ".join(str(v) for v in r.counts.model_dump().values()) + " |", "",
           "| metric | " + " | ".join(name for name, _ in levels) + " |",
           "|---" * (len(levels) + 1) + "|"]
    for key, title in _MD_ROWS:
        out.append(f"| {title} | " + " | ".join(_fmt(getattr(lv.summary, key)) for _, lv in levels) + " |")
    out.append("")
    if plots:
        out += ["## Curves", "", " ".join(f"![{title}]({plots[k]})" for k, title in
                                          (("roc", "ROC curve"), ("pr", "Precision-recall curve")) if k in plots), ""]
    if r.localisation is not None:
        loc = r.localisation
        out += ["## Localisation (AV-Deepfake1M definitions)", "",
                f"{loc.n_files} files, {loc.n_segments} ground-truth segments, {loc.n_proposals} proposals. "
                "`AP` is the official evaluator's (it leaves out the first recall step); "
                "`AP (textbook)` includes it (docs/evaluation.md).", "",
                "| IoU | " + " | ".join(loc.ap) + " |", "|---" * (len(loc.ap) + 1) + "|",
                "| AP | " + " | ".join(_fmt(v) for v in loc.ap.values()) + " |",
                "| AP (textbook) | " + " | ".join(_fmt(v) for v in loc.ap_textbook.values()) + " |", "",
                "| proposals | " + " | ".join(loc.ar) + " |", "|---" * (len(loc.ar) + 1) + "|",
                "| AR | " + " | ".join(_fmt(v) for v in loc.ar.values()) + " |", ""]
    notes = r.notes + [f"{name}: {n}" for name, lv in levels for n in lv.summary.notes]
    if r.localisation is not None:
        notes += [f"localisation: {n}" for n in r.localisation.notes]
    out += ["## Notes", ""] + [f"- {n}" for n in notes] + [""] if notes else []
    wrong = misclassified(r)
    lists = [(f"Misclassified at threshold {r.threshold}",
              [f"{_md_path(v.media_path)}: {'real' if v.label == 0 else 'fake'} video called "
               f"{'fake' if v.predicted else 'real'} (score {v.score:.4f})" for v in wrong]),
             ("Abstained", [f"{_md_path(e.media_path)}: {e.message}" for e in r.abstained]),
             ("Errored", [f"{_md_path(e.media_path)}: {e.code}: {e.message}" for e in r.errored]),
             ("Missing (labelled, no row)", [_md_path(p) for p in r.missing]),
             ("Missing from the localisation (ground truth, no row)",
              [_md_path(p) for p in (r.localisation.missing if r.localisation else [])]),
             ("Unlabeled", [_md_path(p) for p in r.unlabeled]),
             ("Invalid", [f"row {i.index} {_md_path(str(i.media_path))}: {i.reason}" for i in r.invalid]),
             ("Duplicates", [_md_path(p) for p in r.duplicates])]
    for title, items in lists:
        if items:
            out += [f"## {title} ({len(items)})", ""] + [f"- {x}" for x in items[:_MD_LIST_LIMIT]]
            if len(items) > _MD_LIST_LIMIT:
                out.append(f"- ... and {len(items) - _MD_LIST_LIMIT} more (see report.json)")
            out.append("")
    return "\n".join(out)


def plot_svg(r: EvaluationReport, kind: str) -> str:
    """The ROC (``kind="roc"``) or precision-recall curve of the video and window levels, as SVG."""
    from ..report.svg import Series, line_chart

    series = []
    for name, lv, dash in (("video", r.video, ""), ("window", r.window, "6 4")):
        if lv is None:
            continue
        c, sm = lv.curves, lv.summary
        if kind == "roc" and c.fpr is not None:
            marker = (sm.fpr, 1 - sm.fnr) if sm.fpr is not None and sm.fnr is not None else None
            series.append(Series(c.fpr, c.tpr, f"{name} (AUC {_fmt(sm.roc_auc)}, EER {_fmt(sm.eer)})", dash, marker=marker))
        elif kind == "pr" and c.recall is not None:
            series.append(Series(c.recall, c.precision, f"{name} (AP {_fmt(sm.ap)})", dash, step=True))
    if kind == "roc":
        return line_chart(series, title="ROC", xlabel="FPR (reals called fake)", ylabel="TPR (fakes caught)",
                          diagonal=True, legend="right")
    return line_chart(series, title="Precision-recall", xlabel="Recall (fakes caught)", ylabel="Precision")


def write_report(report: EvaluationReport, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``report.json``, ``report.md``, ``roc.svg`` and ``pr.svg`` into ``out_dir`` (created if needed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "md": out / "report.md", "roc": out / "roc.svg", "pr": out / "pr.svg"}
    paths["json"].write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    for kind in ("roc", "pr"):
        paths[kind].write_text(plot_svg(report, kind) + "\n", encoding="utf-8")
    paths["md"].write_text(markdown(report, {k: paths[k].name for k in ("roc", "pr")}), encoding="utf-8")
    return paths
