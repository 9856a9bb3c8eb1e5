"""Ba, the shared context in which knowledge is created (Nonaka, Toyama and Konno 2000).

The paper types ba by two dimensions of interaction: whether it is individual or collective, and
whether it happens face-to-face or through virtual media (books, manuals, memos, emails,
teleconferences):

| | face-to-face | virtual |
| --- | --- | --- |
| individual | originating | exercising |
| collective | dialoguing | systemizing |

An item's interaction is *individual* when at most two people take part (its authors together with
its participants, counted once each; an item with no known people counts as individual), and
*collective* when more do.
"""

from __future__ import annotations

BA_TYPES = ("originating", "dialoguing", "systemizing", "exercising")
INDIVIDUAL_MAX_PEOPLE = 2
_BA = {
    ("individual", "face-to-face"): "originating",
    ("collective", "face-to-face"): "dialoguing",
    ("collective", "virtual"): "systemizing",
    ("individual", "virtual"): "exercising",
}


def interaction_of(n_people: int) -> str:
    """`individual` for at most two people, `collective` for more."""
    return "individual" if n_people <= INDIVIDUAL_MAX_PEOPLE else "collective"


def ba_of(n_people: int, medium: str) -> str:
    """The ba of an interaction among `n_people` distinct people over `medium`.

    `medium` is `face-to-face` or `virtual`; anything else raises ValueError, since a wrong medium
    would silently move items between quadrants.
    """
    if n_people < 0:
        raise ValueError(f"n_people must be >= 0, got {n_people}")
    try:
        return _BA[(interaction_of(n_people), medium)]
    except KeyError:
        raise ValueError(f"unknown medium {medium!r}; expected 'face-to-face' or 'virtual'") from None
