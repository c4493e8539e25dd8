"""The choice rules in torch: what the estimators train and validate with.

The numpy versions, for fitted embeddings, are the trial types of :mod:`oddoneout.triplets`.

Odd-one-out: column 2 of a triplet is the observed odd one out; pair logit ``p`` is the
similarity of the pair :data:`~oddoneout.triplets.KEPT_PAIRS` ``[p]``, as in numpy. Its
cross-entropy has a closed-form gradient (:func:`add_cross_entropy_gradient`).

Anchor and ranked trials: the Plackett-Luce log-likelihood of the reference's similarities
(:func:`reference_log_likelihood`, see :mod:`oddoneout.triplets.reference`), its gradient in
closed form too (:func:`add_reference_gradient`).

A minibatch may mix trial types (:class:`TrialTensors`, one per type);
:func:`add_batch_gradient` and :func:`batch_negative_log_likelihood` take the mean over all its trials.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from oddoneout.triplets import KEPT_PAIRS, ODD_ONE_OUT, TrialType

#: For each column ``p``: ``(k, q)`` for each pair logit ``k`` whose pair holds ``p``, ``q`` the pair's other item.
_PARTNERS = tuple(
    tuple((k, q) for k, pair in enumerate(KEPT_PAIRS) if p in pair for q in pair if q != p) for p in range(3)
)


def row_pair_logits(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Pair logits of triplets given by the vectors of their three items.

    Parameters
    ----------
    a, b, c : Tensor of shape (n, n_dims)
        Vectors of the items in columns 0, 1 and 2.

    Returns
    -------
    Tensor of shape (n, 3)
        Column ``p`` is the dot product of the two items other than column ``p``; its softmax is
        the probability that column ``p`` is the odd one out.
    """
    rows = (a, b, c)
    return torch.stack([(rows[q] * rows[r]).sum(1) for q, r in KEPT_PAIRS], dim=1)


def pair_logits(weights: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Similarity of the pair that remains when each column is removed (see :func:`row_pair_logits`).

    Parameters
    ----------
    weights : Tensor of shape (n_items, n_dims)
    indices : Tensor of shape (n, 3), int64

    Returns
    -------
    Tensor of shape (n, 3)
    """
    return row_pair_logits(weights[indices[:, 0]], weights[indices[:, 1]], weights[indices[:, 2]])


def triplet_cross_entropy(logits: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy of the odd-one-out choice.

    Parameters
    ----------
    logits : Tensor of shape (n, 3)
        Output of :func:`pair_logits`.
    targets : Tensor of shape (n, 3), optional
        Soft labels; ``None`` means the hard choice, column 2.
    """
    log_probs = F.log_softmax(logits, dim=1)
    if targets is None:
        return -log_probs[:, 2].mean()
    return -(targets * log_probs).sum(1).mean()


def add_cross_entropy_gradient(
    weights: torch.Tensor,
    indices: torch.Tensor,
    targets: torch.Tensor | None,
    grad: torch.Tensor,
    n_batch: int | None = None,
) -> torch.Tensor:
    """Add the gradient of the mean cross-entropy of a minibatch to ``grad``; return the loss.

    The closed form of what autograd computes for
    ``triplet_cross_entropy(pair_logits(weights, indices), targets)``, without its graph: with
    ``g = softmax(logits) - targets`` (divided by the batch size), the gradient of item ``a`` of a
    triplet ``(a, b, c)`` is ``g[1] * w_c + g[2] * w_b`` (``a`` is in the pairs of columns 1 and
    2), and likewise for ``b`` and ``c``. The three item blocks are gathered with one look-up and
    scattered back with one ``index_add_``; this roughly halves the time of a training step.

    Parameters
    ----------
    weights : Tensor of shape (n_items, n_dims)
    indices : Tensor of shape (n, 3), int64
    targets : Tensor of shape (n, 3), optional
        Soft labels; ``None`` means the hard choice, column 2.
    grad : Tensor of shape (n_items, n_dims)
        Accumulator, updated in place.
    n_batch : int, optional
        Trials of the whole minibatch when these triplets are part of one mixing trial types
        (the mean is over all of them); ``None``: these triplets are the batch.

    Returns
    -------
    Tensor
        The cross-entropy of the triplets summed and divided by the batch size (a 0-d tensor).
    """
    n, n_dims = indices.shape[0], weights.shape[1]
    divisor = n if n_batch is None else n_batch
    flat = indices.T.reshape(-1)  # all a's, then all b's, then all c's
    rows = weights.index_select(0, flat).view(3, n, n_dims)
    log_probs = F.log_softmax(row_pair_logits(rows[0], rows[1], rows[2]), dim=1)
    g = log_probs.exp()
    if targets is None:
        loss = -log_probs[:, 2].sum() / divisor if n_batch is not None else -log_probs[:, 2].mean()
        g[:, 2] -= 1.0
    else:
        terms = (targets * log_probs).sum(1)
        loss = -terms.sum() / divisor if n_batch is not None else -terms.mean()
        g -= targets
    g /= divisor
    row_grads = torch.empty_like(rows)
    for p, ((k1, q1), (k2, q2)) in enumerate(_PARTNERS):
        torch.addcmul(rows[q1] * g[:, k1 : k1 + 1], rows[q2], g[:, k2 : k2 + 1], out=row_grads[p])
    grad.index_add_(0, flat, row_grads.view(-1, n_dims))
    return loss


def reference_log_likelihood(
    weights: torch.Tensor, indices: torch.Tensor, n_ranked: int, targets: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-trial log-likelihood of anchor and ranked trials in the canonical layout.

    Parameters
    ----------
    weights : Tensor of shape (n_items, n_dims)
    indices : Tensor of shape (n, 1 + n_options), int64
        Reference, ranked options in rank order, other options.
    n_ranked : int
        Options ranked per trial.
    targets : Tensor of shape (n, 1 + n_options), optional
        Soft labels of a one-choice trial (column 0, the reference, is 0).

    Returns
    -------
    Tensor of shape (n,)
    """
    logits = (weights[indices[:, :1]] * weights[indices[:, 1:]]).sum(-1)
    if targets is not None:
        return (targets[:, 1:] * F.log_softmax(logits, dim=1)).sum(1)
    total = torch.zeros(logits.shape[0], dtype=logits.dtype, device=logits.device)
    for rank in range(n_ranked):
        total = total + logits[:, rank] - torch.logsumexp(logits[:, rank:], dim=1)
    return total


def add_reference_gradient(
    weights: torch.Tensor,
    indices: torch.Tensor,
    n_ranked: int,
    targets: torch.Tensor | None,
    grad: torch.Tensor,
    n_batch: int,
) -> torch.Tensor:
    """Add the gradient of the summed negative log-likelihood of anchor/ranked trials, divided by
    ``n_batch``, to ``grad``; return that loss.

    The closed form of what autograd computes for :func:`reference_log_likelihood`: with logits
    ``s_j = w_ref . w_j`` and ``g_j = dloss / ds_j`` (for each rank ``r``, the softmax over the
    options from ``r`` on, minus 1 at the option ranked ``r``), the reference's gradient is
    ``sum_j g_j w_j`` and option ``j``'s is ``g_j w_ref``. One look-up gathers the rows and one
    ``index_add_`` scatters them back.
    """
    n, width, n_dims = indices.shape[0], indices.shape[1], weights.shape[1]
    flat = indices.reshape(-1)
    rows = weights.index_select(0, flat).view(n, width, n_dims)
    reference, options = rows[:, 0], rows[:, 1:]
    logits = torch.einsum("nd,nkd->nk", reference, options)
    g = torch.zeros_like(logits)
    if targets is not None:
        log_probs = torch.log_softmax(logits, dim=1)
        loss = -(targets[:, 1:] * log_probs).sum()
        g += log_probs.exp() - targets[:, 1:]
    else:
        loss = torch.zeros((), dtype=logits.dtype, device=logits.device)
        for rank in range(n_ranked):
            log_probs = torch.log_softmax(logits[:, rank:], dim=1)
            loss = loss - log_probs[:, 0].sum()
            g[:, rank:] += log_probs.exp()
            g[:, rank] -= 1.0
    g /= n_batch
    row_grads = torch.empty_like(rows)
    row_grads[:, 0] = torch.einsum("nk,nkd->nd", g, options)
    row_grads[:, 1:] = g.unsqueeze(2) * reference.unsqueeze(1)
    grad.index_add_(0, flat, row_grads.view(-1, n_dims))
    return loss / n_batch


def log_likelihood(
    trial_type: TrialType, weights: torch.Tensor, indices: torch.Tensor, targets: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-trial log-likelihood of ``trial_type``'s answers (with soft labels: minus the cross-entropy).

    Returns
    -------
    Tensor of shape (n,)
    """
    if trial_type == ODD_ONE_OUT:
        log_probs = F.log_softmax(pair_logits(weights, indices), dim=1)
        return log_probs[:, 2] if targets is None else (targets * log_probs).sum(1)
    return reference_log_likelihood(weights, indices, trial_type.n_ranked, targets)


@dataclass
class TrialTensors:
    """Trials of one type on a device: indices in the canonical layout and optional soft labels."""

    trial_type: TrialType
    indices: torch.Tensor
    targets: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.indices.shape[0])


def batch_negative_log_likelihood(weights: torch.Tensor, batch: list[TrialTensors]) -> torch.Tensor:
    """Mean negative log-likelihood (cross-entropy) over all trials of a minibatch of one or more types."""
    if len(batch) == 1 and batch[0].trial_type == ODD_ONE_OUT:
        part = batch[0]
        return triplet_cross_entropy(pair_logits(weights, part.indices), part.targets)
    n = sum(len(part) for part in batch)
    return -sum(log_likelihood(part.trial_type, weights, part.indices, part.targets).sum() for part in batch) / n


def add_batch_gradient(weights: torch.Tensor, batch: list[TrialTensors], grad: torch.Tensor) -> torch.Tensor:
    """Add the gradient of :func:`batch_negative_log_likelihood` to ``grad``; return the loss.

    Both forms are closed (:func:`add_cross_entropy_gradient`, :func:`add_reference_gradient`), without autograd.
    """
    if len(batch) == 1 and batch[0].trial_type == ODD_ONE_OUT:
        return add_cross_entropy_gradient(weights, batch[0].indices, batch[0].targets, grad)
    n = sum(len(part) for part in batch)
    loss = torch.zeros((), dtype=weights.dtype, device=weights.device)
    for part in batch:
        if part.trial_type == ODD_ONE_OUT:
            loss = loss + add_cross_entropy_gradient(weights, part.indices, part.targets, grad, n)
        else:
            kind = part.trial_type
            loss = loss + add_reference_gradient(weights, part.indices, kind.n_ranked, part.targets, grad, n)
    return loss


def choice_probabilities(trial_type: TrialType, weights: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """First-choice probabilities laid out like the items, in float64 (a reference column is 0).

    Returns
    -------
    Tensor of shape (n, n_shown)
    """
    if trial_type == ODD_ONE_OUT:
        return torch.softmax(pair_logits(weights, indices).double(), dim=1)
    logits = (weights[indices[:, :1]] * weights[indices[:, 1:]]).sum(-1).double()
    return F.pad(torch.softmax(logits, dim=1), (1, 0))
