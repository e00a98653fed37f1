"""``parse(text)`` in the shape of Rasa's ``/model/parse``, from the embedded classifier or,
with ``NLU_BACKEND=rasa``, from a Rasa server (with a timeout, and the embedded
classifier whenever Rasa does not answer in time).

The embedded model comes from the artefact bundled into the installed package for the
data's fingerprint and the classifier's code (``citybots nlu train --bundle``, run by
``make install`` and the image build), else from one cached under ``DATA_DIR/nlu``,
else it is trained from nlu/data and cached there (so a changed file retrains by itself,
and a start never trains while the bundle matches the data and the code).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp

from nlu.data import fingerprint, load
from nlu.model import IntentModel, train

log = logging.getLogger(__name__)
RANKING = 10


def artefact_digest() -> str:
    """The training data's fingerprint and the classifier's code: a model made by other
    code (a changed feature hashing, say) is stale too, even from the same data."""
    digest = hashlib.sha256(fingerprint().encode())
    for module in ("features.py", "model.py"):
        digest.update(resources.files("nlu").joinpath(module).read_bytes())
    return digest.hexdigest()[:16]


def artefact_path(cache_dir: Path, digest: str | None = None) -> Path:
    return cache_dir / f"intents-{digest or artefact_digest()}.npz"


def bundle_dir() -> Path:
    """Where ``citybots nlu train --bundle`` puts the artefact: inside the installed package."""
    return Path(str(resources.files("nlu").joinpath("bundled")))


def load_or_train(
    cache_dir: Path, *, force: bool = False, bundled: Path | None = None
) -> tuple[IntentModel, float]:
    """The model for the current data, and how long training took (0 when bundled or
    cached). A bundle for other data or code (stale) is ignored, never trusted."""
    digest = artefact_digest()
    if not force:
        shipped = artefact_path(bundled or bundle_dir(), digest)
        if shipped.exists():
            try:
                return IntentModel.load(shipped), 0.0
            except (OSError, ValueError, KeyError):
                log.warning("bundled NLU artefact %s unreadable: using DATA_DIR", shipped.name)
    path = artefact_path(cache_dir, digest)
    if path.exists() and not force:
        try:
            return IntentModel.load(path), 0.0
        except (OSError, ValueError, KeyError):
            log.warning("NLU artefact %s unreadable: training again", path.name)
    started = time.perf_counter()
    model = train(load(), fingerprint=digest)
    seconds = time.perf_counter() - started
    model.save(path)
    for stale in cache_dir.glob("intents-*.npz"):
        if stale != path:
            stale.unlink(missing_ok=True)
    log.info("NLU model trained in %.1f s", seconds)
    return model, seconds


def shape(text: str, ranking: list[tuple[str, float]]) -> dict[str, Any]:
    """Rasa's /model/parse answer."""
    name, confidence = ranking[0]
    return {
        "text": text,
        "intent": {"name": name, "confidence": round(confidence, 4)},
        "intent_ranking": [{"name": n, "confidence": round(c, 4)} for n, c in ranking[:RANKING]],
        "entities": [],
    }


class Nlu:
    def __init__(
        self,
        model: IntentModel,
        *,
        backend: str = "embedded",
        rasa_url: str | None = None,
        timeout: float = 2.0,
    ) -> None:
        self.model = model
        self.backend = backend
        self.rasa_url = rasa_url.rstrip("/") if rasa_url else None
        self.timeout = timeout
        self._http: aiohttp.ClientSession | None = None

    def parse(self, text: str) -> dict[str, Any]:
        """The embedded classifier, in process."""
        text = text.strip()[:1000]
        if not text:
            return shape(text, [("out_of_scope", 1.0)])
        return shape(text, self.model.rank(text))

    async def parse_async(self, text: str) -> dict[str, Any]:
        """The configured backend; Rasa's answer when it comes in time, else embedded."""
        if self.backend == "rasa" and self.rasa_url:
            try:
                return await self._rasa(text)
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as error:
                log.warning(
                    "Rasa did not answer (%s): the embedded classifier answers",
                    type(error).__name__,
                )
        return self.parse(text)

    async def _rasa(self, text: str) -> dict[str, Any]:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        async with asyncio.timeout(self.timeout):
            async with self._http.post(f"{self.rasa_url}/model/parse", json={"text": text}) as r:
                r.raise_for_status()
                answer: dict[str, Any] = await r.json()
        if not isinstance(answer["intent"]["name"], str):  # a malformed answer
            raise ValueError("Rasa answered without an intent name")
        return answer

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
