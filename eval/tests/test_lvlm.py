"""LVLM mode against a fake OpenAI-compatible server on loopback (a real HTTP server). The fake
'looks' at the image it receives: it answers with the colour that dominates it, so strong
compression of a two-colour image can really change its answer."""

import base64
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image
from vlmpress_eval.lvlm import contains_answer, load_questions, normalise
from vlmpress_eval.run import main

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


class FakeLvlm(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        FakeLvlm.received.append({"path": self.path, "auth": self.headers.get("authorization"), "body": body})
        part = next(p for p in body["messages"][0]["content"] if p["type"] == "image_url")
        png = base64.b64decode(part["image_url"]["url"].split(",", 1)[1])
        mean = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64).reshape(-1, 3).mean(0)
        name = min(COLOURS, key=lambda c: float(np.sum((np.array(COLOURS[c]) - mean) ** 2)))
        answer = {
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": f"The image is mostly {name.capitalize()}."},
                    "finish_reason": "stop",
                }
            ]
        }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), FakeLvlm)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    FakeLvlm.received = []
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


def test_answers_are_compared_after_normalising():
    assert normalise("The image is mostly Red.") == "image is mostly red"
    assert contains_answer("The image is mostly Red.", "red")
    assert not contains_answer("The image is mostly reddish.", "red")


def test_lvlm_mode_scores_agreement_and_accuracy(server, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    lines = []
    for i, (name, colour) in enumerate(COLOURS.items()):
        img = np.clip(np.array(colour) + rng.normal(0, 25, (96, 128, 3)), 0, 255).astype(np.uint8)
        img[:, : 40 + 10 * i] = (128, 128, 128)  # a grey band the codecs may blend in
        Image.fromarray(img).save(tmp_path / f"img{i}.png")
        lines.append(json.dumps({"image": f"img{i}.png", "question": "Which colour dominates? One word.", "answer": name}))
    qa = tmp_path / "qa.jsonl"
    qa.write_text("\n".join(lines) + "\n")
    assert len(load_questions(qa)) == 3
    monkeypatch.setenv("FAKE_LVLM_KEY", "sk-test")

    out = tmp_path / "res"
    code = main(
        [
            "--questions",
            str(qa),
            "--lvlm-url",
            server,
            "--lvlm-model",
            "fake-vl",
            "--lvlm-key-env",
            "FAKE_LVLM_KEY",
            "--codecs",
            "jpeg,vlmpress",
            "--receivers",
            "",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    # original + 16 reconstructions per question, all with the model name and the key
    assert len(FakeLvlm.received) == 3 * 17
    assert {r["path"] for r in FakeLvlm.received} == {"/v1/chat/completions"}
    assert {r["auth"] for r in FakeLvlm.received} == {"Bearer sk-test"}
    assert {r["body"]["model"] for r in FakeLvlm.received} == {"fake-vl"}
    result = json.loads((out / "points.json").read_text())
    assert result["originals"]["lvlm_acc"] == 1.0
    for codec in ("jpeg", "vlmpress"):
        top = result["points"][codec][-1]["metrics"]
        assert top["lvlm_agree"] == 1.0 and top["lvlm_acc"] == 1.0, top
    assert (out / "plots" / "lvlm_agree.svg").exists()


def test_lvlm_mode_needs_both_options(tmp_path):
    assert main(["--lvlm-url", "http://127.0.0.1:9/v1", "--out", str(tmp_path)]) == 2
