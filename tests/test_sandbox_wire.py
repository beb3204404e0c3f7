"""The grader's side of the result channel: only the answers to what it asked, as announced float64 data."""

import json

import numpy as np
import pytest

from grader.limits import Limits
from grader.sandbox import Call, Job
from grader.sandbox.channel import RERUN_FACTORS, Asked, Exchange, accept_public, parse_results
from grader.sandbox.process import frame
from grader.sandbox.wire import ResultInvalid, split_frames

JOB = Job(
    filename="a.py",
    cells=["pass"],
    arrays={"x": np.arange(6.0).reshape(2, 3), "w": np.ones(2)},
    calls=[Call(id="one", function="f", args=["x"], scratch=True), Call(id="two", function="g", args=[{"w": "w"}])],
)
LIMITS = Limits(result_mb=1)
CELLS_OK = {
    "kind": "cells",
    "status": "ok",
    "cell": None,
    "line": None,
    "error_type": "",
    "error": "",
    "traceback": "",
    "exit_code": None,
}
ASKED = [Asked(0, "n1"), Asked(0, "n2", 1.5), Asked(1, "n3"), Asked(None, "n4")]


def call_frame(call_id: str, nonce: str | None, **values_spec) -> dict:
    """A call's frame, as the answer to the request with `nonce` (None: as the runner wrote it before nonces)."""
    frame = {
        "kind": "call",
        "id": call_id,
        "status": "ok",
        "error_type": "",
        "error": "",
        "traceback": "",
        "suggestions": [],
        "found": "a dict",
        "memory": False,
        "seconds": 0.01,
        "texts": {},
        "problems": {},
        "values": {key: {"name": f"v{i}", "shape": list(shape)} for i, (key, shape) in enumerate(values_spec.items())},
    }
    return frame if nonce is None else dict(frame, nonce=nonce)


def raw(*arrays) -> bytes:
    """Values as the runner sends them: float64 bytes laid end to end."""
    return b"".join(np.asarray(a).tobytes() for a in arrays)


def stream(*parts) -> bytes:
    return b"".join(frame(part if isinstance(part, bytes) else json.dumps(part).encode()) for part in parts)


def valid_stream(dW1=None) -> list:
    """The answers to ASKED: call one, its rerun (values scaled by the factor), call two, done."""
    dW1 = np.ones((2, 3)) if dW1 is None else dW1
    return [
        CELLS_OK,
        call_frame("one", "n1", dW1=(2, 3)),
        raw(dW1),
        call_frame("one", "n2", dW1=(2, 3)),
        raw(1.5 * dW1),
        call_frame("two", "n3"),
        raw(),
        {"kind": "done", "nonce": "n4"},
    ]


def parse(parts, asked=ASKED):
    return parse_results(stream(*parts), JOB, LIMITS, asked)


def test_a_well_formed_stream_is_read_with_its_values_and_the_rerun_kept_apart():
    results, truncated = parse(valid_stream())
    assert not truncated and results.done and results.started is None
    frame_one, values = results.calls["one"]
    np.testing.assert_array_equal(values["dW1"], np.ones((2, 3)))
    factor, _, again = results.reruns["one"]
    assert factor == 1.5 and np.array_equal(again["dW1"], 1.5 * np.ones((2, 3)))
    assert results.calls["two"][1] == {} and "two" not in results.reruns


def test_a_rerun_asked_for_first_is_read_as_the_rerun_and_the_call_after_it_as_the_graded_one():
    asked = [Asked(0, "n1", 1.5), Asked(0, "n2"), Asked(1, "n3"), Asked(None, "n4")]
    parts = valid_stream()
    parts[1], parts[2], parts[3], parts[4] = (
        call_frame("one", "n1", dW1=(2, 3)),
        raw(1.5 * np.ones((2, 3))),
        call_frame("one", "n2", dW1=(2, 3)),
        raw(np.ones((2, 3))),
    )
    results, _ = parse(parts, asked)
    np.testing.assert_array_equal(results.calls["one"][1]["dW1"], np.ones((2, 3)))
    factor, _, again = results.reruns["one"]
    assert factor == 1.5 and np.array_equal(again["dW1"], 1.5 * np.ones((2, 3)))


def test_a_stream_cut_by_a_kill_keeps_what_arrived_and_names_the_running_call():
    blob = stream(*valid_stream()[:5]) + frame(b"{}")[:5]
    results, truncated = parse_results(blob, JOB, LIMITS, ASKED)
    assert truncated and not results.done
    assert list(results.calls) == ["one"] and results.started == "two"


def test_a_complete_stream_written_before_any_request_is_rejected_at_its_first_answer():
    """Issue 16 item 2: student code wrote a whole well-formed run on fd 3 while its cells ran (17 of 17
    checks passed with no function defined). It could not know the nonces of requests not yet made."""
    forged = [
        CELLS_OK,
        {"kind": "start", "id": "one"},
        call_frame("one", None, dW1=(2, 3)),
        raw(np.ones((2, 3))),
        {"kind": "start", "id": "two"},
        call_frame("two", None),
        raw(),
        {"kind": "done"},
    ]
    with pytest.raises(ResultInvalid, match="CallAnswer"):
        parse(forged)
    with pytest.raises(ResultInvalid, match="CallAnswer"):
        parse([p for p in forged if not isinstance(p, dict) or p["kind"] != "start"])
    guessed = valid_stream()
    guessed[1] = dict(guessed[1], nonce="a guess")
    with pytest.raises(ResultInvalid, match="without the nonce of the request for 'one'"):
        parse(guessed)


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda p: p.__setitem__(1, dict(p[1], status="great")), "CallAnswer"),
        (lambda p: p.__setitem__(1, dict(p[1], extra=1)), "CallAnswer"),
        (
            lambda p: p.__setitem__(1, dict(p[1], id="two")),
            "answer for 'two' without the nonce of the request for 'one'",
        ),
        (
            lambda p: p.__setitem__(5, dict(p[5], nonce="n1")),
            "answer for 'two' without the nonce of the request for 'two'",
        ),
        (lambda p: p.__setitem__(slice(3, 3), p[1:3]), "without the nonce of the request"),  # one answer given twice
        (lambda p: p.__setitem__(2, raw(np.ones(7))), "56 bytes where the announced shapes make 48"),
        (
            lambda p: p.__setitem__(2, raw(np.ones((2, 3), dtype=np.float32))),
            "24 bytes where the announced shapes make 48",
        ),
        (lambda p: p.__setitem__(2, b"not numbers"), "where the announced shapes make"),
        (
            lambda p: p.__setitem__(
                1, dict(p[1], values={"a": {"name": "v0", "shape": [3]}, "b": {"name": "v0", "shape": [3]}})
            ),
            "share one array name",
        ),
        (lambda p: p.__setitem__(7, {"kind": "done", "nonce": "n3"}), "does not answer the grader's last request"),
        (lambda p: p.append({"kind": "done", "nonce": "n4"}), "or not last"),  # one answer per request
        (lambda p: p.insert(0, {"kind": "done"}), "CellsFrame"),
        (lambda p: p.__setitem__(0, b"\xff\xfe"), "CellsFrame"),
        (lambda p: p.__setitem__(1, dict(p[1], values={"k": {"name": "v0", "shape": [10**6]}})), "exceed"),
    ],
)
def test_a_forged_or_broken_stream_is_rejected(mutate, reason):
    parts = valid_stream()
    mutate(parts)
    with pytest.raises(ResultInvalid, match=reason):
        parse(parts)


def test_answers_to_requests_never_made_are_rejected_and_nothing_follows_failed_cells():
    with pytest.raises(ResultInvalid, match="answers no request"):
        parse(valid_stream(), ASKED[:2])  # the grader asked for call one and its rerun only
    failed = dict(CELLS_OK, status="import_error", error_type="ValueError", error="bad")
    with pytest.raises(ResultInvalid, match="answers no request"):
        parse([failed, *valid_stream()[1:]])
    results, _ = parse([failed], [])
    assert results.cells.status == "import_error" and results.calls == {}


def test_pickle_bytes_in_place_of_values_are_rejected_unread():
    """A pickle is only bytes here: nothing reads it as anything but float64, and its size gives it away."""
    import pickle

    parts = valid_stream()
    parts[2] = pickle.dumps(np.array([[{"evil": 1}] * 3] * 2, dtype=object))
    with pytest.raises(ResultInvalid, match="where the announced shapes make 48"):
        parse(parts)


def test_values_are_read_in_the_order_and_shapes_announced():
    parts = valid_stream()
    parts[5] = call_frame("two", "n3", a=(2,), b=(1, 3))
    parts[6] = raw(np.array([1.0, 2.0]), np.array([[3.0, 4.0, 5.0]]))
    results, _ = parse(parts)
    values = results.calls["two"][1]
    np.testing.assert_array_equal(values["a"], [1.0, 2.0])
    np.testing.assert_array_equal(values["b"], [[3.0, 4.0, 5.0]])


def test_lone_surrogates_from_the_child_are_replaced_so_reports_always_encode():
    parts = valid_stream()
    parts[1] = dict(parts[1], problems={"dW1": "bad \udc80 value"})
    results, _ = parse(parts)
    results.calls["one"][0].problems["dW1"].encode("utf-8")


def test_lone_surrogates_sent_as_raw_bytes_and_in_keys_are_replaced_too():
    # json.loads decodes bytes with "surrogatepass": a surrogate's raw UTF-8 bytes decode to a lone
    # surrogate as its \\u escape does, and a dict key can carry one as well as a value
    parts = valid_stream()
    text = json.dumps(dict(parts[1], problems={"dW1": "bad SURROGATE value"}, texts={"note\udc81": ["x"]}))
    parts[1] = text.replace("SURROGATE", "\udc80").encode("utf-8", "surrogatepass")
    assert b"\xed\xb2\x80" in parts[1] and b"\\udc81" in parts[1]
    results, _ = parse(parts, asked=ASKED)
    answer = results.calls["one"][0]
    answer.problems["dW1"].encode("utf-8")
    assert all(key.encode("utf-8") for key in answer.texts)


def test_a_value_that_is_not_text_stays_invalid_after_surrogates_are_replaced():
    parts = valid_stream()
    parts[1] = dict(parts[1], status="ok\udc80")
    with pytest.raises(ResultInvalid, match="CallAnswer"):
        parse(parts)


def requests(exchange: Exchange) -> list[tuple[dict, bytes]]:
    """Every request of one attempt as the child reads them: (JSON, raw arrays; b"" for "done")."""
    exchange.start()
    frames, made = split_frames(exchange.requests())[0], []
    while frames:
        head = json.loads(frames.pop(0))
        made.append((head, frames.pop(0) if head["kind"] == "call" else b""))
    return made


def test_the_job_holds_no_call_and_no_array_and_each_request_only_its_own_calls_arrays():
    exchange = Exchange(JOB, LIMITS)
    header = json.loads(split_frames(exchange.opening)[0][0])
    assert "calls" not in header and "arrays" not in header and header["cells"] == ["pass"]
    made = requests(exchange)
    assert [(r["kind"], r.get("call", {}).get("id")) for r, _ in made] == [
        ("call", "one"),
        ("call", "one"),
        ("call", "two"),
        ("done", None),
    ]
    one, rerun = sorted(made[:2], key=lambda request: request[0]["factor"] is not None)  # in the order drawn
    two = made[2]
    assert one[0]["factor"] is None and made[2][0]["factor"] is None
    assert [a[0] for a in one[0]["arrays"]] == ["x"] and [a[0] for a in two[0]["arrays"]] == ["w"]
    np.testing.assert_array_equal(np.frombuffer(one[1], dtype="<f8").reshape(2, 3), JOB.arrays["x"])
    np.testing.assert_array_equal(np.frombuffer(two[1], dtype="<f8"), JOB.arrays["w"])
    assert rerun[1] == one[1] and 1.3 <= rerun[0]["factor"] <= 1.9
    assert [a.factor for a in exchange.asked] == [r.get("factor") for r, _ in made]
    assert [a.nonce for a in exchange.asked] == [r["nonce"] for r, _ in made]


def test_nonces_and_factors_are_new_for_every_request_and_every_attempt():
    exchange = Exchange(JOB, LIMITS)
    first, second = requests(exchange), requests(exchange)
    nonces = [r["nonce"] for r, _ in first + second]
    assert len(set(nonces)) == len(nonces) == 8 and all(len(n) >= 32 for n in nonces)
    assert rerun_factor(first) != rerun_factor(second)
    attempts = [requests(exchange) for _ in range(200)]  # drawn from one random read per phase
    factors = [rerun_factor(attempt) for attempt in attempts]
    assert all(RERUN_FACTORS[0] <= f < RERUN_FACTORS[1] for f in factors) and len(set(factors)) == 200
    assert min(factors) < 1.4 and max(factors) > 1.8  # spread over the whole range, not stuck at one end


def rerun_factor(attempt) -> float:
    """The factor of the one request of an attempt that is a scratch call's rerun."""
    (factor,) = [request["factor"] for request, _ in attempt if request.get("factor") is not None]
    return factor


def test_a_scratch_calls_rerun_is_asked_for_before_or_after_it_as_drawn_for_each_call():
    """So a call cannot tell by its place which of its two answers is graded: code that returns its first
    answer again (cached by input) hands in the scaled values as graded ones about half the time."""
    exchange = Exchange(JOB, LIMITS)
    places = set()
    for _ in range(200):
        attempt = requests(exchange)
        assert [request["call"]["id"] for request, _ in attempt[:3]] == ["one", "one", "two"]
        places.add(attempt[0][0]["factor"] is None)  # the call as it is came first
    assert places == {True, False}  # both orders drawn (one of them missing in 200 draws: p = 2 ** -199)


# --- decoding within caps (DESIGN §5 property 9, issue 16 items 5-6) --------------------------------------
def test_frames_nested_too_deep_for_json_are_invalid_not_an_error_of_the_grader():
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    for position in (0, 1):  # as the cells frame, as an answer
        parts = valid_stream()
        parts[position] = deep
        with pytest.raises(ResultInvalid, match="nested too deep"):
            parse(parts)


def test_a_call_frame_over_two_mebibytes_is_refused_before_it_is_decoded():
    parts = valid_stream()
    parts[5] = dict(parts[5], texts={"names": ["x" * 1000] * 3000})  # 3 MB: within the schema, over the cap
    with pytest.raises(ResultInvalid, match="CallAnswer frame of 30[0-9]{5} bytes is over 2097152"):
        parse(parts)


def test_an_answer_with_keys_the_job_did_not_ask_for_is_invalid():
    asked_for = {"dW1": [2, 3], "nodes": None}
    job = JOB.model_copy(update={"calls": [JOB.calls[0], JOB.calls[1].model_copy(update={"returns": asked_for})]})
    for frame_two, raw_two, reason in [
        (call_frame("two", "n3", extra=(2,)), raw(np.ones(2)), r"keys the job did not ask for \(\['extra'\]\)"),
        (call_frame("two", "n3", nodes=(2,)), raw(np.ones(2)), r"\['nodes'\]"),  # numbers where names were asked
        (dict(call_frame("two", "n3"), texts={"dW1": ["a"]}), raw(), r"\['dW1'\]"),  # names where numbers were
        (dict(call_frame("two", "n3"), problems={f"k{i}": "ignored" for i in range(30)}), raw(), "30 problems"),
    ]:
        parts = valid_stream()
        parts[5:7] = [frame_two, raw_two]
        with pytest.raises(ResultInvalid, match=reason):
            parse_results(stream(*parts), job, LIMITS, ASKED)
    parts = valid_stream()
    parts[5:7] = [
        dict(
            call_frame("two", "n3", dW1=(2, 3)),
            texts={"nodes": ["AddmmBackward0"]},
            problems={"extra": "not a quantity this task asks for; ignored"},
        ),
        raw(np.ones((2, 3))),
    ]
    results, _ = parse_results(stream(*parts), job, LIMITS, ASKED)
    assert results.calls["two"][0].texts == {"nodes": ["AddmmBackward0"]}


# --- a job with hidden calls: two phases (DESIGN §5 property 8, issue 16 item 3) ----------------------------
PHASED = Job(
    filename="a.py",
    cells=["pass"],
    arrays={"x": np.arange(6.0).reshape(2, 3), "h": np.full(2, 7.25)},
    calls=[Call(id="one", function="f", args=["x"]), Call(id="hidden", function="f", args=["h"])],
    hidden_calls=1,
)


def test_the_public_requests_hold_no_hidden_array_and_no_done_and_the_hidden_ones_come_with_done():
    exchange = Exchange(PHASED, LIMITS)
    exchange.start()
    public = split_frames(exchange.requests("public"))[0]
    assert json.loads(public[0])["call"]["id"] == "one" and len(public) == 2
    assert np.full(2, 7.25).tobytes() not in b"".join(public) and b'"h"' not in b"".join(public)
    hidden = split_frames(exchange.requests("hidden"))[0]
    assert [json.loads(hidden[0])["call"]["id"], json.loads(hidden[2])["kind"]] == ["hidden", "done"]
    assert [a.index for a in exchange.asked] == [0, 1, None]


def test_the_public_answers_are_accepted_only_when_each_answers_its_request_and_nothing_else_came():
    """Accepted, they stand for the whole public phase (done); anything else means no hidden call is asked for."""
    exchange = Exchange(PHASED, LIMITS)
    exchange.start()
    split_frames(exchange.requests("public"))
    asked = exchange.asked
    nonce = asked[0].nonce
    good = [json.dumps(CELLS_OK).encode(), json.dumps(call_frame("one", nonce, v=(2,))).encode(), raw([1.0, 2.0])]
    answers = accept_public(good, PHASED, LIMITS, asked)
    assert answers.done and list(answers.calls) == ["one"]
    forged = [good[0], json.dumps(call_frame("one", "0" * 32, v=(2,))).encode(), good[2]]
    hidden_id = [good[0], json.dumps(call_frame("hidden", nonce, v=(2,))).encode(), good[2]]
    for frames in (forged, hidden_id, good[:2], [*good, good[1]]):
        assert accept_public(frames, PHASED, LIMITS, asked) is None


def test_a_job_cannot_have_more_hidden_calls_than_calls_nor_hidden_calls_in_notebook_mode():
    for update in ({"hidden_calls": 3}, {"hidden_calls": 1, "observe": True}):
        with pytest.raises(ValueError, match="hidden_calls"):
            Job(**{**PHASED.model_dump(), **update})


def test_the_hidden_phase_is_parsed_on_from_the_accepted_public_answers_as_a_whole_parse_reads_it():
    """The grader reads the public answers once (accept_public) and parses only what follows them again."""
    exchange = Exchange(PHASED, LIMITS)
    exchange.start()
    split_frames(exchange.requests("public"))
    public = [
        json.dumps(CELLS_OK).encode(),
        json.dumps(call_frame("one", exchange.asked[0].nonce, v=(2,))).encode(),
        raw([1.0, 2.0]),
    ]
    accepted = accept_public(public, PHASED, LIMITS, exchange.asked)
    split_frames(exchange.requests("hidden"))
    hidden_nonce, done_nonce = exchange.asked[1].nonce, exchange.asked[2].nonce
    blob = stream(*public, call_frame("hidden", hidden_nonce, v=(3,)), raw([3.0, 4.0, 5.0]))
    blob += stream({"kind": "done", "nonce": done_nonce})
    whole, _ = parse_results(blob, PHASED, LIMITS, exchange.asked)
    resumed, _ = parse_results(blob, PHASED, LIMITS, exchange.asked, accepted)
    assert resumed.done and whole.done and list(resumed.calls) == list(whole.calls) == ["one", "hidden"]
    for call_id in whole.calls:
        assert resumed.calls[call_id][0] == whole.calls[call_id][0]
        np.testing.assert_array_equal(resumed.calls[call_id][1]["v"], whole.calls[call_id][1]["v"])
    assert resumed.budget == whole.budget
    forged = stream(*public, call_frame("hidden", "0" * 32, v=(3,)), raw([3.0, 4.0, 5.0]))
    with pytest.raises(ResultInvalid, match="nonce"):
        parse_results(forged, PHASED, LIMITS, exchange.asked, accepted)
