"""Check the PyTorch rebuild of a TFLite classifier against the real TFLite runtime.

    python -m vlmpress_train.teachers.verify_tflite --images ../shared/data/imagenet-dev

Prints top-1 agreement (rebuild vs TFLite) and true-label top-1 of both, labels from the file names.
Needs `ai-edge-litert` (a test dependency).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..images import imagenet_label, list_images, load_rgb, resize_center_crop, to_tensor
from .tflite_graph import TFLiteClassifier


def main() -> None:
    from ai_edge_litert.interpreter import Interpreter

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="../shared/models/tf2_mobilenet_v2_1.0_224_ptq.tflite")
    ap.add_argument("--synsets", default="../shared/models/imagenet_synsets.txt")
    ap.add_argument("--images", default="../shared/data/imagenet-dev")
    ap.add_argument("--resize", type=int, default=256, help="shorter side before the centre crop")
    args = ap.parse_args()
    torch.set_num_threads(1)
    net = TFLiteClassifier(args.model).eval()
    interp = Interpreter(model_path=args.model)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    synsets = Path(args.synsets).read_text().split()
    files = list_images(args.images)
    agree = true_rebuild = true_tflite = 0
    for f in tqdm(files, desc="verify"):
        im = resize_center_crop(load_rgb(f), args.resize, net.input_size)
        interp.set_tensor(inp["index"], np.asarray(im, dtype=np.uint8)[None])
        interp.invoke()
        p_tflite = int(np.argmax(interp.get_tensor(out["index"])[0].astype(np.int64)))
        with torch.no_grad():
            p_rebuild = int(net(to_tensor(im)).argmax(1))
        label = imagenet_label(f, synsets)
        agree += p_rebuild == p_tflite
        true_rebuild += p_rebuild == label
        true_tflite += p_tflite == label
    n = len(files)
    print(
        f"images {n}: agreement {agree}/{n} = {100 * agree / n:.1f}%; true-label top-1 rebuild "
        f"{100 * true_rebuild / n:.1f}%, TFLite {100 * true_tflite / n:.1f}%"
    )


if __name__ == "__main__":
    main()
