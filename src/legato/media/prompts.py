"""Prompts: WAV files and espeak-ng speech, converted once to G.711 and cached on disk.

The disk cache is keyed by a content hash (the WAV's bytes; or the text, the voice and the
espeak-ng version), so editing a prompt file or upgrading espeak-ng never serves stale
audio, and a restart serves every earlier prompt without converting again. Synthesis runs
as a subprocess and conversion in a thread: the media loop never blocks on either.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from legato.core.config import NumberConfig, Prompt
from legato.media.audio import Audio, AudioError, read_wav
from legato.media.g711 import SILENCE, Codec

DEFAULT_VOICE = "en-us"


@dataclass(frozen=True, slots=True)
class PromptFile:
    """A WAV file in the prompts folder (a name relative to it; no escaping it)."""

    name: str


@dataclass(frozen=True, slots=True)
class Speech:
    """Text spoken by espeak-ng with a voice (`espeak-ng --voices` lists them)."""

    text: str
    voice: str = DEFAULT_VOICE


PromptItem = PromptFile | Speech


def prompt_items(prompt: str | None, text: str | None, voice: str = DEFAULT_VOICE
                 ) -> list[PromptItem]:
    """A flow step's `prompt` and `text` as items (the file first when both are given)."""
    items: list[PromptItem] = []
    if prompt:
        items.append(PromptFile(prompt))
    if text:
        items.append(Speech(text, voice))
    return items


def find_prompt(prompts_dir: Path | None, name: str) -> Path:
    """The file a flow's `prompt: NAME` means: NAME itself or NAME.wav in the folder (no
    escaping it). Raises `AudioError` saying why there is none."""
    if prompts_dir is None:
        raise AudioError(f"prompt {name!r}: no prompts folder configured (--prompts DIR)")
    for candidate in (name, f"{name}.wav"):
        path = (prompts_dir / candidate).resolve()
        if not path.is_relative_to(prompts_dir):
            raise AudioError(f"prompt {name!r}: must name a file inside the prompts folder")
        if path.is_file():
            return path
    raise AudioError(f"prompt {name!r}: no such file (or {name}.wav) in {prompts_dir}")


def missing_prompts(config: NumberConfig, prompts_dir: str | Path | None) -> list[str]:
    """Each prompt file the number's flow names that is not there, with where it is used:
    `flow[1].gather.prompt: menu.wav not found in /x/prompts`. Empty: every file exists.

    Start-up (the standalone driver, `legato serve`) and the numbers API refuse such a
    configuration rather than let callers hit a silent prompt."""
    folder = Path(prompts_dir).resolve() if prompts_dir else None
    problems: list[str] = []
    for where, name in _prompt_files(config.flow or [], "flow"):
        if folder is None:
            problems.append(f"{where}: {name} needs a prompts folder (--prompts DIR)")
            continue
        try:
            find_prompt(folder, name)
        except AudioError:
            outside = not (folder / name).resolve().is_relative_to(folder)
            alias = "" if outside or name.endswith(".wav") else f" (or {name}.wav)"
            problems.append(f"{where}: {name} is outside {folder}" if outside
                            else f"{where}: {name}{alias} not found in {folder}")
    return problems


def _prompt_files(value: object, where: str) -> Iterator[tuple[str, str]]:
    """(key path, file name) of every `Prompt` with a `prompt` file inside a flow."""
    if isinstance(value, Prompt):
        if value.prompt:
            yield where, value.prompt
    elif isinstance(value, BaseModel):
        for key in type(value).model_fields:
            yield from _prompt_files(getattr(value, key), f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _prompt_files(item, f"{where}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _prompt_files(item, f"{where}.{key}")


class PromptLibrary:
    """Finds, converts, synthesises and caches prompts; one per driver."""

    def __init__(self, prompts_dir: str | Path | None, cache_dir: str | Path,
                 espeak: str = "espeak-ng", memory_items: int = 256) -> None:
        self.prompts_dir = Path(prompts_dir).resolve() if prompts_dir else None
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.espeak = espeak
        self._memory: OrderedDict[str, Audio] = OrderedDict()
        self._memory_items = memory_items
        self._pending: dict[str, asyncio.Future[Audio]] = {}
        self._espeak_version: str | None = None

    async def load(self, items: Sequence[PromptItem]) -> list[Audio]:
        """The audio of each item, converting or synthesising only what is not cached."""
        return list(await asyncio.gather(*(self.load_one(item) for item in items)))

    async def load_one(self, item: PromptItem) -> Audio:
        if isinstance(item, PromptFile):
            path = self.path(item.name)
            data = await asyncio.to_thread(path.read_bytes)
            key = "wav-" + hashlib.sha256(data).hexdigest()
            return await self._cached(key, lambda: asyncio.to_thread(_convert, data, item.name))
        if not item.text.strip():
            raise AudioError("text prompt is empty")
        version = await self._version()
        digest = hashlib.sha256(f"{version}\0{item.voice}\0{item.text}".encode()).hexdigest()
        return await self._cached("tts-" + digest, lambda: self._synthesise(item))

    def path(self, name: str) -> Path:
        """The file a flow's `prompt: NAME` means: NAME itself or NAME.wav in the folder.

        Raises `AudioError` when there is none (`missing_prompts` checks a whole flow)."""
        return find_prompt(self.prompts_dir, name)

    async def _cached(self, key: str, make: object) -> Audio:
        audio = self._memory.get(key)
        if audio is not None:
            self._memory.move_to_end(key)
            return audio
        pending = self._pending.get(key)
        if pending is not None:  # the same prompt requested by many calls at once
            return await asyncio.shield(pending)
        future: asyncio.Future[Audio] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            audio = await asyncio.to_thread(self._read_disk, key)
            if audio is None:
                audio = await make()  # type: ignore[operator]
                await asyncio.to_thread(self._write_disk, key, audio)
            future.set_result(audio)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it
            raise
        finally:
            del self._pending[key]
        self._memory[key] = audio
        if len(self._memory) > self._memory_items:
            self._memory.popitem(last=False)
        return audio

    def _read_disk(self, key: str) -> Audio | None:
        try:
            return Audio((self.cache_dir / f"{key}.ulaw").read_bytes(),
                         (self.cache_dir / f"{key}.alaw").read_bytes())
        except FileNotFoundError:
            return None

    def _write_disk(self, key: str, audio: Audio) -> None:
        for suffix, data in (("ulaw", audio.pcmu), ("alaw", audio.pcma)):
            # write-then-rename: a reader never sees half a file
            fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=f".{key}.")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, self.cache_dir / f"{key}.{suffix}")

    async def _version(self) -> str:
        if self._espeak_version is None:
            if shutil.which(self.espeak) is None:
                raise AudioError(
                    f"text prompts need {self.espeak} (Debian: apt-get install espeak-ng)")
            proc = await asyncio.create_subprocess_exec(
                self.espeak, "--version", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            out, _ = await proc.communicate()
            self._espeak_version = out.decode(errors="replace").strip()
        return self._espeak_version

    async def _synthesise(self, speech: Speech) -> Audio:
        proc = await asyncio.create_subprocess_exec(
            self.espeak, "-v", speech.voice, "--stdout", speech.text,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await proc.communicate()
        if proc.returncode != 0 or not out:
            detail = err.decode(errors="replace")[:200]
            raise AudioError(f"espeak-ng failed for voice {speech.voice!r}: {detail}")
        return await asyncio.to_thread(_convert, out, f"text {speech.text[:30]!r}")


def _convert(data: bytes, name: str) -> Audio:
    return Audio.from_pcm(read_wav(data, name))


class PromptPlayer:
    """Plays a list of audio to an endpoint as one source; `on_done(stopped)` runs once.

    Stopping (barge-in) takes effect before the next 20 ms frame.
    """

    def __init__(self, audio: Sequence[Audio]) -> None:
        self._parts = list(audio)
        self._part = 0
        self._offset = 0

    @property
    def seconds(self) -> float:
        return sum(a.seconds for a in self._parts)

    def next_frame(self, codec: Codec, size: int) -> bytes | None:
        while self._part < len(self._parts):
            data = self._parts[self._part].law(codec)
            if self._offset < len(data):
                frame = data[self._offset : self._offset + size]
                self._offset += size
                if len(frame) < size:  # pad the last frame of a part with silence
                    frame += bytes([SILENCE[codec]]) * (size - len(frame))
                return frame
            self._part += 1
            self._offset = 0
        return None
