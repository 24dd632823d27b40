"""Scenario files (format v1, DESIGN section 6): one call and every phone's behaviour."""

from legato.scenario.loader import ScenarioError, load_paths, load_scenario
from legato.scenario.model import Scenario
from legato.scenario.run import check_expectations, run_scenario

__all__ = ["Scenario", "ScenarioError", "check_expectations", "load_paths", "load_scenario",
           "run_scenario"]
