"""Telephony drivers that carry out the engine's commands on a real network.

`legato.sim` is the virtual network; `legato.drivers.sip` is the SIP back-to-back user agent.
"""
