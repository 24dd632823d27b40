"""Numbers of the virtual phones the API tests use (see PHONES in conftest.py)."""

AGENT = "+919811000001"
AGENT_2 = "+919811000011"
CUSTOMER = "+919811000002"
BUSY = "+919811000003"
SLOW = "+919811000004"  # rings a long time: the call stays live
NUMBER = "+918047001000"
NUMBER_B = "+918047001001"
