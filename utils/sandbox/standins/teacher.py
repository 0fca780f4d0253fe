"""The teacher stand-in: JSON records (question/answer pairs and the like) drawn from the prompt's
context, for a prompt that asks for records with named keys (:func:`json_request`,
:func:`json_records`)."""

from __future__ import annotations

import json
import re
from typing import Any

from utils.sandbox.messages import Prompt
from utils.sandbox.standins.answers import _NUMBER_WORDS, _cite, _lower_first, _strip_end, _topic
from utils.sandbox.standins.behaviour import ModelBehaviour
from utils.sandbox.standins.reading import Request, Unit, _header_word, _join, rank_units, read_request
from utils.sandbox.standins.text import STOPWORDS, _digest, content_words, words

# =========================================================================== JSON records (teacher)

_QUESTION_KEYS = {"question", "prompt", "instruction", "query", "input", "q", "user", "ask", "user_question"}
_ANSWER_KEYS = {"answer", "response", "output", "completion", "a", "target", "reply", "assistant", "reference_answer"}
_CONTEXT_KEYS = {"context", "document", "passage", "source_text", "evidence", "text", "excerpt", "quote"}
_CITATION_KEYS = {"citation", "citations", "reference", "references", "cite"}
_SOURCE_KEYS = {"source", "sources", "doc", "doc_id", "document_id", "source_id", "source_doc"}
_TOPIC_KEYS = {"topic", "category", "title", "keyword", "keywords", "tag", "tags", "subject"}


def json_request(text: str) -> tuple[list[str], int, bool] | None:
    """Detect a request for JSON records with named keys: (keys, count, as an array) or None."""
    if not re.search(r"\bjson\b", text, re.IGNORECASE):
        return None
    # The instruction naming the keys usually comes last, after documents that may say "key"
    # themselves, so take the last mention that actually names quoted keys.
    keys: list[str] = []
    for match in reversed(list(re.finditer(
            r"\b(?:keys|fields|properties|attributes|key|field)\b[^.\n]{0,240}", text, re.IGNORECASE))):
        for key in re.findall(r"[\"`'“‘]([A-Za-z_][A-Za-z0-9_ \-]{0,40}?)[\"`'”’]", match.group(0)):
            if key not in keys:
                keys.append(key)
        if keys:
            break
    if not keys:
        return None
    # The last mention wins: the instruction follows the documents, which may mention counts too.
    count_matches = list(re.finditer(
        r"\b(\d{1,3}|" + "|".join(_NUMBER_WORDS) + r")\s+(?:(?:new|more|distinct|different|unique|diverse|"
        r"short|json|high-quality)\s+)*(?:objects?|records?|items?|entries|entry|pairs?|questions?|examples?|"
        r"elements?|samples?)\b(?!\s+per\b)",
        text, re.IGNORECASE,
    ))
    count_match = count_matches[-1] if count_matches else None
    is_array = bool(re.search(r"\b(array|list)\b", text, re.IGNORECASE))
    if count_match:
        raw = count_match.group(1).lower()
        count = int(raw) if raw.isdigit() else _NUMBER_WORDS[raw]
        is_array = is_array or count != 1
    else:
        count = 3 if is_array else 1
    return keys, max(1, min(count, 100)), is_array


_COPULA = re.compile(r"^(?P<subj>(?:\S+\s+){0,7}?\S+?)\s+(?P<cop>is|are|was|were)\s+(?P<rest>.+)$")
_MODAL = re.compile(r"^(?P<subj>(?:\S+\s+){0,5}?\S+?)\s+(?P<modal>can|must|should|will|may|cannot)\s+"
                    r"(?P<rest>.+)$", re.IGNORECASE)
_PRONOUNS = {"it", "this", "that", "they", "these", "those", "he", "she", "which"}
_PARTICIPLE = re.compile(r"^(?:\w+ed|built|made|sent|kept|held|set|run|written|taken|given|shown|known|done|paid)$")


def _base_verb(verb: str) -> str:
    if verb == "has":
        return "have"
    if verb.endswith("ies"):
        return verb[:-3] + "y"
    if verb.endswith(("ches", "shes", "sses", "xes", "zes")):
        return verb[:-2]
    return verb[:-1]


def _keyphrase(sentence: str) -> str:
    """The sentence's most specific content-word run (by length, then position)."""
    return _topic(sentence, "this topic")


def _subject_case(subject: str) -> str:
    """Lower-case a sentence-initial common word ("Training data" -> "training data", keep "Amazon S3")."""
    tokens = subject.split()
    if len(tokens) >= 2 and not tokens[1][:1].isupper() and tokens[0][1:].islower() and tokens[0][:1].isupper():
        return subject[0].lower() + subject[1:]
    return _lower_first(subject)


def _subject_ok(subject: str) -> bool:
    return subject.split()[0].lower() not in _PRONOUNS and len(subject.split()) <= 8


_OBJECT_WORDS = frozenset("you users customers developers teams us them".split())
_DET_PREP = frozenset(
    "a an the to that your its their each all one no more only in on at for of with by from as into across up "
    "out about between per every any".split()
)


def _participle_question(wh_default: str, aux: str, subj: str, rest: str) -> str | None:
    rest_words = rest.split()
    if len(rest_words) > 1 and _PARTICIPLE.match(rest_words[0]):
        if rest_words[1] in ("in", "on", "at", "into", "under"):
            return f"Where {aux} {subj} {rest_words[0]}?"
        if rest_words[1] == "to" and len(rest_words) > 2:
            return f"What {aux} {subj} {rest_words[0]} to {rest_words[2]}?"
        if rest_words[1] == "with":
            return f"What {aux} {subj} {rest_words[0]} with?"
        return f"{wh_default} {aux} {subj} {rest_words[0]}?"
    return None


def _template_question(sentence: str, cells: tuple[tuple[str, str], ...] = ()) -> str:
    """A question the sentence answers, from its grammar (unchecked; see :func:`question_for`).

    Table rows: "What is the <header> for <first cell>?". Sentences: "What is X?"
    (X is/are ...), "Where is X stored?" (passives), "What does X provide?" (third
    person verbs), "What do X require?" (plural subjects), "Can I ...?" ("You can
    ..."), else "What does the documentation say about <key phrase>?".
    """
    if len(cells) >= 2:
        headers = [_header_word(h) for h, _ in cells[1:4] if h]
        if headers:
            verb = "is" if len(headers) == 1 else "are"
            return f"What {verb} the {_join(headers)} for {cells[0][1]}?"
    text = _strip_end(re.sub(r"\s*\[\d+\]", "", sentence))
    copula, modal = _COPULA.match(text), _MODAL.match(text)
    if modal and copula and len(modal.group("subj")) > len(copula.group("subj")):
        modal = None
    if modal and (copula is None or len(modal.group("subj")) < len(copula.group("subj"))):
        subj, word, rest = modal.group("subj"), modal.group("modal").lower(), modal.group("rest")
        if subj.lower() == "you":
            return f"Can I {rest}?" if word == "can" else f"What {word} I do about {_keyphrase(rest)}?"
        if _subject_ok(subj):
            subj_q = _subject_case(subj)
            rest_words = rest.split()
            if rest_words[0] == "be" and len(rest_words) > 1:
                asked = _participle_question("How", word, subj_q, " ".join(rest_words[1:]))
                if asked:
                    return asked.replace(f" {subj_q} ", f" {subj_q} be ", 1)
            return f"What {word} {subj_q} {rest_words[0]}?"
    if copula and _subject_ok(copula.group("subj")):
        subj, cop, rest = copula.group("subj"), copula.group("cop"), copula.group("rest")
        subj_q = _subject_case(subj)
        return _participle_question("How", cop, subj_q, rest) or f"What {cop} {subj_q}?"
    tokens = text.split()
    if tokens and tokens[0].lower() in _PRONOUNS:
        return f"What does the documentation say about {_keyphrase(text)}?"
    for i in range(1, min(7, len(tokens) - 1)):
        word, following = tokens[i], tokens[i + 1]
        if not (word.islower() and word.isalpha() and word.endswith("s") and len(word) > 3
                and not word.endswith(("ss", "us", "is"))):
            continue
        subj = _subject_case(" ".join(tokens[:i]))
        if following.lower() in _OBJECT_WORDS and i + 2 < len(tokens):
            return f"What does {subj} {_base_verb(word)} {following.lower()} do?"
        if following.lower() in _PREPOSITIONS or following.endswith("ly"):
            break  # an intransitive verb ("works directly", "runs in"): no "What does X do" question
        # "<word>s" is the verb, not a plural noun, after a singular or proper-noun subject:
        # "a training job reads", "AWS Lambda runs", "the Encrypt operation works".
        subject_tokens = tokens[:i]
        determined = subject_tokens[0].lower() in ("a", "an", "each", "every", "this", "its") or (
            len(subject_tokens) >= 2 and subject_tokens[0].lower() == "the")
        proper = len(subject_tokens) >= 2 and (subject_tokens[-1][:1].isupper()
                                               or any(c.isdigit() for c in subject_tokens[-1]))
        if proper and not determined and following.islower() and following not in _DET_PREP:
            break  # "Amazon S3 stores data" or "Block Public Access settings override": can't tell, don't guess
        if following in _DET_PREP or not following.islower() or following[:1].isdigit() or determined:
            return f"What does {subj} {_base_verb(word)}?"
        if following.isalpha() and not following.endswith(("s", "ed", "ing")):
            return f"What do {subj} {word} {following}?"
        return f"What does {subj} {_base_verb(word)}?"  # decide at the first verb-like word
    return f"What does the documentation say about {_keyphrase(text)}?"


_PREPOSITIONS = frozenset("in on at for of with by from as into across up out about between per through".split())
_NEEDS_COMPLEMENT = frozenset("let lets allow allows enable enables help helps".split())
_LEADING_NOT_SUBJECT = frozenset(
    "for since whoever whatever if when whenever while after before to in on at by with from once unless "
    "because although though during each every as within without until upon so and or but".split()
)
_DANGLING_END = frozenset(
    "a an the and or but of to in on at by for with from as into than that which after before about "
    "your its their our".split()
)


def _grammatical(question: str) -> bool:
    """A cheap check of a template question: a clean subject, no dangling end, no "does X keeps"."""
    body = question.rstrip("?").strip()
    tokens = body.split()
    if not 3 <= len(tokens) <= 16 or "," in body or ";" in body:
        return False
    if tokens[-1].lower() in _DANGLING_END | _NEEDS_COMPLEMENT:
        return False
    match = re.match(r"^(?:What|Where|How|When|Why|Which)\s+(?:does|do|is|are|was|were|can|must|should|will|may)\s+(\S+)",
                     body)
    if match and match.group(1).lower() in _LEADING_NOT_SUBJECT | _PRONOUNS | {"its", "their", "your", "our"}:
        return False
    does = re.match(r"^What (?:does|do) .+ (\w+)$", body)
    if does and not body.startswith("What does the documentation") and re.search(r"[a-z]s$", does.group(1)) \
            and not does.group(1).endswith(("ss", "us", "is")):
        return False  # "What does CloudWatch keeps?"
    return True


def question_for(sentence: str, cells: tuple[tuple[str, str], ...] = ()) -> str:
    """A grammatical question the sentence answers, from its grammar.

    Table rows: "What is the <header> for <first cell>?". Sentences: "What is X?"
    (X is/are ...), "Where is X stored?" (passives), "What does X provide?" (third
    person verbs), "What do X require?" (plural subjects), "Can I ...?" ("You can
    ..."). A template whose result fails :func:`_grammatical` (a subject that is really an
    adverbial such as "For larger objects", a dangling last word) gives way to
    "What does the documentation say about <topic>?", with the sentence's noun phrase as topic.
    """
    question = _template_question(sentence, cells)
    if cells or (_grammatical(question) and not question.startswith("What does the documentation say about")):
        return question
    return f"What does the documentation say about {unit_topic(sentence)}?"


_TOPIC_SKIP = STOPWORDS | _LEADING_NOT_SUBJECT | frozenset(
    "can must should will may is are was were be been has have had does do did make makes keep keeps get gets "
    "lets allows allow roughly about around approximately anything something everything since".split()
)


_MONTHS = frozenset("january february march april may june july august september october november december".split())


def unit_topic(sentence: str, max_words: int = 3) -> str:
    """A short noun-phrase label for a sentence: the subject of its grammatical question when that
    is clean ("What does Versioning keep?" -> "Versioning"), else its longest run of content words,
    split at inner third-person verbs ("role receives temporary ..." -> "temporary security credentials")."""
    question = _template_question(sentence)
    match = re.match(r"^What (?:is|are) (.+)\?$", question) or re.match(
        r"^(?:What|Where|How) (?:is|are|was|were|does|do|can|must|should|will|may) (.+?)(?: (?:be )?\w+)\?$", question)
    if _grammatical(question) and match and not question.startswith("What does the documentation"):
        subject = match.group(1).split()
        while subject and subject[0].lower() in ("a", "an", "the", "each", "every", "all", "your"):
            subject = subject[1:]
        if 1 <= len(subject) <= max_words + 1:
            return " ".join(subject)
    text = _strip_end(re.sub(r"\s*\[\d+\]", "", sentence))
    runs: list[list[str]] = [[]]
    tokens = re.findall(r"[A-Za-z0-9][\w\-']*(?:,\d{3})*(?:\.\d+)?,?", text)
    for index, token in enumerate(tokens):
        word = token.rstrip(",")
        following = tokens[index + 1].lower() if index + 1 < len(tokens) else ""
        verb_like = (word.islower() and re.search(r"[a-z]s$", word) and not word.endswith(("ss", "us", "is"))
                     and not token.endswith(",") and following not in STOPWORDS | {""})
        participle = word.islower() and (word.endswith("ed") or bool(_PARTICIPLE.match(word)))
        if word.lower() in _TOPIC_SKIP or participle or (verb_like and runs[-1]):
            runs.append([])
            continue
        runs[-1].append(word)
        if token.endswith(","):
            runs.append([])
    runs = [run for run in runs if any(w.isalpha() and w.lower() not in _MONTHS for w in run)]
    best = max(runs, key=len) if runs else []
    if not best:
        return "this topic"
    return _subject_case(" ".join(best[:max_words]))


def _informative(unit: Unit) -> tuple[int, int]:
    return (-len(set(content_words(unit.text))), unit.position)


def json_records(prompt: Prompt, behaviour: ModelBehaviour, request: Request | None = None) -> str:
    """JSON records with the requested keys, grounded in the prompt's documents.

    Sentences are taken round-robin across documents (most specific first), a
    question is derived from each sentence's grammar (:func:`question_for`) and
    the answer restates the sentence with a ``[n]`` citation when documents are
    numbered. Other keys get grounded values (the source sentence, the doc
    number, a key phrase). Questions are distinct.
    """
    request = request or read_request(prompt)
    spec = json_request(request.all_text)
    assert spec is not None
    keys, count, is_array = spec
    by_doc: dict[int | None, list[Unit]] = {}
    pool = [u for u in request.units if u.doc is not None] if request.numbered_docs else request.units
    for unit in pool:
        if unit.text.rstrip().endswith("?") or len(words(unit.text)) < 4:
            continue
        by_doc.setdefault(unit.doc, []).append(unit)
    avoided = _avoided_units(request)
    if sum(len(units) for units in by_doc.values()) - len(avoided) >= count:
        by_doc = {doc: [u for u in units if u.position not in avoided] for doc, units in by_doc.items()}
        by_doc = {doc: units for doc, units in by_doc.items() if units}
    queues = [sorted(units, key=_informative) for units in by_doc.values()]
    order: list[Unit] = []
    while any(queues):
        for queue in queues:
            if queue:
                order.append(queue.pop(0))
    if order and request.question:
        # Different samples over the same documents start at different sentences (a hash of the
        # original question), as a sampling teacher would vary; still deterministic.
        offset = _digest("teacher", request.question) % len(order)
        order = order[offset:] + order[:offset]
    siblings = {u.position: u for u in request.units}
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    consumed: set[int] = set()  # sentences already used as the second half of an answer
    for attempt in range(3):
        for unit in order:
            if len(records) >= count:
                break
            if attempt == 0 and unit.position in consumed:
                continue
            if attempt == 0:
                question = question_for(unit.text, unit.cells)
            elif attempt == 1:
                question = f"What does the documentation say about {_keyphrase(unit.text)}?"
            else:
                where = f"Doc {unit.doc}" if unit.doc is not None else "the text"
                question = f"According to {where}, what is stated about {_keyphrase(unit.text)}?"
            norm = " ".join(words(question))
            if norm in seen:
                continue
            seen.add(norm)
            answer = unit.text
            follow = siblings.get(unit.position + 1)
            cite = unit.doc if request.numbered_docs else None
            answer = _cite(answer, cite)
            if follow is not None and follow.doc == unit.doc and len(words(unit.text)) < 15 and \
                    follow.kind == unit.kind == "sentence" and follow.position not in avoided:
                answer = f"{answer} {_cite(follow.text, cite)}"
                consumed.add(follow.position)
            records.append(_record(keys, question, answer, unit, request))
    if _asks_json_lines(request.all_text):  # JSON Lines: one compact object per line
        return "\n".join(json.dumps(record, ensure_ascii=False) for record in records)
    data: Any = records if is_array else (records[0] if records else {k: "" for k in keys})
    return json.dumps(data, indent=2, ensure_ascii=False)


_JSON_LINES_ASK = re.compile(r"\bJSON\s*Lines\b|\bJSONL\b|\bone (?:JSON )?(?:object|record) per line\b", re.IGNORECASE)
_OTHER_TOPICS_ASK = re.compile(r"\b(?:other than|different from|besides|beyond)\b[^.]{0,60}\boriginal question", re.IGNORECASE)


def _asks_json_lines(text: str) -> bool:
    """JSON Lines when its last mention comes after the last mention of an array or list
    (documents before the instruction may mention either)."""
    lines = [m.start() for m in _JSON_LINES_ASK.finditer(text)]
    arrays = [m.start() for m in re.finditer(r"\b(?:array|list)\b", text, re.IGNORECASE)]
    return bool(lines) and (not arrays or lines[-1] > arrays[-1])


def _avoided_units(request: Request) -> set[int]:
    """Positions of the sentences that answer the prompt's original question, when the prompt asks
    for topics other than the original question's (the seed's instruction): the best match and
    every unit scoring at least half as well."""
    if not request.question or not _OTHER_TOPICS_ASK.search(request.all_text):
        return set()
    ranked = [(score, unit) for score, unit in rank_units(request.units, request.question) if score > 0]
    if not ranked:
        return set()
    best = ranked[0][0]
    return {unit.position for score, unit in ranked if score >= 0.5 * best}


def _record(keys: list[str], question: str, answer: str, unit: Unit, request: Request) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for key in keys:
        name = key.lower().replace(" ", "_").replace("-", "_")
        if name in _QUESTION_KEYS:
            record[key] = question
        elif name in _ANSWER_KEYS:
            record[key] = answer
        elif name in _CONTEXT_KEYS:
            record[key] = unit.text
        elif name in _CITATION_KEYS:
            record[key] = f"[{unit.doc}]" if unit.doc is not None else ""
        elif name in _SOURCE_KEYS:
            record[key] = f"Doc {unit.doc}" if unit.doc is not None else ""
        elif name in _TOPIC_KEYS:
            record[key] = unit_topic(unit.text)
        elif name in ("difficulty", "level", "complexity"):
            size = len(set(content_words(unit.text)))
            record[key] = "easy" if size < 8 else "medium" if size < 16 else "hard"
        elif name in ("type", "question_type", "kind"):
            record[key] = "factual"
        else:
            record[key] = unit.text
    return record
