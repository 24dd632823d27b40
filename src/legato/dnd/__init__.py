"""The national-scale DND registry: versioned storage, bulk import, in-memory index."""

from legato.dnd.index import DndIndex
from legato.dnd.parse import InvalidLine, ParseReport, read_entries
from legato.dnd.registry import (
    DndRegistry,
    ImportMode,
    ImportRejected,
    ImportResult,
    NoRegistry,
    VersionInfo,
    database_url,
)

__all__ = [
    "DndIndex",
    "DndRegistry",
    "ImportMode",
    "ImportRejected",
    "ImportResult",
    "InvalidLine",
    "NoRegistry",
    "ParseReport",
    "VersionInfo",
    "database_url",
    "read_entries",
]
