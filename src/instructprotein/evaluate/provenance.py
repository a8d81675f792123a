"""What stands behind a results file: the model's files and settings, library versions, the
checks that the model can read proteins at all.

Apart from the runner (:mod:`~instructprotein.evaluate.runner`), which writes these into
``results.json`` so that a number can be traced to the exact model and software that gave it.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from typing import Any

from instructprotein.checksums import file_sha256
from instructprotein.errors import InputError


def _sha256(path: Path, limit: int | None = None) -> str | None:
    """The file's checksum for provenance; None where there is no file or it is over ``limit`` bytes."""
    if not path.is_file() or (limit is not None and path.stat().st_size > limit):
        return None
    return file_sha256(path)


def model_info(path: Path, model: Any, tokenizer: Any) -> dict[str, Any]:
    """Path, config hash, weights (size, and sha256 up to 1 GB), parameters, context, tokenizer layout."""
    from instructprotein.infer.classify import context_length, prompt_residues
    from instructprotein.model.factory import WEIGHT_FILES, count_parameters

    weights = [w for w in WEIGHT_FILES if (path / w).exists()]
    wfile = path / weights[0] if weights else None
    return {
        "path": str(path.resolve()),
        "config_sha256": _sha256(path / "config.json"),
        "weights": {
            "file": wfile.name if wfile else None,
            "bytes": wfile.stat().st_size if wfile else None,
            "sha256": _sha256(wfile, 1 << 30) if wfile else None,
        },
        "architecture": getattr(model.config, "model_type", None),
        "parameters": count_parameters(model),
        "context_length": context_length(model),
        "prompt_residues": prompt_residues(model),
        "tokenizer": {"layout": tokenizer.layout, "size": len(tokenizer)},
        "dtype": str(next(model.parameters()).dtype),
        "device": str(model.device),
    }


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    from importlib import metadata

    for pkg in ("instructprotein", "torch", "transformers", "tokenizers", "numpy", "scipy", "matplotlib"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    try:
        import subprocess

        root = Path(__file__).resolve().parents[3]
        if (root / ".git").exists():
            rev = subprocess.run(
                ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
            )
            dirty = subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
            if rev.returncode == 0:
                out["git_commit"] = rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, ValueError):
        pass
    return out


def check_protein_tokens(tokenizer: Any, model: Any, where: Path) -> None:
    """InputError unless the tokenizer has the protein tokens and the model embeds them."""
    from instructprotein.model.tokenizer import PAPER_PROTEIN_TOKENS

    vocab = tokenizer.get_vocab()
    missing = [t for t in PAPER_PROTEIN_TOKENS if t not in vocab]
    if missing:
        raise InputError(f"the model's tokenizer lacks the protein tokens {' '.join(missing[:5])}...", where)
    rows = model.get_input_embeddings().num_embeddings
    top = max(vocab[t] for t in PAPER_PROTEIN_TOKENS)
    if top >= rows:
        raise InputError(f"the model embeds {rows} tokens, fewer than the protein tokens need ({top + 1})", where)
