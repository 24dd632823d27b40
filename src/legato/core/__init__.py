"""The pure, sans-IO heart of Legato: catalogue, cause map, resolver, policies and flows.

Nothing in here opens a socket, touches a database or reads the wall clock: time comes
in as a value, events come in and commands go out. Drivers and adapters import this
package; it imports none of them (enforced by import-linter).
"""
