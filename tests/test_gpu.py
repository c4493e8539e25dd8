"""SPoSE and VICE on a CUDA device: same code, same answers as on the CPU.

Skipped where torch sees no CUDA device (CI has none); run on a GPU machine with
``python -m pytest tests/test_gpu.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_spose import sparse_embedding

from oddoneout.embed.evaluate import odd_one_out_accuracy
from oddoneout.embed.recovery import best_match_r
from oddoneout.embed.spose import SPoSE
from oddoneout.embed.torch_choice import add_cross_entropy_gradient, pair_logits, triplet_cross_entropy
from oddoneout.embed.vice import VICE
from oddoneout.triplets import odd_one_out_probabilities, sample_triplets

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

N_TRUE = 5


@pytest.fixture(scope="module")
def data():
    truth = sparse_embedding(100, N_TRUE, seed=0)
    triplets = sample_triplets(truth, 80_000, seed=1)
    train, test = triplets.subset(np.arange(60_000)), triplets.subset(np.arange(60_000, 80_000))
    generating = odd_one_out_accuracy(odd_one_out_probabilities(truth, test.indices))
    return truth, train, test, generating


@pytest.mark.parametrize("soft", [False, True])
def test_closed_form_gradient_equals_autograd_on_cuda(soft):
    rng = np.random.default_rng(1)
    weights = torch.as_tensor(rng.random((50, 8)), device="cuda")
    indices = torch.as_tensor(np.vstack([rng.permutation(50)[:3] for _ in range(500)]), device="cuda")
    targets = torch.as_tensor(rng.dirichlet(np.ones(3), size=500), device="cuda") if soft else None
    leaf = weights.clone().requires_grad_(True)
    triplet_cross_entropy(pair_logits(leaf, indices), targets).backward()
    grad = torch.zeros_like(weights)
    add_cross_entropy_gradient(weights, indices, targets, grad)
    np.testing.assert_allclose(grad.cpu().numpy(), leaf.grad.cpu().numpy(), rtol=1e-9, atol=1e-14)


def test_spose_on_cuda_matches_cpu(data):
    truth, train, test, generating = data
    settings = {"n_dims": 20, "l1": 0.01, "batch_size": 1024, "seed": 0}
    on_cpu = SPoSE(device="cpu", **settings).fit(train)
    on_gpu = SPoSE(device="cuda", **settings).fit(train)
    assert on_gpu.weights_.shape[1] == on_cpu.weights_.shape[1] == N_TRUE
    assert abs(on_gpu.score(test) - on_cpu.score(test)) <= 0.005
    assert abs(on_gpu.score(test) - generating) <= 0.01
    assert best_match_r(truth, on_gpu.weights_).min() >= 0.95
    assert on_gpu.to_embedding().metadata["device"] == "cuda"


def test_vice_on_cuda_recovers_the_truth(data):
    truth, train, test, generating = data
    model = VICE(n_dims=20, n_samples_train=2, max_epochs=100, seed=0, device="cuda").fit(train)
    assert abs(model.weights_.shape[1] - N_TRUE) <= 1
    assert best_match_r(truth, model.weights_).min() >= 0.9
    assert abs(model.score(test) - generating) <= 0.015


def test_relaxed_spose_on_cuda_matches_cpu(data):
    truth, train, test, generating = data
    settings = {"n_dims": 20, "l1": 0.02, "batch_size": 1024, "seed": 0, "relax": True}
    on_cpu = SPoSE(device="cpu", **settings).fit(train)
    on_gpu = SPoSE(device="cuda", **settings).fit(train)
    assert on_gpu.relaxed_from_epoch_ is not None
    assert on_gpu.weights_.shape[1] == on_cpu.weights_.shape[1] == N_TRUE
    assert abs(on_gpu.score(test) - on_cpu.score(test)) <= 0.005
    assert best_match_r(truth, on_gpu.weights_).min() >= 0.95
