"""The protein knowledge graph: ontology DAG, builder, and the SQLite store every stage queries."""

from instructprotein.kg.store import KnowledgeGraph

__all__ = ["KnowledgeGraph"]
