"""dsserve eval scores exactly what the model answers.

Checkpoints whose greedy continuation is a fixed text (make-model --force-output) are served by
dsserve serve, and the figures dsserve eval prints are checked against fractions computed here,
independently, from the data files.
"""
import csv
import json
import re
import subprocess

import pytest

from conftest import BINARY, ROOT, Server

DATA = ROOT / "data" / "datasets"

# Forced texts. Their tokens must be distinct: the forcing chains each token to the next.
# MMLU generates one token, so " A" alone is its answer. For GSM8K the last number counts: 18 (the
# gold answer of the first test question) after a distractor written with a thousands comma.
RIGHT_TEXT = " A hen lays 1,200 eggs; Janet earns $18."
RIGHT_NUMBER = 18
UNPARSABLE_TEXT = " Nobody knows."  # no digit (GSM8K: invalid), no letter A-D (MMLU: wrong)

GSM8K_QUESTIONS = 20
MMLU_SUBJECTS = 2


def gsm8k_labels(n):
    """Gold numbers of the first n test questions, read the way the spec defines (last digit run
    after deleting commas)."""
    lines = (DATA / "gsm8k" / "test.jsonl").read_text().splitlines()[:n]
    return [int(re.findall(r"\d+", json.loads(line)["answer"].replace(",", ""))[-1])
            for line in lines]


def mmlu_answers(nsub):
    """{subject: [gold letter, ...]} for the first nsub subjects in sorted order. The repository's
    copy has a header line and the answer as the index 0-3 of the right choice."""
    test_dir = DATA / "mmlu" / "test"
    subjects = sorted(p.name[:-len("_test.csv")] for p in test_dir.glob("*_test.csv"))[:nsub]
    out = {}
    for subject in subjects:
        with open(test_dir / f"{subject}_test.csv", newline="") as f:
            rows = list(csv.reader(f))
        assert rows[0] == ["question", "choice0", "choice1", "choice2", "choice3", "answer"]
        out[subject] = ["ABCD"[int(r[5])] for r in rows[1:]]
    return out


def serve_forced(workdir, name, text):
    path = workdir / name
    subprocess.run([str(BINARY), "make-model", str(path), "--preset", "tiny",
                    "--json-model-override-args", '{"num_hidden_layers": 2}',
                    "--force-output", text], check=True, capture_output=True)
    return Server(["--model-path", str(path)])


@pytest.fixture(scope="module")
def right_server(workdir):
    s = serve_forced(workdir, "eval-right", RIGHT_TEXT)
    yield s
    assert s.stop() == 0, s.output()


@pytest.fixture(scope="module")
def unparsable_server(workdir):
    s = serve_forced(workdir, "eval-unparsable", UNPARSABLE_TEXT)
    yield s
    assert s.stop() == 0, s.output()


def run_eval(server, *args):
    r = subprocess.run([str(BINARY), "eval", *args, "--base-url", server.url, "--disable-progress"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Failed requests" not in r.stdout, r.stdout
    return r.stdout


def figure(output, label):
    m = re.search(r"^" + re.escape(label) + r": ([0-9.]+)", output, re.M)
    assert m, output
    return m.group(1)


def run_gsm8k(server, tmp_path):
    dump = tmp_path / "gsm8k.jsonl"
    out = run_eval(server, "gsm8k", "--num-questions", str(GSM8K_QUESTIONS), "--dump", str(dump))
    rows = [json.loads(line) for line in dump.read_text().splitlines()]
    assert len(rows) == GSM8K_QUESTIONS
    return out, rows


def test_gsm8k_scores_the_forced_number(right_server, tmp_path):
    labels = gsm8k_labels(GSM8K_QUESTIONS)
    hits = sum(label == RIGHT_NUMBER for label in labels)
    assert 0 < hits < len(labels)  # some right, some wrong: the test tells both apart
    out, rows = run_gsm8k(right_server, tmp_path)
    for row, label in zip(rows, labels):
        assert row["output"] == RIGHT_TEXT, row  # the checkpoint really forces the text
        assert row["pred"] == str(RIGHT_NUMBER), row
        assert row["label"] == str(label), row
    assert figure(out, "Accuracy") == f"{hits / len(labels):.3f}"
    assert figure(out, "Invalid") == "0.000"


def test_gsm8k_unparsable_answer_is_invalid(unparsable_server, tmp_path):
    out, rows = run_gsm8k(unparsable_server, tmp_path)
    for row in rows:
        assert row["output"] == UNPARSABLE_TEXT, row
        assert row["pred"] is None, row
    assert figure(out, "Accuracy") == "0.000"
    assert figure(out, "Invalid") == "1.000"


def mmlu_subject_lines(out):
    return {m.group(1): (int(m.group(2)), m.group(3))
            for m in re.finditer(r"^subject: (\w+), #q:(\d+), acc: ([0-9.]+)$", out, re.M)}


def test_mmlu_scores_the_forced_letter(right_server):
    answers = mmlu_answers(MMLU_SUBJECTS)
    out = run_eval(right_server, "mmlu", "--nsub", str(MMLU_SUBJECTS))
    subjects = mmlu_subject_lines(out)
    assert list(subjects) == list(answers), out
    total = right = 0
    for subject, gold in answers.items():
        hits = gold.count("A")
        assert 0 < hits < len(gold)
        assert subjects[subject] == (len(gold), f"{hits / len(gold):.3f}"), out
        total += len(gold)
        right += hits
    assert figure(out, "Average accuracy") == f"{right / total:.3f}"


def test_mmlu_unparsable_answer_is_wrong(unparsable_server):
    answers = mmlu_answers(MMLU_SUBJECTS)
    out = run_eval(unparsable_server, "mmlu", "--nsub", str(MMLU_SUBJECTS))
    subjects = mmlu_subject_lines(out)
    assert subjects == {s: (len(g), "0.000") for s, g in answers.items()}, out
    assert figure(out, "Average accuracy") == "0.000"
