"""The REST API (FastAPI): numbers, calls, reports, and the sim's incoming-call endpoint."""
