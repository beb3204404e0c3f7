"""What a localization says: the course's notation for each relation and stand-in, and the catalogue ids a
break is named by (a factor at the output is the missing 2, a sign, a mean for a sum …)."""

import numpy as np
import pytest
from conftest import init_params

from grader.diagnose.localize import Break, Localization, Repair
from grader.diagnose.localize_text import describe, ids
from grader.kinds import KINDS
from reference import mlp_regression


def mlp_chain(layers=(2, 10, 10, 1), activation="sigmoid", reduction="sum", N=1, key=None):
    rng = np.random.default_rng(0)
    params = init_params(rng, list(layers))
    x = rng.uniform(size=(N, layers[0]))
    return KINDS["mlp_regression"].chain(
        ("text", layers, activation, reduction, N, key),
        x,
        mlp_regression.target(x),
        params,
        activation,
        reduction,
    )


def classifier_chain(reduction="sum"):
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-1, 1, size=(3, 3)), np.eye(3)[[0, 2, 1]]
    return KINDS["softmax_classifier"].chain(
        ("text", "softmax", reduction),
        x,
        y,
        init_params(rng, [3, 4, 3], bias=False),
        "relu",
        reduction,
    )


def said(chain, *breaks):
    return describe(chain, Localization(tuple(breaks)))


@pytest.mark.parametrize(
    "repair, text",
    [
        (Repair(delta="derivative_at_activation"), "layer 2: your δ2 uses σ'(a2) = σ'(σ(z2)) where σ'(z2) belongs"),
        (
            Repair(delta="derivative_formula_on_preactivation"),
            "layer 2: your δ2 uses z2(1 − z2) where σ'(z2) = a2(1 − a2) belongs",
        ),
        (Repair(delta="backprop_through_w_instead_of_wt"), "layer 2: your δ2 sends δ3 back through W3 instead of W3ᵀ"),
        (Repair(delta="factor", factor=3.0), "layer 2: your δ2 is 3 × (W3ᵀδ3) ⊙ σ'(z2)"),
        (Repair(delta="factor", factor=-1.0), "layer 2: your δ2 is −((W3ᵀδ3) ⊙ σ'(z2)), the wrong sign"),
        (Repair(dW="preactivation_in_weight_gradient"), "layer 2: your dW2 is δ2 z1ᵀ where δ2 a1ᵀ belongs"),
        (Repair(dW="next_activation_in_weight_gradient"), "layer 2: your dW2 is δ2 a2ᵀ where δ2 a1ᵀ belongs"),
        (Repair(dW="transposed_gradient"), "layer 2: your dW2 is (δ2 a1ᵀ)ᵀ, transposed"),
        (Repair(dW="factor", factor=0.5), "layer 2: your dW2 is 0.5 × δ2 a1ᵀ"),
        (
            Repair(
                delta="backprop_through_w_instead_of_wt+hidden_derivative_omitted",
                dW="preactivation_in_weight_gradient",
            ),
            "layer 2: your δ2 sends δ3 back through W3 instead of W3ᵀ and your δ2 equals W3ᵀδ3 without σ'(z2) "
            "and your dW2 is δ2 z1ᵀ where δ2 a1ᵀ belongs",
        ),
    ],
)
def test_each_stand_in_is_said_in_the_notation_of_the_course(repair, text):
    chain = mlp_chain(layers=(4, 5, 5, 1), key=1)
    assert said(chain, Break(2, repair))[1] == text


def test_the_relation_that_first_breaks_is_written_out_for_the_output_a_hidden_layer_and_the_input_layer():
    chain = mlp_chain(layers=(2, 10, 10, 1), activation="tanh", reduction="mean", N=4)
    assert said(chain, Break(3, Repair(delta="factor", factor=0.5)))[0] == "δ3 = dL/dŷ = 2(ŷ − y)/4"
    assert said(chain, Break(2, Repair(delta="hidden_derivative_omitted")))[0] == "δ2 = (W3ᵀδ3) ⊙ tanh'(z2)"
    assert said(chain, Break(1, Repair(dW="unknown")))[0] == "dW1 = δ1 xᵀ"
    assert said(chain, Break(1, Repair(db="bias_gradient_not_summed")))[1] == (
        "layer 1: your db1 keeps one row per example (δ1 itself, shape (4, n)) where Σ_batch δ1 belongs"
    )
    assert said(chain, Break(1, None))[1] == (
        "layer 1: your dW1 and db1 do not follow from your δ2 by δ1 = (W2ᵀδ2) ⊙ tanh'(z1), dW1 = δ1 xᵀ, "
        "db1 = Σ_batch δ1, and no single known change explains them"
    )


def test_the_classifiers_relations_use_its_own_names():
    chain = classifier_chain()
    assert said(chain, Break(2, Repair(delta="logits_instead_of_probs"))) == (
        "δ2 = probs − y",
        "layer 2: your δ2 is z2 − y, from the logits, where probs − y belongs",
    )
    assert (
        said(chain, Break(2, Repair(dW="preactivation_in_weight_gradient")))[1]
        == "layer 2: your dW2 is δ2 z1ᵀ where δ2 hᵀ belongs"
    )
    assert (
        said(chain, Break(1, Repair(delta="hidden_derivative_omitted")))[1]
        == "layer 1: your δ1 equals W2ᵀδ2 without ReLU'(z1)"
    )


@pytest.mark.parametrize(
    "factor, reduction, named",
    [
        (0.5, "sum", ["missing_factor_2"]),
        (-1.0, "sum", ["sign_flip"]),
        (-0.5, "sum", ["sign_flip", "missing_factor_2"]),
        (2.0, "sum", ["accumulated_gradients"]),
        (0.25, "sum", ["mean_instead_of_sum"]),
        (4.0, "mean", ["sum_instead_of_mean"]),
        (3.0, "sum", None),
    ],
)
def test_a_factor_of_the_whole_backward_pass_is_named_by_its_value(factor, reduction, named):
    chain = mlp_chain(reduction=reduction, N=4)  # a mean divides by N · outputs = 4
    assert ids(chain, Break(3, Repair(delta="factor", factor=factor))) == named


def test_a_factor_inside_the_net_or_an_unknown_change_has_no_catalogue_name():
    chain = mlp_chain()
    assert ids(chain, Break(2, Repair(delta="factor", factor=0.5))) is None
    assert ids(chain, Break(2, Repair(dW="unknown"))) is None
    assert ids(chain, Break(2, None)) is None
    assert (
        ids(classifier_chain(), Break(2, Repair(delta="factor", factor=0.5))) is None
    )  # no squared loss: no 2 to miss
    assert ids(chain, Break(2, Repair(delta="derivative_at_activation", dW="preactivation_in_weight_gradient"))) == [
        "derivative_at_activation",
        "preactivation_in_weight_gradient",
    ]
