"""The Twilio-compatible layer: Calls API, TwiML flows, signed status callbacks.

It adapts Twilio's wire formats onto Legato's one engine and store; nothing here decides a
call's status (the resolver does) or runs a second flow model (TwiML becomes flow steps).
"""
