"""A real LVLM as the receiver: any OpenAI-compatible chat completions endpoint (OpenAI, vLLM,
llama.cpp, Ollama, ...). Each question is asked about the original image and about every
reconstruction; the score is whether the answer stays the same (agreement) and whether it contains
the reference answer (accuracy).

Questions come from a JSONL file, one object per line:
    {"image": "photos/cat.jpg", "question": "What animal is this? Answer with one word.", "answer": "cat"}
(`image` relative to the JSONL file's folder). Short, closed questions make agreement meaningful.
"""

from __future__ import annotations

import base64
import io
import json
import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Question:
    image: Path
    question: str
    answer: str | None


def load_questions(path: Path) -> list[Question]:
    out = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            out.append(Question(path.parent / obj["image"], str(obj["question"]), obj.get("answer")))
        except (ValueError, KeyError) as e:
            raise ValueError(f'{path}:{n}: expected {{"image", "question", "answer"?}} ({e})') from e
    return out


def normalise(text: str) -> str:
    """Lower case, punctuation and articles removed, spaces collapsed: 'A Cat.' == 'cat'."""
    t = re.sub(r"[^\w\s]", " ", text.lower())
    t = re.sub(r"\b(a|an|the)\b", " ", t)
    return " ".join(t.split())


def contains_answer(answer: str, reference: str) -> bool:
    a, r = normalise(answer), normalise(reference)
    return bool(r) and (a == r or re.search(rf"\b{re.escape(r)}\b", a) is not None)


class LvlmReceiver:
    def __init__(
        self, url: str, model: str, api_key: str | None = None, max_tokens: int = 32, timeout: float = 120.0, concurrency: int = 4
    ) -> None:
        self.url = url.rstrip("/") + "/chat/completions"
        self.model, self.api_key, self.max_tokens, self.timeout, self.concurrency = model, api_key, max_tokens, timeout, concurrency

    def ask(self, image: np.ndarray, question: str) -> str:
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG")
        body = {
            "model": self.model,
            "temperature": 0,
            "max_tokens": self.max_tokens,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": question},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()}},
                    ],
                }
            ],
        }
        headers = {"content-type": "application/json"}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as res:
                answer = json.loads(res.read())
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"LVLM answered {e.code}: {e.read()[:300]!r}") from e
        return str(answer["choices"][0]["message"]["content"] or "")

    def ask_many(self, images: list[np.ndarray], question: str) -> list[str]:
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(lambda im: self.ask(im, question), images))
