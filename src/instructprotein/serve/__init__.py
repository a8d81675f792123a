"""HTTP API and web page over a model folder: ``create_app`` (FastAPI), ``serve`` (uvicorn).

Needs the ``fastapi`` and ``uvicorn`` packages; nothing else in the project imports this one.
"""

from __future__ import annotations

from instructprotein.serve.app import Limits, create_app
from instructprotein.serve.run import running_server, serve

__all__ = ["Limits", "create_app", "running_server", "serve"]
