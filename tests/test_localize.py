"""Localization by the chain rule's relations: the layer where a mistake enters and the change that repairs
it, for mistakes made at one layer, two at once, and none (a correct pass in float32)."""

import itertools

import numpy as np
import pytest
from conftest import init_params

from grader.compare import within
from grader.diagnose.localize import Break, Repair, localize
from grader.diagnose.localize_text import describe, ids
from grader.kinds import KINDS
from grader.rubric.checkspec import Tolerance
from reference import mlp_regression
from reference.mistakes import CATALOGUE, at_layer, pair
from reference.mistakes_mutants import Instance, reference_values

BY_ID = {m.id: m for m in CATALOGUE}
TOLERANCE = Tolerance()
_KEYS = itertools.count()


def mlp_trials(layers, N=1, activation="sigmoid", seeds=(0, 1, 2), dead=False):
    """Instances of an mlp (x ~ U[0,1], torch-range weights); `dead`: unit 0 of layer 1 at z = 0 exactly."""
    made = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        params = init_params(rng, layers)
        if dead:
            params["W1"][0], params["b1"][0] = 0.0, 0.0
        x = rng.uniform(size=(N, layers[0]))
        made.append(Instance("mlp_regression", x, mlp_regression.target(x), params, activation, "sum", lr=0.01))
    return made


def classifier_trials(N=3, d=3, H=4, C=3, seeds=(0, 1, 2)):
    made = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        x = rng.uniform(-1, 1, size=(N, d))
        y = np.eye(C)[rng.integers(C, size=N)]
        made.append(Instance("softmax_classifier", x, y, init_params(rng, [d, H, C], bias=False), "relu", "sum"))
    return made


def located(instances, student):
    """localize on the instances, the student's values given by `student(inst)`; also the first chain."""
    chains, found, failed = {}, {}, {}
    for i, inst in enumerate(instances):
        name = f"t{i}"
        chains[name] = KINDS[inst.kind].chain(
            ("test", next(_KEYS)), inst.x, inst.y, inst.params, inst.activation, inst.reduction
        )
        found[name] = {k: np.asarray(v, dtype=np.float64) for k, v in student(inst).items()}
        expected = reference_values(inst)
        for key, value in found[name].items():
            if not within(value, expected[key], TOLERANCE):
                failed.setdefault(key, set()).add(name)
    tolerances = dict.fromkeys(reference_values(instances[0]), TOLERANCE)
    return localize(chains, found, tolerances, failed), chains["t0"]


def mutant(mistake):
    return lambda inst: mistake.compute(inst)


def test_a_delta_that_forgets_sigma_prime_in_layer_1_breaks_there_and_says_so():
    localization, chain = located(mlp_trials([2, 10, 10, 1]), mutant(at_layer(BY_ID["hidden_derivative_omitted"], 1)))
    assert localization.breaks == (Break(1, Repair(delta="hidden_derivative_omitted")),)
    assert ids(chain, localization.breaks[0]) == ["hidden_derivative_omitted"]
    assert describe(chain, localization) == ("δ1 = (W2ᵀδ2) ⊙ σ'(z1)", "layer 1: your δ1 equals W2ᵀδ2 without σ'(z1)")


# Every mistake about one layer's relations, with each activation it can be made with.
ONLY_WITH = {
    "derivative_at_activation": ("sigmoid", "tanh"),
    "derivative_formula_on_preactivation": ("sigmoid", "tanh"),
    "relu_derivative_at_zero": ("relu",),
}
LOCAL = [
    (m.id, activation)
    for m in CATALOGUE
    if at_layer(m, 1) is not None and m.id != "derivative_without_activation"
    for activation in ONLY_WITH.get(m.id, ("sigmoid", "tanh", "relu"))
]


@pytest.mark.parametrize("mistake_id, activation", LOCAL)
def test_each_mistake_made_at_one_layer_is_found_at_that_layer_and_named(mistake_id, activation):
    """A 4-4-4-4-1 net on batches of 3 (every layer square, x as wide as a1): each stand-in fits somewhere."""
    instances = mlp_trials([4, 4, 4, 4, 1], N=3, activation=activation, dead=True)
    tried = 0
    for layer in range(1, 5):
        local = at_layer(BY_ID[mistake_id], layer)
        values = [local.compute(inst) for inst in instances]
        if any(v is None for v in values) or all(
            np.array_equal(v[k], r[k])
            for v, inst in zip(values, instances)
            for k, r in [(k, reference_values(inst)) for k in v]
        ):
            continue  # cannot apply, or changes nothing at this layer
        localization, chain = located(instances, mutant(local))
        assert localization is not None and localization.breaks[0].layer == layer, (layer, localization)
        assert [ids(chain, b) for b in localization.breaks] == [[mistake_id]], (layer, localization)
        tried += 1
    assert tried, "the mistake must show at some layer of this net"


def test_two_mistakes_at_different_layers_are_both_found_from_the_top():
    both = pair(BY_ID["missing_factor_2"], at_layer(BY_ID["hidden_derivative_omitted"], 1))
    localization, chain = located(mlp_trials([2, 10, 10, 1]), mutant(both))
    assert [b.layer for b in localization.breaks] == [3, 1]
    assert [ids(chain, b) for b in localization.breaks] == [["missing_factor_2"], ["hidden_derivative_omitted"]]
    assert describe(chain, localization)[1] == (
        "layer 3: your δ3 is 0.5 × 2(ŷ − y); layer 1: your δ1 equals W2ᵀδ2 without σ'(z1)"
    )


def test_a_sign_and_a_missing_2_at_the_output_are_one_factor_named_as_both():
    localization, chain = located(
        mlp_trials([2, 10, 10, 1]), mutant(pair(BY_ID["missing_factor_2"], BY_ID["sign_flip"]))
    )
    assert localization.breaks == (Break(3, Repair(delta="factor", factor=localization.breaks[0].repair.factor)),)
    assert np.isclose(localization.breaks[0].repair.factor, -0.5)
    assert ids(chain, localization.breaks[0]) == ["sign_flip", "missing_factor_2"]


def test_without_biases_a_factor_in_dw_alone_is_told_from_one_in_delta_by_the_layer_below():
    instances = classifier_trials()

    def scaled(which):
        def student(inst):
            values = reference_values(inst)
            if which == "delta2":  # δ2 doubled: every gradient below doubles too
                return {k: 2 * v if k.startswith("d") else v for k, v in values.items()}
            return {**values, "dW2": 2 * values["dW2"]}  # dW2 alone doubled

        return student

    assert located(instances, scaled("delta2"))[0].breaks == (Break(2, Repair(delta="factor", factor=2.0)),)
    assert located(instances, scaled("dW2"))[0].breaks == (Break(2, Repair(dW="factor", factor=2.0)),)


def test_a_correct_pass_rounded_to_float32_breaks_no_relation():
    instances = mlp_trials([10, 21, 21, 21, 1], activation="relu")
    float32 = lambda inst: {k: np.float32(v) for k, v in reference_values(inst).items()}  # noqa: E731
    chains = {
        f"t{i}": KINDS["mlp_regression"].chain(("test", next(_KEYS)), inst.x, inst.y, inst.params, "relu", "sum")
        for i, inst in enumerate(instances)
    }
    found = {
        f"t{i}": {k: np.asarray(v, dtype=np.float64) for k, v in float32(inst).items()}
        for i, inst in enumerate(instances)
    }
    tolerances = dict.fromkeys(found["t0"], TOLERANCE)
    assert localize(chains, found, tolerances, {"dW1": {"t0", "t1", "t2"}}) is None  # said to fail: no relation breaks
    assert localize(chains, found, tolerances, {}) is None  # nothing failed: nothing to localize


def test_a_wrong_forward_pass_is_not_localized():
    localization, _ = located(mlp_trials([2, 10, 10, 1]), mutant(BY_ID["gradients_after_update"]))
    assert localization is None  # the prediction already differs: no backward relation is to blame


def test_gradients_of_other_weights_given_without_a_prediction_are_not_blamed_on_the_output_relation():
    """A notebook's .dat holds gradients only: computed after a training step, they break the output's
    relations with no known repair, as a wrong forward pass would; nothing is localized."""

    def gradients(inst):
        return {k: v for k, v in BY_ID["gradients_after_update"].compute(inst).items() if k.startswith("d")}

    assert located(mlp_trials([2, 10, 10, 1]), gradients)[0] is None


def test_trials_that_disagree_on_the_repair_keep_the_layer_without_one():
    instances = mlp_trials([2, 10, 10, 1])
    first, second = at_layer(BY_ID["hidden_derivative_omitted"], 1), at_layer(BY_ID["derivative_at_activation"], 1)
    localization, _ = located(instances, lambda inst: (first if inst is instances[0] else second).compute(inst))
    assert localization.breaks == (Break(1, None),)


def test_a_dw_no_known_change_explains_is_reported_and_the_walk_goes_on_below():
    local = at_layer(BY_ID["hidden_derivative_omitted"], 1)

    def student(inst):
        values = local.compute(inst)
        return {**values, "dW2": values["dW2"] + 0.01}

    localization, chain = located(mlp_trials([2, 10, 10, 1]), student)
    assert localization.breaks == (Break(2, Repair(dW="unknown")), Break(1, Repair(delta="hidden_derivative_omitted")))
    assert ids(chain, localization.breaks[0]) is None
    assert describe(chain, localization)[1].startswith(
        "layer 2: your dW2 does not follow from δ2 by dW2 = δ2 a1ᵀ, and no single known change explains it; layer 1:"
    )


@pytest.mark.parametrize(
    "mistake_id, layer",
    [
        ("logits_instead_of_probs", 2),
        ("hidden_derivative_omitted", 1),
        ("preactivation_in_weight_gradient", 2),
        ("relu_derivative_at_zero", 1),
    ],
)
def test_the_softmax_classifiers_own_relations_place_its_mistakes(mistake_id, layer):
    instances = classifier_trials()
    if mistake_id == "relu_derivative_at_zero":
        for inst in instances:
            inst.params["W1"][0] = 0.0  # z1 = 0 for unit 0 of every example
    localization, chain = located(instances, mutant(BY_ID[mistake_id]))
    assert localization.breaks[0].layer == layer and ids(chain, localization.breaks[0]) == [mistake_id]
