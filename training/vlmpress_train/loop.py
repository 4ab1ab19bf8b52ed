"""The training loop both trainers share (codec and pre-editor): progress bar, one JSON line per step
in <run_dir>/log.jsonl, validation every `validate_every` steps, atomic checkpoints every
`checkpoint_every` steps and on SIGTERM, Ctrl-C or a spent time budget."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm


def save_atomically(state: dict[str, Any], ckpt: Path) -> None:
    tmp = ckpt.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(ckpt)  # atomic: a crash mid-save never corrupts the last good checkpoint


def run_steps(
    *,
    run: Path,
    start: int,
    steps: int,
    desc: str,
    one_step: Callable[[int], dict[str, float]],
    validate: Callable[[], dict[str, Any]],
    save: Callable[[int, float], None],
    validate_every: int,
    checkpoint_every: int,
    max_minutes: float,
    postfix: dict[str, str],
) -> None:
    """Run `one_step(step)` (it returns the loss parts to log) from `start` to `steps`. `save(step,
    seconds)` gets the steps done and the seconds this call has run; `postfix` maps a bar label to a part."""
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__("now", True))
    t_start = time.time()
    step = start
    bar = tqdm(total=steps, initial=step, desc=desc, dynamic_ncols=True)
    log = (run / "log.jsonl").open("a")
    try:
        while step < steps and not stop["now"]:
            parts = one_step(step)
            step += 1
            bar.update(1)
            bar.set_postfix({label: f"{parts[key]:.3f}" for label, key in postfix.items()})
            record: dict[str, Any] = {"step": step, **{k: round(v, 5) for k, v in parts.items()}}
            if step % validate_every == 0 or step == steps:
                record["val"] = validate()
                tqdm.write(json.dumps(record["val"]))
            log.write(json.dumps(record) + "\n")
            log.flush()
            if step % checkpoint_every == 0:
                save(step, time.time() - t_start)
            if max_minutes and time.time() - t_start > max_minutes * 60:
                tqdm.write("time budget reached")
                break
    except KeyboardInterrupt:
        tqdm.write("interrupted")
    finally:
        save(step, time.time() - t_start)
        bar.close()
        log.close()
