"""The LVLM stand-ins: real HTTP servers on loopback answering OpenAI chat completions from a real
receiver. Checked through `vlmpress_eval.lvlm` (the harness's own LVLM client, unchanged) against the
harness's receivers, Tesseract, and an ONNX export of the same classifier."""

import argparse
import base64
import io
import json
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, SHARED
from PIL import Image
from vlmpress_eval.lvlm import LvlmReceiver
from vlmpress_eval.receivers import load_receivers
from vlmpress_eval.standin import _labels, build, label_of, openai_image_tokens, serve
from vlmpress_eval.textset import render

PHOTOS = sorted((SHARED / "data" / "imagenet-dev").glob("*.JPEG"))[::100][:6]


def start(**options):
    """A stand-in built from command-line options, serving on a free port in a thread."""
    defaults = dict(
        receiver=None,
        classifier=None,
        short_side=256,
        crop=224,
        mean="0.485,0.456,0.406",
        std="0.229,0.224,0.225",
        labels=None,
        constant=None,
        no_ocr=False,
        models_dir=str(SHARED / "models"),
        model_name="standin",
    )
    server = serve(build(argparse.Namespace(**(defaults | options))), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


def photos() -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB")) for p in PHOTOS]


def test_answers_with_the_classifiers_top_label_through_the_harness_client():
    server, url = start(receiver="mbv1")
    try:
        images = photos()
        answers = LvlmReceiver(url, "standin", concurrency=2).ask_many(images, "What is in this image? Answer with one word.")
        logits = load_receivers(["mbv1"], SHARED / "models")["mbv1"].outputs(images)
        labels = _labels(SHARED / "models" / "imagenet_labels.txt")
        assert answers == [label_of(row, labels) for row in logits]
        assert len(set(answers)) > 3, answers  # it looks at each image
    finally:
        server.shutdown()


def test_reads_text_with_tesseract_when_asked_to():
    page, lines = render("sign", 28, seed=3)
    server, url = start(receiver="mbv1")
    try:
        receiver = LvlmReceiver(url, "standin", max_tokens=200)
        read = receiver.ask(np.asarray(page.convert("RGB")), "Read the text in this image.")
        words = [w for line in lines for w in line.text.split() if len(w) > 3]
        assert sum(w.lower() in read.lower() for w in words) >= len(words) // 2, (read, words)
        assert receiver.ask(np.asarray(page.convert("RGB")), "What is this?") != read
    finally:
        server.shutdown()


def test_an_onnx_classifier_answers_as_its_tflite_original(tmp_path: Path):
    from vlmpress_train.teachers.tflite_graph import TFLiteClassifier

    net = TFLiteClassifier(SHARED / "models" / "mobilenet_v1_0.75_192_quant.tflite", tap_strides=()).eval()
    onnx_file = tmp_path / "mbv1.onnx"
    torch.onnx.export(net, (torch.rand(1, 3, 192, 192),), str(onnx_file), input_names=["x"], dynamo=False)
    # The rebuild takes pixels / 255 as they are: mean 0, std 1.
    tflite_server, tflite_url = start(classifier=str(SHARED / "models" / "mobilenet_v1_0.75_192_quant.tflite"), short_side=219, crop=192)
    onnx_server, onnx_url = start(classifier=str(onnx_file), short_side=219, crop=192, mean="0,0,0", std="1,1,1")
    try:
        images = photos()
        question = "What is in this image?"
        assert LvlmReceiver(onnx_url, "standin").ask_many(images, question) == LvlmReceiver(tflite_url, "standin").ask_many(
            images, question
        )
    finally:
        tflite_server.shutdown()
        onnx_server.shutdown()


def post(url: str, body: dict) -> tuple[str, bytes]:
    req = urllib.request.Request(url + "/chat/completions", data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as res:
        return res.headers["content-type"], res.read()


def test_a_constant_stand_in_never_changes_its_answer_and_bills_openai_tokens():
    server, url = start(constant="a photo", no_ocr=True)
    try:
        images = photos()[:2]
        assert LvlmReceiver(url, "standin").ask_many(images, "Read the text.") == ["a photo", "a photo"]
        buf = io.BytesIO()
        Image.fromarray(images[0]).save(buf, format="PNG")
        part = {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(), "detail": "high"},
        }
        message = {"role": "user", "content": [{"type": "text", "text": "What is it?"}, part]}
        kind, raw = post(url, {"model": "standin", "messages": [message]})
        usage = json.loads(raw)["usage"]
        h, w = images[0].shape[:2]
        assert usage["prompt_tokens"] == openai_image_tokens(w, h, "high") + 3
        assert usage["total_tokens"] == usage["prompt_tokens"] + 2
        kind, raw = post(url, {"model": "standin", "stream": True, "messages": [message]})
        assert kind == "text/event-stream"
        events = [json.loads(line[6:]) for line in raw.decode().split("\n\n") if line.startswith("data: {")]
        assert "".join(e["choices"][0]["delta"].get("content", "") for e in events) == "a photo"
        assert raw.decode().rstrip().endswith("data: [DONE]")
    finally:
        server.shutdown()


def test_the_command_line_prints_where_it_listens():
    proc = subprocess.Popen(
        [sys.executable, "-m", "vlmpress_eval.standin", "--port", "0", "--constant", "x", "--model-name", "m-1"],
        cwd=ROOT / "eval",
        env={"PYTHONPATH": f"{ROOT / 'eval'}:{ROOT / 'training'}", "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:") and line.endswith("/v1"), line
        with urllib.request.urlopen(line.removeprefix("listening on ") + "/models") as res:
            assert json.loads(res.read())["data"][0]["id"] == "m-1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize(("size", "detail", "tokens"), [((512, 512), None, 255), ((1024, 1024), None, 765), ((4000, 100), "low", 85)])
def test_image_tokens_follow_the_gateways_openai_rule(size, detail, tokens):
    assert openai_image_tokens(*size, detail) == tokens


def test_answers_an_image_sent_again_from_memory():
    server, url = start(receiver="mbv1", no_ocr=True)
    try:
        standin = server.RequestHandlerClass.owner  # type: ignore[attr-defined]
        image = photos()[0]
        receiver = LvlmReceiver(url, "standin")
        first = receiver.ask(image, "What is in this image?")
        assert receiver.ask(image, "What is this?") == first
        assert len(standin.cache) == 1 and standin.requests == 2
    finally:
        server.shutdown()
