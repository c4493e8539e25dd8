"""Common checks of the triplet embedding estimators, in the spirit of scikit-learn's estimator checks.

scikit-learn's ``check_estimator`` feeds arrays ``X, y``; these estimators take :class:`Triplets`, so the
checks that matter for them are written here for that input: parameters from the signature, cloning,
no work in ``__init__``, ``fit`` returning self, determinism, the not-fitted error, pickling, output shapes.
"""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest
from estimator_fits import case_data
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from oddoneout.embed.docstrings import SHARED_DOCS, fill_doc
from oddoneout.embed.estimator import estimator_defaults
from oddoneout.embed.spose import SPoSE
from oddoneout.embed.vice import VICE

#: Quick settings: a few epochs on a few thousand triplets.
QUICK = {
    SPoSE: {"n_dims": 6, "max_epochs": 3, "l1_warmup": 1, "batch_size": 512},
    VICE: {"n_dims": 6, "max_epochs": 3, "batch_size": 512, "n_samples_eval": 3},
}
ESTIMATORS = pytest.mark.parametrize("estimator", [SPoSE, VICE], ids=lambda cls: cls.__name__)


@pytest.fixture(scope="module")
def triplets():
    return case_data("hard")


@pytest.fixture(scope="module")
def fitted(triplets):
    return {estimator: estimator(**QUICK[estimator]).fit(triplets) for estimator in (SPoSE, VICE)}


@ESTIMATORS
def test_parameters_are_the_signature_with_its_defaults(estimator):
    defaults = estimator_defaults(estimator)
    assert estimator().get_params() == defaults
    assert list(defaults)[:1] == ["n_dims"]  # signature order
    assert "self" not in defaults


@ESTIMATORS
def test_init_stores_its_arguments_unchecked(estimator):
    marker = object()
    model = estimator(n_dims=-1, progress=marker)  # invalid values are only refused by fit
    assert model.n_dims == -1 and model.progress is marker
    assert not [name for name in vars(model) if name.endswith("_")]


@ESTIMATORS
def test_get_set_params_round_trip(estimator):
    model = estimator(**QUICK[estimator])
    params = model.get_params()
    assert model.set_params(**params) is model and model.get_params() == params
    model.set_params(lr=0.01, seed=7)
    assert model.get_params() == {**params, "lr": 0.01, "seed": 7}
    with pytest.raises(ValueError, match="no_such_parameter"):
        model.set_params(no_such_parameter=1)


@ESTIMATORS
def test_clone_copies_parameters_not_fit(estimator, fitted):
    model = fitted[estimator]
    copy = clone(model)
    assert copy is not model and type(copy) is estimator
    assert copy.get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        check_is_fitted(copy)
    assert re.match(rf"{estimator.__name__}\(", repr(copy))


@ESTIMATORS
def test_not_fitted_error_before_fit(estimator, triplets):
    model = estimator()
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    for use in (model.predict_proba, model.score):
        with pytest.raises(NotFittedError, match="not fitted"):
            use(triplets)
    with pytest.raises(NotFittedError, match="not fitted"):
        model.to_embedding()


@ESTIMATORS
def test_fit_returns_self_and_sets_trailing_underscore_attributes(estimator, triplets):
    model = estimator(**QUICK[estimator])
    before = set(vars(model))
    assert model.fit(triplets) is model
    check_is_fitted(model)
    public = {name for name in set(vars(model)) - before if not name.startswith("_")}
    assert public and all(name.endswith("_") for name in public), sorted(public)
    assert model.get_params() == estimator(**QUICK[estimator]).get_params()  # fit leaves the parameters alone


@ESTIMATORS
def test_same_seed_same_fit(estimator, triplets, fitted):
    again = estimator(**QUICK[estimator]).fit(triplets)
    first = fitted[estimator]
    np.testing.assert_array_equal(again.weights_, first.weights_)
    assert again.history_ == first.history_
    assert (again.n_epochs_, again.best_epoch_) == (first.n_epochs_, first.best_epoch_)


@ESTIMATORS
def test_pickled_fit_predicts_the_same(estimator, triplets, fitted):
    model = fitted[estimator]
    restored = pickle.loads(pickle.dumps(model))
    subset = triplets.subset(np.arange(100))
    np.testing.assert_array_equal(restored.predict_proba(subset), model.predict_proba(subset))
    np.testing.assert_array_equal(restored.weights_, model.weights_)
    assert restored.get_params() == model.get_params()


@ESTIMATORS
def test_predict_proba_and_score_shapes(estimator, triplets, fitted):
    model = fitted[estimator]
    subset = triplets.subset(np.arange(57))
    probs = model.predict_proba(subset)
    assert probs.shape == (57, 3) and probs.dtype == np.float64
    assert np.all(probs >= 0) and np.allclose(probs.sum(axis=1), 1.0)
    score = model.score(subset)
    assert isinstance(score, float) and 0.0 <= score <= 1.0
    assert model.weights_.shape[0] == triplets.n_items == len(model.item_ids_)


@ESTIMATORS
def test_docstring_has_every_shared_entry_filled(estimator):
    doc = estimator.__doc__
    assert "%(" not in doc
    names = set(estimator_defaults(estimator))
    for key, entry in SHARED_DOCS.items():
        if key in names or key.endswith("_"):
            assert "\n    " + entry.splitlines()[0] + "\n" in doc, key
    for name in names:
        assert re.search(rf"^    (\w+, )*{name}(, \w+)* : ", doc, re.MULTILINE), f"{name} is not documented"


def test_fill_doc_indents_entries_and_refuses_unknown_names():
    @fill_doc
    def documented():
        """Summary.

        Parameters
        ----------
        %(lr)s
        """

    assert "\n        lr : float\n            Adam learning rate.\n" in documented.__doc__

    with pytest.raises(KeyError):

        @fill_doc
        def unknown():
            """%(no_such_entry)s"""
