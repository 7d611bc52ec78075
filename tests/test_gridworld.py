"""llmbook.gridworld: the worlds, the skills' affordances, open-loop plans and SayCan."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
from llmbook import gridworld as gw

USUAL = ["pick up the key", "open the door", "go to the goal", "done"]


@pytest.mark.parametrize("kind", gw.KINDS)
def test_worlds_are_seeded_and_solvable(kind):
    worlds = [gw.make_world(s, kind) for s in range(30)]
    assert gw.make_world(3, kind) == worlds[3]
    assert len({w.render() for w in worlds}) > 20
    for w in worlds:
        plan = gw.oracle_plan(w)
        assert plan is not None and plan[-1] == "done"
        assert gw.execute(w, plan).success
        assert w.agent[1] < w.size // 2 < w.goal[1]


def test_each_kind_has_its_shortest_plan():
    assert all(gw.oracle_plan(gw.make_world(s, "usual")) == USUAL for s in range(20))
    assert all(gw.oracle_plan(gw.make_world(s, "open door")) == ["go to the goal", "done"]
               for s in range(20))
    assert all("move the box" in gw.oracle_plan(gw.make_world(s, "box")) for s in range(20))


def test_affordances_follow_the_rules():
    w = gw.make_world(0, "usual")
    can = {s for s in gw.SKILLS if gw.feasible(w, s)}
    assert can == {"pick up the key", "done"}          # locked door, no key yet
    w = gw.apply(w, "pick up the key")
    assert w.has_key and w.key is None and gw.feasible(w, "open the door")
    assert not gw.feasible(w, "go to the goal")
    w = gw.apply(w, "open the door")
    assert gw.feasible(w, "go to the goal") and not gw.feasible(w, "open the door")
    boxed = gw.make_world(0, "box")
    boxed = gw.apply(boxed, "pick up the key") if gw.feasible(boxed, "pick up the key") else boxed
    assert not gw.feasible(boxed, "open the door")      # the box stands in front of the door
    with pytest.raises(ValueError, match="cannot be carried out"):
        gw.apply(gw.make_world(0, "open door"), "pick up the key")


def test_walls_and_rocks_are_respected():
    w = gw.make_world(5, "usual")
    walled = replace(w, blocked=w.blocked | {(r, c) for r in range(w.size) for c in range(w.size)
                                             if (r, c) != w.agent and abs(r - w.agent[0])
                                             + abs(c - w.agent[1]) == 1})
    assert not gw.feasible(walled, "pick up the key")   # the agent is walled in


NEXT = {None: "pick up the key", "pick up the key": "open the door",
        "move the box": "open the door", "open the door": "go to the goal",
        "go to the goal": "done"}


def lm_like(history, skill):
    """A stand-in language model: the usual next skill after the last one, else by order."""
    want = NEXT.get(history[-1] if history else None, "done")
    return 0.0 if skill == want else -5.0 - gw.SKILLS.index(skill)


def test_open_loop_plan_fails_when_the_world_changes_and_saycan_adapts():
    score = lm_like
    plan = gw.propose(score)
    assert plan == USUAL
    usual, opened, boxed = (gw.make_world(1, k) for k in gw.KINDS)
    assert gw.execute(usual, plan).success
    ep = gw.execute(opened, plan)
    assert not ep.success and ep.reason == "could not pick up the key" and ep.plan == (plan[0],)
    assert not gw.execute(boxed, plan).success
    assert gw.saycan(usual, score).success
    ep = gw.saycan(opened, score)
    assert ep.success and ep.plan == ("go to the goal", "done")
    assert gw.saycan(opened, score, affordance=lambda w, s: 1.0).plan == (plan[0],)


def test_saycan_with_a_wrong_affordance_fails_honestly():
    w = gw.make_world(2, "usual")
    liar = lambda world, skill: 1.0 if skill == "go to the goal" else 0.0
    ep = gw.saycan(w, lm_like, affordance=liar)
    assert not ep.success and ep.reason == "could not go to the goal"
    none = gw.saycan(w, lm_like, affordance=lambda world, skill: 0.0)
    assert not none.success and none.reason == "no skill is possible"
    loop = gw.saycan(w, lambda h, s: 0.0 if s == "pick up the key" else -math.inf)
    assert not loop.success


def test_plan_text_and_bad_input():
    assert gw.plan_text(["done"]) == gw.PROMPT + " done ."
    with pytest.raises(ValueError, match="kind must be one of"):
        gw.make_world(0, "maze")
    with pytest.raises(ValueError, match="skill must be one of"):
        gw.feasible(gw.make_world(0), "fly")
    with pytest.raises(TypeError, match="world must be a World"):
        gw.feasible("grid", "done")
    with pytest.raises(ValueError, match="size must be at least 5"):
        gw.make_world(0, size=4)
    with pytest.raises(ValueError, match="max_steps must be a positive int"):
        gw.propose(lm_like, max_steps=0)


def test_plan_corpus_and_skill_logprob():
    from llmbook.ngram import NGramLM

    words = gw.plan_corpus(60, seed=1)
    assert words == gw.plan_corpus(60, seed=1) and words[:len(gw.PROMPT.split())] == gw.PROMPT.split()
    assert words.count("plan") == 60
    only_usual = gw.plan_corpus(5, weights=(1, 0, 0))
    assert " ".join(only_usual) == " ".join([gw.plan_text(USUAL)] * 5)
    lm = NGramLM.fit(words, n=4, smoothing="kneser_ney")
    lp = gw.skill_logprob(lm, [], "pick up the key")
    by_hand = math.log(lm.prob(gw.PROMPT.split(), "pick"))
    ctx = gw.PROMPT.split() + ["pick"]
    for w in ["up", "the", "key", "."]:
        by_hand += math.log(lm.prob(ctx, w))
        ctx.append(w)
    assert lp == pytest.approx(by_hand)
    assert gw.propose(lambda h, s: gw.skill_logprob(lm, h, s)) == USUAL
    assert gw.skill_logprob(lm, USUAL[:3], "done") > gw.skill_logprob(lm, USUAL[:3], "move the box")
    with pytest.raises(ValueError, match="weights must be 3 numbers"):
        gw.plan_corpus(3, weights=(1, 0))
    with pytest.raises(TypeError, match="lm must have a prob"):
        gw.skill_logprob(object(), [], "done")


def test_execute_reports_how_an_episode_ends():
    w = gw.make_world(4, "usual")
    assert gw.execute(w, ["done"]).reason == "stopped too early"
    assert gw.execute(w, ["pick up the key"]).reason == "the plan never said done"
    boxed = gw.make_world(4, "box")
    moved = gw.apply(boxed, "move the box")
    assert moved.box is None and not gw.feasible(moved, "move the box")
    assert gw.execute(boxed, gw.oracle_plan(boxed)).reason == "reached the goal"
    with pytest.raises(ValueError, match="skill must be one of"):
        gw.execute(w, ["jump"])
    with pytest.raises(ValueError, match="weights must not all be zero"):
        gw.plan_corpus(2, weights=(0, 0, 0))
    with pytest.raises(ValueError, match="weights must be a finite number >= 0"):
        gw.plan_corpus(2, weights=(1, -1, 0))
