"""TUNIT's guiding-network losses: IIC (with the official clamping) and MoCo over a key queue,
against formulas written out here (values and gradients)."""

from __future__ import annotations

import math

import pytest
import torch

from i2i_fast.losses import KeyQueue, iic_joint, iic_loss, moco_loss


def iic_by_hand(p, p_tf, eps=1e-10, entropy_weight=1.0):
    k = p.shape[1]
    joint = sum(torch.outer(p[n], p_tf[n]) for n in range(p.shape[0]))
    joint = (joint + joint.t()) / 2
    joint = joint / joint.sum()
    rows, cols = joint.sum(1), joint.sum(0)
    total = 0.0
    for i in range(k):
        for j in range(k):
            pij = max(float(joint[i, j]), eps)
            total += pij * (math.log(pij) - entropy_weight * math.log(max(float(rows[i]), eps))
                            - entropy_weight * math.log(max(float(cols[j]), eps)))
    return -total


def test_iic_loss_values():
    torch.manual_seed(0)
    p = torch.softmax(torch.randn(6, 4, dtype=torch.float64), 1)
    p_tf = torch.softmax(torch.randn(6, 4, dtype=torch.float64), 1)
    assert iic_loss(p, p_tf).item() == pytest.approx(iic_by_hand(p, p_tf), rel=1e-12)
    joint = iic_joint(p, p_tf)
    torch.testing.assert_close(joint, joint.t())
    assert joint.sum().item() == pytest.approx(1.0)
    # confident, consistent and balanced assignments reach the minimum −log K (up to the
    # 12 clamped zero entries of the joint, 1e-10 · (log 1e-10 − 2 log 1/4) each)
    one_hot = torch.eye(4, dtype=torch.float64).repeat(2, 1)
    clamped = 12 * 1e-10 * (math.log(1e-10) - 2 * math.log(0.25))
    assert iic_loss(one_hot, one_hot).item() == pytest.approx(-math.log(4) - clamped, rel=1e-12)
    assert iic_loss(one_hot, one_hot).item() == pytest.approx(iic_by_hand(one_hot, one_hot))


def test_iic_loss_clamps_empty_entries_without_nan():
    """Entries of the joint below eps are clamped (the official torch.where), so a joint with
    zeros gives a finite loss and finite gradients."""
    logits = torch.tensor([[30.0, -30.0, -30.0], [30.0, -30.0, -30.0]], dtype=torch.float64,
                          requires_grad=True)
    loss = iic_loss(torch.softmax(logits, 1), torch.softmax(logits, 1))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert loss.item() == pytest.approx(iic_by_hand(torch.softmax(logits, 1).detach(),
                                                    torch.softmax(logits, 1).detach()))


def test_iic_loss_gradients():
    torch.manual_seed(1)
    logits = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    logits_tf = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b: iic_loss(torch.softmax(a, 1), torch.softmax(b, 1)), (logits, logits_tf))


@pytest.mark.parametrize("weight", [0.5, 2.0, 3])
def test_iic_loss_entropy_weight(weight):
    """λ: −Σ P_ij (log P_ij − λ log P_i − λ log P_j) = H(z, z') − λ (H(z) + H(z')) (values and
    gradients); λ = 1 is the plain loss."""
    torch.manual_seed(2)
    p = torch.softmax(torch.randn(7, 3, dtype=torch.float64), 1)
    p_tf = torch.softmax(torch.randn(7, 3, dtype=torch.float64), 1)
    loss = iic_loss(p, p_tf, entropy_weight=weight).item()
    assert loss == pytest.approx(iic_by_hand(p, p_tf, entropy_weight=weight), rel=1e-12)
    joint = iic_joint(p, p_tf)

    def entropy(q):
        return -(q * q.log()).sum().item()

    assert loss == pytest.approx(entropy(joint) - weight * (entropy(joint.sum(1))
                                                           + entropy(joint.sum(0))), rel=1e-12)
    assert iic_loss(p, p_tf, entropy_weight=1.0).item() == iic_loss(p, p_tf).item()
    assert loss != pytest.approx(iic_loss(p, p_tf).item())
    logits = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    logits_tf = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b: iic_loss(torch.softmax(a, 1), torch.softmax(b, 1), entropy_weight=weight),
        (logits, logits_tf))


def test_iic_loss_bad_inputs_are_named():
    for bad in (0.0, -1.0, float("nan"), True, "2"):
        with pytest.raises(ValueError, match="entropy_weight: expected a number > 0"):
            iic_loss(torch.full((4, 3), 1 / 3), torch.full((4, 3), 1 / 3), entropy_weight=bad)
    with pytest.raises(ValueError, match="p: expected"):
        iic_loss(torch.ones(4), torch.ones(4))
    with pytest.raises(ValueError, match="p_tf: expected the shape"):
        iic_loss(torch.ones(4, 3), torch.ones(4, 2))


def moco_by_hand(q, k, queue, t):
    total = 0.0
    for n in range(q.shape[0]):
        logits = [float(q[n] @ k[n]) / t] + [float(q[n] @ m) / t for m in queue]
        top = max(logits)
        total += -(logits[0] - top - math.log(sum(math.exp(v - top) for v in logits)))
    return total / q.shape[0]


def test_moco_loss_values_and_gradients():
    torch.manual_seed(2)
    q = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    k = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    queue = torch.randn(7, 5, dtype=torch.float64)
    loss = moco_loss(q, k, queue, 0.07)
    assert loss.item() == pytest.approx(moco_by_hand(q.detach(), k.detach(), queue, 0.07),
                                        rel=1e-12)
    loss.backward()
    assert k.grad is None  # the key is detached, as in MoCo
    # d loss / d q_n = (Σ_j softmax_j v_j − k_n) / (t N), v = [k_n, queue...]
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue.t()], 1).detach() / 0.07
    weights = torch.softmax(logits, 1)
    values = torch.cat([k.detach().unsqueeze(1), queue.expand(4, -1, -1)], 1)
    expected = ((weights.unsqueeze(2) * values).sum(1) - k.detach()) / (0.07 * 4)
    torch.testing.assert_close(q.grad, expected, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(lambda a: moco_loss(a, k, queue, 0.5), (q,))
    # an empty queue: only the positive, loss 0
    assert moco_loss(q, k, queue[:0]).item() == 0.0


def test_moco_loss_bad_inputs_are_named():
    q = torch.randn(2, 3)
    with pytest.raises(ValueError, match="query"):
        moco_loss(torch.randn(3), q, q)
    with pytest.raises(ValueError, match="key"):
        moco_loss(q, torch.randn(2, 4), q)
    with pytest.raises(ValueError, match="queue"):
        moco_loss(q, q, torch.randn(5, 4))
    with pytest.raises(ValueError, match="temperature"):
        moco_loss(q, q, q, 0.0)


def test_key_queue_keeps_the_last_keys_in_order_and_round_trips():
    queue = KeyQueue(5, 2)
    assert len(queue) == 0 and queue.keys().shape == (0, 2)
    first = torch.arange(6.0).reshape(3, 2)
    queue.enqueue(first)
    torch.testing.assert_close(queue.keys(), first)
    second = torch.arange(6.0, 12.0).reshape(3, 2)
    queue.enqueue(second)
    torch.testing.assert_close(queue.keys(), torch.cat([first, second])[-5:])
    copy = KeyQueue(5, 2)
    copy.load_state_dict(queue.state_dict())
    torch.testing.assert_close(copy.keys(), queue.keys())
    queue.clear()
    assert len(queue) == 0
    with pytest.raises(ValueError, match="keys"):
        queue.enqueue(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="size"):
        KeyQueue(0, 2)
