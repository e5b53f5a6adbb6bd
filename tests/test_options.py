"""One name per option: the command line, the settings and scenario files say each option the same way."""

from __future__ import annotations

import inspect

import pytest

from offbench import cli
from offbench.model.settings import Effort, RunSettings
from offbench.plan import options, scenario
from offbench.plan.settings import Choices

NAMES = [option.name for option in options.OPTIONS]


def test_choices_are_exactly_the_options() -> None:
    assert list(Choices.__struct_fields__) == NAMES


def test_every_option_is_a_settings_field_of_the_same_name() -> None:
    # The precision is one of the effort's rules, which the settings hold together.
    fields = {*RunSettings.__struct_fields__, *Effort.__struct_fields__}
    assert set(NAMES) <= fields, set(NAMES) - fields


def test_every_option_is_a_scenario_key_of_the_same_name() -> None:
    keys = set(scenario.ScenarioFile.__struct_fields__) - {"description"}
    assert keys == set(NAMES)


def test_run_takes_the_options_then_only_the_stated_cli_only_parameters() -> None:
    parameters = list(inspect.signature(cli.run).parameters)
    assert parameters[0] == "scenario"
    assert parameters[1 : 1 + len(NAMES)] == NAMES
    assert set(parameters) - set(NAMES) == set(options.CLI_ONLY)


@pytest.mark.parametrize("option", options.OPTIONS, ids=lambda option: option.name)
def test_each_flag_is_its_name_without_the_unit(option: options.Option) -> None:
    long_flags = {part for flag in option.flags for part in flag.split("/") if part.startswith("--")}
    said = {flag for flag in long_flags if not flag.startswith("--no-")}
    assert len(said) == 1
    assert said <= options.long_flags(option.name), f"{option.name}: {said} breaks the naming rule"


def test_the_naming_rule_itself() -> None:
    assert options.long_flags("lag_budget_ms") == {"--lag-budget"}
    assert "--strategy" in options.long_flags("strategies")
    assert "--python" in options.long_flags("pythons")
    assert "--max-workers" in options.long_flags("max_workers")
    assert options.long_flags("slo_ms") == {"--slo"}  # not --slo-ms: the unit is in the metavar
    assert "--rate" in options.long_flags("rate")
