"""The score model: plain JSON trees, checked on load, monotone where the rubric says so."""

import json

import numpy as np
import pytest

from coach import scoring
from coach.config import RESOURCES
from coach.errors import CoachError

TYPICAL = {"points": 5.0, "covw": 0.5, "ref_cos": 0.5, "q_cos": 0.3, "best_sent_ref": 0.5, "fit_margin": 0.0,
           "loglen": 4.5, "keyword_only": 0.0, "repeat": 0.0, "off_topic": 0.0, "english": 0.0}


@pytest.fixture(scope="module")
def shipped():
    model = scoring.default_model()
    assert model is not None, "coach/resources/score_model.json must ship with the coach"
    return model


@pytest.mark.parametrize("signal", ["points", "covw", "ref_cos", "best_sent_ref"])
def test_more_of_what_the_rubric_rewards_never_lowers_the_score(shipped, signal):
    scores = [shipped.score({**TYPICAL, signal: v}) for v in np.linspace(0, 10 if signal == "points" else 1, 11)]
    assert all(b >= a - 1e-9 for a, b in zip(scores, scores[1:]))
    if signal == "points":  # the signal the model leans on most
        assert scores[-1] > scores[0]


def test_an_off_topic_flag_never_raises_the_score(shipped):
    assert shipped.score({**TYPICAL, "off_topic": 1.0}) <= shipped.score(TYPICAL)


def test_a_model_written_for_other_signals_is_refused_with_one_sentence():
    data = json.loads((RESOURCES / "score_model.json").read_text(encoding="utf-8"))
    data["features"] = ["something", "else"]
    with pytest.raises(CoachError, match="run `coach eval grading --fit`"):
        scoring.ScoreModel.from_json(data)


def test_fitted_trees_round_trip_through_json_and_predict_like_sklearn():
    rng = np.random.default_rng(0)
    rows = [{f: float(rng.random()) for f in scoring.FEATURES} for _ in range(120)]
    targets = [10 * r["points"] * 0.5 + 10 * r["ref_cos"] * 0.5 for r in rows]
    groups = [str(i % 12) for i in range(120)]
    model = scoring.fit(rows, targets, groups, "synthetic")  # asserts equality with sklearn inside
    again = scoring.ScoreModel.from_json(json.loads(json.dumps(model.to_json())))
    assert [again.score(r) for r in rows[:10]] == [model.score(r) for r in rows[:10]]
