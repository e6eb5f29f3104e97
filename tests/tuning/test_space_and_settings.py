"""The search's inputs: every bad one is a ValueError naming the field and the value, before any trial."""

from __future__ import annotations

import pytest

from airflow_trainkit.tuning.settings import TuneSettings, trial_hours_of
from airflow_trainkit.tuning.space import SearchSpace

GOOD = {
    "max_depth": {"type": "int", "low": 3, "high": 8},
    "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
    "subsample": {"type": "float", "low": 0.5, "high": 1.0, "step": 0.25},
    "grow_policy": ["depthwise", "lossguide"],
}


def test_a_space_reads_ranges_log_scales_steps_and_choices():
    space = SearchSpace.parse(GOOD)
    assert space.names == ["max_depth", "learning_rate", "subsample", "grow_policy"]
    dists = space.distributions()
    assert dists["learning_rate"].log and dists["max_depth"].low == 3 and dists["max_depth"].high == 8
    assert dists["subsample"].step == 0.25
    assert list(dists["grow_policy"].choices) == ["depthwise", "lossguide"]
    assert SearchSpace.parse('{"n": {"type": "int", "low": 1, "high": 3}}').names == ["n"]


def test_a_grid_enumerates_steps_and_refuses_a_float_range_without_one():
    grid = SearchSpace.parse({k: v for k, v in GOOD.items() if k != "learning_rate"}).grid()
    assert grid["max_depth"] == [3, 4, 5, 6, 7, 8]
    assert grid["subsample"] == [0.5, 0.75, 1.0]
    assert SearchSpace.grid_size(grid) == 6 * 3 * 2
    with pytest.raises(ValueError, match=r"search_space\.learning_rate: the grid sampler needs a step"):
        SearchSpace.parse(GOOD).grid()


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({}, r"search_space: empty"),
        ("not json", r"search_space: not a JSON object"),
        ([1, 2], r"search_space: expected a mapping"),
        ({"a": {"type": "int", "low": 1}}, r"search_space\.a\.high: required, missing"),
        (
            {"a": {"type": "int", "low": 5, "high": 1}},
            r"search_space\.a\.high: must be at least low \(5\), got 1",
        ),
        (
            {"a": {"type": "int", "low": 1.5, "high": 3}},
            r"search_space\.a\.low: must be a whole number.*got 1\.5",
        ),
        (
            {"a": {"type": "float", "low": 0, "high": 1, "log": True}},
            r"search_space\.a\.low: a log scale needs low > 0",
        ),
        (
            {"a": {"type": "float", "low": 0, "high": 1, "step": -1}},
            r"search_space\.a\.step: must be greater than 0",
        ),
        (
            {"a": {"type": "number", "low": 0, "high": 1}},
            r"search_space\.a\.type: must be one of int, float, categorical, got 'number'",
        ),
        ({"a": {"type": "categorical", "choices": []}}, r"search_space\.a\.choices: a non-empty list"),
        (
            {"a": {"type": "categorical", "choices": [1, 1]}},
            r"search_space\.a\.choices: a value is given twice",
        ),
        ({"a": {"type": "float", "low": 0, "hi": 1}}, r"search_space\.a\.hi: unknown key"),
        ({"a": "big"}, r"search_space\.a: expected .* got 'big'"),
    ],
)
def test_a_malformed_space_is_refused_naming_the_field(space, message):
    with pytest.raises(ValueError, match=message):
        SearchSpace.parse(space)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"n_trials": 4, "parallel": 5}, r"parallel: must not be above n_trials \(4\), got 5"),
        ({"n_trials": 0}, r"n_trials: .*got 0"),
        ({"n_trials": 4, "budget": -2.0, "trial_hours": 1}, r"budget: must be greater than 0, got -2\.0"),
        ({"n_trials": 4, "budget": 10}, r"trial_hours: required when budget is set.*got None"),
        (
            {"n_trials": 4, "budget": 10, "trial_hours": "soon"},
            r"trial_hours: must be a number of hours.*got 'soon'",
        ),
        ({"n_trials": 4, "sampler": "cmaes"}, r"sampler: .*got 'cmaes'"),
        ({"n_trials": 4, "direction": "up"}, r"direction: .*got 'up'"),
        ({"n_trials": 4, "pruning": {"metric": ""}}, r"pruning\.metric: .*got ''"),
        ({"n_trials": 4, "pruning": "median"}, r"pruning: a mapping .* got 'median'"),
    ],
)
def test_bad_settings_are_refused_naming_the_field_and_value(values, message):
    with pytest.raises(ValueError, match=message):
        TuneSettings.parse(objective="auc_roc", **values)


def test_trial_hours_take_hours_or_a_duration():
    assert trial_hours_of(0.5) == 0.5
    assert trial_hours_of("20m") == pytest.approx(1 / 3)
    assert trial_hours_of("1h30m") == 1.5
    settings = TuneSettings.parse(objective="auc_roc", n_trials=8, parallel=2, budget=3, trial_hours="30m")
    assert settings.trial_hours == 0.5 and settings.budget == 3.0


def test_a_grid_over_fewer_points_than_trials_runs_the_grid_once():
    settings = TuneSettings.parse(objective="auc_roc", n_trials=50, sampler="grid")
    assert settings.check_space(SearchSpace.parse({"depth": {"type": "int", "low": 2, "high": 4}})) == 3
    with pytest.raises(ValueError, match=r"search_space\.rate: the grid sampler needs a step.*low=0, high=1"):
        settings.check_space(SearchSpace.parse({"rate": {"type": "float", "low": 0, "high": 1}}))
