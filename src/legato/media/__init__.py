"""Media for the SIP driver: SDP, RTP endpoints, G.711, prompts, DTMF, relay and recording.

Everything here runs on the asyncio loop of the driver (uvloop when installed) and never
imports the engine: the driver translates between engine commands/events and these parts.
"""
