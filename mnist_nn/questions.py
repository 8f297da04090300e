"""The walkthrough's questions: answer(name, value) checks a learner's answer, a number or a
letter, and explains it afterwards; a wrong answer names the misconception that usually gives
it. Results go to exercises.progress() with the exercises'."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnist_nn.exercises import NOT_ATTEMPTED, Result, record, register_questions, wrapped


@dataclass(frozen=True)
class Question:
    """A numeric question (`right` a number or tuple, `wrong` maps answers to misconceptions) or a
    multiple-choice one (`choices` maps letters to (is it right, why))."""

    text: str
    explanation: str
    right: object = None
    wrong: tuple = ()
    choices: tuple = ()


_N_PARAMETERS = 784 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10

QUESTIONS = {
    "uniform_loss": Question(
        "What is the cross-entropy loss of a network that gives every one of the 10 classes "
        "probability 0.1? (a number, 3 decimals)",
        "L = -log P[right class] = -ln(0.1) = ln 10 = 2.303 for every image, so the mean is "
        "2.303 too: the loss of an untrained network, a check of the wiring.",
        right=float(np.log(10)),
        wrong=(
            (0.1, "0.1 is the probability of the right class; the loss is minus its log"),
            (1.0, "that is log base 10; NumPy's np.log, and the loss, use the natural log"),
            (-2.303, "the loss is minus the log: -ln(0.1) = +2.303, never negative"),
            (0.0, "0 is the loss of a network sure of every right answer, not of a guesser"),
        ),
    ),
    "n_parameters": Question(
        "How many weights and biases does the 784-32-16-10 network learn? (an integer)",
        f"784 x 32 + 32, 32 x 16 + 16, 16 x 10 + 10: {_N_PARAMETERS:,} in all, nearly all in "
        "the first layer (one weight per pixel per unit).",
        right=_N_PARAMETERS,
        wrong=(
            (784 * 32 + 32 * 16 + 16 * 10, "that leaves out the biases, one per unit: 58 more"),
            (784 + 32 + 16 + 10, "that counts units; each layer has inputs x outputs weights"),
            (784 * 32 * 16 * 10, "layers do not multiply: add up each layer's D x M + M"),
        ),
    ),
    "zero_weights": Question(
        "Every weight and bias of the 784-32-16-10 ReLU network starts at 0. What happens when "
        "it trains? a) it learns as usual, only slower; b) only the output biases learn, so it "
        "predicts the most frequent class for every image; c) the loss becomes NaN; d) each hidden "
        "unit learns a different feature",
        "With W = 0 every Z is 0 (plus a bias of 0), every ReLU outputs 0, so dW = A^T dZ = 0 and "
        "dA = dZ W^T = 0: no gradient reaches any weight. Only b3 gets (P - Y) summed over the "
        "batch, so the network learns the class frequencies. Random starts break that symmetry.",
        choices=(
            ("a", False, "no gradient at all reaches the weights: dW = A^T dZ with A = 0"),
            ("b", True, ""),
            ("c", False, "nothing overflows: every logit stays equal to b3, a small number"),
            ("d", False, "every unit of a layer computes the same (0): nothing tells them apart"),
        ),
    ),
    "dW1_shape": Question(
        "With a batch of 128 images, what is the shape of dW1, the gradient of the first "
        "layer's weights of 784-32-16-10? (a tuple)",
        "A gradient has the shape of what it is the gradient of: W1 is (784, 32), so dW1 = X^T "
        "dZ1 = (784, 128) @ (128, 32) = (784, 32). The batch is summed away.",
        right=(784, 32),
        wrong=(
            ((32, 784), "transposed: dW1 has W1's shape, (D, M) = (784, 32)"),
            ((128, 32), "that is dZ1, one row per image; dW1 = X^T dZ1 sums over the images"),
            ((128, 784), "that is X (or dX): dW1 has W1's shape"),
            ((128, 784, 32), "one dW per image, summed over the batch: X^T dZ1 does that sum"),
        ),
    ),
    "validation_above_training": Question(
        "In epoch 1 the validation accuracy is often higher than the training accuracy. Why? "
        "a) the validation images are easier; b) the training accuracy is averaged over the "
        "epoch while the weights were still poor, the validation accuracy is measured at its "
        "end; c) the network overfits; d) the validation set is smaller",
        "The training figure averages all the epoch's batches, most of them seen by a network "
        "worse than the one at the end; validation runs once, with the end-of-epoch weights. "
        "(Dropout, when on, also lowers the training figure only.)",
        choices=(
            ("a", False, "both come from the same images, split at random: neither is easier"),
            ("b", True, ""),
            ("c", False, "overfitting is the other way round: training above validation"),
            ("d", False, "a smaller set is noisier, but not higher on average"),
        ),
    ),
    "huge_learning_rate": Question(
        "Plain SGD on the 784-32-16-10 network with learning rate 100. What does the loss do? "
        "a) falls faster than with 0.1; b) stays where it is; c) jumps up and becomes inf or "
        "NaN within a few steps; d) falls, then rises slowly",
        "Each step moves the weights 100 times the gradient, far past the minimum: the logits "
        "grow huge, the right class's probability rounds to 0, the loss to inf, and then NaN. "
        "fit stops with TrainingDivergedError; the learning-rate range test shows where.",
        choices=(
            ("a", False, "a larger step overshoots the valley's floor instead of reaching it"),
            ("b", False, "the weights change a lot; they just do not change in a useful way"),
            ("c", True, ""),
            ("d", False, "that is overfitting with a good learning rate, over many epochs"),
        ),
    ),
    "softmax_of_constant": Question(
        "What does softmax give for the logits (3, 3, 3, 3, 3, 3, 3, 3, 3, 3) + 1000? (the "
        "probability of class 0, a number)",
        "Softmax depends only on the differences between logits: all ten are equal, so each gets "
        "1/10, whatever constant is added. That is why subtracting each row's maximum is safe.",
        right=0.1,
        wrong=(
            (1.0, "no class stands out: the ten equal logits share the probability"),
            (0.0, "np.exp(1003) overflows, but softmax itself does not: shift by the maximum"),
        ),
    ),
}
register_questions(QUESTIONS)


def answer(name: str, value) -> Result:
    """Check `value` as the answer to question `name`, print why it is right or wrong, and
    return the Result; None (not answered yet) is reported as such."""
    if name not in QUESTIONS:
        raise ValueError(f"unknown question {name!r}; the questions are {list(QUESTIONS)}")
    question = QUESTIONS[name]
    if value is None or value is ...:
        result = Result(name, False, NOT_ATTEMPTED, f"{name}: not answered yet")
    elif question.choices:
        result = _choice(name, question, str(value).strip().lower())
    else:
        result = _number(name, question, value)
    record(result)
    print(wrapped(result.message))
    return result


def _choice(name: str, question: Question, letter: str) -> Result:
    for choice, right, why in question.choices:
        if choice == letter:
            if right:
                return Result(name, True, None, f"✓ {name}: right. {question.explanation}")
            message = f"✗ {name}: not {letter}: {why}. Try again."
            return Result(name, False, "misconception", message)
    letters = ", ".join(choice for choice, _, _ in question.choices)
    return Result(name, False, "no_such_choice", f"✗ {name}: answer one of {letters}")


def _number(name: str, question: Question, value) -> Result:
    def near(a, b) -> bool:
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        return a.shape == b.shape and bool(np.allclose(a, b, rtol=2e-3, atol=1e-3))

    try:
        np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return Result(name, False, "not_a_number", f"✗ {name}: answer with a number or a tuple")
    if near(value, question.right):
        return Result(name, True, None, f"✓ {name}: right. {question.explanation}")
    for wrong, why in question.wrong:
        if near(value, wrong):
            return Result(name, False, "misconception", f"✗ {name}: {why}. Try again.")
    return Result(name, False, "wrong", f"✗ {name}: {value} is not it. Try again.")
