"""The live call runtime: runs calls on a driver at wall-clock speed and persists them."""
