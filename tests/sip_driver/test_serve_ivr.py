"""Issue 8's "done" under `legato serve --driver sip`: a number whose menu is a WAV from the
prompts folder then an espeak-ng question; a SIPp caller listens, presses 1 (RFC 2833) and is
connected to the agent behind the trunk (ANSWER, picked_by the agent); a caller who hangs
up in the menu gives IVR-ANSWER. The records are read back through the REST API. A prompt
file that is missing stops the server at start and is refused by the numbers API."""

from __future__ import annotations

import json
import math
import shutil
import struct
import urllib.error
import wave
from pathlib import Path

import pytest

from .harness import free_port
from .serving import Server, Store, finished, sipp_uac, sipp_uas

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


def caller(tmp: Path, scenario: str, server: Server, **sets: int) -> tuple[int, str]:
    text = (MEDIA / scenario).read_text(encoding="utf-8").replace("{{digit}}", "1")
    path = tmp / scenario
    path.write_text(text, encoding="utf-8")
    media_port = str(free_port() // 2 * 2 % 20000 + 30000)
    return sipp_uac(tmp, path, server.sip, NUMBER, "-mp", media_port, **sets)


def test_menu_press_1_reaches_the_agent_and_leaving_is_ivr_answer(tmp_path: Path) -> None:
    store = Store(tmp_path)
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    write_tone(prompts / "welcome.wav")
    trunk = free_port()
    agent = sipp_uas(tmp_path, trunk, "uas_ring_answer_bye.xml", 1, ring_ms=800, talk_ms=1500)
    server = Server(store, trunk, "--prompts", str(prompts), "--rtp-ports", "52000-52999")
    server.start()
    try:
        server.api("POST", "/v1/numbers", {"number": NUMBER, "config": MENU})
        pressed = caller(tmp_path, "ivr_press.xml", server, listen_ms=2500)
        left = caller(tmp_path, "ivr_leave.xml", server, listen_ms=1500)
        records = server.calls(2)
    finally:
        server_out = server.stop()
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
    store = Store(tmp_path)
    store.add_number(NUMBER, MENU)
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    server = Server(store, None, "--prompts", str(prompts), "--rtp-ports", "53000-53099")
    refused = server.run_to_exit()
    assert refused.returncode == 2
    assert (f"number {NUMBER}: flow[1].play: welcome.wav not found in "
            f"{prompts.resolve()}") in refused.stdout + refused.stderr
    write_tone(prompts / "welcome.wav")  # now it starts; the API refuses another missing file
    server.start()
    try:
        bad = {"flow": [{"answer": {}}, {"play": {"prompt": "closed.wav"}}]}
        with pytest.raises(urllib.error.HTTPError) as error:
            server.api("PUT", f"/v1/numbers/{NUMBER}", {"config": bad})
        problem = json.loads(error.value.read())
        assert error.value.code == 422
        assert problem["errors"][0]["field"] == "config.flow[1].play"
        assert problem["errors"][0]["rule"] == "prompt_file"
        assert "closed.wav" in problem["errors"][0]["message"]
        assert server.api("GET", f"/v1/numbers/{NUMBER}")["config"] == MENU  # nothing lost
    finally:
        server.stop()
