"""LVLM stand-ins: real HTTP servers speaking the OpenAI chat completions API whose answers come from a
real receiver looking at the image it was sent. "What is in this image?" gets the top-1 label of an
ImageNet classifier; a request to read text gets Tesseract's reading. A third kind always gives the
same answer: a receiver that nothing in the image can change (the shadow bench's lower bound).

They stand in for a user's LVLM in the gateway's shadow tests and benches, and work with
`vlmpress_eval.lvlm` unchanged. The classifier is a command-line choice, so a bench can run against a
receiver the offline policy table was not built on:

    python -m vlmpress_eval.standin --receiver mbv1                      # a harness receiver by name
    python -m vlmpress_eval.standin --classifier net.tflite --short-side 256 --crop 224
    python -m vlmpress_eval.standin --classifier net.onnx --short-side 256 --crop 224 \\
        --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225                  # ONNX: NCHW float input
    python -m vlmpress_eval.standin --constant "a photo"

The first line on stdout is `listening on http://HOST:PORT/v1` (use `--port 0` for a free port).
The receivers are deterministic, so answers are cached by image bytes and kind of question.
Usage is billed like OpenAI's published rule for images (85 + 170 per 512-px tile of the view) plus
one token per word, so the gateway's token accounting has numbers to read.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import math
import re
import sys
import threading
import time
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from .datasets import SHARED

# A request whose words ask for the text in the image (the gateway's task classifier says "text" for these too).
READ_TEXT = re.compile(r"\b(read|transcribe|ocr|what does (it|the \w+) say|text|written|writing)\b", re.IGNORECASE)


class Answerer(Protocol):
    def answer(self, image: np.ndarray) -> str: ...


def _labels(path: Path) -> list[str]:
    """ImageNet class names, background first (1001 lines); each class by its first name."""
    return [line.split(",")[0].strip() for line in path.read_text().splitlines()]


class TfliteClassifier:
    """A TFLite ImageNet classifier, replayed in float PyTorch (the harness's rebuild)."""

    def __init__(self, file: Path, short_side: int, crop: int, labels: list[str]) -> None:
        import torch
        from vlmpress_train.teachers.tflite_graph import TFLiteClassifier

        self.torch = torch
        self.net = TFLiteClassifier(file, tap_strides=()).eval()
        self.short_side, self.crop, self.labels = short_side, crop, labels
        self.lock = threading.Lock()

    def answer(self, image: np.ndarray) -> str:
        from vlmpress_train.images import resize_center_crop

        x = np.asarray(resize_center_crop(Image.fromarray(image), self.short_side, self.crop), dtype=np.float32) / 255.0
        with self.lock, self.torch.no_grad():
            logits = self.net(self.torch.from_numpy(x).permute(2, 0, 1)[None].contiguous()).reshape(-1).numpy()
        return label_of(logits, self.labels)


class OnnxClassifier:
    """An ONNX ImageNet classifier: float NCHW input, (pixel / 255 - mean) / std per channel."""

    def __init__(self, file: Path, short_side: int, crop: int, mean: list[float], std: list[float], labels: list[str]) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.short_side, self.crop, self.labels = short_side, crop, labels
        self.mean = np.asarray(mean, dtype=np.float32).reshape(3, 1, 1)
        self.std = np.asarray(std, dtype=np.float32).reshape(3, 1, 1)

    def answer(self, image: np.ndarray) -> str:
        from vlmpress_train.images import resize_center_crop

        x = np.asarray(resize_center_crop(Image.fromarray(image), self.short_side, self.crop), dtype=np.float32) / 255.0
        x = (x.transpose(2, 0, 1) - self.mean) / self.std
        logits = self.session.run(None, {self.input: x[None].astype(np.float32)})[0].reshape(-1)
        return label_of(logits, self.labels)


def label_of(logits: np.ndarray, labels: list[str]) -> str:
    """The top-1 class name; a 1000-way head has no background output, a 1001-way one has it at 0.
    Ties go to the lowest index (quantized heads saturate)."""
    offset = 0 if len(logits) == len(labels) else 1
    return labels[int(np.argmax(logits)) + offset]


class Constant:
    def __init__(self, text: str) -> None:
        self.text = text

    def answer(self, image: np.ndarray) -> str:
        return self.text


class TextReader:
    """Tesseract's reading of the whole image, lines joined by spaces."""

    def __init__(self) -> None:
        from .ocr import Tesseract

        self.ocr = Tesseract()

    def answer(self, image: np.ndarray) -> str:
        # psm 3: page segmentation as for a page of text
        return " ".join(self.ocr.read(image, psm=3).split())


def openai_image_tokens(width: int, height: int, detail: str | None) -> int:
    """OpenAI's rule (the gateway's src/policy/tokens.ts): fit in 2048, short side to 768, 170 per 512 tile + 85."""
    if detail == "low":
        return 85
    s = min(1.0, 2048 / max(width, height))
    w, h = max(1, math.floor(width * s)), max(1, math.floor(height * s))
    s = min(1.0, 768 / min(w, h))
    w, h = max(1, math.floor(w * s)), max(1, math.floor(h * s))
    return 85 + 170 * math.ceil(w / 512) * math.ceil(h / 512)


def decode_data_url(url: str) -> np.ndarray:
    if not url.startswith("data:") or "," not in url:
        raise ValueError("the stand-in reads data URLs only")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


class StandIn:
    # The receivers are deterministic: an image sent again (every turn of a chat, every request of a
    # bench at a settled quality) gets its answer from memory, not another classifier or OCR run.
    CACHE_SIZE = 4096

    def __init__(self, looker: Answerer, reader: Answerer | None, model: str) -> None:
        self.looker, self.reader, self.model = looker, reader, model
        self.requests = 0
        self.cache: OrderedDict[tuple[str, bool], str] = OrderedDict()
        self.lock = threading.Lock()

    def _answer(self, url: str, asks_text: bool) -> tuple[str, np.ndarray]:
        key = (hashlib.sha256(url.encode()).hexdigest(), asks_text)
        image = decode_data_url(url)
        with self.lock:
            cached = self.cache.get(key)
            if cached is not None:
                self.cache.move_to_end(key)
                return cached, image
        answer = (self.reader if asks_text else self.looker).answer(image)  # type: ignore[union-attr]
        with self.lock:
            self.cache[key] = answer
            while len(self.cache) > self.CACHE_SIZE:
                self.cache.popitem(last=False)
        return answer, image

    def complete(self, body: dict) -> dict:
        """One chat completion: the last user message's words and its first image decide the answer."""
        messages = body.get("messages") or []
        user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
        if user is None:
            raise ValueError("no user message")
        parts = user["content"] if isinstance(user.get("content"), list) else [{"type": "text", "text": str(user.get("content", ""))}]
        words = " ".join(p.get("text", "") for p in parts if p.get("type") == "text")
        image_part = next((p for p in parts if p.get("type") == "image_url"), None)
        if image_part is None:
            answer, image_tokens = "I see no image.", 0
        else:
            ref = image_part["image_url"]
            url, detail = (ref, None) if isinstance(ref, str) else (ref["url"], ref.get("detail"))
            asks_text = self.reader is not None and READ_TEXT.search(words) is not None
            answer, image = self._answer(url, asks_text)
            image_tokens = openai_image_tokens(image.shape[1], image.shape[0], detail)
        self.requests += 1
        prompt_tokens = image_tokens + len(words.split())
        completion_tokens = max(1, len(answer.split()))
        return {
            "id": f"chatcmpl-standin-{self.requests}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", self.model),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop", "logprobs": None}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def make_handler(standin: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        owner = standin

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, message: str) -> None:
            self._send(status, json.dumps({"error": {"message": message, "type": "invalid_request_error", "code": None}}).encode())

        def do_GET(self) -> None:  # noqa: N802
            if self.path.rstrip("/") == "/v1/models":
                self._send(
                    200,
                    json.dumps(
                        {"object": "list", "data": [{"id": standin.model, "object": "model", "created": 0, "owned_by": "standin"}]}
                    ).encode(),
                )
            else:
                self._error(404, "not found")

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            if self.path.split("?")[0] != "/v1/chat/completions":
                return self._error(404, "not found")
            try:
                body = json.loads(raw)
                completion = standin.complete(body)
            except (ValueError, KeyError, TypeError, OSError) as e:
                return self._error(400, f"{type(e).__name__}: {e}")
            if not body.get("stream"):
                return self._send(200, json.dumps(completion).encode())
            # A stream: the answer in one content chunk, then the finish and [DONE], as OpenAI sends them.
            chunk = {k: completion[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
            events = [
                chunk
                | {
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": completion["choices"][0]["message"]["content"]},
                            "finish_reason": None,
                        }
                    ]
                },
                chunk | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            ]
            text = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
            self._send(200, text.encode(), "text/event-stream")

    return Handler


def build(args: argparse.Namespace) -> StandIn:
    models = Path(args.models_dir)
    labels = _labels(Path(args.labels) if args.labels else models / "imagenet_labels.txt")
    looker: Answerer
    if args.constant is not None:
        looker = Constant(args.constant)
    elif args.receiver:
        from .receivers import RECEIVERS

        spec = RECEIVERS.get(args.receiver)
        if spec is None or spec.kind != "classifier":
            raise SystemExit(f"--receiver must name a classifier: {sorted(n for n, s in RECEIVERS.items() if s.kind == 'classifier')}")
        looker = TfliteClassifier(models / spec.file, spec.short_side, spec.crop, labels)
    elif args.classifier:
        file = Path(args.classifier)
        if file.suffix == ".tflite":
            looker = TfliteClassifier(file, args.short_side, args.crop, labels)
        elif file.suffix == ".onnx":
            mean = [float(v) for v in args.mean.split(",")]
            std = [float(v) for v in args.std.split(",")]
            looker = OnnxClassifier(file, args.short_side, args.crop, mean, std, labels)
        else:
            raise SystemExit("--classifier takes a .tflite or an .onnx file")
    else:
        raise SystemExit("choose a receiver: --receiver NAME, --classifier FILE or --constant TEXT")
    reader = None if args.constant is not None or args.no_ocr else TextReader()
    return StandIn(looker, reader, args.model_name)


def serve(standin: StandIn, host: str, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), make_handler(standin))
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--receiver", help="a classifier of the harness by name (mbv1, mbv2)")
    p.add_argument("--classifier", help="an ImageNet classifier file: .tflite, or .onnx (float NCHW input)")
    p.add_argument("--short-side", type=int, default=256, help="resize the shorter side to this, then ...")
    p.add_argument("--crop", type=int, default=224, help="... take the centred square of this side")
    p.add_argument("--mean", default="0.485,0.456,0.406", help="ONNX: per-channel mean of pixel / 255")
    p.add_argument("--std", default="0.229,0.224,0.225", help="ONNX: per-channel std of pixel / 255")
    p.add_argument("--labels", help="class names, one per line, background first (default: imagenet_labels.txt of --models-dir)")
    p.add_argument("--constant", help="always answer this, whatever the image")
    p.add_argument("--no-ocr", action="store_true", help="answer requests to read text with the classifier too")
    p.add_argument("--models-dir", default=str(SHARED / "models"))
    p.add_argument("--model-name", default="standin")
    args = p.parse_args(argv)
    server = serve(build(args), args.host, args.port)
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
