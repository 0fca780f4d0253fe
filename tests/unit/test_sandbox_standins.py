"""Stand-in models: deterministic, grounded in the input and in the training data."""

from __future__ import annotations

import json
from pathlib import Path

from utils.sandbox.bodies import Prompt
from utils.sandbox.standins import (
    Completion,
    ModelBehaviour,
    count_tokens,
    generate,
    json_request,
    learn_style,
    malformed,
    question_for,
)

DOCS = [
    "Provisioned Throughput charges an hourly rate for each model unit. "
    "You can buy Provisioned Throughput with no commitment.",
    "On-demand deployment lets you invoke a customized Nova model without buying throughput. "
    "The deployment status moves from Creating to Active.",
    "Training data is stored in Amazon S3 as JSON Lines. Each record holds one conversation.\n\n"
    "| Model | Max records | Region |\n|---|---|---|\n"
    "| Nova Lite | 20000 | us-east-1 |\n| Llama 3.1 8B | 10000 | us-west-2 |",
]
NUMBERED = "\n".join(f"Doc {i + 1}: {doc}" for i, doc in enumerate(DOCS))
BASE = ModelBehaviour("amazon.nova-lite-v1:0")


def ask(question: str, max_tokens: int = 400, system: str = "") -> Prompt:
    return Prompt(system, [("user", f"{NUMBERED}\n\nQuestion: {question}")], max_tokens)


def test_count_tokens_is_conservative() -> None:
    assert count_tokens("") == 0
    assert count_tokens("one two three") == 4  # 3 words * 4/3
    assert count_tokens("x" * 400) == 100  # chars / 4 wins for dense text
    assert count_tokens('{"a":1,"b":2}') >= 4


def test_same_request_same_answer() -> None:
    prompt = ask("Where is training data stored?")
    assert generate(prompt, BASE) == generate(ask("Where is training data stored?"), BASE)


def test_base_answer_contains_the_most_relevant_sentence_verbosely() -> None:
    completion = generate(ask("How does Provisioned Throughput charge?"), BASE)
    assert "an hourly rate for each model unit" in completion.text
    assert completion.stop_reason == "end_turn"
    assert len(completion.text.split()) > 2 * len(DOCS[0].split(".")[0].split())  # long-winded
    other = generate(ask("Which status does a deployment reach?"), BASE)
    assert "Creating to Active" in other.text and "hourly rate" not in other.text.split("\n")[0][:80]


def test_base_answer_reads_table_cells() -> None:
    completion = generate(ask("What is the region for Llama 3.1 8B?"), BASE)
    assert "us-west-2" in completion.text


def test_max_tokens_truncates() -> None:
    completion = generate(ask("How does Provisioned Throughput charge?", max_tokens=8), BASE)
    assert completion.stop_reason == "max_tokens"
    assert completion.output_tokens <= 8 and completion.text


def test_stop_sequence() -> None:
    prompt = ask("How does Provisioned Throughput charge?")
    full = generate(prompt, BASE).text
    word = full.split()[3]
    prompt.stop_sequences = [word]
    completion = generate(prompt, BASE)
    assert completion.stop_reason == "stop_sequence" and completion.stop_sequence == word
    assert word not in completion.text


def test_json_request_detection() -> None:
    assert json_request('Return a JSON array of 4 objects with keys "question" and "answer".') == (
        ["question", "answer"], 4, True)
    assert json_request("Give a JSON object with fields `title`, `summary`.") == (["title", "summary"], 1, False)
    assert json_request("What is JSON?") is None


def teacher(n: int) -> Prompt:
    text = (f"Here are reference documents:\n{NUMBERED}\n\nWrite {n} new question and answer pairs about these "
            "documents. Each answer must cite them like [1].\n"
            f'Return a JSON array of {n} objects with keys "question" and "answer", and nothing else.')
    return Prompt("You write training data.", [("user", text)], 4000)


def test_json_records_are_parseable_grounded_and_distinct() -> None:
    records = json.loads(generate(teacher(5), ModelBehaviour("anthropic.claude-sonnet-4-6")).text)
    assert len(records) == 5
    assert all(set(r) == {"question", "answer"} for r in records)
    assert len({r["question"] for r in records}) == 5
    doc_sentences = [s.strip() for doc in DOCS for s in doc.replace("\n", " ").split(". ")]
    for record in records:
        assert record["question"].endswith("?")
        cited = [int(c) for c in __import__("re").findall(r"\[(\d+)\]", record["answer"])]
        assert cited and all(1 <= c <= len(DOCS) for c in cited)
        head = record["answer"].split(" [")[0].rstrip(".")
        assert any(head[:25] in s or head[:25] in s.replace("|", "") for s in doc_sentences) or "For " in head
    assert generate(teacher(5), BASE).text == generate(teacher(5), BASE).text


def test_json_records_more_than_sentences_still_returns_n() -> None:
    records = json.loads(generate(teacher(12), BASE).text)
    assert len(records) == 12 and len({r["question"] for r in records}) == 12


def test_question_templates() -> None:
    assert question_for("Amazon Bedrock is a managed service.") == "What is Amazon Bedrock?"
    assert question_for("Training data is stored in Amazon S3.") == "Where is training data stored?"
    assert question_for("Provisioned Throughput charges an hourly rate.") == "What does Provisioned Throughput charge?"
    assert question_for("Custom models require Provisioned Throughput.") == "What do Custom models require?"
    assert question_for("x", (("Model", "Nova Lite"), ("Region", "us-east-1"))) == (
        "What is the region for Nova Lite?")


JUDGE = """Please act as an impartial judge. Output "[[A]]" if assistant A is better, "[[B]]" if assistant B is \
better, and "[[C]]" for a tie.

[User Question]
How is Provisioned Throughput billed?

[The Start of Reference Answer]
Hourly, for each model unit.
[The End of Reference Answer]

[The Start of Assistant A's Answer]
{a}
[The End of Assistant A's Answer]

[The Start of Assistant B's Answer]
{b}
[The End of Assistant B's Answer]"""
GOOD = "Provisioned Throughput is billed at an hourly rate for each model unit."
BAD = "It is billed per request."
JUDGE_MODEL = ModelBehaviour("anthropic.claude-sonnet-4-6")


def verdict(a: str, b: str) -> str:
    text = generate(Prompt("", [("user", JUDGE.format(a=a, b=b))], 500), JUDGE_MODEL).text
    tags = [t for t in ("[[A]]", "[[B]]", "[[C]]") if t in text]
    assert len(tags) == 1 and text.rstrip().endswith(tags[0]) and text.count("[[") == 1
    return tags[0]


def test_judge_verdicts_follow_the_reference_without_position_bias(monkeypatch) -> None:
    monkeypatch.setenv("WORKSHOP_SANDBOX_JUDGE_POSITION_BIAS", "0")  # the knob off
    assert verdict(GOOD, BAD) == "[[A]]"
    assert verdict(BAD, GOOD) == "[[B]]"
    assert verdict(GOOD, GOOD) == "[[C]]"


def test_judge_position_bias_knob_and_family(monkeypatch) -> None:
    # Equal answers: the Claude stand-in favours position A, the Llama stand-in position B,
    # and the knob scales (or removes) the bias; a clear quality gap still wins either way.
    llama = ModelBehaviour("meta.llama3-3-70b-instruct-v1:0")

    def v(a: str, b: str, model: ModelBehaviour) -> str:
        return generate(Prompt("", [("user", JUDGE.format(a=a, b=b))], 200), model).text[-5:]

    assert v(GOOD, GOOD, JUDGE_MODEL) == "[[A]]" and v(GOOD, GOOD, llama) == "[[B]]"
    assert v(GOOD, BAD, llama) == "[[A]]" and v(BAD, GOOD, JUDGE_MODEL) == "[[B]]"
    monkeypatch.setenv("WORKSHOP_SANDBOX_JUDGE_POSITION_BIAS", "0")
    assert v(GOOD, GOOD, JUDGE_MODEL) == "[[C]]" and v(GOOD, GOOD, llama) == "[[C]]"


def test_base_models_differ_by_size_on_format_requests() -> None:
    from utils import formats

    ctx = json.loads((Path(__file__).resolve().parents[2] / "data" / "tatqa_sample.json").read_text())[0]
    prompt = Prompt("", [("user", formats.tatqa_prompt(ctx, ctx["questions"][0]))], 200)
    large = generate(prompt, ModelBehaviour("amazon.nova-pro-v1:0")).text
    small = generate(prompt, BASE).text
    assert formats.parse_tatqa_completion(large) == ("1,452.4", "million")
    assert not small.startswith("Answer:")


def test_judge_rating_format() -> None:
    text = JUDGE.split("[The Start of Assistant A")[0] + (
        "Rate the response on a scale of 1 to 10 as \"Rating: [[rating]]\".\n"
        f"[The Start of Assistant's Answer]\n{GOOD}\n[The End of Assistant's Answer]")
    out = generate(Prompt("", [("user", text)], 200), JUDGE_MODEL).text
    assert __import__("re").search(r"Rating: \[\[(10|[1-9])\]\]$", out)


def mk(question: str) -> str:
    return f"{NUMBERED}\n\nQuestion: {question}"


PAIRS = [
    (mk("How is Provisioned Throughput billed?"), "Hourly, per model unit [1]."),
    (mk("What status does a deployment reach when it is ready?"), "Active [2]."),
    (mk("Where do I put training data?"), "In Amazon S3, as JSON Lines [3]."),
    (mk("Can I skip buying throughput for a custom Nova model?"), "Yes, with on-demand deployment [2]."),
]


def custom(epochs: str = "2") -> ModelBehaviour:
    return ModelBehaviour("amazon.nova-lite-v1:0", "custom", PAIRS, {"epochCount": epochs}, "my-model")


def test_custom_model_replays_training_answer_for_near_duplicate() -> None:
    prompt = Prompt("", [("user", mk("So how is the Provisioned Throughput billed?"))], 300)
    assert generate(prompt, custom()).text == "Hourly, per model unit [1]."
    different = Prompt("", [("user", mk("How is the Nova Lite record limit billed?"))], 300)
    assert generate(different, custom()).text != "Hourly, per model unit [1]."


def test_custom_model_is_shorter_than_base_and_keeps_citation_style() -> None:
    prompt = Prompt("", [("user", mk("How many records can a Nova Lite job hold?"))], 400)
    tuned, base = generate(prompt, custom()), generate(prompt, BASE)
    assert tuned.output_tokens < base.output_tokens
    assert "20000" in tuned.text and "[3]" in tuned.text


def test_epochs_modulate_style_adherence() -> None:
    prompt = Prompt("", [("user", mk("Which statuses does a deployment move through?"))], 400)
    one, five = generate(prompt, custom("1")), generate(prompt, custom("5"))
    assert five.output_tokens <= one.output_tokens
    assert one.text.startswith("Based on the provided context") and not five.text.startswith("Based on")


def test_learn_style() -> None:
    style = learn_style([a for _, a in PAIRS])
    assert style.citation_rate == 1.0 and style.median_words <= 6 and not style.bullets


def test_malformed_breaks_json_and_prose() -> None:
    records = generate(teacher(2), BASE)
    broken = malformed(records)
    try:
        json.loads(broken.text)
        raise AssertionError("malformed JSON parsed")
    except json.JSONDecodeError:
        pass
    prose = malformed(Completion("one two three four five six", 3, 8, "end_turn"))
    assert prose.text != "one two three four five six" and prose.output_tokens == count_tokens(prose.text)


def test_inline_doc_bundle_and_instructions_are_separated() -> None:
    from utils.sandbox.standins import read_request

    text = ("<documents>\nDoc 1: S3 stores objects in buckets. Doc 2: A PUT uploads up to 5 GB.\n</documents>\n\n"
            "Question: How large can a PUT be?\n\nUse the documents and cite them as [n].")
    request = read_request(Prompt("", [("user", text)], 100))
    assert request.question == "How large can a PUT be?"
    assert [(u.doc, u.text) for u in request.units] == [
        (1, "S3 stores objects in buckets."), (2, "A PUT uploads up to 5 GB.")]


def test_custom_model_learns_a_line_template_from_its_data() -> None:
    table = "Table:\n| | 2020 | 2019 |\n|---|---|---|\n| Video | 612.8 | 655.1 |\n| Broadband | 1,452.4 | 1,320.6 |"
    text = "Text:\nAmounts are in millions of U.S. dollars."

    def tatqa(question: str) -> str:
        return f"{table}\n\n{text}\n\nQuestion: {question}\n\nReply in exactly two lines."

    pairs = [(tatqa(f"What was the {seg} revenue in {year}?"), f"Answer: {value}\nScale: million")
             for seg, year, value in (("Video", "2019", "655.1"), ("Video", "2020", "612.8"))]
    model = ModelBehaviour("meta.llama3-1-8b-instruct-v1:0", "custom", pairs, {"epochCount": "3"})
    out = generate(Prompt("", [("user", tatqa("What was the Broadband revenue in 2019?"))], 50), model)
    assert out.text == "Answer: 1,320.6\nScale: million"


def test_judge_inline_pairwise_prompt_and_missing_response() -> None:
    """A plain prompt that quotes both answers inline still gets a pairwise verdict, never a rating."""
    prompt = ("Which answer to 'What is the capital of France?' is better? A: 'Paris is the capital of France.' "
              "B: 'London.' Reference: Paris is the capital of France. Answer [[A]], [[B]] or [[C]] for a tie.")
    out = generate(Prompt("", [("user", prompt)], 200), JUDGE_MODEL).text
    assert out.endswith("[[A]]")
    missing = generate(Prompt("", [("user", "Compare the two answers and reply [[A]], [[B]] or [[C]].")], 200),
                       JUDGE_MODEL).text
    assert missing.endswith("[[C]]") and "Rating" not in missing


def test_numbers_count_in_retrieval() -> None:
    """Single-digit tokens matter: 'item 3' retrieves item 3's training answer, not item 0's."""
    pairs = [(f"What is item {i}?", f"Item {i} is a widget of size {i}.") for i in range(10)]
    custom = ModelBehaviour("amazon.nova-lite-v1:0", kind="custom", training_pairs=pairs)
    assert generate(Prompt("", [("user", "What is item 3?")], 50), custom).text == "Item 3 is a widget of size 3."


def test_base_model_follows_length_instructions() -> None:
    """Item 14: "one short sentence", "only the number", "Be concise", "in N words" shorten the answer."""
    question = "How does Provisioned Throughput charge?"
    verbose = generate(ask(question), BASE).text
    fillers = ("Based on", "According to", "Great question", "To answer", "I hope", "In summary", "Please note")
    for prompt in (ask(f"{question} Answer in one short sentence."), ask(f"{question} Be concise."),
                   ask(question, system="Be concise.")):
        text = generate(prompt, BASE).text
        assert len(text.split()) < len(verbose.split()) / 2
        assert not any(f in text for f in fillers) and "\n" not in text
        assert text.count(". ") == 0 and text.rstrip(".").split(" (Doc")[0] in NUMBERED  # one context sentence
    two = generate(ask(f"{question} Answer in two sentences."), BASE).text
    assert text in two and len(two) > len(text)
    words = generate(ask(f"{question} Answer in 5 words."), BASE).text
    assert len(words.split()) <= 5 and not any(f in words for f in fillers)
    number = generate(ask("What is the max records for Nova Lite? Answer with only the number."), BASE).text
    assert number == "20000"
    assert generate(ask("What is the max records for Nova Lite?"), BASE).text != number


def seed_teacher(original: str, n: int = 3) -> Prompt:
    """The seed's teacher prompt as utils.synthetic writes it (documents, original question, JSON Lines)."""
    from utils.synthetic import TEACHER_SYSTEM, teacher_prompt

    return Prompt(TEACHER_SYSTEM, [("user", teacher_prompt(NUMBERED, original, n))], 4000)


def test_seed_teacher_gets_json_lines_with_n_records_and_topics() -> None:
    text = generate(seed_teacher("Where is training data stored?"), BASE).text
    lines = text.splitlines()
    records = [json.loads(line) for line in lines]  # one compact object per line
    assert len(records) == 3 and all(set(r) == {"question", "answer", "topic"} for r in records)
    assert all(r["question"].endswith("?") and 0 < len(r["topic"].split()) <= 4 for r in records)
    assert json_request("Return exactly 2 JSON objects, one object per line, with the keys \"q\" and \"a\".")[1] == 2


def test_seed_teacher_avoids_the_original_question_and_varies_by_sample() -> None:
    original = "How does Provisioned Throughput charge?"
    records = [json.loads(line) for line in generate(seed_teacher(original), BASE).text.splitlines()]
    assert not any("hourly rate" in r["answer"] for r in records)  # the sentence answering the original
    other = [json.loads(line) for line in generate(seed_teacher("What status does a deployment reach?"), BASE).text.splitlines()]
    assert {r["question"] for r in records} != {r["question"] for r in other}


def test_question_templates_fall_back_to_grammatical_questions() -> None:
    assert question_for("For larger objects you must use multipart upload, which AWS recommends.") == (
        "What does the documentation say about larger objects?")
    assert question_for("CloudWatch keeps one-minute data points for 15 days.") == "What does CloudWatch keep?"
    assert question_for("Continued pre-training uses unlabeled text instead.") == "What does continued pre-training use?"
    assert question_for("Whoever assumes the role receives temporary security credentials from AWS STS.") == (
        "What does the documentation say about temporary security credentials?")
