"""instructprotein: one language model for English and protein, built from a protein knowledge graph.

Data flows one way through the sub-packages: ``sources`` (fetch raw releases) ->
``formats`` (read real file formats) -> ``kg`` (the knowledge graph store) -> later stages.
Lower layers never import higher ones.
"""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``from instructprotein import Model`` without importing torch on ``import instructprotein``."""
    if name == "Model":
        from instructprotein.infer.model import Model

        return Model
    raise AttributeError(f"module 'instructprotein' has no attribute {name!r}")
