"""From what an answer covers to a score out of 10: a small combiner, fitted on blind answers.

The key-point coverage of ``grade.py`` says *which* points an answer makes;
alone it under-credits answers in plain words ("几个矩阵乘起来还是一个矩阵"),
because a small encoder scores a paraphrase of a point low. How close the whole
answer is to the model answer and to the question carries what the points
miss. A gradient-boosted regressor over these interpretable signals, fitted on
answers written blind to the key points (``corpus/eval/grading_blind`` tune
half and ``corpus/eval/grading_train``; the held-out half is never seen), maps
them to the rubric's scale; a monotone (isotonic) map fitted on out-of-fold
predictions, folds split by question, corrects what bias is left.

The rules a candidate can read stay rules, applied after the model: a
keyword list is capped at 4, a restatement at 2, each misconception stated
costs 2, an empty answer gets no score.

The model is stored as JSON (trees as arrays, the calibration as
breakpoints), versioned and checked on load; no pickle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .config import RESOURCES

FEATURES = ("points", "covw", "ref_cos", "q_cos", "best_sent_ref", "fit_margin", "loglen", "keyword_only", "repeat",
            "off_topic", "english")
FORMAT, VERSION = "coach-score-model", 1


@dataclass(frozen=True)
class Tree:
    left: tuple[int, ...]
    right: tuple[int, ...]
    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    value: tuple[float, ...]

    def predict(self, x: np.ndarray) -> float:
        node = 0
        while self.left[node] >= 0:
            node = self.left[node] if x[self.feature[node]] <= self.threshold[node] else self.right[node]
        return self.value[node]


@dataclass(frozen=True)
class ScoreModel:
    init: float
    rate: float
    trees: tuple[Tree, ...]
    calib_x: tuple[float, ...]
    calib_y: tuple[float, ...]
    fitted_on: str = ""

    def raw(self, features: dict[str, float]) -> float:
        x = np.array([features[f] for f in FEATURES], dtype=np.float64)
        return self.init + self.rate * sum(t.predict(x) for t in self.trees)

    def score(self, features: dict[str, float]) -> float:
        """The calibrated score in [0, 10]."""
        raw = self.raw(features)
        if self.calib_x:
            raw = float(np.interp(raw, self.calib_x, self.calib_y))
        return float(np.clip(raw, 0.0, 10.0))

    def to_json(self, **extra) -> dict:
        return {"format": FORMAT, "version": VERSION, "features": list(FEATURES), "init": self.init,
                "learning_rate": self.rate, "fitted_on": self.fitted_on,
                "calibration": {"x": list(self.calib_x), "y": list(self.calib_y)},
                "trees": [{"left": t.left, "right": t.right, "feature": t.feature,
                           "threshold": list(t.threshold), "value": list(t.value)}
                          for t in self.trees], **extra}

    @classmethod
    def from_json(cls, data: dict) -> "ScoreModel":
        from .errors import CoachError

        if data.get("format") != FORMAT or data.get("version") != VERSION or tuple(data.get("features", ())) != FEATURES:
            raise CoachError("score_model.json was written for other grading signals; run `coach eval grading --fit`.")
        trees = tuple(Tree(tuple(t["left"]), tuple(t["right"]), tuple(t["feature"]), tuple(t["threshold"]),
                           tuple(t["value"])) for t in data["trees"])
        calib = data.get("calibration") or {}
        return cls(float(data["init"]), float(data["learning_rate"]), trees, tuple(calib.get("x", ())),
                   tuple(calib.get("y", ())), str(data.get("fitted_on", "")))


RULES = "rules"  # pass as a Grader's model to score by the weighted point credit alone (no learned model)


@lru_cache(maxsize=1)
def default_model() -> ScoreModel | None:
    """The shipped model, or None when there is none yet (the rule-based score is used then)."""
    from .errors import CoachError

    path = RESOURCES / "score_model.json"
    if not path.exists():
        return None
    try:
        return ScoreModel.from_json(json.loads(path.read_text(encoding="utf-8")))
    except ValueError:
        raise CoachError("score_model.json is not valid JSON; reinstall the coach or run `coach eval grading --fit`.") from None


# +1: the score may only rise with this signal; -1: only fall; 0: free. Keeps a small model sane.
MONOTONE = {"points": 1, "covw": 1, "covmax": 1, "frac_cov": 1, "ref_cos": 1, "q_cos": 1, "best_sent_ref": 1,
            "fit_margin": 1, "keyword_only": -1, "repeat": -1, "off_topic": -1}


def fit(rows: list[dict[str, float]], targets: list[float], groups: list[str], fitted_on: str) -> ScoreModel:
    """Monotone gradient-boosted trees on ``rows``, then isotonic calibration on out-of-fold predictions.

    Folds are split by ``groups`` (the question), so no question is in both halves of a fold.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.isotonic import IsotonicRegression
    from sklearn.model_selection import GroupKFold

    x = np.array([[r[f] for f in FEATURES] for r in rows], dtype=np.float64)
    y = np.array(targets, dtype=np.float64)

    def make():
        return HistGradientBoostingRegressor(max_iter=200, max_depth=3, learning_rate=0.05, min_samples_leaf=15,
                                             l2_regularization=1.0, early_stopping=False, random_state=0,
                                             monotonic_cst=[MONOTONE.get(f, 0) for f in FEATURES])

    oof = np.zeros(len(y))
    for train, test in GroupKFold(n_splits=5).split(x, y, groups):
        oof[test] = make().fit(x[train], y[train]).predict(x[test])
    iso = IsotonicRegression(y_min=0, y_max=10, out_of_bounds="clip").fit(oof, y)
    model = make().fit(x, y)
    trees = tuple(_tree(predictors[0].nodes) for predictors in model._predictors)
    fitted = ScoreModel(float(np.ravel(model._baseline_prediction)[0]), 1.0, trees,
                        tuple(float(v) for v in iso.X_thresholds_), tuple(float(v) for v in iso.y_thresholds_), fitted_on)
    check = x[: min(len(x), 50)]
    assert np.allclose([fitted.raw(dict(zip(FEATURES, row))) for row in check], model.predict(check), atol=1e-6)
    return fitted


def _tree(nodes) -> Tree:
    """One fitted tree as plain arrays (leaf values already include the learning rate)."""
    leaf = nodes["is_leaf"].astype(bool)
    return Tree(tuple(-1 if f else int(v) for f, v in zip(leaf, nodes["left"])),
                tuple(-1 if f else int(v) for f, v in zip(leaf, nodes["right"])),
                tuple(int(v) for v in nodes["feature_idx"]), tuple(float(v) for v in nodes["num_threshold"]),
                tuple(float(v) for v in nodes["value"]))
