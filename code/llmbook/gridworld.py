"""Grounding in a grid world: a language planner, and what the world lets it do.

A square grid is split by a wall with one door. The agent starts on the left; the goal
is on the right. The agent acts through five *skills*, each a short English phrase
(:data:`SKILLS`); a skill either can be carried out in the current world (its
*affordance* is 1: :func:`feasible`) or cannot (0), and :func:`apply` carries it out:

* ``pick up the key``: walk to the key (along free cells) and hold it;
* ``open the door``: with the key, walk next to the locked door and open it;
* ``move the box``: walk next to the box and push it out of the way;
* ``go to the goal``: walk to the goal;
* ``done``: stop; the episode succeeds if the agent stands on the goal.

Worlds come in three kinds (:data:`KINDS`, :func:`make_world`): ``"usual"`` (locked
door, key on the agent's side), ``"open door"`` (the door is open and there is no key)
and ``"box"`` (a box stands in front of the locked door). Every world made is solvable
(:func:`oracle_plan` finds a shortest plan by breadth-first search over skills).

A *planner* scores each skill's text given the task and the skills done so far
(``score(history, skill) -> log-probability``). :func:`propose` writes a whole plan
from the scores alone, before acting, as a text-only model would; :func:`execute` runs
it. :func:`saycan` chooses, at every step, the skill with the highest
``log P_LM(skill | history) + log affordance(world, skill)`` (Ahn et al. 2022), so the
language model says what is useful and the world says what is possible.
"""
from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from llmbook._validate import finite, positive_int

__all__ = ["KINDS", "PROMPT", "SKILLS", "Episode", "World", "apply", "execute",
           "feasible", "make_world", "oracle_plan", "plan_corpus", "plan_text", "propose",
           "saycan", "skill_logprob"]

SKILLS: tuple[str, ...] = ("pick up the key", "open the door", "move the box",
                           "go to the goal", "done")
KINDS: tuple[str, ...] = ("usual", "open door", "box")
PROMPT = "task : reach the goal . plan :"

Cell = tuple[int, int]
Score = Callable[[Sequence[str], str], float]
Affordance = Callable[["World", str], float]


@dataclass(frozen=True)
class World:
    """One state of the grid. Cells are ``(row, col)``; ``blocked`` holds the wall and
    rocks (never passable); the door cell is passable only when ``door_open``; the box
    cell is never passable."""

    size: int
    blocked: frozenset[Cell]
    door: Cell
    door_open: bool
    key: Cell | None
    box: Cell | None
    goal: Cell
    agent: Cell
    has_key: bool = False
    stopped: bool = False

    def free(self, cell: Cell) -> bool:
        r, c = cell
        return (0 <= r < self.size and 0 <= c < self.size and cell not in self.blocked
                and cell != self.box and (cell != self.door or self.door_open))

    def render(self) -> str:
        """The grid as text: ``#`` wall/rock, ``D``/``d`` locked/open door, ``k`` key,
        ``b`` box, ``G`` goal, ``A`` agent, ``.`` free."""
        rows = []
        for r in range(self.size):
            row = ""
            for c in range(self.size):
                cell = (r, c)
                ch = "#" if cell in self.blocked else "."
                ch = ("d" if self.door_open else "D") if cell == self.door else ch
                ch = "k" if cell == self.key else "b" if cell == self.box else ch
                ch = "G" if cell == self.goal else ch
                row += "A" if cell == self.agent else ch
            rows.append(row)
        return "\n".join(rows)


def _neighbours(cell: Cell) -> list[Cell]:
    r, c = cell
    return [(r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)]


def _reach(world: World, targets: set[Cell]) -> Cell | None:
    """The nearest cell of ``targets`` the agent can walk to (breadth-first), or None."""
    seen, queue = {world.agent}, deque([world.agent])
    while queue:
        cell = queue.popleft()
        if cell in targets:
            return cell
        for nxt in _neighbours(cell):
            if nxt not in seen and world.free(nxt):
                seen.add(nxt)
                queue.append(nxt)
    return None


def _check_skill(skill: object) -> str:
    if skill not in SKILLS:
        raise ValueError(f"skill must be one of {SKILLS}, got {skill!r}")
    return skill


def _target(world: World, skill: str) -> Cell | None:
    """Where the agent ends up if ``skill`` can be carried out now, else None."""
    if world.stopped:
        return None
    if skill == "pick up the key":
        return None if world.key is None else _reach(world, {world.key})
    if skill == "open the door":
        if world.door_open or not world.has_key:
            return None
        return _reach(world, {n for n in _neighbours(world.door) if world.free(n)})
    if skill == "move the box":
        if world.box is None:
            return None
        return _reach(world, {n for n in _neighbours(world.box) if world.free(n)})
    if skill == "go to the goal":
        return _reach(world, {world.goal})
    return world.agent                                                   # done


def feasible(world: World, skill: str) -> bool:
    """Whether ``skill`` can be carried out in ``world`` (its true affordance)."""
    if not isinstance(world, World):
        raise TypeError(f"world must be a World, got {type(world).__name__}")
    return _target(world, _check_skill(skill)) is not None


def apply(world: World, skill: str) -> World:
    """The world after ``skill``; raises ``ValueError`` if it cannot be carried out."""
    if not feasible(world, skill):
        raise ValueError(f"skill {skill!r} cannot be carried out in this world")
    to = _target(world, skill)
    if skill == "pick up the key":
        return replace(world, agent=to, key=None, has_key=True)
    if skill == "open the door":
        return replace(world, agent=to, door_open=True)
    if skill == "move the box":
        return replace(world, agent=to, box=None)
    if skill == "go to the goal":
        return replace(world, agent=to)
    return replace(world, stopped=True)


def oracle_plan(world: World, max_len: int = 6) -> list[str] | None:
    """A shortest list of skills ending in ``done`` with the agent on the goal, or None."""
    positive_int("max_len", max_len)
    queue = deque([(world, [])])
    seen = {world}
    while queue:
        state, plan = queue.popleft()
        if state.agent == state.goal:
            return plan + ["done"]
        if len(plan) + 1 >= max_len:
            continue
        for skill in SKILLS[:-1]:
            if feasible(state, skill):
                nxt = apply(state, skill)
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append((nxt, plan + [skill]))
    return None


def make_world(seed: int, kind: str = "usual", size: int = 7, rocks: float = 0.12) -> World:
    """A random solvable world of ``kind`` (one of :data:`KINDS`), the same for a seed."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {seed!r}")
    if positive_int("size", size) < 5:
        raise ValueError(f"size must be at least 5 (a wall and room on both sides), got {size}")
    finite("rocks", rocks, ge=0.0, lt=0.5)
    rng = random.Random(f"{seed}/{kind}/{size}")
    wall = size // 2
    while True:
        door = (rng.randrange(1, size - 1), wall)
        approach = {(door[0], wall - 1), (door[0], wall + 1)}
        blocked = {(r, wall) for r in range(size) if r != door[0]}
        blocked |= {(r, c) for r in range(size) for c in range(size)
                    if c != wall and (r, c) not in approach and rng.random() < rocks}
        left = [(r, c) for r in range(size) for c in range(wall)
                if (r, c) not in blocked and (r, c) not in approach]
        right = [(r, c) for r in range(size) for c in range(wall + 1, size)
                 if (r, c) not in blocked and (r, c) not in approach]
        if len(left) < 2 or not right:
            continue
        agent, key = rng.sample(left, 2)
        world = World(size=size, blocked=frozenset(blocked), door=door,
                      door_open=kind == "open door", key=None if kind == "open door" else key,
                      box=(door[0], wall - 1) if kind == "box" else None,
                      goal=rng.choice(right), agent=agent)
        if oracle_plan(world) is not None:
            return world


def plan_text(plan: Sequence[str]) -> str:
    """The task prompt followed by the plan's skills, each ending with `` .``."""
    return " ".join([PROMPT] + [f"{skill} ." for skill in plan])


def plan_corpus(n_plans: int, weights: Sequence[float] = (0.9, 0.05, 0.05),
                seed: int = 0) -> list[str]:
    """The words of ``n_plans`` written-down plans, the text a planner learns from.

    Each plan is :func:`oracle_plan` of a fresh world whose kind is drawn with
    ``weights`` (one per kind of :data:`KINDS`), as :func:`plan_text`, one after another.
    """
    positive_int("n_plans", n_plans)
    if len(weights) != len(KINDS) or not all(finite("weights", w, ge=0) >= 0 for w in weights):
        raise ValueError(f"weights must be {len(KINDS)} numbers >= 0 (one per kind of "
                         f"{KINDS}), got {weights!r}")
    if sum(weights) <= 0:
        raise ValueError(f"weights must not all be zero, got {weights!r}")
    rng = random.Random(seed)
    words: list[str] = []
    for i in range(n_plans):
        kind = rng.choices(KINDS, weights=weights)[0]
        words += plan_text(oracle_plan(make_world(1_000_000 * (seed + 1) + i, kind))).split()
    return words


def skill_logprob(lm: object, history: Sequence[str], skill: str) -> float:
    """``log P(skill ., | prompt, history)`` under a word-level language model ``lm``
    (anything with ``prob(context, word)``, e.g. :class:`llmbook.ngram.NGramLM`): the sum
    of the log-probabilities of the skill's words and its closing ``.``."""
    if not callable(getattr(lm, "prob", None)):
        raise TypeError(f"lm must have a prob(context, word) method, got {type(lm).__name__}")
    context = plan_text([_check_skill(h) for h in history]).split()
    total = 0.0
    for word in f"{_check_skill(skill)} .".split():
        total += math.log(lm.prob(context, word))
        context.append(word)
    return total


@dataclass(frozen=True)
class Episode:
    """What happened: the skills attempted, success, and why it ended."""

    plan: tuple[str, ...]
    success: bool
    reason: str


def execute(world: World, plan: Sequence[str]) -> Episode:
    """Carry out ``plan`` skill by skill, whatever happens (an open-loop plan)."""
    done: list[str] = []
    for skill in plan:
        _check_skill(skill)
        world, ended = _take(world, done, skill)
        if ended:
            return ended
    return Episode(tuple(done), False, "the plan never said done")


def _take(world: World, history: list[str], skill: str) -> tuple[World, Episode | None]:
    """Append ``skill`` to ``history`` and carry it out: the new world, and the finished
    episode if the skill was impossible or stopped the agent (else None)."""
    history.append(skill)
    if not feasible(world, skill):
        return world, Episode(tuple(history), False, f"could not {skill}")
    world = apply(world, skill)
    if world.stopped:
        ok = world.agent == world.goal
        return world, Episode(tuple(history), ok,
                              "reached the goal" if ok else "stopped too early")
    return world, None


def propose(score: Score, max_steps: int = 8) -> list[str]:
    """A whole plan from the language scores alone: the best skill at each step, until
    ``done`` or ``max_steps`` skills (greedy decoding over skills)."""
    positive_int("max_steps", max_steps)
    plan: list[str] = []
    while len(plan) < max_steps and (not plan or plan[-1] != "done"):
        plan.append(max(SKILLS, key=lambda s: score(plan, s)))
    return plan


def _choose(world: World, history: Sequence[str], score: Score,
            affordance: Affordance) -> tuple[str, float]:
    """The skill with the highest ``score + log affordance`` and that value."""
    def total(skill: str) -> float:
        a = float(affordance(world, skill))
        return score(history, skill) + (math.log(a) if a > 0 else -math.inf)
    values = {skill: total(skill) for skill in SKILLS}
    best = max(SKILLS, key=values.__getitem__)
    return best, values[best]


def saycan(world: World, score: Score, affordance: Affordance = feasible,
           max_steps: int = 8) -> Episode:
    """Closed loop: at each step take the skill maximising
    ``score(history, skill) + log affordance(world, skill)`` and carry it out.

    ``affordance`` may err (a noisy perception): a chosen skill that the world does not
    allow ends the episode as a failure.
    """
    positive_int("max_steps", max_steps)
    history: list[str] = []
    for _ in range(max_steps):
        best, value = _choose(world, history, score, affordance)
        if value == -math.inf:
            return Episode(tuple(history), False, "no skill is possible")
        world, ended = _take(world, history, best)
        if ended:
            return ended
    return Episode(tuple(history), False, "ran out of steps")
