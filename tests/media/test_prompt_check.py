"""A flow naming a prompt file that does not exist is refused at start, naming where it is
used (`missing_prompts`), by the standalone driver with exit 2."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from legato.core.config import NumberConfig
from legato.media.audio import write_wav
from legato.media.prompts import missing_prompts

NUMBER = "+918047001000"


def number(goodbye: str = "../outside.wav") -> dict[str, object]:
    """A menu naming prompt files at three depths (and one spoken text)."""
    return {"flow": [
        {"answer": {}},
        {"gather": {
            "prompt": {"prompt": "menu.wav"},
            "branches": {"1": [{"play": {"prompt": "sales"}}]},
            "default": [{"play": {"prompt": goodbye}}, {"play": {"text": "bye"}}],
        }},
    ]}


def prompts_with(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "prompts"
    folder.mkdir(exist_ok=True)
    for name in names:
        write_wav(str(folder / name), [np.zeros(800, dtype=np.int16)])
    return folder


def test_each_missing_file_is_named_with_its_key_path(tmp_path: Path) -> None:
    folder = prompts_with(tmp_path).resolve()
    (tmp_path / "outside.wav").write_bytes(b"")  # exists, but not inside the folder
    assert missing_prompts(NumberConfig.model_validate(number()), folder) == [
        f"flow[1].gather.prompt: menu.wav not found in {folder}",
        f"flow[1].gather.branches.1[0].play: sales (or sales.wav) not found in {folder}",
        f"flow[1].gather.default[0].play: ../outside.wav is outside {folder}",
    ]


def test_files_present_or_spoken_text_only_pass(tmp_path: Path) -> None:
    folder = prompts_with(tmp_path, "menu.wav", "sales.wav", "bye.wav")
    assert missing_prompts(NumberConfig.model_validate(number("bye")), folder) == []
    assert missing_prompts(NumberConfig.model_validate({"flow": [{"play": {"text": "hi"}}]}),
                           None) == []


def test_no_prompts_folder_names_the_option(tmp_path: Path) -> None:
    config = NumberConfig.model_validate({"flow": [{"play": {"prompt": "menu.wav"}}]})
    assert missing_prompts(config, None) == [
        "flow[0].play: menu.wav needs a prompts folder (--prompts DIR)"]


def standalone(tmp_path: Path, config: dict[str, object], *args: str) -> subprocess.Popen[str]:
    numbers = tmp_path / "numbers.yaml"
    numbers.write_text(yaml.safe_dump({NUMBER: config}))
    return subprocess.Popen(
        [sys.executable, "-m", "legato.drivers.sip", "--listen", "127.0.0.1:0",
         "--numbers", str(numbers), "--prompt-cache", str(tmp_path / "cache"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)


@pytest.mark.timeout(60)
def test_the_standalone_driver_refuses_a_missing_prompt_at_start(tmp_path: Path) -> None:
    folder = prompts_with(tmp_path, "sales.wav").resolve()
    proc = standalone(tmp_path, number(), "--prompts", str(folder))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, err
    assert f"{NUMBER}.flow[1].gather.prompt: menu.wav not found in {folder}" in err
    assert "outside" in err and "sales" not in err


@pytest.mark.timeout(60)
def test_the_standalone_driver_starts_when_every_prompt_is_there(tmp_path: Path) -> None:
    folder = prompts_with(tmp_path, "menu.wav", "sales.wav", "goodbye.wav")
    proc = standalone(tmp_path, number("goodbye"), "--prompts", str(folder))
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening on 127.0.0.1:" in line, proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert '"calls": 0' in out


@pytest.mark.timeout(60)
def test_recording_without_media_is_refused_at_start(tmp_path: Path) -> None:
    numbers = tmp_path / "numbers.yaml"
    numbers.write_text(yaml.safe_dump({NUMBER: {"record": True,
                                                "flow": [{"dial": {"to": ["+919811000101"]}}]}}))
    result = subprocess.run(
        [sys.executable, "-m", "legato.drivers.sip", "--listen", "127.0.0.1:0",
         "--numbers", str(numbers)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert f"{NUMBER}.record: recording needs media" in result.stderr
