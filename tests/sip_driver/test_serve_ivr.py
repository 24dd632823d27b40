"""Issue 8's "done" under `legato serve --driver sip`: a number whose menu is a WAV from the
prompts folder then an espeak-ng question; a SIPp caller listens, presses 1 (RFC 2833) and is
connected to the agent behind the trunk (ANSWER, picked_by the agent); a caller who hangs
up in the menu gives IVR-ANSWER. The records are read back through the REST API."""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import wave
from pathlib import Path
from typing import Any

import pytest

from .harness import SCENARIOS, free_port
from .test_serve import SRC, http, legato

pytestmark = [
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp not installed"),
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed"),
]
MEDIA = Path(__file__).parents[1] / "media" / "scenarios"
NUMBER, AGENT = "+918047001000", "+919811000101"
MENU = {
    "flow": [
        {"answer": {}},
        {"play": {"prompt": "welcome.wav"}},
        {"gather": {"prompt": {"text": "Press one for sales."}, "digits": 1, "timeout": 5,
                    "branches": {"1": [{"dial": {"to": [AGENT], "ring_timeout": 10}}]}}},
    ]
}


def write_tone(path: Path, seconds: float = 0.6, rate: int = 16000) -> None:
    """A 16 kHz 16-bit WAV (converted to G.711 by Legato's prompt cache)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
            for i in range(int(seconds * rate))))


def caller(tmp: Path, scenario: str, sip: int, **sets: int) -> subprocess.Popen[bytes]:
    text = (MEDIA / scenario).read_text(encoding="utf-8").replace("{{digit}}", "1")
    path = tmp / scenario
    path.write_text(text, encoding="utf-8")
    args = ["sipp", "-sf", str(path), "-i", "127.0.0.1", "-p", str(free_port()),
            "-mp", str(free_port() // 2 * 2 % 20000 + 30000), "-m", "1", "-nostdin",
            "-timeout", "40", "-timeout_error", "-trace_err", "-s", NUMBER.lstrip("+")]
    for name, value in sets.items():
        args += ["-set", name, str(value)]
    return subprocess.Popen([*args, f"127.0.0.1:{sip}"], cwd=tmp, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def finished(proc: subprocess.Popen[bytes], tmp: Path) -> tuple[int, str]:
    out = proc.communicate(timeout=60)[0].decode(errors="replace")
    errors = "".join(p.read_text(errors="replace")[-2000:] for p in tmp.glob("*_errors.log"))
    return proc.returncode, out[-1500:] + errors


def test_menu_press_1_reaches_the_agent_and_leaving_is_ivr_answer(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]))
    db = f"sqlite:///{tmp_path / 'legato.db'}"
    key = json.loads(legato("accounts", "create", "Acme", "--db", db, "--json", env=env))[
        "api_key"]
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    write_tone(prompts / "welcome.wav")
    trunk, sip, port = free_port(), free_port(), free_port()
    agent = subprocess.Popen(
        ["sipp", "-sf", str(SCENARIOS / "uas_ring_answer_bye.xml"), "-i", "127.0.0.1",
         "-p", str(trunk), "-m", "1", "-nostdin", "-timeout", "40", "-timeout_error",
         "-set", "ring_ms", "800", "-set", "talk_ms", "1500"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    server = subprocess.Popen(
        [sys.executable, "-c", "from legato.cli.main import app; app()", "serve",
         "--driver", "sip", "--sip-listen", f"127.0.0.1:{sip}", "--trunk",
         f"sip:127.0.0.1:{trunk}", "--db", db, "--port", str(port), "--log-level", "warning",
         "--prompts", str(prompts), "--rtp-ports", "52000-52999"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{base}/openapi.json", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        http("POST", f"{base}/v1/numbers", key, {"number": NUMBER, "config": MENU})
        pressed = finished(caller(tmp_path, "ivr_press.xml", sip, listen_ms=2500), tmp_path)
        left = finished(caller(tmp_path, "ivr_leave.xml", sip, listen_ms=1500), tmp_path)
        calls: list[dict[str, Any]] = []
        for _ in range(100):
            calls = http("GET", f"{base}/v1/calls", key)["data"]
            if len(calls) == 2 and all(c["state"] == "completed" for c in calls):
                break
            time.sleep(0.1)
        records = [http("GET", f"{base}/v1/calls/{c['id']}", key) for c in calls]
    finally:
        server.terminate()
        server_out = server.communicate(timeout=20)[0].decode(errors="replace")
        agent_rc, agent_out = finished(agent, tmp_path)
    assert pressed[0] == 0, pressed[1]
    assert left[0] == 0, left[1]
    assert agent_rc == 0, agent_out
    by_status = {r["status"]: r for r in records}
    assert set(by_status) == {"ANSWER", "IVR-ANSWER"}, (records, server_out[-3000:])
    answered = by_status["ANSWER"]
    assert answered["picked_by"] == AGENT and answered["connected_to"] == AGENT
    assert [(leg["leg"], leg["outcome"]) for leg in answered["legs"]] == [
        (1, "ANSWERED"), (2, "ANSWERED")]
    assert by_status["IVR-ANSWER"]["disconnected_by"] == "leg1"
    assert any(p.name.startswith("tts-") for p in (tmp_path / ".legato" / "prompt-cache").iterdir())


def test_a_missing_prompt_file_is_refused_at_start_and_by_the_api(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]))
    db = f"sqlite:///{tmp_path / 'legato.db'}"
    key = json.loads(legato("accounts", "create", "Acme", "--db", db, "--json", env=env))[
        "api_key"]
    config = tmp_path / "menu.json"
    config.write_text(json.dumps(MENU), encoding="utf-8")
    legato("numbers", "add", NUMBER, "--config", str(config), "--db", db, env=env)
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    serve = [sys.executable, "-c", "from legato.cli.main import app; app()", "serve",
             "--driver", "sip", "--sip-listen", f"127.0.0.1:{free_port()}", "--db", db,
             "--port", str(free_port()), "--log-level", "warning", "--prompts", str(prompts),
             "--rtp-ports", "53000-53099"]
    refused = subprocess.run(serve, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert (f"number {NUMBER}: flow[1].play: welcome.wav not found in "
            f"{prompts.resolve()}") in refused.stdout + refused.stderr
    write_tone(prompts / "welcome.wav")  # now it starts; the API refuses another missing file
    port = int(serve[serve.index("--port") + 1])
    server = subprocess.Popen(serve, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        bad = {"flow": [{"answer": {}}, {"play": {"prompt": "closed.wav"}}]}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/numbers/{NUMBER}", method="PUT",
            data=json.dumps({"config": bad}).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(request, timeout=10)
        problem = json.loads(error.value.read())
        assert error.value.code == 422
        assert problem["errors"][0]["field"] == "config.flow[1].play"
        assert problem["errors"][0]["rule"] == "prompt_file"
        assert "closed.wav" in problem["errors"][0]["message"]
        stored = http("GET", f"http://127.0.0.1:{port}/v1/numbers/{NUMBER}", key)
        assert stored["config"] == MENU  # nothing already stored is lost
    finally:
        server.terminate()
        server.wait(timeout=20)
